// ReadReplicaLog, the operator read of one replica's log: off by default (FAILED_PRECONDITION with
// REPLICA_LOG_READ_DISABLED), and when enabled it returns what this broker stores for a partition,
// leader or follower, byte for byte, with the replica's own offsets, bounded like Fetch.
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { BrokerServiceClient, type ReadReplicaLogRequest, type ReadReplicaLogResponse } from '@skein/proto/skein/broker/v1/broker.js';
import { reasonOf } from '../src/grpc/error-mapping.js';
import { BrokerServer } from '../src/server.js';
import { systemTimers } from '../src/runtime/timers.js';
import { assignment, produceRaw } from './broker-harness.js';
import { batchBytes, simpleRecords, tempDir } from './helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function start(opts: { replicaLogReadEnabled?: boolean; fetchMaxBytes?: number } = {}) {
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  const server = new BrokerServer({
    config: { brokerId: 1, dataDir: dir, host: '127.0.0.1', port: 0, backgroundIntervalMs: 3_600_000, producerIdBlockSize: 10, fetchMaxBytes: opts.fetchMaxBytes ?? 50 << 20, replicaLogReadEnabled: opts.replicaLogReadEnabled },
    logger: pino({ level: process.env['SKEIN_TEST_LOG'] ?? 'silent' }),
    metadata: { getMetadata: () => ({ clusterId: 't', brokers: [], controller: undefined, topics: [], revision: 1n }), leaderOf: () => undefined },
    producerIdSource: { allocateProducerIds: async (count: number) => ({ firstProducerId: 1n, count }) },
    timers: systemTimers,
  });
  const port = await server.start();
  const client = new BrokerServiceClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  cleanups.push(async () => {
    client.close();
    await server.stop(1000);
  });
  const read = (req: Partial<ReadReplicaLogRequest>) =>
    new Promise<ReadReplicaLogResponse>((resolve, reject) =>
      client.readReplicaLog({ topic: 't', partition: 0, startOffset: 0n, maxBytes: 0, ...req }, (e, r) => (e ? reject(e) : resolve(r))),
    );
  const failure = async (req: Partial<ReadReplicaLogRequest>) => {
    try {
      await read(req);
    } catch (e) {
      return { code: (e as grpc.ServiceError).code, reason: reasonOf(e as grpc.ServiceError), message: (e as Error).message };
    }
    throw new Error('expected ReadReplicaLog to fail');
  };
  return { server, client, read, failure };
}

describe('ReadReplicaLog', () => {
  it('is refused with FAILED_PRECONDITION and a reason when the setting is off (the default)', async () => {
    const b = await start();
    await b.server.replicas.applyPartitionAssignment(assignment('t', 0));
    const f = await b.failure({});
    expect(f.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(f.reason).toBe('REPLICA_LOG_READ_DISABLED');
    expect(f.message).toContain('--replica-log-read-enabled');
  });

  it("returns a follower's stored batches byte for byte, above its high watermark too, with its offsets", async () => {
    const b = await start({ replicaLogReadEnabled: true });
    // Broker 1 follows broker 2: Fetch refuses it (not leader), ReadReplicaLog reads it.
    await b.server.replicas.applyPartitionAssignment({ ...assignment('t', 0, {}, 2), replicas: [2, 1], isr: [2, 1], leaderEpoch: 3 });
    const p = b.server.replicas.getPartition('t', 0)!;
    const sent = [batchBytes(simpleRecords(3, 'a', 1000)), batchBytes(simpleRecords(2, 'b', 2000)), batchBytes(simpleRecords(4, 'c', 3000))];
    p.log.appendAsFollower(sent[0]!, 0n, 2);
    p.log.appendAsFollower(sent[1]!, 3n, 3);
    p.log.appendAsFollower(sent[2]!, 5n, 3);
    p.log.updateHighWatermark(5n);
    const r = await b.read({});
    expect(r).toMatchObject({ brokerId: 1, isLeader: false, leaderEpoch: 3, logStartOffset: 0n, logEndOffset: 9n, highWatermark: 5n });
    expect(r.batches.map((x) => [x.baseOffset, x.lastOffset, x.leaderEpoch])).toEqual([[0n, 2n, 2], [3n, 4n, 3], [5n, 8n, 3]]);
    r.batches.forEach((x, i) => expect(Buffer.from(x.batch).equals(sent[i]!)).toBe(true));
    // From the middle of a batch: the batch holding the offset comes first.
    expect((await b.read({ startOffset: 4n })).batches.map((x) => x.baseOffset)).toEqual([3n, 5n]);
    // At the log end: no batches, only the offsets.
    expect((await b.read({ startOffset: 9n })).batches).toEqual([]);
  });

  it('returns what a leader stored for a produce, byte for byte', async () => {
    const b = await start({ replicaLogReadEnabled: true });
    await b.server.replicas.applyPartitionAssignment(assignment('t', 0));
    const sent = batchBytes(simpleRecords(5, 'p', 1000));
    const res = await produceRaw(b.client, 't', 0, sent);
    expect(res.topics[0]!.partitions[0]!.error).toBeUndefined();
    const r = await b.read({});
    expect(r).toMatchObject({ isLeader: true, logEndOffset: 5n, highWatermark: 5n });
    expect(Buffer.from(r.batches[0]!.batch).equals(sent)).toBe(true);
  });

  it('is bounded like Fetch: max_bytes, and the broker cap when max_bytes is 0 or larger', async () => {
    const b = await start({ replicaLogReadEnabled: true, fetchMaxBytes: 4096 });
    await b.server.replicas.applyPartitionAssignment(assignment('t', 0));
    const big = simpleRecords(1, 'x', 1000).map((r) => ({ ...r, value: 'v'.repeat(1500) }));
    for (let i = 0; i < 10; i++) expect((await produceRaw(b.client, 't', 0, batchBytes(big))).topics[0]!.partitions[0]!.error).toBeUndefined();
    // At least one batch, even when it is larger than max_bytes.
    expect((await b.read({ maxBytes: 1 })).batches).toHaveLength(1);
    for (const maxBytes of [0, 1 << 30]) {
      const r = await b.read({ maxBytes });
      expect(r.batches.length).toBeGreaterThan(1);
      expect(r.batches.length).toBeLessThan(10);
      expect(r.batches.reduce((a, x) => a + x.batch.length, 0)).toBeLessThanOrEqual(4096);
    }
  });

  it('refuses malformed requests with INVALID_ARGUMENT, and names unknown partitions and offsets out of range', async () => {
    const b = await start({ replicaLogReadEnabled: true });
    await b.server.replicas.applyPartitionAssignment(assignment('t', 0));
    for (const req of [{ partition: -1 }, { topic: '' }, { startOffset: -1n }, { maxBytes: -1 }]) {
      expect(await b.failure(req)).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, reason: 'INVALID_REQUEST' });
    }
    expect(await b.failure({ partition: 1 })).toMatchObject({ code: grpc.status.NOT_FOUND, reason: 'UNKNOWN_TOPIC_OR_PARTITION' });
    expect(await b.failure({ topic: 't-' , partition: 0 })).toMatchObject({ code: grpc.status.NOT_FOUND, reason: 'UNKNOWN_TOPIC_OR_PARTITION' });
    expect(await b.failure({ startOffset: 1n })).toMatchObject({ code: grpc.status.OUT_OF_RANGE, reason: 'OFFSET_OUT_OF_RANGE' });
  });
});
