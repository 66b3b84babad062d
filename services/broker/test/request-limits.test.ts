/**
 * Bounded requests on the broker data path (docs/limits.md): partition entries per request, topic
 * name length and negative partitions refused before any work, partitions at or above the topic's
 * count, the Subscribe max_bytes cap, and what a Subscribe stream whose reader stalls holds.
 */
import * as http2 from 'node:http2';
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Acks, type FetchResponse, type ListOffsetsResponse, OffsetSpec, type ProduceResponse, type ProduceStreamResponse, type SubscribeResponse, SubscribeRequest } from '@skein/proto/skein/broker/v1/broker.js';
import { ReplicaServiceClient, type ReplicaFetchResponse } from '@skein/proto/skein/broker/v1/replica.js';
import { buildRecordBatch, decodeRecordBatch } from '@skein/common/records/record-batch.js';
import { reasonOf } from '../src/grpc/error-mapping.js';
import { assignment, call, type Harness, produceOne, startBroker } from './broker-harness.js';
import { tempDir, waitFor } from './helpers.js';

let dir: string;
let cleanup: () => void;
let h: Harness;

beforeEach(async () => {
  ({ dir, cleanup } = tempDir());
  h = await startBroker(dir, { config: { maxPartitionsPerRequest: 100, subscribeMaxBytes: 16 * 1024 } });
});
afterEach(async () => {
  await h.stop();
  cleanup();
});

const batch = (value: string | Buffer = 'v') => buildRecordBatch([{ key: 'k', value, timestampMs: 1n }]);

/** Runs a call expected to fail; returns its status code, reason and message. */
async function refused(p: Promise<unknown>): Promise<{ code: grpc.status; reason: string | undefined; message: string }> {
  try {
    await p;
  } catch (e) {
    const err = e as grpc.ServiceError;
    return { code: err.code, reason: reasonOf(err), message: err.details };
  }
  throw new Error('the call succeeded');
}

const fetchReq = (topic: string, partitions: number[]) => ({
  maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20,
  topics: [{ topic, partitions: partitions.map((partition) => ({ partition, fetchOffset: 0n, partitionMaxBytes: 0, currentLeaderEpoch: -1 })) }],
});
const fetch = (topic: string, partitions: number[]) => call<unknown, FetchResponse>(h.client.fetch.bind(h.client), fetchReq(topic, partitions));
const listLatest = (topic: string, partitions: number[]) =>
  call<unknown, ListOffsetsResponse>(h.client.listOffsets.bind(h.client), { topics: [{ topic, partitions: partitions.map((partition) => ({ partition, spec: OffsetSpec.OFFSET_SPEC_LATEST, timestampMs: 0n })) }] });
const produce = (topic: string, partitions: number[]) =>
  call<unknown, ProduceResponse>(h.client.produce.bind(h.client), { acks: Acks.ACKS_LEADER, timeoutMs: 1000, topics: [{ topic, partitions: partitions.map((partition) => ({ partition, batch: batch() })) }] });

function subscribeFirst(req: Partial<SubscribeRequest>): Promise<SubscribeResponse> {
  return new Promise((resolve, reject) => {
    const s = h.client.subscribe({ topic: '', partition: 0, offset: 0n, maxBytes: 0, currentLeaderEpoch: -1, ...req });
    s.on('data', (m: SubscribeResponse) => {
      resolve(m);
      s.cancel();
    });
    s.on('error', (e: grpc.ServiceError) => (e.code === grpc.status.CANCELLED ? undefined : reject(e)));
  });
}

