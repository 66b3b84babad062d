/**
 * Transactions on one in-process broker (issue 16): BrokerTxnService writes BEGIN and markers,
 * Fetch / ListOffsets honour isolation_level, and the last stable offset and the aborted index
 * survive a restart.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BrokerTxnServiceClient, type FetchResponse, IsolationLevel, OffsetSpec, type RecordBatch } from '@skein/proto/skein/broker/v1/broker.js';
import { buildRecordBatch } from '@skein/common/records/record-batch.js';
import { decodeFetchedBatches } from '../../../libs/client/src/fetched-batches.js';
import { assignment, call, type Harness, produceOne, startBroker } from './broker-harness.js';
import { tempDir } from './helpers.js';

const RC = IsolationLevel.ISOLATION_LEVEL_READ_COMMITTED;
const RU = IsolationLevel.ISOLATION_LEVEL_READ_UNCOMMITTED;
const T = 'tx';

let dir: ReturnType<typeof tempDir>;
let h: Harness;
let txn: BrokerTxnServiceClient;

async function start(): Promise<void> {
  h = await startBroker(dir.dir);
  txn = new BrokerTxnServiceClient(`127.0.0.1:${h.port}`, grpc.credentials.createInsecure());
  await h.server.replicas.applyPartitionAssignment(assignment(T, 0));
}

async function stop(): Promise<void> {
  txn.close();
  await h.stop();
}

beforeEach(async () => {
  dir = tempDir('skein-txn-');
  await start();
});

afterEach(async () => {
  await stop();
  dir.cleanup();
});

function txnBatch(producerId: bigint, producerEpoch: number, baseSequence: number, values: string[]): RecordBatch {
  const b = buildRecordBatch(
    values.map((v, i) => ({ value: v, timestampMs: 1_000 + i })),
    { producerId, producerEpoch, baseSequence },
  );
  return { ...b, isTransactional: true };
}

async function begin(producerId: bigint, producerEpoch: number, coordinatorEpoch: bigint) {
  const r = await call(txn.beginTxn.bind(txn), { producerId, producerEpoch, coordinatorEpoch, topics: [{ topic: T, partitions: [0] }], timeoutMs: 5_000 });
  return r.topics[0]!.partitions[0]!.error?.reason ?? 'OK';
}

async function marker(producerId: bigint, producerEpoch: number, coordinatorEpoch: bigint, commit: boolean) {
  const r = await call(txn.writeTxnMarkers.bind(txn), {
    markers: [{ producerId, producerEpoch, coordinatorEpoch, commit, topics: [{ topic: T, partitions: [0] }] }],
    timeoutMs: 5_000,
  });
  return r.markers[0]!.topics[0]!.partitions[0]!.error?.reason ?? 'OK';
}

async function produce(batch: RecordBatch) {
  const r = await produceOne(h.client, T, 0, batch, 3);
  const p = r.topics[0]!.partitions[0]!;
  return p.error?.reason ?? 'OK';
}

async function fetch(isolationLevel: IsolationLevel, fetchOffset = 0n) {
  const r: FetchResponse = await call(h.client.fetch.bind(h.client), {
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 1 << 20,
    isolationLevel,
    topics: [{ topic: T, partitions: [{ partition: 0, fetchOffset, partitionMaxBytes: 0, currentLeaderEpoch: -1 }] }],
  });
  const p = r.topics[0]!.partitions[0]!;
  const decoded = decodeFetchedBatches({ topic: T, partition: 0, fetchOffset }, p.batches, undefined, p.abortedTransactions);
  return { ...p, values: decoded.records.map((x) => x.value!.toString()), nextOffset: decoded.nextOffset };
}

async function latest(isolationLevel: IsolationLevel) {
  const r = await call(h.client.listOffsets.bind(h.client), {
    isolationLevel,
    topics: [{ topic: T, partitions: [{ partition: 0, spec: OffsetSpec.OFFSET_SPEC_LATEST, timestampMs: 0n }] }],
  });
  return r.topics[0]!.partitions[0]!.offset;
}

describe('transactions on the broker', () => {
  it('refuses transactional data for a partition the coordinator did not begin', async () => {
    expect(await produce(txnBatch(5n, 0, 0, ['a']))).toBe('INVALID_TXN_STATE');
    const r = await fetch(RU);
    expect(r.batches).toHaveLength(0);
  });

  it('holds the last stable offset at an open transaction; a commit makes it visible to read_committed', async () => {
    expect(await produce(buildRecordBatch([{ value: 'plain', timestampMs: 1 }]))).toBe('OK'); // offset 0
    expect(await begin(5n, 0, 1n)).toBe('OK'); // BEGIN at 1
    expect(await produce(txnBatch(5n, 0, 0, ['t1', 't2']))).toBe('OK'); // 2..3

    const rc = await fetch(RC);
    expect(rc.highWatermark).toBe(4n);
    expect(rc.lastStableOffset).toBe(1n);
    expect(rc.values).toEqual(['plain']);
    expect(await latest(RC)).toBe(1n);
    expect(await latest(RU)).toBe(4n);
    const ru = await fetch(RU);
    expect(ru.values).toEqual(['plain', 't1', 't2']); // the BEGIN control batch is skipped

    expect(await marker(5n, 0, 1n, true)).toBe('OK'); // COMMIT at 4
    const after = await fetch(RC);
    expect(after.lastStableOffset).toBe(5n);
    expect(after.highWatermark).toBe(5n);
    expect(after.values).toEqual(['plain', 't1', 't2']);
    expect(after.abortedTransactions).toEqual([]);
    expect(after.nextOffset).toBe(5n); // past the marker
    expect(await latest(RC)).toBe(5n);
  });

  it('an aborted transaction is listed and dropped; read_uncommitted still sees it', async () => {
    expect(await begin(5n, 0, 1n)).toBe('OK'); // 0
    expect(await produce(txnBatch(5n, 0, 0, ['gone']))).toBe('OK'); // 1
    expect(await begin(6n, 0, 1n)).toBe('OK'); // 2
    expect(await produce(txnBatch(6n, 0, 0, ['kept']))).toBe('OK'); // 3
    expect(await marker(5n, 0, 1n, false)).toBe('OK'); // ABORT at 4
    expect((await fetch(RC)).lastStableOffset).toBe(2n); // 6 is still open
    expect(await marker(6n, 0, 1n, true)).toBe('OK'); // COMMIT at 5

    const rc = await fetch(RC);
    expect(rc.abortedTransactions).toEqual([{ producerId: 5n, firstOffset: 0n }]);
    expect(rc.values).toEqual(['kept']);
    expect((await fetch(RU)).values).toEqual(['gone', 'kept']);
    // A read starting after the abort does not list it.
    expect((await fetch(RC, 5n)).abortedTransactions).toEqual([]);
  });

  it('fences older epochs, refuses late retries, and answers repeated markers without writing', async () => {
    expect(await begin(5n, 1, 1n)).toBe('OK');
    expect(await produce(txnBatch(5n, 0, 0, ['zombie']))).toBe('PRODUCER_FENCED');
    expect(await produce(txnBatch(5n, 1, 0, ['a']))).toBe('OK');
    expect(await begin(5n, 0, 1n)).toBe('PRODUCER_FENCED');
    expect(await marker(5n, 1, 1n, false)).toBe('OK');
    const end = h.server.replicas.getPartition(T, 0)!.log.logEndOffset;
    expect(await marker(5n, 1, 1n, false)).toBe('OK'); // retry: nothing written
    expect(await marker(5n, 1, 1n, true)).toBe('OK'); // a second coordinator with the same transaction: over already
    expect(h.server.replicas.getPartition(T, 0)!.log.logEndOffset).toBe(end);
    expect(await produce(txnBatch(5n, 1, 1, ['late retry']))).toBe('INVALID_TXN_STATE');
    expect(await begin(5n, 1, 1n)).toBe('TRANSACTION_COORDINATOR_FENCED'); // a late BeginTxn
    expect((await fetch(RC)).lastStableOffset).toBe(end);
    // The next transaction of the same producer.
    expect(await begin(5n, 1, 2n)).toBe('OK');
    expect(await produce(txnBatch(5n, 1, 1, ['b']))).toBe('OK');
    expect(await marker(5n, 1, 2n, true)).toBe('OK');
    expect((await fetch(RC)).values).toEqual(['b']);

    const d = await call(txn.describeProducers.bind(txn), { topics: [{ topic: T, partitions: [0] }] });
    expect(d.topics[0]!.partitions[0]!.producers).toMatchObject([{ producerId: 5n, producerEpoch: 1, coordinatorEpoch: 2n, currentTxnStartOffset: -1n }]);
  });

  it('refuses control batches from producers and malformed transaction requests', async () => {
    expect(
      await produce({ ...buildRecordBatch([{ value: 'x', timestampMs: 1 }], { producerId: 5n, producerEpoch: 0, baseSequence: 0 }), isControl: true }),
    ).toBe('INVALID_RECORD');
    expect(await produce({ ...buildRecordBatch([{ value: 'x', timestampMs: 1 }]), isTransactional: true })).toBe('INVALID_RECORD');
    await expect(
      call(txn.beginTxn.bind(txn), { producerId: 0n, producerEpoch: 0, coordinatorEpoch: 1n, topics: [{ topic: T, partitions: [0] }], timeoutMs: 0 }),
    ).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
    });
  });

  for (const snapshot of ['kept', 'deleted'] as const) {
    it(`keeps the last stable offset and the aborted index across a restart (snapshot ${snapshot})`, async () => {
      expect(await begin(5n, 0, 1n)).toBe('OK'); // 0
      expect(await produce(txnBatch(5n, 0, 0, ['gone']))).toBe('OK'); // 1
      expect(await marker(5n, 0, 1n, false)).toBe('OK'); // ABORT at 2
      expect(await begin(6n, 0, 1n)).toBe('OK'); // 3, left open
      expect(await produce(txnBatch(6n, 0, 0, ['open']))).toBe('OK'); // 4
      expect(await produce(buildRecordBatch([{ value: 'plain', timestampMs: 1 }]))).toBe('OK'); // 5
      await stop();
      const pdir = join(dir.dir, `${T}-0`);
      expect(fs.readdirSync(pdir).filter((n) => n.endsWith('.txnindex'))).toHaveLength(1);
      if (snapshot === 'deleted') fs.rmSync(join(pdir, 'producer-state.snapshot'));
      await start();

      const rc = await fetch(RC);
      expect(rc.lastStableOffset).toBe(3n);
      expect(rc.abortedTransactions).toEqual([{ producerId: 5n, firstOffset: 0n }]);
      expect(rc.values).toEqual([]);
      expect(await produce(txnBatch(5n, 0, 1, ['late']))).toBe('INVALID_TXN_STATE');
      expect(await marker(6n, 0, 1n, true)).toBe('OK');
      const after = await fetch(RC);
      expect(after.values).toEqual(['open', 'plain']);
      expect(after.abortedTransactions).toEqual([{ producerId: 5n, firstOffset: 0n }]); // listed once, not twice
    });
  }
});

describe('compaction with transactions', () => {
  it('drops aborted records (they never supersede a committed value), keeps markers and committed transactional records', async () => {
    await h.server.replicas.applyPartitionAssignment(
      assignment('cmp', 0, { 'cleanup.policy': 'compact', 'delete.retention.ms': '0', 'min.compaction.lag.ms': '0' }),
    );
    const p = h.server.replicas.getPartition('cmp', 0)!;
    const beginOn = async (producerId: bigint, c: bigint) =>
      (await call(txn.beginTxn.bind(txn), { producerId, producerEpoch: 0, coordinatorEpoch: c, topics: [{ topic: 'cmp', partitions: [0] }], timeoutMs: 5_000 }))
        .topics[0]!.partitions[0]!.error;
    const end = async (producerId: bigint, c: bigint, commit: boolean) =>
      (
        await call(txn.writeTxnMarkers.bind(txn), {
          markers: [{ producerId, producerEpoch: 0, coordinatorEpoch: c, commit, topics: [{ topic: 'cmp', partitions: [0] }] }],
          timeoutMs: 5_000,
        })
      ).markers[0]!.topics[0]!.partitions[0]!.error;
    const put = async (key: string, value: string, producerId?: bigint, seq = 0) => {
      const b = buildRecordBatch([{ key, value, timestampMs: 1 }], producerId ? { producerId, producerEpoch: 0, baseSequence: seq } : {});
      const r = await produceOne(h.client, 'cmp', 0, producerId ? { ...b, isTransactional: true } : b, 3);
      expect(r.topics[0]!.partitions[0]!.error).toBeUndefined();
    };
    await put('k', 'committed'); // 0
    expect(await beginOn(5n, 1n)).toBeUndefined(); // 1
    await put('k', 'aborted', 5n); // 2
    expect(await end(5n, 1n, false)).toBeUndefined(); // ABORT 3
    expect(await beginOn(6n, 1n)).toBeUndefined(); // 4
    await put('j', 'txn', 6n); // 5
    await put('j', 'txn2', 6n, 1); // 6: supersedes 5 inside a committed transaction
    expect(await end(6n, 1n, true)).toBeUndefined(); // COMMIT 7
    p.log.roll();
    await put('z', 'active'); // 8

    await h.server.replicas.compact(p);
    const stored = p.log.read(0n, 1 << 20);
    expect(stored.map((e) => e.baseOffset)).toEqual([0n, 1n, 3n, 4n, 6n, 7n, 8n]);
    const rc = await call(h.client.fetch.bind(h.client), {
      maxWaitMs: 0,
      minBytes: 0,
      maxBytes: 1 << 20,
      isolationLevel: RC,
      topics: [{ topic: 'cmp', partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 0, currentLeaderEpoch: -1 }] }],
    });
    const part = rc.topics[0]!.partitions[0]!;
    const values = decodeFetchedBatches({ topic: 'cmp', partition: 0, fetchOffset: 0n }, part.batches, undefined, part.abortedTransactions).records.map((x) =>
      x.value!.toString(),
    );
    expect(values).toEqual(['committed', 'txn2', 'active']);
    expect(part.batches.find((b) => b.baseOffset === 6n)!.batch!.isTransactional).toBe(true);
  });
});

describe('the partition log with transactions', () => {
  it('a truncated marker reopens its transaction; retention deletes a segment with its aborted-index file', async () => {
    const { PartitionLog } = await import('../src/log/partition-log.js');
    const { DEFAULT_LOG_CONFIG } = await import('../src/log/log-config.js');
    const { ControlRecordType } = await import('@skein/proto/skein/broker/v1/broker.js');
    const { encodeRecordBatch } = await import('@skein/common/records/record-batch.js');
    const now = { nowMs: () => 1_000 };
    const logDir = join(dir.dir, 'plain-0');
    const log = PartitionLog.open({
      dir: logDir,
      topicId: 'id',
      config: { ...DEFAULT_LOG_CONFIG, cleanupDelete: true, retentionMs: -1, retentionBytes: 1 },
      clock: now,
    });
    const BEGIN = { type: ControlRecordType.CONTROL_RECORD_TYPE_BEGIN, coordinatorEpoch: 1n };
    log.appendControlAsLeader(9n, 0, BEGIN, 0); // 0
    log.appendAsLeader(encodeRecordBatch(txnBatch(9n, 0, 0, ['a'])), 0); // 1
    log.appendControlAsLeader(9n, 0, { type: ControlRecordType.CONTROL_RECORD_TYPE_ABORT, coordinatorEpoch: 1n }, 0); // 2
    log.updateHighWatermark(3n);
    expect(log.lastStableOffset).toBe(3n);
    expect(log.abortedTransactions(0n, 3n)).toEqual([{ producerId: 9n, firstOffset: 0n, lastOffset: 2n }]);

    await log.truncateTo(2n); // a follower loses the marker
    expect(log.abortedTransactions(0n, 3n)).toEqual([]);
    log.updateHighWatermark(2n);
    expect(log.lastStableOffset).toBe(0n); // open again
    expect(log.appendControlAsLeader(9n, 0, { type: ControlRecordType.CONTROL_RECORD_TYPE_ABORT, coordinatorEpoch: 1n }, 1)).toBeDefined();
    log.roll();
    log.appendAsLeader(encodeRecordBatch(buildRecordBatch([{ value: 'x', timestampMs: 1 }])), 1); // 3, new segment
    log.updateHighWatermark(log.logEndOffset);
    expect(fs.readdirSync(logDir).filter((n) => n.endsWith('.txnindex'))).toHaveLength(1);
    expect(await log.applyRetention(2_000)).toBe(1);
    expect(fs.readdirSync(logDir).filter((n) => n.endsWith('.txnindex'))).toHaveLength(0);
    expect(log.abortedTransactions(0n, 10n)).toEqual([]);
    await log.close();
  });
});
