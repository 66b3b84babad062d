// The client and CLI when the data is not what they hoped for, against a real cluster (etcd,
// metadata, one broker with a fast retention pass, a group coordinator): a committed offset that
// retention deleted follows autoOffsetReset (earliest, latest, none: an error and a partition that
// waits for seek, never a silent spin); a corrupt batch on disk reaches the application after the
// good records before it (GroupConsumer onError, client.fetch, the CLI's plain and group consume);
// a batch that decompresses past the consumer's limit is an error, not an allocation; a producer
// stamps the send time when a record has none and no bad record becomes an unhandled rejection.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { crc32c } from '@node-rs/crc32';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CompressionCodec, GroupConsumer, OffsetSpec, SkeinClient, type OffsetReset, type SkeinError } from '@skein/client';
import { GroupCoordinatorServiceClient } from '@skein/proto/skein/group/v1/group.js';
import { startStores, type TestStores } from './harness/stores.js';
import { promisify } from './harness/clients.js';
import { startService, stopAll, waitFor, type ServiceProcess } from './harness/services.js';
import { BROKER_ENTRY, CLI_ENTRY, COORDINATOR_ENTRY, METADATA_ENTRY } from './harness/entries.js';

let stores: TestStores;
let metadataAddress = '';
let coordinatorAddress = '';
let broker: ServiceProcess;
let coordinator: ReturnType<typeof promisify<GroupCoordinatorServiceClient>>;
let client: SkeinClient;

beforeAll(async () => {
  stores = await startStores();
  const store = (service: string) => stores.args(service, `/consumer-errors-${process.pid}/`);
  const metadata = await startService({ name: 'metadata', entry: METADATA_ENTRY, args: store('metadata') });
  metadataAddress = metadata.address;
  // A retention pass every 100 ms, so deleted segments show up within the test's deadlines.
  broker = await startService({ name: 'broker-1', entry: BROKER_ENTRY, dataDirFlag: '--data-dir', args: ['--broker-id', '1', '--metadata-addresses', metadata.address, '--background-interval-ms', '100'] });
  client = new SkeinClient({ metadata: [metadataAddress] });
  await waitFor(async () => (await client.describeCluster()).brokers.length === 1, { timeoutMs: 15_000, message: 'broker registered' });
  coordinatorAddress = (await startService({ name: 'coordinator', entry: COORDINATOR_ENTRY, args: [...store('coordinator'), '--metadata-addresses', metadata.address, '--session-timeout-ms', '3000', '--heartbeat-interval-ms', '200'] })).address;
  coordinator = promisify(new GroupCoordinatorServiceClient(coordinatorAddress, grpc.credentials.createInsecure()));
}, 60_000);

afterAll(async () => {
  client?.close();
  coordinator?.close();
  await stopAll();
  await stores?.stop();
});

async function createTopic(name: string, configs: Record<string, string> = {}): Promise<void> {
  await client.createTopic(name, { partitions: 1, replicationFactor: 1, configs });
  await waitFor(async () => (await client.topic(name, true)).partitions.every((p) => p.leaderId > 0), { timeoutMs: 15_000, message: `${name} has a leader` });
}

/** Commits an offset for an empty group, as an operator tool does (no member, epoch -1, no range check). */
async function commitAsEmptyGroup(groupId: string, topic: string, offset: bigint): Promise<void> {
  await coordinator.commitOffsets({ groupId, memberId: '', memberEpoch: -1, offsets: [{ topic, partition: 0, offset, metadata: '' }] });
}

function skein(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI_ENTRY, '--metadata', metadataAddress, '--coordinator', coordinatorAddress, ...args]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end();
  });
}

/**
 * Flips one byte of a stored record (found by `marker`) in a stopped broker's segment file and
 * fixes the segment entry's CRC, so the broker serves the batch as stored while the batch's own
 * CRC-32C no longer matches: what disk corruption below the entry check, or a batch stored before
 * the broker validated batches, looks like to a consumer.
 */