describe('request limits (in-process broker)', () => {
  it('refuses (X, -1) on every entry point and leaves (X-, 1) untouched', async () => {
    // Before partitions were keyed by (topic, partition), "X" + -1 and "X-" + 1 were both "X--1".
    await h.server.replicas.applyPartitionAssignment(assignment('X', 0));
    await h.server.replicas.applyPartitionAssignment(assignment('X-', 1));
    expect((await produceOne(h.client, 'X-', 1, batch('kept'))).topics[0]!.partitions[0]!.error).toBeUndefined();

    for (const attempt of [() => produce('X', [-1]), () => fetch('X', [-1]), () => listLatest('X', [-1]), () => subscribeFirst({ topic: 'X', partition: -1 })]) {
      const r = await refused(attempt());
      expect(r).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, reason: 'INVALID_REQUEST' });
      expect(r.message).toMatch(/partition must not be negative, got -1/);
    }
    // A valid partition beside a negative one: the whole request is refused, nothing is appended.
    await refused(produce('X', [0, -1]));
    expect((await listLatest('X', [0])).topics[0]!.partitions[0]!.offset).toBe(0n);

    const replica = new ReplicaServiceClient(`127.0.0.1:${h.port}`, grpc.credentials.createInsecure());
    try {
      const res = await call<unknown, ReplicaFetchResponse>(replica.replicaFetch.bind(replica), { replicaId: 2, topic: 'X', partition: -1, leaderEpoch: 0, fetchOffset: 0n, lastFetchedEpoch: -1, maxBytes: 0, maxWaitMs: 0 });
      expect(res.error).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, reason: 'INVALID_REQUEST' });
      expect(res.batches).toHaveLength(0);
    } finally {
      replica.close();
    }

    const kept = (await fetch('X-', [1])).topics[0]!.partitions[0]!;
    expect(kept.error).toBeUndefined();
    expect(kept.batches.flatMap((b) => decodeRecordBatch(b.batch!, b.baseOffset)).map((r) => r.value?.toString())).toEqual(['kept']);
    expect((await listLatest('X-', [1])).topics[0]!.partitions[0]!.offset).toBe(1n);
  });

  it('answers UNKNOWN_TOPIC_OR_PARTITION for a partition at or above the topic partition count', async () => {
    await h.server.replicas.applyPartitionAssignment(assignment('two', 0));
    await h.server.replicas.applyPartitionAssignment(assignment('two', 1));
    h.metadata.partitionCounts.set('two', 2);
    // Even when a (stale) leader hint names a broker for it, partition 2 of a 2-partition topic does not exist.
    h.metadata.leaders.set('two-2', { leaderId: 7, leaderEpoch: 3 });
    for (const res of [await produce('two', [2]), await fetch('two', [2]), await listLatest('two', [2])]) {
      const e = res.topics[0]!.partitions[0]!.error!;
      expect(e).toMatchObject({ code: grpc.status.NOT_FOUND, reason: 'UNKNOWN_TOPIC_OR_PARTITION' });
      expect(e.message).toMatch(/has 2 partitions; partition 2 does not exist/);
      expect(e.leaderHint).toBeUndefined();
    }
    expect((await produce('two', [1])).topics[0]!.partitions[0]!.error).toBeUndefined();
  });

  it('refuses more partition entries than the limit before any work, naming the limit', async () => {
    await h.server.replicas.applyPartitionAssignment(assignment('many', 0));
    const entries = Array.from({ length: 101 }, () => 0);
    for (const attempt of [() => produce('many', entries), () => fetch('many', entries), () => listLatest('many', entries)]) {
      const r = await refused(attempt());
      expect(r).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, reason: 'INVALID_REQUEST' });
      expect(r.message).toMatch(/101 partition entries; the limit is 100 per request \(--max-partitions-per-request\)/);
    }
    // Topics without partitions count too.
    const emptyTopics = Array.from({ length: 101 }, (_, i) => ({ topic: `t${i}`, partitions: [] }));
    expect(await refused(call(h.client.listOffsets.bind(h.client), { topics: emptyTopics }))).toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    // ProduceStream fails the stream the same way.
    const stream = h.client.produceStream();
    const streamErr = new Promise<grpc.ServiceError>((resolve) => stream.on('error', resolve));
    stream.on('data', (_: ProduceStreamResponse) => undefined);
    stream.write({ correlationId: 1n, acks: 1, timeoutMs: 1000, topics: [{ topic: 'many', partitions: entries.map((partition) => ({ partition, batch: batch() })) }] });
    const e = await streamErr;
    expect(e.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(e.details).toMatch(/limit is 100/);
    // Nothing was appended; 100 entries are served.
    expect((await listLatest('many', [0])).topics[0]!.partitions[0]!.offset).toBe(0n);
    expect((await produce('many', entries.slice(1))).topics[0]!.partitions).toHaveLength(100);
  });

  it('refuses an over-long topic name before any lookup without echoing it whole', async () => {
    const long = 'n'.repeat(100_000);
    for (const attempt of [() => produce(long, [0]), () => fetch(long, [0]), () => listLatest(long, [0]), () => subscribeFirst({ topic: long })]) {
      const r = await refused(attempt());
      expect(r).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, reason: 'INVALID_REQUEST' });
      expect(r.message).toMatch(/topic name of 100000 characters exceeds the limit of 249/);
      expect(r.message.length).toBeLessThan(300);
    }
    // 249 characters is a name like any other: unknown here, not refused.
    const ok = (await fetch('n'.repeat(249), [0])).topics[0]!.partitions[0]!.error!;
    expect(ok.reason).toBe('UNKNOWN_TOPIC_OR_PARTITION');
  });

  it('clamps Subscribe max_bytes to the cap', async () => {
    await h.server.replicas.applyPartitionAssignment(assignment('sub', 0));
    for (let i = 0; i < 20; i++) await produceOne(h.client, 'sub', 0, batch(randomBytes(4096)));
    // Cap 16 KiB (harness config): a message carries about that much however much is asked for.
    const first = await subscribeFirst({ topic: 'sub', maxBytes: 0x7fffffff });
    const bytes = first.batches.reduce((n, b) => n + b.batch!.records.length, 0);
    expect(first.batches.length).toBeGreaterThan(0);
    expect(bytes).toBeLessThanOrEqual(16 * 1024 + 4096 + 200);
    expect(first.batches.length).toBeLessThan(20);
  });

  it('a Subscribe stream whose reader never reads holds about one message on the broker', async () => {
    await h.server.replicas.applyPartitionAssignment(assignment('slow', 0));
    for (let i = 0; i < 40; i++) await produceOne(h.client, 'slow', 0, batch(randomBytes(12 * 1024)));
    // Count the log reads the subscription makes: each becomes one message on the stream.
    const log = h.server.replicas.getPartition('slow', 0)!.log;
    const read = log.read.bind(log);
    let reads = 0;
    log.read = (...args: Parameters<typeof log.read>) => {
      reads++;
      return read(...args);
    };
    // A raw HTTP/2 client that never reads the response: its 16 KiB flow-control window fills with
    // the first message (one ~12 KiB batch per message at the 16 KiB cap) and is never reopened.
    const session = http2.connect(`http://127.0.0.1:${h.port}`, { settings: { initialWindowSize: 16 * 1024 } });
    try {
      const body = SubscribeRequest.encode({ topic: 'slow', partition: 0, offset: 0n, maxBytes: 16 * 1024, currentLeaderEpoch: -1 }).finish();
      const frame = Buffer.alloc(5 + body.length);
      frame.writeUInt32BE(body.length, 1);
      Buffer.from(body).copy(frame, 5);
      const stream = session.request({ ':method': 'POST', ':path': '/skein.broker.v1.BrokerService/Subscribe', 'content-type': 'application/grpc', te: 'trailers' });
      stream.pause();
      let headers = false;
      stream.on('response', () => { headers = true; });
      stream.end(frame);
      // Response headers go out with the first message; then a round trip on another connection
      // lets the broker run whatever it would do next.
      await waitFor(() => headers, 'the first Subscribe message');
      await listLatest('slow', [0]);
      await listLatest('slow', [0]);
      // Before: the pump waited only once write() returned false, after grpc-js had buffered 16.
      expect(reads).toBeGreaterThanOrEqual(1);
      expect(reads).toBeLessThanOrEqual(2);
      stream.close(http2.constants.NGHTTP2_CANCEL);
    } finally {
      session.destroy();
    }
  });
});

