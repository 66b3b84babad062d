import * as fs from 'node:fs';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CompressionCodec,
  type FetchResponse,
  FetchRequest,
  OffsetSpec,
  type RecordBatch,
  type SubscribeResponse,
} from '@skein/proto/skein/broker/v1/broker.js';
import { buildRecordBatch, decodeRecordBatch, encodeRecordBatch, type ConsumedRecord } from '@skein/common/records/record-batch.js';
import { isCodecSupported } from '@skein/common/records/compression.js';
import { reasonOf } from '../src/grpc/error-mapping.js';
import { assignment, call, type Harness, produceOne, produceRaw, rawUnary, startBroker } from './broker-harness.js';
import { tempDir, waitFor } from './helpers.js';

let dir: string;
let cleanup: () => void;
let h: Harness;

beforeEach(async () => {
  ({ dir, cleanup } = tempDir());
  h = await startBroker(dir);
});
afterEach(async () => {
  await h.stop();
  cleanup();
});

function records(fetched: FetchResponse, from = 0n): ConsumedRecord[] {
  const out: ConsumedRecord[] = [];
  for (const t of fetched.topics) {
    for (const p of t.partitions) {
      for (const b of p.batches) out.push(...decodeRecordBatch(b.batch!, b.baseOffset).filter((r) => r.offset >= from));
    }
  }
  return out;
}

function fetch(topic: string, partition: number, offset: bigint, extra: Partial<FetchRequest> = {}): Promise<FetchResponse> {
  return call(h.client.fetch.bind(h.client), {
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 1 << 20,
    topics: [{ topic, partitions: [{ partition, fetchOffset: offset, partitionMaxBytes: 0, currentLeaderEpoch: -1 }] }],
    ...extra,
  });
}

const codecs = [
  CompressionCodec.COMPRESSION_CODEC_NONE,
  CompressionCodec.COMPRESSION_CODEC_GZIP,
  CompressionCodec.COMPRESSION_CODEC_LZ4,
  CompressionCodec.COMPRESSION_CODEC_ZSTD,
].filter(isCodecSupported);

function partitionError(r: { topics: Array<{ partitions: Array<{ error?: { reason: string; code: number } | undefined }> }> }) {
  return r.topics[0]!.partitions[0]!.error;
}