function corruptStoredRecord(dataDir: string, marker: Buffer): void {
  const segments = (readdirSync(dataDir, { recursive: true }) as string[]).filter((f) => /(^|\/)\d{20}\.log$/.test(f));
  for (const file of segments) {
    const buf = readFileSync(join(dataDir, file));
    const at = buf.indexOf(marker);
    if (at < 0) continue;
    // Entries: uint32 BE length of what follows, then a CRC-32C of the bytes from offset 8 to the end.
    let pos = 0;
    while (pos + 4 + buf.readUInt32BE(pos) <= at) pos += 4 + buf.readUInt32BE(pos);
    const end = pos + 4 + buf.readUInt32BE(pos);
    buf[at] ^= 0x20;
    buf.writeUInt32BE(crc32c(buf.subarray(pos + 8, end)) >>> 0, pos + 4);
    writeFileSync(join(dataDir, file), buf);
    return;
  }
  throw new Error(`no segment under ${dataDir} holds ${marker.toString()}`);
}

describe('consumers never spin silently', () => {
  it('a committed offset deleted by retention follows autoOffsetReset: earliest, latest, none (error, no spin, seek recovers)', async () => {
    const topic = 'retained';
    const side = 'retained-side';
    await createTopic(topic, { 'segment.bytes': '1024', 'retention.ms': '60000' });
    await createTopic(side);
    const producer = client.producer();
    // An hour old: every closed segment of these is past retention at once.
    const old = Date.now() - 3_600_000;
    for (let i = 0; i < 12; i++) await producer.sendRecord(topic, { value: Buffer.alloc(600, 97 + i), timestampMs: old });
    for (const g of ['ret-earliest', 'ret-latest', 'ret-none']) await commitAsEmptyGroup(g, topic, 2n);
    await commitAsEmptyGroup('ret-none', side, 0n);
    await waitFor(async () => (await client.listOffset(topic, 0, OffsetSpec.OFFSET_SPEC_EARLIEST)) > 2n, { timeoutMs: 20_000, message: 'retention deleted offset 2' });
    const fresh = await producer.sendRecord(topic, { value: 'fresh', timestampMs: Date.now() });
    await producer.close();

    // earliest: from the log start, reported through onOffsetReset, no error.
    {
      const got: bigint[] = [];
      const resets: OffsetReset[] = [];
      const errors: unknown[] = [];
      const consumer = new GroupConsumer(client, { groupId: 'ret-earliest', coordinator: [coordinatorAddress], topics: [topic], autoOffsetReset: 'earliest', onOffsetReset: (r) => resets.push(r), onError: (e) => errors.push(e) });
      try {
        await consumer.run({ eachMessage: (m) => void got.push(m.offset) });
        await waitFor(() => got.includes(fresh.offset), { timeoutMs: 20_000, message: 'earliest consumer reached the fresh record' });
      } finally {
        await consumer.close();
      }
      expect(resets.length).toBeGreaterThan(0);
      expect(resets[0]).toMatchObject({ topic, partition: 0, policy: 'earliest', from: 2n });
      expect(got[0]).toBe(resets.at(-1)!.to);
      expect(got[0]).toBeGreaterThan(2n);
      expect(got).toEqual([...got].sort((a, b) => (a < b ? -1 : 1)));
      expect(errors).toEqual([]);
    }

    // latest: only what is produced after the reset.
    {
      const got: string[] = [];
      const resets: OffsetReset[] = [];
      const consumer = new GroupConsumer(client, { groupId: 'ret-latest', coordinator: [coordinatorAddress], topics: [topic], autoOffsetReset: 'latest', onOffsetReset: (r) => resets.push(r) });
      try {
        await consumer.run({ eachMessage: (m) => void got.push(m.value!.toString()) });
        await waitFor(() => resets.length > 0, { timeoutMs: 20_000, message: 'latest consumer reset its position' });
        expect(resets[0]).toMatchObject({ policy: 'latest', from: 2n, to: fresh.offset + 1n });
        await client.producer().send(topic, [{ value: 'after-reset', timestampMs: Date.now() }]);
        await waitFor(() => got.length > 0, { timeoutMs: 20_000, message: 'latest consumer got the new record' });
      } finally {
        await consumer.close();
      }
      expect(got).toEqual(['after-reset']);
    }

    // none: OFFSET_OUT_OF_RANGE with the valid range to onError, once; the partition is not fetched
    // again (while another partition of the same consumer keeps flowing) until seek().
    {
      const counting = new SkeinClient({ metadata: [metadataAddress] });
      const fetches = new Map<string, number>();
      // The consumer fetches through fetchFrom (one request per broker for all its partitions):
      // count the requests that ask for each topic.
      const fetchFrom = counting.fetchFrom.bind(counting);
      counting.fetchFrom = (address, request, timeoutMs, signal) => {
        for (const t of request.topics) fetches.set(t.topic, (fetches.get(t.topic) ?? 0) + 1);
        return fetchFrom(address, request, timeoutMs, signal);
      };
      const errors: Array<{ err: SkeinError; offset: bigint }> = [];
      const got: Array<{ topic: string; value: string }> = [];
      const consumer = new GroupConsumer(counting, { groupId: 'ret-none', coordinator: [coordinatorAddress], topics: [topic, side], autoOffsetReset: 'none', onError: (err, where) => errors.push({ err: err as SkeinError, offset: where.offset }) });
      try {
        await consumer.run({ eachMessage: (m) => void got.push({ topic: m.topic, value: m.value!.toString() }) });
        await waitFor(() => errors.length > 0, { timeoutMs: 20_000, message: 'none consumer reported the out-of-range offset' });
        expect(errors[0]!.err.reason).toBe('OFFSET_OUT_OF_RANGE');
        expect(errors[0]!.offset).toBe(2n);
        expect(errors[0]!.err.offsetRangeHint!.logStartOffset).toBeGreaterThan(2n);
        expect(errors[0]!.err.offsetRangeHint!.logEndOffset).toBeGreaterThan(fresh.offset);
        const fetchesAtError = fetches.get(topic);
        // Records produced after the error reach the consumer: its fetch loop went round again.
        const producer2 = client.producer();
        await producer2.send(side, [{ value: 's1', timestampMs: Date.now() }]);
        await waitFor(() => got.some((g) => g.value === 's1'), { timeoutMs: 20_000, message: 'the other partition kept flowing' });
        await producer2.send(side, [{ value: 's2', timestampMs: Date.now() }]);
        await waitFor(() => got.some((g) => g.value === 's2'), { timeoutMs: 20_000, message: 'the other partition kept flowing' });
        await producer2.close();
        expect(fetches.get(topic)).toBe(fetchesAtError);
        expect(errors).toHaveLength(1);
        expect(got.filter((g) => g.topic === topic)).toEqual([]);
        expect(consumer.position(topic, 0)).toBe(2n);
        // seek() is the way out.
        consumer.seek(topic, 0, fresh.offset);
        await waitFor(() => got.some((g) => g.value === 'fresh'), { timeoutMs: 20_000, message: 'the seeked partition is read again' });
      } finally {
        await consumer.close();
        counting.close();
      }
    }
  });

  it('a corrupt batch: the records before it reach GroupConsumer, client.fetch and the CLI, then a clear CORRUPT_MESSAGE', async () => {
    const topic = 'poisoned';
    await createTopic(topic);
    const producer = client.producer();
    // One batch each (sequential sends): three good ones, the bad one at offset 3, one after it.
    for (const value of ['g0', 'g1', 'g2', 'POISON-PILL', 'after']) await producer.sendRecord(topic, { value, timestampMs: Date.now() });
    await producer.close();
    await broker.stop();
    corruptStoredRecord(broker.dataDir, Buffer.from('POISON-PILL'));
    await broker.restart();
    await waitFor(async () => (await client.fetch(topic, 0, 0n)).records.length === 3, { timeoutMs: 30_000, message: 'the partition serves its good records again' });

    // client.fetch: the good records, then from the bad batch on, the error naming it.
    expect((await client.fetch(topic, 0, 0n)).records.map((r) => r.value!.toString())).toEqual(['g0', 'g1', 'g2']);
    const err = await client.fetch(topic, 0, 3n).then(() => undefined, (e: SkeinError) => e);
    expect(err).toMatchObject({ reason: 'CORRUPT_MESSAGE', metadata: { topic, partition: '0', baseOffset: '3' } });

    // GroupConsumer: delivers the good records, reports the bad batch once, holds the partition.
    const got: string[] = [];
    const errors: Array<{ err: SkeinError; offset: bigint }> = [];
    const consumer = new GroupConsumer(client, { groupId: 'poisoned-group', coordinator: [coordinatorAddress], topics: [topic], onError: (e, where) => errors.push({ err: e as SkeinError, offset: where.offset }) });
    try {
      await consumer.run({ eachMessage: (m) => void got.push(m.value!.toString()) });
      await waitFor(() => errors.length > 0, { timeoutMs: 20_000, message: 'onError heard of the corrupt batch' });
      expect(got).toEqual(['g0', 'g1', 'g2']);
      expect(errors[0]).toMatchObject({ offset: 3n, err: { reason: 'CORRUPT_MESSAGE' } });
      expect(consumer.position(topic, 0)).toBe(3n);
      // Skipping it is the application's decision.
      consumer.seek(topic, 0, 4n);
      await waitFor(() => got.includes('after'), { timeoutMs: 20_000, message: 'the record after the corrupt batch, after a seek' });
    } finally {
      await consumer.close();
    }

    // The CLI, standalone and in a group: good records on stdout, the error on stderr, exit 1.
    const plain = await skein(['consume', topic, '--from-beginning']);
    expect(plain.stdout.trim().split('\n')).toEqual(['g0', 'g1', 'g2']);
    expect(plain.stderr).toContain('CORRUPT_MESSAGE');
    expect(plain.code).toBe(1);
    const group = await skein(['consume', topic, '--group', 'poisoned-cli', '--from-beginning']);
    expect(group.stdout.trim().split('\n')).toEqual(['g0', 'g1', 'g2']);
    expect(group.stderr).toContain('CORRUPT_MESSAGE');
    expect(group.code).toBe(1);
  });

  it('a batch that decompresses past maxUncompressedBytes is an error to onError, not an allocation', async () => {
    const topic = 'inflated';
    await createTopic(topic);
    const producer = client.producer({ compression: CompressionCodec.COMPRESSION_CODEC_GZIP });
    await producer.sendRecord(topic, { value: 'small', timestampMs: Date.now() });
    // 16 MiB of zeros: about 72 KiB on the wire and on disk (gzip level 1).
    await producer.sendRecord(topic, { value: Buffer.alloc(16 << 20), timestampMs: Date.now() });
    await producer.close();
    const got: number[] = [];
    const errors: SkeinError[] = [];
    const consumer = new GroupConsumer(client, { groupId: 'inflated-group', coordinator: [coordinatorAddress], topics: [topic], maxUncompressedBytes: 1 << 20, onError: (e) => errors.push(e as SkeinError) });
    try {
      await consumer.run({ eachMessage: (m) => void got.push(m.value!.length) });
      await waitFor(() => errors.length > 0, { timeoutMs: 20_000, message: 'onError heard of the oversized batch' });
    } finally {
      await consumer.close();
    }
    expect(got).toEqual([5]);
    expect(errors[0]).toMatchObject({ reason: 'MESSAGE_TOO_LARGE', metadata: { baseOffset: '1' } });
    // Within the (default, 64 MiB) limit the same batch reads fine.
    expect((await client.fetch(topic, 0, 1n)).records[0]!.value!.length).toBe(16 << 20);
  });
});

