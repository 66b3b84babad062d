/**
 * `skein connect ...`: connectors on a Connect cluster (skein.connect.v1). Any worker answers any
 * call; without --connect (SKEIN_CONNECT) the workers are found from the metadata service
 * (FindServiceInstances, role CONNECT) and tried in turn while unreachable.
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { type Command, CommanderError } from 'commander';
import { ServiceRole, type SkeinClient } from '@skein/client';
import { fromServiceError } from '@skein/common/errors.js';
import { type ClientTlsConfig, channelCredentials } from '@skein/common/tls.js';
import { ConnectorState, ConnectorType, ConnectServiceClient } from '@skein/proto/skein/connect/v1/connect.js';
import type { Cell } from './table.js';

export interface ConnectCliContext {
  client(): SkeinClient;
  tls(): ClientTlsConfig | undefined;
  print(value: unknown, table: () => void): void;
  table(columns: readonly string[], rows: ReadonlyArray<Record<string, Cell>>): void;
}

const stateName = (s: ConnectorState) => ConnectorState[s]?.replace('CONNECTOR_STATE_', '') ?? String(s);
const typeName = (t: ConnectorType) => ConnectorType[t]?.replace('CONNECTOR_TYPE_', '').toLowerCase() ?? String(t);
const collect = (v: string, prev: string[] = []) => [...prev, v];

/** key=value options and an optional JSON file ({ "key": "value" }, or Kafka Connect's { "config": {...} }). */
function configFrom(o: { config?: string[]; configFile?: string }): Record<string, string> {
  const out: Record<string, string> = {};
  if (o.configFile) {
    const parsed = JSON.parse(readFileSync(o.configFile, 'utf8')) as Record<string, unknown> & { config?: Record<string, unknown> };
    for (const [k, v] of Object.entries(parsed.config ?? parsed)) out[k] = String(v);
  }
  for (const item of o.config ?? []) {
    const i = item.indexOf('=');
    if (i <= 0) throw new CommanderError(2, 'skein.usage', `--config must be key=value, got "${item}"`);
    out[item.slice(0, i)] = item.slice(i + 1);
  }
  return out;
}

type Unary<Req, Res> = (
  req: Req,
  md: grpc.Metadata,
  opts: Partial<grpc.CallOptions>,
  cb: (err: grpc.ServiceError | null, res: Res) => void,
) => grpc.ClientUnaryCall;

