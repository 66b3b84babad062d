// Broker-side schema validation through a real cluster (metadata, a broker, a schema registry the
// broker finds through the metadata service): a topic with value.schema.validation=true (or
// key.schema.validation=true) takes records whose value (key) carries a schema id registered under
// <topic>-value (<topic>-key), and refuses, with SCHEMA_VALIDATION_FAILED and nothing appended, a
// record without the header, an unknown id, and an id registered only under another subject; a topic
// without the config takes anything; altering the config on applies to the next produce; with the
// registry stopped the broker fails closed (retriable UNAVAILABLE) for ids it has not cached.
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRecordBatch, type RecordInput } from '@skein/common/records/record-batch.js';
import { Acks, CompressionCodec, OffsetSpec } from '@skein/proto/skein/broker/v1/broker.js';
import { ServiceRole } from '@skein/proto/skein/metadata/v1/metadata.js';
import { brokerClient, metadataClient } from './harness/clients.js';
import { BROKER_ENTRY, METADATA_ENTRY } from './harness/entries.js';
import { freePort } from './harness/ports.js';
import { type ServiceProcess, startService, stopAll, waitFor } from './harness/services.js';
import { startStores, type TestStores } from './harness/stores.js';

const REGISTRY_ENTRY = fileURLToPath(new URL('../services/schema-registry/dist/main.js', import.meta.url));
let stores: TestStores;
let registryProcess: ServiceProcess;
let registryUrl = '';
let broker: ReturnType<typeof brokerClient>;
let meta: ReturnType<typeof metadataClient>;

beforeAll(async () => {
  stores = await startStores();
  const prefix = `/schema-validation-${process.pid}/`;
  const metadata = await startService({ name: 'metadata', entry: METADATA_ENTRY, args: stores.args('metadata', prefix) });
  const b = await startService({
    name: 'broker-1',
    entry: BROKER_ENTRY,
    dataDirFlag: '--data-dir',
    // A short negative TTL; the positive one stays at its default.
    args: ['--broker-id', '1', '--metadata-addresses', metadata.address, '--schema-validation-negative-cache-ttl-ms', '200'],
  });
  meta = metadataClient(metadata.address);
  await waitFor(async () => (await meta.getClusterMetadata({ topics: [] })).metadata!.brokers.length === 1, {
    timeoutMs: 15_000,
    message: 'broker registered',
  });
  const restPort = await freePort();
  registryProcess = await startService({
    name: 'schema-registry',
    entry: REGISTRY_ENTRY,
    args: [...stores.args('schema-registry', prefix), '--rest-port', String(restPort), '--metadata-addresses', metadata.address, '--log-level', 'warn'],
  });
  registryUrl = `http://127.0.0.1:${restPort}`;
  broker = brokerClient(b.address);
  // The broker finds the registry through FindServiceInstances: wait until it is listed.
  await waitFor(async () => (await meta.findServiceInstances({ role: ServiceRole.SERVICE_ROLE_SCHEMA_REGISTRY })).instances.length === 1, {
    timeoutMs: 15_000,
    message: 'registry registered',
  });
}, 90_000);

afterAll(async () => {
  broker?.close();
  meta?.close();
  await stopAll();
  await stores?.stop();
});

async function register(subject: string, schema: object): Promise<number> {
  const res = await fetch(`${registryUrl}/subjects/${subject}/versions`, {
    method: 'POST',
    headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
    body: JSON.stringify({ schema: JSON.stringify(schema) }),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { id: number }).id;
}

const record = (name: string) => ({ type: 'record', name, fields: [{ name: 'id', type: 'string' }] });
/** Registry wire format: magic 0, the id big-endian, then (here) arbitrary payload bytes. */
function framed(id: number, payload = 'payload'): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(id, 1);
  return Buffer.concat([header, Buffer.from(payload)]);
}

async function createTopic(name: string, configs: Record<string, string> = {}): Promise<void> {
  await meta.createTopic({ name, partitions: 1, replicationFactor: 1, configs, validateOnly: false });
  await waitFor(
    async () =>
      !(await broker.listOffsets({ topics: [{ topic: name, partitions: [{ partition: 0, spec: OffsetSpec.OFFSET_SPEC_LATEST, timestampMs: 0n }] }] }))
        .topics[0]!.partitions[0]!.error,
    { timeoutMs: 15_000, message: `${name} open on the broker` },
  );
}

/** Produces one batch; the partition's error (reason, message, retriable) or its base offset. */
async function produce(topic: string, records: Array<Omit<RecordInput, 'timestampMs'>>, compression = CompressionCodec.COMPRESSION_CODEC_NONE) {
  const res = await broker.produce({
    acks: Acks.ACKS_ALL,
    timeoutMs: 5000,
    topics: [
      {
        topic,
        partitions: [
          {
            partition: 0,
            batch: buildRecordBatch(
              records.map((r) => ({ ...r, timestampMs: 1_700_000_000_000 })),
              { compression },
            ),
          },
        ],
      },
    ],
  });
  const p = res.topics[0]!.partitions[0]!;
  return p.error ? { reason: p.error.reason, message: p.error.message, retriable: p.error.retriable } : { baseOffset: p.baseOffset };
}