describe('request limits on InitProducerId and GetMetadata (in-process broker)', () => {
  it('refuses an over-long client id and an oversized topic list', async () => {
    const r = await refused(call(h.client.initProducerId.bind(h.client), { clientId: 'c'.repeat(1 << 20) }));
    expect(r).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, reason: 'INVALID_REQUEST' });
    expect(r.message.length).toBeLessThan(300);
    expect(h.producerIds.calls).toBe(0);
    // Limit 100 in this harness (the partition-entries setting bounds topic lists too).
    const topics = Array.from({ length: 101 }, (_, i) => `t${i}`);
    expect((await refused(call(h.client.getMetadata.bind(h.client), { topics }))).message).toMatch(/101 topics; the limit is 100/);
    expect((await refused(call(h.client.getMetadata.bind(h.client), { topics: ['x'.repeat(250)] }))).message).toMatch(/limit of 249/);
    expect((await call<unknown, { metadata?: { topics: unknown[] } }>(h.client.getMetadata.bind(h.client), { topics: topics.slice(1) })).metadata!.topics).toHaveLength(100);
  });
});

describe('ProduceStream in flight (in-process broker)', () => {
  const streamRequest = (topic: string, i: number, acks: number) => ({ correlationId: BigInt(i), acks, timeoutMs: 5_000, topics: [{ topic, partitions: [{ partition: 0, batch: batch() }] }] });

  it('stops reading a stream at 128 unanswered requests and resumes as answers go out', async () => {
    // ISR [1, 2] and a follower that never fetches: every acks=all request waits (up to its timeout).
    await h.server.replicas.applyPartitionAssignment({ ...assignment('stuck', 0), replicas: [1, 2], isr: [1, 2] });
    const log = h.server.replicas.getPartition('stuck', 0)!.log;
    const stuck = h.client.produceStream();
    stuck.on('data', () => undefined);
    stuck.on('error', () => undefined);
    for (let i = 0; i < 300; i++) stuck.write(streamRequest('stuck', i, Acks.ACKS_ALL));
    await waitFor(() => log.logEndOffset >= 128n, 'the first 128 requests appended');
    await listLatest('stuck', [0]);
    // Before: every request was read and appended, 300 waiting requests held by one stream.
    expect(log.logEndOffset).toBe(128n);
    stuck.cancel();

    // acks=1 (ACKS_LEADER): answers go out as appended, so a stream of more than 128 requests runs to the end.
    await h.server.replicas.applyPartitionAssignment(assignment('flowing', 0));
    const flowing = h.client.produceStream();
    let answered = 0;
    const done = new Promise<void>((resolve, reject) => {
      flowing.on('data', (r: ProduceStreamResponse) => {
        if (r.topics[0]!.partitions[0]!.error) reject(new Error(r.topics[0]!.partitions[0]!.error.message));
        if (++answered === 300) resolve();
      });
      flowing.on('error', reject);
    });
    for (let i = 0; i < 300; i++) flowing.write(streamRequest('flowing', i, Acks.ACKS_LEADER));
    await done;
    flowing.end();
    expect((await listLatest('flowing', [0])).topics[0]!.partitions[0]!.offset).toBe(300n);
  });
});