describe('BrokerService in-process', () => {
  it('round-trips keys, headers, null and empty values with every codec, at dense offsets', async () => {
    await h.server.replicas.applyPartitionAssignment(assignment('rt', 0));
    let expected = 0n;
    for (const codec of codecs) {
      const batch = buildRecordBatch(
        [
          { key: 'a', value: 'alpha', headers: [{ key: 'h1', value: Buffer.from('x') }, { key: 'h1', value: Buffer.from('y') }], timestampMs: 1000n },
          { key: 'b', value: null, timestampMs: 1001n },
          { key: null, value: '', timestampMs: 1002n },
        ],
        { compression: codec },
      );
      const res = await produceOne(h.client, 'rt', 0, batch);
      expect(partitionError(res)).toBeUndefined();
      expect(res.topics[0]!.partitions[0]!.baseOffset).toBe(expected);
      expected += 3n;
    }
    const got = records(await fetch('rt', 0, 0n));
    expect(got.map((r) => r.offset)).toEqual(Array.from({ length: Number(expected) }, (_, i) => BigInt(i)));
    expect(got[0]).toMatchObject({ timestampMs: 1000n, value: Buffer.from('alpha') });
    expect(got[0]!.headers.map((x) => x.value.toString())).toEqual(['x', 'y']);
    expect(got[1]!.value).toBeNull();
    expect(got[2]!.value).toEqual(Buffer.alloc(0));
    // Fetch from the middle returns the batch holding the offset; the client skips what it did not ask for.
    const mid = await fetch('rt', 0, 4n);
    expect(mid.topics[0]!.partitions[0]!.batches[0]!.baseOffset).toBe(3n);
    expect(records(mid, 4n)[0]!.offset).toBe(4n);
  });

  it('long-poll fetch answers when data arrives, and at the deadline without data', async () => {
    await h.server.replicas.applyPartitionAssignment(assignment('lp', 0));
    const empty = await fetch('lp', 0, 0n, { maxWaitMs: 50, minBytes: 1 });
    expect(empty.topics[0]!.partitions[0]!.batches).toHaveLength(0);
    const pending = fetch('lp', 0, 0n, { maxWaitMs: 30_000, minBytes: 1 });
    await new Promise((r) => setTimeout(r, 20));
    await produceOne(h.client, 'lp', 0, buildRecordBatch([{ key: 'k', value: 'v', timestampMs: 1 }]));
    const got = records(await pending);
    expect(got.map((r) => r.value?.toString())).toEqual(['v']);
  });

  it('Subscribe pushes what is stored, then new batches as they are appended', async () => {
    await h.server.replicas.applyPartitionAssignment(assignment('sub', 0));
    await produceOne(h.client, 'sub', 0, buildRecordBatch([{ key: 'k0', value: 'v0', timestampMs: 1 }]));
    const stream = h.client.subscribe({ topic: 'sub', partition: 0, offset: 0n, maxBytes: 0, currentLeaderEpoch: -1 });
    const seen: string[] = [];
    stream.on('data', (m: SubscribeResponse) => {
      for (const b of m.batches) for (const r of decodeRecordBatch(b.batch!, b.baseOffset)) seen.push(r.value!.toString());
    });
    stream.on('error', () => undefined);
    await waitFor(() => seen.length === 1, 'first record');
    for (let i = 1; i <= 5; i++) await produceOne(h.client, 'sub', 0, buildRecordBatch([{ key: `k${i}`, value: `v${i}`, timestampMs: 1 }]));
    await waitFor(() => seen.length === 6, 'pushed records');
    expect(seen).toEqual(['v0', 'v1', 'v2', 'v3', 'v4', 'v5']);
    stream.cancel();
  });

  it('ListOffsets answers earliest, latest and by timestamp', async () => {
    await h.server.replicas.applyPartitionAssignment(assignment('lo', 0, { 'segment.bytes': '1024', 'index.interval.bytes': '128' }));
    for (let b = 0; b < 40; b++) {
      await produceOne(h.client, 'lo', 0, buildRecordBatch([0, 1].map((i) => ({ key: 'k', value: 'v'.repeat(20), timestampMs: 10_000 + b * 10 + i }))));
    }
    const ask = (spec: OffsetSpec, timestampMs = 0n) =>
      call(h.client.listOffsets.bind(h.client), { topics: [{ topic: 'lo', partitions: [{ partition: 0, spec, timestampMs }] }] }).then((r) => r.topics[0]!.partitions[0]!);
    expect((await ask(OffsetSpec.OFFSET_SPEC_EARLIEST)).offset).toBe(0n);
    expect((await ask(OffsetSpec.OFFSET_SPEC_LATEST)).offset).toBe(80n);
    expect(await ask(OffsetSpec.OFFSET_SPEC_TIMESTAMP, 10_251n)).toMatchObject({ offset: 51n, timestampMs: 10_251n });
    expect(await ask(OffsetSpec.OFFSET_SPEC_TIMESTAMP, 10_252n)).toMatchObject({ offset: 52n, timestampMs: 10_260n });
    expect((await ask(OffsetSpec.OFFSET_SPEC_TIMESTAMP, 99_999n)).offset).toBe(-1n);
    expect((await ask(OffsetSpec.OFFSET_SPEC_UNSPECIFIED)).error?.reason).toBe('INVALID_REQUEST');
  });

  it('idempotent producer: duplicates get the original offset, gaps and fenced epochs are refused, state survives a restart', async () => {
    await h.server.replicas.applyPartitionAssignment(assignment('idem', 0));
    const init = await call(h.client.initProducerId.bind(h.client), { clientId: 'test' });
    expect(init.producerId).toBeGreaterThan(0n);
    const second = await call(h.client.initProducerId.bind(h.client), { clientId: 'test' });
    expect(second.producerId).not.toBe(init.producerId);
    const pid = init.producerId;
    const batch = (seq: number, epoch = 0, n = 2): RecordBatch =>
      buildRecordBatch(Array.from({ length: n }, (_, i) => ({ key: `k${seq + i}`, value: `v${seq + i}`, timestampMs: 1 })), { producerId: pid, producerEpoch: epoch, baseSequence: seq });
    await produceOne(h.client, 'idem', 0, buildRecordBatch([{ key: 'x', value: 'other', timestampMs: 1 }]));
    const first = (await produceOne(h.client, 'idem', 0, batch(0))).topics[0]!.partitions[0]!;
    expect(first).toMatchObject({ baseOffset: 1n, duplicate: false });
    const retry = (await produceOne(h.client, 'idem', 0, batch(0))).topics[0]!.partitions[0]!;
    expect(retry).toMatchObject({ baseOffset: 1n, duplicate: true });
    const gap = (await produceOne(h.client, 'idem', 0, batch(5))).topics[0]!.partitions[0]!;
    expect(gap.error).toMatchObject({ reason: 'OUT_OF_ORDER_SEQUENCE', code: 9 });
    expect((await produceOne(h.client, 'idem', 0, batch(2))).topics[0]!.partitions[0]!.baseOffset).toBe(3n);
    expect((await produceOne(h.client, 'idem', 0, batch(0, 1))).topics[0]!.partitions[0]!.baseOffset).toBe(5n);
    const fenced = (await produceOne(h.client, 'idem', 0, batch(4, 0))).topics[0]!.partitions[0]!;
    expect(fenced.error).toMatchObject({ reason: 'INVALID_PRODUCER_EPOCH', code: 9 });
    expect(records(await fetch('idem', 0, 0n))).toHaveLength(7);

    await h.stop();
    h = await startBroker(dir, { producerIds: h.producerIds });
    await h.server.replicas.applyPartitionAssignment(assignment('idem', 0));
    const afterRestart = (await produceOne(h.client, 'idem', 0, batch(0, 1))).topics[0]!.partitions[0]!;
    expect(afterRestart).toMatchObject({ baseOffset: 5n, duplicate: true });
    expect((await produceOne(h.client, 'idem', 0, batch(4, 1))).topics[0]!.partitions[0]!.error?.reason).toBe('OUT_OF_ORDER_SEQUENCE');
    expect((await produceOne(h.client, 'idem', 0, batch(2, 1))).topics[0]!.partitions[0]!.baseOffset).toBe(7n);
    // A new broker process hands out ids from a new block, never a reused one.
    const third = await call(h.client.initProducerId.bind(h.client), { clientId: 'test' });
    expect(third.producerId).toBeGreaterThan(second.producerId);
  });

  it('answers every bad input with a precise status and reason, stays up and leaves stored data untouched', async () => {
    await h.server.replicas.applyPartitionAssignment(assignment('bad', 0, { 'max.message.bytes': '2048' }));
    await h.server.replicas.applyPartitionAssignment(assignment('led-elsewhere', 0, {}, 2));
    h.metadata.leaders.set('not-here-0', { leaderId: 3, leaderEpoch: 7 });
    const good = buildRecordBatch([{ key: 'k', value: 'kept', timestampMs: 1 }]);
    await produceOne(h.client, 'bad', 0, good);
    const goodBytes = encodeRecordBatch(good);

    const expectPartitionError = async (p: Promise<{ topics: Array<{ partitions: Array<{ error?: { reason: string; code: number } | undefined }> }> }>, reason: string, code: number) => {
      const err = partitionError(await p);
      expect(err, reason).toMatchObject({ reason, code });
      return err;
    };
    const expectStatus = async (p: Promise<unknown>, reason: string, code: grpc.status) => {
      const e = (await p.then(() => undefined, (x: unknown) => x)) as grpc.ServiceError | undefined;
      expect(e, reason).toBeDefined();
      expect(e!.code).toBe(code);
      expect(reasonOf(e!)).toBe(reason);
    };

    // Unknown topic / partition; a partition led by another broker, with a hint.
    await expectPartitionError(produceOne(h.client, 'nope', 0, good), 'UNKNOWN_TOPIC_OR_PARTITION', 5);
    await expectPartitionError(produceOne(h.client, 'bad', 9, good), 'UNKNOWN_TOPIC_OR_PARTITION', 5);
    const notLeader = await produceOne(h.client, 'led-elsewhere', 0, good);
    expect(partitionError(notLeader)).toMatchObject({ reason: 'NOT_LEADER_OR_FOLLOWER', code: 9, retriable: true, leaderHint: { leaderId: 2, leaderEpoch: 0 } });
    const hinted = await produceOne(h.client, 'not-here', 0, good);
    expect(partitionError(hinted)).toMatchObject({ reason: 'NOT_LEADER_OR_FOLLOWER', leaderHint: { leaderId: 3, leaderEpoch: 7 } });

    // Malformed, truncated, wrong CRC, oversized, unknown codec, empty.
    await expectPartitionError(produceRaw(h.client, 'bad', 0, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff])), 'CORRUPT_MESSAGE', 3);
    await expectPartitionError(produceRaw(h.client, 'bad', 0, goodBytes.subarray(0, goodBytes.length - 5)), 'CORRUPT_MESSAGE', 3);
    const wrongCrc = Buffer.from(goodBytes);
    wrongCrc[wrongCrc.length - 1] = wrongCrc[wrongCrc.length - 1]! ^ 0x55;
    await expectPartitionError(produceRaw(h.client, 'bad', 0, wrongCrc), 'CORRUPT_MESSAGE', 3);
    await expectPartitionError(produceOne(h.client, 'bad', 0, buildRecordBatch([{ key: 'k', value: 'x'.repeat(4096), timestampMs: 1 }])), 'MESSAGE_TOO_LARGE', 8);
    await expectPartitionError(produceOne(h.client, 'bad', 0, { ...good, compression: 99 as CompressionCodec }), 'UNSUPPORTED_COMPRESSION_TYPE', 3);
    await expectPartitionError(produceOne(h.client, 'bad', 0, { ...good, compression: CompressionCodec.COMPRESSION_CODEC_UNSPECIFIED }), 'UNSUPPORTED_COMPRESSION_TYPE', 3);
    await expectPartitionError(produceRaw(h.client, 'bad', 0, Buffer.alloc(0)), 'INVALID_RECORD', 3);
    await expectPartitionError(produceOne(h.client, 'bad', 0, { ...good, recordCount: 0 }), 'INVALID_RECORD', 3);
    await expectPartitionError(produceOne(h.client, 'bad', 0, { ...good, producerId: 0n }), 'INVALID_PRODUCER_ID', 3);

    // Request-level: negative timeout, waits and sizes, a request that is not protobuf at all.
    await expectStatus(produceRaw(h.client, 'bad', 0, goodBytes, 2, -1), 'INVALID_REQUEST', 3);
    await expectStatus(fetch('bad', 0, 0n, { maxWaitMs: -1 }), 'INVALID_REQUEST', 3);
    await expectStatus(fetch('bad', 0, 0n, { minBytes: -5 }), 'INVALID_REQUEST', 3);
    await expectStatus(fetch('bad', 0, 0n, { maxBytes: -5 }), 'INVALID_REQUEST', 3);
    await expectStatus(rawUnary(h.client, '/skein.broker.v1.BrokerService/Produce', Buffer.from([0x1a, 0xff, 0xff]), (b) => b), 'CORRUPT_MESSAGE', 3);
    await expectStatus(rawUnary(h.client, '/skein.broker.v1.BrokerService/Fetch', Buffer.from([0x22, 0x05, 0x01]), (b) => b), 'INVALID_REQUEST', 3);

    // Offset out of range, with the valid range.
    const oor = partitionError(await fetch('bad', 0, 99n)) as { reason: string; code: number; offsetRange?: { logStartOffset: bigint; logEndOffset: bigint } };
    expect(oor).toMatchObject({ reason: 'OFFSET_OUT_OF_RANGE', code: 11, offsetRange: { logStartOffset: 0n, logEndOffset: 1n } });
    expect(partitionError(await fetch('bad', 0, -1n))).toMatchObject({ reason: 'OFFSET_OUT_OF_RANGE' });
    // Stale leader epoch on fetch.
    await h.server.replicas.applyPartitionAssignment({ ...assignment('bad', 0, { 'max.message.bytes': '2048' }), leaderEpoch: 3 });
    const stale = await call(h.client.fetch.bind(h.client), { maxWaitMs: 0, minBytes: 0, maxBytes: 0, topics: [{ topic: 'bad', partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 0, currentLeaderEpoch: 1 }] }] });
    expect(partitionError(stale)).toMatchObject({ reason: 'FENCED_LEADER_EPOCH' });

    // Still up, and the stored data is exactly what was accepted.
    const stored = records(await fetch('bad', 0, 0n));
    expect(stored.map((r) => r.value?.toString())).toEqual(['kept']);
  });

  it('detects a flipped byte in a closed segment: the read that needs it fails as DATA_LOSS, the partition and others are still served', async () => {
    await h.server.replicas.applyPartitionAssignment(assignment('rot', 0, { 'segment.bytes': '1024' }));
    await h.server.replicas.applyPartitionAssignment(assignment('fine', 0));
    for (let i = 0; i < 30; i++) await produceOne(h.client, 'rot', 0, buildRecordBatch([{ key: `k${i}`, value: 'v'.repeat(50), timestampMs: i }]));
    await produceOne(h.client, 'fine', 0, buildRecordBatch([{ key: 'k', value: 'ok', timestampMs: 1 }]));
    await h.stop();
    const seg = join(dir, 'rot-0', '00000000000000000000.log');
    const bytes = fs.readFileSync(seg);
    bytes[120] = bytes[120]! ^ 0x08;
    fs.writeFileSync(seg, bytes);
    h = await startBroker(dir);
    await h.server.replicas.applyPartitionAssignment(assignment('rot', 0, { 'segment.bytes': '1024' }));
    await h.server.replicas.applyPartitionAssignment(assignment('fine', 0));
    // Byte 120 is in the first batch (offset 0): a fetch at 0 fails as data loss, every time (it used
    // to take the partition offline for good).
    expect(partitionError(await fetch('rot', 0, 0n))).toMatchObject({ reason: 'CORRUPT_MESSAGE', code: 15 });
    expect(partitionError(await fetch('rot', 0, 0n))).toMatchObject({ reason: 'CORRUPT_MESSAGE', code: 15 });
    // The partition is not offline: offsets past the damage are served and produce appends.
    expect(records(await fetch('rot', 0, 1n)).map((r) => r.offset)[0]).toBe(1n);
    expect(partitionError(await produceOne(h.client, 'rot', 0, buildRecordBatch([{ key: 'k', value: 'v', timestampMs: 1 }])))).toBeUndefined();
    expect(records(await fetch('fine', 0, 0n)).map((r) => r.value?.toString())).toEqual(['ok']);
  });

  it('recovers after a crash mid-write: the log ends on a valid batch and indexes are rebuilt', async () => {
    await h.server.replicas.applyPartitionAssignment(assignment('crash', 0));
    for (let i = 0; i < 20; i++) await produceOne(h.client, 'crash', 0, buildRecordBatch([{ key: `k${i}`, value: `v${i}`, timestampMs: 1000 + i }]));
    // No clean close: copy the partition directory as it is now (what a SIGKILL leaves), tear the tail.
    const crashed = join(dir, 'crashed');
    fs.mkdirSync(crashed);
    fs.cpSync(join(dir, 'crash-0'), join(crashed, 'crash-0'), { recursive: true });
    const seg = join(crashed, 'crash-0', '00000000000000000000.log');
    fs.truncateSync(seg, fs.statSync(seg).size - 10);
    fs.rmSync(join(crashed, 'crash-0', '00000000000000000000.timeindex'));
    await h.stop();
    h = await startBroker(crashed);
    await h.server.replicas.applyPartitionAssignment(assignment('crash', 0));
    const got = records(await fetch('crash', 0, 0n));
    expect(got.map((r) => r.value?.toString())).toEqual(Array.from({ length: 19 }, (_, i) => `v${i}`));
    const byTime = await call(h.client.listOffsets.bind(h.client), { topics: [{ topic: 'crash', partitions: [{ partition: 0, spec: OffsetSpec.OFFSET_SPEC_TIMESTAMP, timestampMs: 1010n }] }] });
    expect(byTime.topics[0]!.partitions[0]!.offset).toBe(10n);
    expect((await produceOne(h.client, 'crash', 0, buildRecordBatch([{ key: 'n', value: 'new', timestampMs: 1 }]))).topics[0]!.partitions[0]!.baseOffset).toBe(19n);
  });

  it('retention deletes old segments and compaction keeps the latest value per key', async () => {
    await h.server.replicas.applyPartitionAssignment(assignment('ret', 0, { 'segment.bytes': '1024', 'retention.bytes': '2048' }));
    await h.server.replicas.applyPartitionAssignment(assignment('cmp', 0, { 'segment.bytes': '1024', 'cleanup.policy': 'compact', 'delete.retention.ms': '0' }));
    for (let i = 0; i < 60; i++) {
      await produceOne(h.client, 'ret', 0, buildRecordBatch([{ key: `k${i}`, value: 'v'.repeat(40), timestampMs: Date.now() }]));
      // Ten keys overwritten over and over; key k0 ends as a tombstone.
      const key = `k${i % 10}`;
      await produceOne(h.client, 'cmp', 0, buildRecordBatch([{ key, value: i === 50 ? null : `${key}@${i}`, timestampMs: 1 }]));
    }
    // One more batch so every overwrite sits in a closed segment.
    await produceOne(h.client, 'cmp', 0, buildRecordBatch([{ key: 'last', value: 'x'.repeat(900), timestampMs: 1 }]));
    const ret = h.server.replicas.getPartition('ret', 0)!;
    await h.server.replicas.runBackgroundPass();
    expect(ret.log.logStartOffset).toBeGreaterThan(0n);
    expect(ret.log.sizeBytes).toBeLessThan(2048 + 1024);
    expect(partitionError(await fetch('ret', 0, 0n))).toMatchObject({ reason: 'OFFSET_OUT_OF_RANGE' });
    const earliest = await call(h.client.listOffsets.bind(h.client), { topics: [{ topic: 'ret', partitions: [{ partition: 0, spec: OffsetSpec.OFFSET_SPEC_EARLIEST, timestampMs: 0n }] }] });
    expect(earliest.topics[0]!.partitions[0]!.offset).toBe(ret.log.logStartOffset);

    const cmp = h.server.replicas.getPartition('cmp', 0)!;
    await h.server.replicas.compact(cmp);
    const all: ConsumedRecord[] = [];
    let next = 0n;
    while (next < cmp.log.highWatermark) {
      const r = await fetch('cmp', 0, next);
      const got = records(r, next);
      if (got.length === 0) break;
      all.push(...got);
      next = got[got.length - 1]!.offset + 1n;
    }
    const latest = new Map<string, string | null>();
    for (const r of all) latest.set(r.key.toString(), r.value?.toString() ?? null);
    // Every key's latest value survives at its original offset; older values are gone.
    for (let k = 1; k < 10; k++) expect(latest.get(`k${k}`)).toBe(`k${k}@${50 + k}`);
    expect(all.filter((r) => r.key.toString() === 'k0').map((r) => [r.offset, r.value?.toString() ?? null])).toEqual([]);
    expect(all.filter((r) => r.key.toString() !== 'last').length).toBeLessThanOrEqual(10);
    expect(all.find((r) => r.key.toString() === 'k5')!.offset).toBe(55n);
    // Offsets keep increasing and produce still works after compaction.
    for (let i = 1; i < all.length; i++) expect(all[i]!.offset > all[i - 1]!.offset).toBe(true);
    expect((await produceOne(h.client, 'cmp', 0, buildRecordBatch([{ key: 'k1', value: 'after', timestampMs: 1 }]))).topics[0]!.partitions[0]!.baseOffset).toBe(61n);
  });

  it('deletePartition removes the data; a re-created topic with a new id starts empty', async () => {
    await h.server.replicas.applyPartitionAssignment(assignment('gone', 0));
    await produceOne(h.client, 'gone', 0, buildRecordBatch([{ key: 'k', value: 'v', timestampMs: 1 }]));
    await h.server.replicas.applyPartitionAssignment({ ...assignment('gone', 0), topicId: 'new-id' });
    expect(h.server.replicas.getPartition('gone', 0)!.log.logEndOffset).toBe(0n);
    await h.server.replicas.deletePartition({ topic: 'gone', partition: 0 });
    expect(fs.existsSync(join(dir, 'gone-0'))).toBe(false);
    expect(partitionError(await fetch('gone', 0, 0n))).toMatchObject({ reason: 'UNKNOWN_TOPIC_OR_PARTITION' });
  });

  it('ProduceStream answers in request order with correlation ids, and sends nothing for acks=0', async () => {
    await h.server.replicas.applyPartitionAssignment(assignment('ps', 0));
    const stream = h.client.produceStream();
    const replies: Array<{ correlationId: bigint; baseOffset: bigint }> = [];
    stream.on('data', (r: { correlationId: bigint; topics: Array<{ partitions: Array<{ baseOffset: bigint }> }> }) =>
      replies.push({ correlationId: r.correlationId, baseOffset: r.topics[0]!.partitions[0]!.baseOffset }),
    );
    const ended = new Promise((r) => stream.on('end', r));
    for (let i = 0; i < 50; i++) {
      stream.write({ correlationId: BigInt(i), acks: i === 10 ? 1 : 2, timeoutMs: 1000, topics: [{ topic: 'ps', partitions: [{ partition: 0, batch: buildRecordBatch([{ key: 'k', value: `v${i}`, timestampMs: 1 }]) }] }] });
    }
    stream.end();
    await ended;
    expect(replies).toHaveLength(49);
    expect(replies.map((r) => r.correlationId)).toEqual(Array.from({ length: 50 }, (_, i) => BigInt(i)).filter((i) => i !== 10n));
    expect(replies.map((r) => r.baseOffset)).toEqual(Array.from({ length: 50 }, (_, i) => BigInt(i)).filter((i) => i !== 10n));
    expect(records(await fetch('ps', 0, 0n))).toHaveLength(50);
  });
});