async function logEndOffset(topic: string): Promise<bigint> {
  const res = await broker.listOffsets({ topics: [{ topic, partitions: [{ partition: 0, spec: OffsetSpec.OFFSET_SPEC_LATEST, timestampMs: 0n }] }] });
  return res.topics[0]!.partitions[0]!.offset;
}

describe('broker-side schema validation', () => {
  let ordersId = 0;
  let paymentsId = 0;

  it('takes values with an id registered under <topic>-value and refuses the rest, appending nothing', async () => {
    ordersId = await register('orders-value', record('Order'));
    paymentsId = await register('payments-value', record('Payment'));
    await createTopic('orders', { 'value.schema.validation': 'true' });

    expect(await produce('orders', [{ value: framed(ordersId) }, { value: framed(ordersId, 'two') }])).toEqual({ baseOffset: 0n });
    // A compressed batch is checked after decompression, off the event loop.
    expect(await produce('orders', [{ value: framed(ordersId) }, { value: null, key: 'k' }], CompressionCodec.COMPRESSION_CODEC_ZSTD)).toEqual({
      baseOffset: 2n,
    });

    const refused = [
      [
        [{ value: framed(ordersId) }, { value: framed(paymentsId) }],
        `value schema id ${paymentsId} is not registered under subject orders-value (only under payments-value)`,
      ],
      [[{ value: framed(424242) }], 'value schema id 424242 is unknown to the schema registry'],
      [[{ value: Buffer.from('{"id":"o1"}') }], 'record 0 of the batch: its value starts with byte 123, not the magic byte 0'],
      [[{ value: framed(ordersId) }, { value: Buffer.from([0, 0]) }], 'record 1 of the batch: its value is 2 bytes, shorter than the 5-byte header'],
    ] as const;
    for (const [records, why] of refused) {
      const r = await produce('orders', [...records]);
      expect(r).toMatchObject({ reason: 'SCHEMA_VALIDATION_FAILED', retriable: false });
      expect((r as { message: string }).message).toContain(why);
    }
    expect(await produce('orders', [{ value: Buffer.from('plain') }], CompressionCodec.COMPRESSION_CODEC_GZIP)).toMatchObject({
      reason: 'SCHEMA_VALIDATION_FAILED',
    });
    expect(await logEndOffset('orders')).toBe(4n);
  });

  it('checks keys against <topic>-key with key.schema.validation; values are then not checked', async () => {
    const keyId = await register('users-key', { type: 'string' });
    await createTopic('users', { 'key.schema.validation': 'true' });
    expect(
      await produce('users', [
        { key: framed(keyId), value: Buffer.from('any value') },
        { key: null, value: 'no key' },
      ]),
    ).toEqual({ baseOffset: 0n });
    const wrong = await produce('users', [{ key: framed(ordersId), value: 'v' }]);
    expect(wrong).toMatchObject({ reason: 'SCHEMA_VALIDATION_FAILED' });
    expect((wrong as { message: string }).message).toContain(`key schema id ${ordersId} is not registered under subject users-key`);
    expect(await produce('users', [{ key: 'plain-key', value: 'v' }])).toMatchObject({ reason: 'SCHEMA_VALIDATION_FAILED' });
    expect(await logEndOffset('users')).toBe(2n);
  });

  it('leaves a topic without the config alone, and applies the config once it is altered on', async () => {
    await createTopic('free');
    expect(await produce('free', [{ value: 'plain text' }, { value: framed(424242) }])).toEqual({ baseOffset: 0n });
    await meta.alterTopicConfigs({ name: 'free', set: { 'value.schema.validation': 'true' }, remove: [], validateOnly: false });
    // Probes accepted before the broker applied the change are appended; none after.
    await waitFor(async () => 'reason' in (await produce('free', [{ value: 'plain text' }])), {
      timeoutMs: 15_000,
      message: 'the broker applies the new config',
    });
    const end = await logEndOffset('free');
    expect(await produce('free', [{ value: 'plain text' }])).toMatchObject({ reason: 'SCHEMA_VALIDATION_FAILED' });
    expect(await logEndOffset('free')).toBe(end);
  });

  it('fails closed while the registry is down: ids not cached are refused with retriable UNAVAILABLE', async () => {
    const laterId = await register('orders-value', { ...record('Order'), fields: [...record('Order').fields, { name: 'note', type: 'string', default: '' }] });
    expect(laterId).not.toBe(ordersId);
    await registryProcess.stop();
    const r = await produce('orders', [{ value: framed(laterId) }]);
    expect(r).toMatchObject({ reason: 'UNAVAILABLE', retriable: true });
    expect((r as { message: string }).message).toContain(`cannot validate schema id ${laterId}: the schema registry is unreachable`);
    // An id answered before the registry went down is decided from the cache (positive TTL).
    expect(await produce('orders', [{ value: framed(ordersId) }])).toEqual({ baseOffset: 4n });
    expect(await logEndOffset('orders')).toBe(5n);
    await registryProcess.restart();
    await waitFor(async () => 'baseOffset' in (await produce('orders', [{ value: framed(laterId) }])), {
      timeoutMs: 45_000,
      message: 'the broker validates again once the registry is back',
    });
  }, 120_000);
});
