// Schemas through a real cluster (metadata, two brokers, a schema registry): Avro and Protobuf
// records produced with the client's serializers and with `skein produce --value-schema` (JSON lines
// in, registry wire format on the log), consumed and decoded back, by the client and by
// `skein consume --value-schema`; `skein schemas` registers, checks, lists, configures and deletes;
// an incompatible schema is refused at registration.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeHeader, OffsetSpec, SchemaDeserializer, SchemaRegistryClient, SchemaSerializer, SkeinClient } from '@skein/client';
import { metadataClient } from './harness/clients.js';
import { BROKER_ENTRY, CLI_ENTRY, METADATA_ENTRY } from './harness/entries.js';
import { freePort } from './harness/ports.js';
import { startService, stopAll, waitFor } from './harness/services.js';
import { startStores, type TestStores } from './harness/stores.js';

const REGISTRY_ENTRY = fileURLToPath(new URL('../services/schema-registry/dist/main.js', import.meta.url));
let stores: TestStores;
let metadataAddress = '';
let registryUrl = '';
let client: SkeinClient;
let registry: SchemaRegistryClient;
const dir = mkdtempSync(join(tmpdir(), 'skein-schema-cluster-'));

beforeAll(async () => {
  stores = await startStores();
  const prefix = `/schema-cluster-${process.pid}/`;
  const metadata = await startService({ name: 'metadata', entry: METADATA_ENTRY, args: stores.args('metadata', prefix) });
  metadataAddress = metadata.address;
  for (const id of [1, 2])
    await startService({
      name: `broker-${id}`,
      entry: BROKER_ENTRY,
      dataDirFlag: '--data-dir',
      args: ['--broker-id', String(id), '--metadata-addresses', metadata.address],
    });
  const meta = metadataClient(metadata.address);
  await waitFor(async () => (await meta.getClusterMetadata({ topics: [] })).metadata!.brokers.length === 2, {
    timeoutMs: 15_000,
    message: 'brokers registered',
  });
  meta.close();
  const restPort = await freePort();
  await startService({
    name: 'schema-registry',
    entry: REGISTRY_ENTRY,
    args: [...stores.args('schema-registry', prefix), '--rest-port', String(restPort), '--metadata-addresses', metadata.address, '--log-level', 'warn'],
  });
  registryUrl = `http://127.0.0.1:${restPort}`;
  client = new SkeinClient({ metadata: [metadataAddress] });
  registry = new SchemaRegistryClient({ url: registryUrl });
}, 60_000);

afterAll(async () => {
  client?.close();
  await stopAll();
  await stores?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function skein(args: string[], stdin = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI_ENTRY, '--metadata', metadataAddress, '--schema-registry', registryUrl, ...args]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

/** Every record of a one-partition topic, from the start. */
async function readAll(topic: string, count: number): Promise<Buffer[]> {
  const values: Buffer[] = [];
  await waitFor(
    async () => {
      values.length = 0;
      const end = await client.listOffset(topic, 0, OffsetSpec.OFFSET_SPEC_LATEST);
      let at = 0n;
      while (at < end) {
        const { records } = await client.fetch(topic, 0, at, { maxWaitMs: 100, maxBytes: 1 << 20 });
        if (records.length === 0) break;
        for (const r of records) if (r.value) values.push(Buffer.from(r.value));
        at = records[records.length - 1]!.offset + 1n;
      }
      return values.length >= count;
    },
    { timeoutMs: 15_000, message: `${count} records in ${topic}` },
  );
  return values;
}

const order = {
  type: 'record',
  name: 'Order',
  namespace: 'shop',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'cents', type: 'long' },
  ],
};