describe('producer batching path', () => {
  it('stamps the send time on records without timestampMs, refuses a bad record alone, and leaves no unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => void unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      const topic = 'stamped';
      // Used right after CreateTopic returns: a broker that has not applied the topic yet answers
      // UNKNOWN_TOPIC_OR_PARTITION for a moment, which the client retries a few times.
      await client.createTopic(topic, { partitions: 1, replicationFactor: 1 });
      const producer = client.producer();
      const before = BigInt(Date.now());
      const [md] = await producer.send(topic, [{ key: 'k', value: 'no-time' }]);
      const after = BigInt(Date.now());
      const [record] = (await client.fetch(topic, 0, md!.offset)).records;
      expect(record!.value!.toString()).toBe('no-time');
      expect(record!.timestampMs >= before && record!.timestampMs <= after).toBe(true);

      // One bad record fails its own send before anything is appended; a good record without a
      // time in the same send used to fail the batch later, out of the caller's reach.
      await expect(producer.send(topic, [{ value: 'good' }, { value: 'bad', headers: [{}] as never }])).rejects.toMatchObject({ reason: 'INVALID_REQUEST' });
      await expect(producer.send(topic, [{ value: 42 as never }])).rejects.toMatchObject({ reason: 'INVALID_REQUEST' });
      await producer.flush();
      await new Promise((r) => setImmediate(r));
      expect(await client.listOffset(topic, 0, OffsetSpec.OFFSET_SPEC_LATEST)).toBe(md!.offset + 1n);
      await producer.close();
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled).toEqual([]);
  });
});
