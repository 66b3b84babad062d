// For every crash point of the transaction coordinator, the outcome is all-or-nothing (issue 16).
// In process: two coordinator instances on one embedded store, brokers modelled by a fake
// BrokerTxnService that keeps each partition's open transaction and end markers by BrokerTxnService's
// rules. Instance A runs a transaction and is "crashed" by a failpoint (action throw: everything it
// did before the point is in the store or on the brokers, nothing after); instance B then runs the
// recovery sweep (past the transaction's timeout). Afterwards every partition of the transaction
// has exactly one end marker, all of them the same, no partition is left open, and the group's
// offsets are committed if and only if that marker is COMMIT; the direction is the one the
// decision recorded (abort when the crash came before any decision).
import { afterEach, describe, expect, it } from 'vitest';
import { configureFailpoints } from '@skein/common/failpoints.js';
import { createLogger } from '@skein/common/logger.js';
import { EmbeddedStore } from '@skein/common/store/embedded-store.js';
import type { MetadataStore } from '@skein/common/store/types.js';
import { REASONS } from '@skein/common/errors.js';
import { TransactionCoordinator } from '../src/grpc/txn-service.js';
import type { TxnBrokerGateway, TxnIdentity } from '../src/runtime/txn-brokers.js';
import { GroupStore } from '../src/store/group-store.js';

interface PartitionState {
  open?: number;
  ended: number;
  markers: Array<{ commit: boolean; coordinatorEpoch: number }>;
}

/** BrokerTxnService's rules for one producer, per partition (broker.proto). */
class FakeBrokers implements TxnBrokerGateway {
  readonly partitions = new Map<string, PartitionState>();
  private state(p: string): PartitionState {
    let s = this.partitions.get(p);
    if (!s) this.partitions.set(p, (s = { ended: -1, markers: [] }));
    return s;
  }
  async beginTxn(partitions: readonly string[], txn: TxnIdentity): Promise<void> {
    for (const p of partitions) {
      const s = this.state(p);
      if (s.open === txn.coordinatorEpoch) continue;
      if (txn.coordinatorEpoch <= s.ended) throw Object.assign(new Error('TRANSACTION_COORDINATOR_FENCED'), { reason: 'TRANSACTION_COORDINATOR_FENCED' });
      if (s.open !== undefined) throw Object.assign(new Error('INVALID_TXN_STATE'), { reason: 'INVALID_TXN_STATE' });
      s.open = txn.coordinatorEpoch;
    }
  }
  async writeMarkers(partitions: readonly string[], txn: TxnIdentity & { commit: boolean }): Promise<boolean> {
    for (const p of partitions) {
      const s = this.state(p);
      if (txn.coordinatorEpoch <= s.ended) continue; // idempotent: already over here
      s.markers.push({ commit: txn.commit, coordinatorEpoch: txn.coordinatorEpoch });
      s.ended = txn.coordinatorEpoch;
      if (s.open === txn.coordinatorEpoch) s.open = undefined;
    }
    return true;
  }
}

const POINTS = ['none', 'txn.beforeBegin', 'txn.afterDecision', 'txn.afterMarkers'] as const;
const logger = createLogger({ service: 'test', level: 'silent' });
const topics = async () =>
  new Map([
    ['out', 4],
    ['in', 1],
  ]);

afterEach(() => configureFailpoints(''));

function coordinator(store: MetadataStore, brokers: FakeBrokers, now: () => number): TransactionCoordinator {
  let next = 100n;
  return new TransactionCoordinator({
    store,
    prefix: '/t/',
    logger,
    brokers,
    newProducerId: async () => next++,
    topics,
    completionWaitMs: 1000,
    completionGraceMs: 0,
    nowMs: now,
  });
}