describe('schemas through a cluster', () => {
  it('Avro and Protobuf records produced with the serializers are consumed and decoded', async () => {
    await client.createTopic('orders-avro', { partitions: 1, replicationFactor: 2 });
    await client.createTopic('orders-proto', { partitions: 1, replicationFactor: 2 });
    const avro = new SchemaSerializer('AVRO', { registry, schema: JSON.stringify(order) });
    const proto = new SchemaSerializer('PROTOBUF', {
      registry,
      schema: 'syntax = "proto3";\npackage shop;\nmessage Order { string id = 1; int64 cents = 2; }',
    });
    const producer = client.producer({});
    const wanted = Array.from({ length: 20 }, (_, i) => ({ id: `o-${i}`, cents: 100 * i }));
    await producer.send(
      'orders-avro',
      await Promise.all(wanted.map(async (v) => ({ value: await avro.serialize('orders-avro', v), timestampMs: Date.now() }))),
    );
    await producer.send(
      'orders-proto',
      await Promise.all(wanted.map(async (v) => ({ value: await proto.serialize('orders-proto', { ...v, cents: String(v.cents) }), timestampMs: Date.now() }))),
    );
    await producer.close();
    const de = new SchemaDeserializer({ registry });
    const avroBack = await Promise.all((await readAll('orders-avro', 20)).map((b) => de.deserialize(b)));
    expect(avroBack).toEqual(wanted);
    const protoBack = await Promise.all((await readAll('orders-proto', 20)).map((b) => de.deserialize(b)));
    expect(protoBack).toEqual(wanted.map((v) => ({ ...v, cents: String(v.cents) })));
  });

  it('skein produce/consume --value-schema: JSON lines in, Avro on the log, JSON back out', async () => {
    writeFileSync(join(dir, 'order.avsc'), JSON.stringify(order));
    expect((await skein(['topics', 'create', 'cli-avro', '-p', '1'])).code).toBe(0);
    const lines = Array.from({ length: 10 }, (_, i) => JSON.stringify({ id: `c-${i}`, cents: i })).join('\n');
    const produced = await skein(['produce', 'cli-avro', '--value-schema', join(dir, 'order.avsc')], lines);
    expect(produced.code, produced.stderr).toBe(0);
    const raw = await readAll('cli-avro', 10);
    const id = decodeHeader(raw[0]!).schemaId;
    expect(id).toBe((await registry.latestVersion('cli-avro-value')).id); // the registry wire format on the log
    const consumed = await skein(['consume', 'cli-avro', '--from-beginning', '--value-schema', '--output', 'json']);
    expect(consumed.code, consumed.stderr).toBe(0);
    expect(
      consumed.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(JSON.parse(l).value)),
    ).toEqual(lines.split('\n').map((l) => JSON.parse(l)));
    // A line that is not a valid record for the schema fails the command.
    const bad = await skein(['produce', 'cli-avro', '--value-schema', join(dir, 'order.avsc')], '{"id": 5}');
    expect(bad.code).toBe(1);
  });

  it('skein schemas: register, get, versions, check, config, list, delete; incompatible refused', async () => {
    writeFileSync(join(dir, 'v1.avsc'), JSON.stringify(order));
    writeFileSync(join(dir, 'v2.avsc'), JSON.stringify({ ...order, fields: [...order.fields, { name: 'note', type: 'string', default: '' }] }));
    writeFileSync(join(dir, 'bad.avsc'), JSON.stringify({ ...order, fields: [...order.fields, { name: 'must', type: 'string' }] }));
    const reg = await skein(['--output', 'json', 'schemas', 'register', 'cli-sub', join(dir, 'v1.avsc')]);
    expect(reg.code, reg.stderr).toBe(0);
    const { id } = JSON.parse(reg.stdout) as { id: number };
    expect(JSON.parse((await skein(['--output', 'json', 'schemas', 'get', '--id', String(id)])).stdout)).toMatchObject({ id, schemaType: 'AVRO' });
    const check = await skein(['schemas', 'check', 'cli-sub', join(dir, 'bad.avsc')]);
    expect(check.code).toBe(1);
    expect(check.stdout).toMatch(/INCOMPATIBLE[\s\S]*must has no default/);
    expect((await skein(['schemas', 'check', 'cli-sub', join(dir, 'v2.avsc')])).stdout.trim()).toBe('compatible');
    const refused = await skein(['schemas', 'register', 'cli-sub', join(dir, 'bad.avsc')]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/incompatible/);
    expect((await skein(['schemas', 'register', 'cli-sub', join(dir, 'v2.avsc')])).code).toBe(0);
    expect((await skein(['schemas', 'versions', 'cli-sub'])).stdout.trim()).toBe('1 2');
    expect((await skein(['schemas', 'config', 'cli-sub', '--set', 'FULL'])).stdout.trim()).toBe('FULL');
    expect((await skein(['schemas', 'config', 'cli-sub'])).stdout.trim()).toBe('FULL');
    expect((await skein(['schemas', 'list'])).stdout.split('\n')).toContain('cli-sub');
    expect((await skein(['schemas', 'delete', 'cli-sub'])).code).toBe(0);
    expect((await skein(['schemas', 'delete', 'cli-sub', '--permanent'])).code).toBe(0);
    expect((await skein(['schemas', 'list'])).stdout.split('\n')).not.toContain('cli-sub');
  });
});
