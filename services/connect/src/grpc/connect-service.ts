/**
 * skein.connect.v1.ConnectService: decode, validate, change the cluster state through the worker
 * (a write to the config topic, read back before answering), answer. Any worker answers any call.
 */

import { SkeinError } from '@skein/common/errors.js';
import { unary } from '@skein/common/grpc-server.js';
import { requestAuth } from '@skein/common/security/enforcement.js';
import {
  type ConnectorInfo,
  ConnectorState,
  ConnectorType,
  ConnectServiceService,
  type ConnectServiceServer,
  type TaskStatus,
} from '@skein/proto/skein/connect/v1/connect.js';
import type { Logger } from 'pino';
import type { ConnectorRecord } from '../domain/cluster-state.js';
import { invalidConnectorName } from '../domain/config-def.js';
import { validateConnectorConfig } from '../domain/connector-config.js';
import { connectorStatus, type TaskState } from '../domain/status.js';
import type { ConnectorPlugin } from '../sdk/types.js';
import type { Worker } from '../runtime/worker.js';
import { connectorAction } from './connect-authz.js';

export const CONNECT_SERVICE_NAME = 'skein.connect.v1.ConnectService';
export { ConnectServiceService };

const STATE: Record<TaskState, ConnectorState> = {
  UNASSIGNED: ConnectorState.CONNECTOR_STATE_UNASSIGNED,
  RUNNING: ConnectorState.CONNECTOR_STATE_RUNNING,
  PAUSED: ConnectorState.CONNECTOR_STATE_PAUSED,
  FAILED: ConnectorState.CONNECTOR_STATE_FAILED,
};

const typeOf = (t: 'source' | 'sink') => (t === 'source' ? ConnectorType.CONNECTOR_TYPE_SOURCE : ConnectorType.CONNECTOR_TYPE_SINK);

function checkName(name: string): void {
  const problem = invalidConnectorName(name);
  if (problem) throw new SkeinError('INVALID_REQUEST', problem);
}

function info(r: ConnectorRecord): ConnectorInfo {
  return { name: r.name, type: typeOf(r.type), config: r.config, tasks: r.tasks.map((config, task) => ({ task, config })) };
}

/** The plugin and the task configurations for `config`, or INVALID_CONNECTOR_CONFIG listing every problem. */
export function planConnector(
  plugins: { get(c: string): ConnectorPlugin | undefined },
  config: Record<string, string>,
): { plugin: ConnectorPlugin; tasks: Array<Record<string, string>> } {
  const cls = config['connector.class'] ?? '';
  const plugin = plugins.get(cls);
  if (!plugin)
    throw new SkeinError(
      'INVALID_CONNECTOR_CONFIG',
      cls === '' ? 'connector.class is required' : `unknown connector.class "${cls}" (skein connect plugins lists them)`,
    );
  const result = validateConnectorConfig(plugin.type, plugin.config, config, plugin.validate?.(config));
  if (result.errorCount > 0) {
    const problems = result.keys.flatMap((k) => k.errors);
    throw new SkeinError('INVALID_CONNECTOR_CONFIG', problems.join('; '), { metadata: { errors: String(result.errorCount) } });
  }
  const maxTasks = Number(config['tasks.max'] ?? '1');
  const tasks = plugin
    .taskConfigs(config, maxTasks)
    .slice(0, maxTasks)
    .map((t) => ({ ...config, ...t }));
  return { plugin, tasks };
}

