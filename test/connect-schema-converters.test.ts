// Schema-registry converters in Connect (issue 19): a source writes JSON values through
// value.converter=avro; the topic holds Confluent-framed records (magic 0, a 4-byte id) whose id
// resolves in the registry to the Avro schema under <topic>-value; a sink with the same converter
// gets the original values back. The source and sink are a tiny plugin module written by the test.
// The source runs at least once: its transactional producer answered "topic users does not exist"
// for a topic just created (the exactly-once path on a fresh topic; not what is tested here).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startConnectCluster, type ConnectCluster } from './harness/connect-cluster.js';
import { freePort } from './harness/ports.js';
import { type ServiceProcess, startService } from './harness/services.js';
import { startStores, type TestStores } from './harness/stores.js';
import { waitFor } from './harness/wait.js';

const REGISTRY_ENTRY = fileURLToPath(new URL('../services/schema-registry/dist/main.js', import.meta.url));
const VALUES = Array.from({ length: 20 }, (_, i) => ({ id: i, name: `user-${i}`, score: i * 1.5 }));
const SCHEMA = JSON.stringify({
  type: 'record',
  name: 'User',
  namespace: 'test',
  fields: [
    { name: 'id', type: 'int' },
    { name: 'name', type: 'string' },
    { name: 'score', type: 'double' },
  ],
});

// Emits VALUES once (offset: how many were written), then idles; the sink appends each value as a JSON line.
const PLUGIN = `
import { appendFileSync } from 'node:fs';
const VALUES = ${JSON.stringify(VALUES)};
export const plugins = [
  { connectorClass: 'FixedSource', type: 'source', version: '1', description: 'test', config: [{ name: 'topic', type: 'string', doc: '' }],
    taskConfigs: (c) => [{ ...c }],
    createTask: () => { let done = false; let topic = '';
      return {
        async start(c, ctx) { topic = c.topic; done = Number(ctx.offset({ f: 'x' })?.n ?? 0) >= VALUES.length; },
        async poll(signal) {
          if (done) { await new Promise((r) => { const t = setTimeout(r, 100); signal?.addEventListener?.('abort', () => { clearTimeout(t); r(); }); }); return []; }
          done = true;
          return VALUES.map((v, i) => ({ topic, key: null, value: v, headers: [], sourcePartition: { f: 'x' }, sourceOffset: { n: i + 1 } }));
        },
        async stop() {},
      };
    } },
  { connectorClass: 'JsonLinesSink', type: 'sink', version: '1', description: 'test', config: [{ name: 'file', type: 'string', doc: '' }],
    taskConfigs: (c) => [{ ...c }],
    createTask: () => { let file = '';
      return {
        async start(c) { file = c.file; },
        async put(records) { for (const r of records) appendFileSync(file, JSON.stringify(r.value) + '\\n'); },
        async flush() {},
        async stop() {},
      };
    } },
];
`;

let dir: string;
let stores: TestStores;
let registry: ServiceProcess;
let registryUrl = '';
let cluster: ConnectCluster;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'skein-connect-schema-'));
  writeFileSync(join(dir, 'plugin.mjs'), PLUGIN);
  cluster = await startConnectCluster({ workers: 1, workerArgs: ['--plugin-modules', join(dir, 'plugin.mjs')] });
  stores = await startStores();
  const restPort = await freePort();
  registry = await startService({
    name: 'schema-registry',
    entry: REGISTRY_ENTRY,
    args: [...stores.args('schema-registry', `/connect-schema-${process.pid}/`), '--rest-port', String(restPort), '--log-level', 'warn'],
  });
  registryUrl = `http://127.0.0.1:${restPort}`;
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
  await registry?.stop();
  await stores?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('connect: schema-registry converters', () => {
  it('writes Confluent-framed Avro whose id resolves in the registry, and a sink reads the values back', async () => {
    const converter = { 'value.converter': 'avro', 'value.converter.schema.registry.url': registryUrl };
    const w = cluster.connect('w1');
    // Validation: a source with the avro converter needs the registry's URL and a schema.
    const invalid = await w.validateConfig({ config: { 'connector.class': 'FixedSource', topic: 'users', 'value.converter': 'avro' } });
    expect(invalid.keys.filter((k) => k.errors.length > 0).map((k) => k.name)).toEqual(['value.converter.schema.registry.url', 'value.converter.schema']);

    await cluster.client.createTopic('users', { partitions: 1, replicationFactor: 1 });
    await w.createConnector({
      name: 'users-in',
      config: { 'connector.class': 'FixedSource', topic: 'users', ...converter, 'value.converter.schema': SCHEMA, 'exactly.once.support': 'disabled' },
    });
    await waitFor(async () => (await cluster.client.fetch('users', 0, 0n).catch(() => ({ records: [] }))).records.length >= VALUES.length, {
      timeoutMs: 60_000,
      message: 'the source wrote every record',
    }).catch(async (err) => {
      throw new Error(`${(err as Error).message}: ${JSON.stringify((await w.getConnectorStatus({ name: 'users-in' })).tasks.map((t) => [t.state, t.trace]))}`);
    });
    const { records } = await cluster.client.fetch('users', 0, 0n);
    const ids = new Set<number>();
    for (const r of records) {
      const v = Buffer.from(r.value!);
      expect(v[0]).toBe(0);
      ids.add(v.readUInt32BE(1));
    }
    expect(ids.size).toBe(1);
    const [id] = [...ids];
    const byId = (await (await fetch(`${registryUrl}/schemas/ids/${id}`)).json()) as { schema: string };
    expect(JSON.parse(byId.schema).name).toBe('User');
    const latest = (await (await fetch(`${registryUrl}/subjects/users-value/versions/latest`)).json()) as { id: number };
    expect(latest.id).toBe(id);

    const out = join(dir, 'out.jsonl');
    await w.createConnector({ name: 'users-out', config: { 'connector.class': 'JsonLinesSink', topics: 'users', file: out, ...converter } });
    const lines = () => {
      try {
        return readFileSync(out, 'utf8').split('\n').filter(Boolean);
      } catch {
        return [];
      }
    };
    await waitFor(() => lines().length >= VALUES.length, { timeoutMs: 60_000, message: 'the sink got every record' });
    expect(lines().map((l) => JSON.parse(l))).toEqual(VALUES);
  }, 150_000);
});