describe('transaction coordinator crash points', () => {
  for (const result of ['commit', 'abort'] as const) {
    for (const point of POINTS) {
      it(`${result}, crashed at ${point}: recovered all-or-nothing in the recorded direction`, async () => {
        const store = await EmbeddedStore.open();
        const brokers = new FakeBrokers();
        let nowMs = 1_000_000;
        const a = coordinator(store, brokers, () => nowMs);
        const id = `app-${result}-${point}`;
        const p = await a.initProducerId(id, { timeoutMs: 10_000, producerId: -1n, producerEpoch: -1 });
        const producer = { producerId: p.producerId, producerEpoch: p.producerEpoch };
        await a.addPartitions(id, { ...producer, partitions: ['out:0', 'out:1'] }, [
          { topic: 'out', partition: 0 },
          { topic: 'out', partition: 1 },
        ]);
        await a.txnOffsetCommit(id, {
          ...producer,
          groupId: 'g',
          memberId: '',
          memberEpoch: -1,
          offsets: [{ topic: 'in', partition: 0, offset: 7n, metadata: '' }],
        });
        configureFailpoints(point === 'none' ? '' : `${point}=throw`);
        let decided = false;
        try {
          await a.addPartitions(id, { ...producer, partitions: ['out:2'] }, [{ topic: 'out', partition: 2 }]);
          await a.endTxn(id, { ...producer, result });
          decided = true;
        } catch (err) {
          expect((err as { code?: string }).code).toBe('FAILPOINT');
          decided = point !== 'txn.beforeBegin';
        }
        configureFailpoints('');

        // Instance B, later than the transaction's timeout: its sweep finishes whatever A left.
        nowMs += 60_000;
        const b = coordinator(store, brokers, () => nowMs);
        await b.sweep();
        await b.sweep();
        const final = (await b.log.load(id)).txn!;
        const direction = decided ? result : 'abort';
        expect(final.state).toBe(direction === 'commit' ? 'CompleteCommit' : 'CompleteAbort');

        const recorded = ['out:0', 'out:1', 'out:2'];
        for (const part of recorded) {
          const s = brokers.partitions.get(part);
          // out:2 was recorded before the crash at txn.beforeBegin but never begun: its marker fences a late BeginTxn.
          expect(s?.markers, part).toEqual([{ commit: direction === 'commit', coordinatorEpoch: final.coordinatorEpoch }]);
          expect(s?.open, part).toBeUndefined();
        }
        expect(brokers.partitions.has('out:3')).toBe(false);
        const offsets = await new GroupStore(store, '/t/').fetchOffsets('g');
        expect(offsets.map((o) => o.offset)).toEqual(direction === 'commit' ? [7n] : []);

        // The next transaction of the same id works, numbered higher.
        const again = await b.initProducerId(id, { timeoutMs: 10_000, producerId: -1n, producerEpoch: -1 });
        await b.addPartitions(id, { ...again, partitions: ['out:0'] }, [{ topic: 'out', partition: 0 }]);
        expect((await b.log.load(id)).txn!.coordinatorEpoch).toBe(final.coordinatorEpoch + 1);
        await store.close();
      });
    }
  }
});

describe('AddPartitionsToTxn and topics the coordinator does not know yet', () => {
  it('answers UNKNOWN_TOPIC_OR_PARTITION, which is retriable, and accepts the partition once metadata has it', async () => {
    const store = await EmbeddedStore.open();
    // The coordinator's metadata trails a topic created a moment ago: "fresh" is unknown at first.
    const counts = new Map([['out', 4]]);
    let next = 100n;
    const c = new TransactionCoordinator({
      store,
      prefix: '/t/',
      logger,
      brokers: new FakeBrokers(),
      newProducerId: async () => next++,
      topics: async () => counts,
      completionWaitMs: 1000,
      completionGraceMs: 0,
      nowMs: () => 1_000_000,
    });
    const p = await c.initProducerId('late', { timeoutMs: 10_000, producerId: -1n, producerEpoch: -1 });
    const producer = { producerId: p.producerId, producerEpoch: p.producerEpoch };
    const add = (topic: string, partition: number) => c.addPartitions('late', { ...producer, partitions: [`${topic}:${partition}`] }, [{ topic, partition }]);
    const unknown = await add('fresh', 0).catch((e: unknown) => e);
    expect(unknown).toMatchObject({ reason: 'UNKNOWN_TOPIC_OR_PARTITION' });
    // The reason table's retriable flag is what every client goes by.
    expect(REASONS.UNKNOWN_TOPIC_OR_PARTITION[1]).toBe(true);
    // A partition beyond the topic's count as known now: also retriable (partitions can be added).
    await expect(add('out', 4)).rejects.toMatchObject({ reason: 'UNKNOWN_TOPIC_OR_PARTITION' });
    // A negative partition can never exist.
    await expect(add('out', -1)).rejects.toMatchObject({ reason: 'UNKNOWN_PARTITION' });
    counts.set('fresh', 1);
    await add('fresh', 0);
    expect((await c.log.load('late')).txn!.partitions).toContain('fresh:0');
  });
});