export function connectServiceHandlers(worker: Worker, logger: Logger): ConnectServiceServer {
  const existing = async (name: string): Promise<ConnectorRecord> => {
    checkName(name);
    await worker.readConfigToEnd();
    const r = worker.clusterState.get(name);
    if (!r) throw new SkeinError('UNKNOWN_CONNECTOR', `no connector named ${name}`);
    return r;
  };
  const change = async (name: string, fn: (r: ConnectorRecord) => ConnectorRecord): Promise<void> => {
    const r = await existing(name);
    await worker.writeConnector(name, fn(r));
  };

  return {
    createConnector: unary(async (req) => {
      checkName(req.name);
      const { plugin, tasks } = planConnector(worker.plugins, req.config);
      await worker.readConfigToEnd();
      if (worker.clusterState.has(req.name)) throw new SkeinError('CONNECTOR_ALREADY_EXISTS', `connector ${req.name} exists`);
      const record: ConnectorRecord = {
        name: req.name,
        type: plugin.type,
        config: { ...req.config },
        tasks,
        generation: 1,
        paused: false,
        taskRestarts: tasks.map(() => 0),
      };
      await worker.writeConnector(req.name, record);
      logger.info({ connector: req.name, tasks: tasks.length, class: plugin.connectorClass }, 'connector created');
      return { connector: info(record) };
    }),
    updateConnector: unary(async (req) => {
      const old = await existing(req.name);
      const { plugin, tasks } = planConnector(worker.plugins, req.config);
      if (plugin.type !== old.type)
        throw new SkeinError('INVALID_CONNECTOR_CONFIG', `connector ${req.name} is a ${old.type}; ${plugin.connectorClass} is a ${plugin.type}`);
      const record: ConnectorRecord = { ...old, config: { ...req.config }, tasks, generation: old.generation + 1, taskRestarts: tasks.map(() => 0) };
      await worker.writeConnector(req.name, record);
      if (plugin.type === 'source' && tasks.length < old.tasks.length) {
        // Tasks that no longer exist must not commit anything more (KIP-618 fencing).
        await worker.fenceSourceTasks(req.name, old.tasks.map((_, i) => i).slice(tasks.length));
      }
      logger.info({ connector: req.name, tasks: tasks.length }, 'connector updated');
      return { connector: info(record) };
    }),
    deleteConnector: unary(async (req) => {
      const old = await existing(req.name);
      await worker.writeConnector(req.name, null);
      // Give the workers running its tasks a moment to stop them (they report UNASSIGNED or stop
      // writing) before releasing what the plugin holds outside; onDelete must cope with a task
      // still holding it (the PostgreSQL source terminates the slot's connection first).
      const deadline = Date.now() + 10_000;
      while (
        Date.now() < deadline &&
        [...worker.taskStatuses.values()].some((s) => s.connector === req.name && (s.state === 'RUNNING' || s.state === 'PAUSED'))
      ) {
        await new Promise((r) => setTimeout(r, 100));
      }
      const plugin = worker.plugins.get(old.config['connector.class'] ?? '');
      await plugin?.onDelete?.(req.name, old.config, logger.child({ connector: req.name }));
      await worker.deleteStatuses(req.name, old.tasks.length);
      logger.info({ connector: req.name }, 'connector deleted');
      return {};
    }),
    listConnectors: unary(async (_req, call) => {
      await worker.readConfigToEnd();
      // Only the connectors the caller may describe (every connector with the authorizer off).
      const auth = requestAuth(call);
      const connectors = [...worker.clusterState.values()]
        .filter((r) => auth.allowed(connectorAction(r.name, 'describe')))
        .sort((a, b) => a.name.localeCompare(b.name))
        .map((r) => ({ name: r.name, type: typeOf(r.type), state: STATE[connectorStatus(r, worker.taskStatuses).state], taskCount: r.tasks.length }));
      return { connectors };
    }),
    getConnector: unary(async (req) => ({ connector: info(await existing(req.name)) })),
    getConnectorStatus: unary(async (req) => {
      const r = await existing(req.name);
      const s = connectorStatus(r, worker.taskStatuses);
      const tasks: TaskStatus[] = s.tasks.map((t) => ({
        task: t.task,
        state: STATE[t.state],
        workerId: t.workerId,
        trace: t.trace,
        updatedAtMs: BigInt(t.updatedAtMs),
      }));
      return { name: r.name, type: typeOf(r.type), state: STATE[s.state], tasks };
    }),
    pauseConnector: unary(async (req) => {
      await change(req.name, (r) => ({ ...r, paused: true }));
      return {};
    }),
    resumeConnector: unary(async (req) => {
      await change(req.name, (r) => ({ ...r, paused: false }));
      return {};
    }),
    restartConnector: unary(async (req) => {
      await change(req.name, (r) => {
        if (!req.onlyFailed) return { ...r, generation: r.generation + 1 };
        const s = connectorStatus(r, worker.taskStatuses);
        return { ...r, taskRestarts: r.tasks.map((_, i) => (r.taskRestarts[i] ?? 0) + (s.tasks[i]?.state === 'FAILED' ? 1 : 0)) };
      });
      return {};
    }),
    restartTask: unary(async (req) => {
      await change(req.name, (r) => {
        if (req.task < 0 || req.task >= r.tasks.length)
          throw new SkeinError('UNKNOWN_CONNECTOR', `connector ${req.name} has no task ${req.task} (it has ${r.tasks.length})`);
        return { ...r, taskRestarts: r.tasks.map((_, i) => (r.taskRestarts[i] ?? 0) + (i === req.task ? 1 : 0)) };
      });
      return {};
    }),
    validateConfig: unary(async (req) => {
      const cls = req.config['connector.class'] ?? '';
      const plugin = worker.plugins.get(cls);
      if (!plugin) {
        return {
          connectorClass: cls,
          errorCount: 1,
          keys: [
            {
              name: 'connector.class',
              documentation: 'The plugin',
              type: 'string',
              defaultValue: '',
              required: true,
              errors: [cls === '' ? 'connector.class is required' : `unknown connector.class "${cls}"`],
            },
          ],
        };
      }
      const result = validateConnectorConfig(plugin.type, plugin.config, req.config, plugin.validate?.(req.config));
      return {
        connectorClass: cls,
        errorCount: result.errorCount,
        keys: result.keys.map((k) => ({
          name: k.def.name,
          documentation: k.def.doc,
          type: k.def.type,
          defaultValue: k.def.default ?? '',
          required: k.def.default === undefined,
          errors: k.errors,
        })),
      };
    }),
    listPlugins: unary(async () => ({
      plugins: worker.plugins.list().map((p) => ({ connectorClass: p.connectorClass, type: typeOf(p.type), version: p.version, description: p.description })),
    })),
  };
}