export function addConnectCommands(program: Command, ctx: ConnectCliContext): void {
  const connect = program
    .command('connect')
    .description('connectors on a Connect cluster: create, update, delete, list, status, pause, resume, restart, validate, plugins')
    .option('--connect <addresses>', 'Connect worker address(es), host:port[,...] (default: found from the metadata service)', process.env.SKEIN_CONNECT);

  /** Calls a ConnectService method on the first worker that answers. */
  async function call<Req, Res>(pick: (c: ConnectServiceClient) => Unary<Req, Res>, req: Req): Promise<Res> {
    let addresses = ((connect.opts().connect as string | undefined) ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    if (addresses.length === 0) {
      const c = ctx.client();
      try {
        addresses = (await c.findServiceInstances(ServiceRole.SERVICE_ROLE_CONNECT)).map((i) => `${i.endpoint!.host}:${i.endpoint!.port}`);
      } finally {
        c.close();
      }
      if (addresses.length === 0) throw new Error('no Connect worker is registered with the metadata service (start one, or pass --connect)');
    }
    const credentials = channelCredentials(ctx.tls());
    let last: unknown;
    for (const address of addresses) {
      const stub = new ConnectServiceClient(address, credentials);
      try {
        return await new Promise<Res>((resolve, reject) => {
          pick(stub).call(stub, req, new grpc.Metadata(), { deadline: Date.now() + 30_000 }, (err, res) => (err ? reject(err) : resolve(res)));
        });
      } catch (err) {
        last = err;
        // Only an unreachable worker is worth trying the next; an answer is the cluster's answer.
        if ((err as grpc.ServiceError).code !== grpc.status.UNAVAILABLE) throw fromServiceError(err as grpc.ServiceError);
      } finally {
        stub.close();
      }
    }
    throw fromServiceError(last as grpc.ServiceError);
  }

  connect
    .command('plugins')
    .description('connector plugins the workers can run')
    .action(async () => {
      const res = await call((c) => c.listPlugins, {});
      ctx.print(
        res.plugins.map((p) => ({ ...p, type: typeName(p.type) })),
        () =>
          ctx.table(
            ['class', 'type', 'version', 'description'],
            res.plugins.map((p) => ({ class: p.connectorClass, type: typeName(p.type), version: p.version, description: p.description })),
          ),
      );
    });
  connect
    .command('list')
    .description('connectors and their state')
    .action(async () => {
      const res = await call((c) => c.listConnectors, {});
      ctx.print(
        res.connectors.map((x) => ({ ...x, type: typeName(x.type), state: stateName(x.state) })),
        () =>
          ctx.table(
            ['name', 'type', 'state', 'tasks'],
            res.connectors.map((x) => ({ name: x.name, type: typeName(x.type), state: stateName(x.state), tasks: x.taskCount })),
          ),
      );
    });
  const withConfig = (cmd: Command) =>
    cmd
      .option('-c, --config <key=value>', 'a configuration entry (repeatable)', collect)
      .option('--config-file <file>', 'configuration as JSON ({"key": "value"} or {"config": {...}})');
  withConfig(connect.command('create <name>').description('create a connector (connector.class names the plugin)')).action(
    async (name: string, o: { config?: string[]; configFile?: string }) => {
      const res = await call((c) => c.createConnector, { name, config: configFrom(o) });
      ctx.print(res.connector, () => console.log(`created connector ${name} with ${res.connector!.tasks.length} task(s)`));
    },
  );
  withConfig(connect.command('update <name>').description("replace a connector's configuration (its tasks restart)")).action(
    async (name: string, o: { config?: string[]; configFile?: string }) => {
      const res = await call((c) => c.updateConnector, { name, config: configFrom(o) });
      ctx.print(res.connector, () => console.log(`updated connector ${name}: ${res.connector!.tasks.length} task(s)`));
    },
  );
  connect
    .command('get <name>')
    .description("a connector's configuration and its tasks'")
    .action(async (name: string) => {
      const res = await call((c) => c.getConnector, { name });
      ctx.print(res.connector, () => {
        ctx.table(
          ['key', 'value'],
          Object.entries(res.connector!.config)
            .sort()
            .map(([key, value]) => ({ key, value: /password|secret|url/i.test(key) ? '********' : value })),
        );
        console.log(`${res.connector!.tasks.length} task(s)`);
      });
    });
  connect
    .command('status <name>')
    .description('state of the connector and each task, with the worker and the last error')
    .action(async (name: string) => {
      const res = await call((c) => c.getConnectorStatus, { name });
      ctx.print(
        {
          ...res,
          type: typeName(res.type),
          state: stateName(res.state),
          tasks: res.tasks.map((t) => ({ ...t, state: stateName(t.state), updatedAtMs: Number(t.updatedAtMs) })),
        },
        () => {
          console.log(`connector ${res.name} (${typeName(res.type)}): ${stateName(res.state)}`);
          ctx.table(
            ['task', 'state', 'worker', 'error'],
            res.tasks.map((t) => ({ task: t.task, state: stateName(t.state), worker: t.workerId, error: t.trace.split('\n')[0] ?? '' })),
          );
        },
      );
    });
  connect
    .command('delete <name>')
    .description('delete a connector (a PostgreSQL source drops its replication slot)')
    .action(async (name: string) => {
      await call((c) => c.deleteConnector, { name });
      ctx.print({ deleted: name }, () => console.log(`deleted connector ${name}`));
    });
  connect
    .command('pause <name>')
    .description('pause a connector')
    .action(async (name: string) => {
      await call((c) => c.pauseConnector, { name });
      ctx.print({ paused: name }, () => console.log(`paused connector ${name}`));
    });
  connect
    .command('resume <name>')
    .description('resume a paused connector')
    .action(async (name: string) => {
      await call((c) => c.resumeConnector, { name });
      ctx.print({ resumed: name }, () => console.log(`resumed connector ${name}`));
    });
  connect
    .command('restart <name>')
    .description('restart every task of a connector, only its failed ones, or one task')
    .option('--task <n>', 'only this task')
    .option('--only-failed', 'only the tasks that failed')
    .action(async (name: string, o: { task?: string; onlyFailed?: boolean }) => {
      if (o.task !== undefined) await call((c) => c.restartTask, { name, task: Number(o.task) });
      else await call((c) => c.restartConnector, { name, onlyFailed: o.onlyFailed === true });
      ctx.print({ restarted: name, task: o.task }, () => console.log(`restarted ${o.task !== undefined ? `task ${o.task} of ` : ''}connector ${name}`));
    });
  withConfig(connect.command('validate').description('check a configuration against its plugin without creating anything')).action(
    async (o: { config?: string[]; configFile?: string }) => {
      const res = await call((c) => c.validateConfig, { config: configFrom(o) });
      ctx.print(res, () => {
        ctx.table(
          ['key', 'type', 'required', 'default', 'errors'],
          res.keys.map((k) => ({ key: k.name, type: k.type, required: k.required ? 'yes' : '', default: k.defaultValue, errors: k.errors.join('; ') })),
        );
        console.log(res.errorCount === 0 ? 'valid' : `${res.errorCount} error(s)`);
      });
      if (res.errorCount > 0) process.exitCode = 1;
    },
  );
}
