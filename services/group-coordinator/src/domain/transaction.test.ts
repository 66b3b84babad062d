import { describe, expect, it } from 'vitest';
import type { GroupState } from './group.js';
import {
  abortTimedOut,
  addOffsets,
  addPartitions,
  adminAbort,
  completeTxn,
  decidedResult,
  endTxn,
  groupOffsetsProblem,
  initProducerId,
  isPrepare,
  type Outcome,
  type TransactionMetadata,
} from './transaction.js';

const ID = 'app-1';
const none = { timeoutMs: 10_000, producerId: -1n, producerEpoch: -1 };

function written<R>(out: Outcome<R> | { kind: 'needsProducerId' }): TransactionMetadata {
  if (out.kind !== 'write') throw new Error(`expected a write, got ${JSON.stringify(out, (_, v) => (typeof v === 'bigint' ? v.toString() : v))}`);
  return out.next;
}

function fresh(): TransactionMetadata {
  return written(initProducerId(undefined, ID, none, { nowMs: 0, freshProducerId: 7n }));
}

function ongoing(nowMs = 100): TransactionMetadata {
  return written(addPartitions(fresh(), ID, { producerId: 7n, producerEpoch: 0, partitions: ['a:0', 'b:1'] }, nowMs));
}

describe('transaction state machine', () => {
  it('creates an id at epoch 0 (asking for a producer id first) and bumps the epoch on every InitProducerId', () => {
    expect(initProducerId(undefined, ID, none, { nowMs: 0 }).kind).toBe('needsProducerId');
    const t = fresh();
    expect(t).toMatchObject({ producerId: 7n, producerEpoch: 0, state: 'Empty', coordinatorEpoch: 0 });
    const again = written(initProducerId(t, ID, none, { nowMs: 1 }));
    expect(again).toMatchObject({ producerId: 7n, producerEpoch: 1, lastProducerEpoch: 0, state: 'Empty' });
  });

  it('refuses timeouts out of range and takes the default for 0', () => {
    expect(initProducerId(undefined, ID, { ...none, timeoutMs: 999 }, { nowMs: 0, freshProducerId: 1n })).toMatchObject({
      kind: 'problem',
      problem: { reason: 'INVALID_REQUEST' },
    });
    expect(written(initProducerId(undefined, ID, { ...none, timeoutMs: 0 }, { nowMs: 0, freshProducerId: 1n })).timeoutMs).toBe(60_000);
  });

  it('starts a transaction on the first AddPartitionsToTxn, numbering it, and adds idempotently', () => {
    const t = ongoing();
    expect(t).toMatchObject({ state: 'Ongoing', coordinatorEpoch: 1, partitions: ['a:0', 'b:1'], startedAtMs: 100 });
    expect(addPartitions(t, ID, { producerId: 7n, producerEpoch: 0, partitions: ['b:1'] }, 200)).toEqual({ kind: 'answer', response: { coordinatorEpoch: 1 } });
    expect(written(addPartitions(t, ID, { producerId: 7n, producerEpoch: 0, partitions: ['c:2'] }, 200)).partitions).toEqual(['a:0', 'b:1', 'c:2']);
  });

  it('commits: the decision bumps the epoch, carries the offsets out and numbers the next transaction higher', () => {
    let t = ongoing();
    t = written(
      addOffsets(
        t,
        ID,
        { producerId: 7n, producerEpoch: 0, groupId: 'g', memberId: 'm', memberEpoch: 3, offsets: [{ topic: 'in', partition: 0, offset: 5n, metadata: '' }] },
        150,
      ),
    );
    t = written(
      addOffsets(
        t,
        ID,
        { producerId: 7n, producerEpoch: 0, groupId: 'g', memberId: 'm', memberEpoch: 3, offsets: [{ topic: 'in', partition: 0, offset: 9n, metadata: '' }] },
        160,
      ),
    );
    const out = endTxn(t, ID, { producerId: 7n, producerEpoch: 0, result: 'commit' }, 200);
    const decided = written(out);
    expect(out.kind === 'write' && out.commitOffsets).toEqual([
      { groupId: 'g', memberId: 'm', memberEpoch: 3, offsets: [{ topic: 'in', partition: 0, offset: 9n, metadata: '' }] },
    ]);
    expect(decided).toMatchObject({
      state: 'PrepareCommit',
      producerEpoch: 1,
      lastProducerEpoch: 0,
      pendingOffsets: [],
      partitions: ['a:0', 'b:1'],
      endedBy: 'client',
    });
    const done = completeTxn(decided, 300)!;
    expect(done).toMatchObject({ state: 'CompleteCommit', partitions: [] });
    const next = written(addPartitions(done, ID, { producerId: 7n, producerEpoch: 1, partitions: ['a:0'] }, 400));
    expect(next).toMatchObject({ state: 'Ongoing', coordinatorEpoch: 2, producerEpoch: 1 });
  });

  it('answers a retried EndTxn (its answer lost) again, and finishes it first while markers are pending', () => {
    const decided = written(endTxn(ongoing(), ID, { producerId: 7n, producerEpoch: 0, result: 'commit' }, 200));
    expect(endTxn(decided, ID, { producerId: 7n, producerEpoch: 0, result: 'commit' }, 201).kind).toBe('complete');
    const done = completeTxn(decided, 300)!;
    expect(endTxn(done, ID, { producerId: 7n, producerEpoch: 0, result: 'commit' }, 301)).toEqual({
      kind: 'answer',
      response: { producerId: 7n, producerEpoch: 1 },
    });
    // The opposite result for the same transaction is not a retry.
    expect(endTxn(done, ID, { producerId: 7n, producerEpoch: 0, result: 'abort' }, 301)).toMatchObject({
      kind: 'problem',
      problem: { reason: 'PRODUCER_FENCED' },
    });
    expect(endTxn(done, ID, { producerId: 7n, producerEpoch: 1, result: 'commit' }, 301)).toMatchObject({
      kind: 'problem',
      problem: { reason: 'INVALID_TXN_STATE' },
    });
  });

  it('fences a zombie: a new InitProducerId aborts the open transaction at a bumped epoch; the old epoch is refused everywhere', () => {
    const t = ongoing();
    const out = initProducerId(t, ID, none, { nowMs: 500 });
    expect(out.kind).toBe('complete');
    const fencing = (out as { next: TransactionMetadata }).next;
    expect(fencing).toMatchObject({ state: 'PrepareAbort', producerEpoch: 1, endedBy: 'fence', partitions: ['a:0', 'b:1'] });
    const aborted = completeTxn(fencing, 600)!;
    const reborn = written(initProducerId(aborted, ID, none, { nowMs: 700 }));
    expect(reborn).toMatchObject({ state: 'Empty', producerEpoch: 2 });
    const zombie = { producerId: 7n, producerEpoch: 0 };
    expect(addPartitions(reborn, ID, { ...zombie, partitions: ['a:0'] }, 800)).toMatchObject({ kind: 'problem', problem: { reason: 'PRODUCER_FENCED' } });
    expect(endTxn(reborn, ID, { ...zombie, result: 'commit' }, 800)).toMatchObject({ kind: 'problem', problem: { reason: 'PRODUCER_FENCED' } });
    expect(addOffsets(reborn, ID, { ...zombie, groupId: 'g', memberId: '', memberEpoch: -1, offsets: [] }, 800)).toMatchObject({
      kind: 'problem',
      problem: { reason: 'PRODUCER_FENCED' },
    });
    // A zombie may not use KIP-360 recovery to fence the new holder back.
    expect(initProducerId(reborn, ID, { ...none, ...zombie }, { nowMs: 900 })).toMatchObject({ kind: 'problem', problem: { reason: 'PRODUCER_FENCED' } });
    expect(addPartitions(reborn, ID, { producerId: 8n, producerEpoch: 2, partitions: ['a:0'] }, 800)).toMatchObject({
      kind: 'problem',
      problem: { reason: 'PRODUCER_FENCED' },
    });
    expect(addPartitions(reborn, ID, { producerId: 7n, producerEpoch: 3, partitions: ['a:0'] }, 800)).toMatchObject({
      kind: 'problem',
      problem: { reason: 'INVALID_PRODUCER_EPOCH' },
    });
  });

  it('aborts a transaction past its timeout; its producer learns TRANSACTION_TIMED_OUT and may go on with its epoch', () => {
    const t = ongoing(100);
    expect(abortTimedOut(t, 100 + 10_000)).toBeUndefined();
    const aborted = abortTimedOut(t, 100 + 10_001)!;
    expect(aborted).toMatchObject({ state: 'PrepareAbort', producerEpoch: 1, endedBy: 'timeout' });
    const done = completeTxn(aborted, 20_000)!;
    expect(endTxn(done, ID, { producerId: 7n, producerEpoch: 0, result: 'commit' }, 20_001)).toMatchObject({
      kind: 'problem',
      problem: { reason: 'TRANSACTION_TIMED_OUT' },
    });
    const resumed = written(initProducerId(done, ID, { ...none, producerId: 7n, producerEpoch: 0 }, { nowMs: 20_002 }));
    expect(resumed).toMatchObject({ state: 'Empty', producerEpoch: 2 });
  });

  it("an operator's abort fences the producer like a timeout; a decided transaction is finished as decided", () => {
    const out = adminAbort(ongoing(), 500);
    expect(out).toMatchObject({ kind: 'complete', next: { state: 'PrepareAbort', endedBy: 'admin', producerEpoch: 1 } });
    const committing = written(endTxn(ongoing(), ID, { producerId: 7n, producerEpoch: 0, result: 'commit' }, 200));
    expect(adminAbort(committing, 500)).toEqual({ kind: 'complete' });
    expect(adminAbort(fresh(), 500)).toEqual({ kind: 'answer', response: {} });
  });

  it('gets a new producer id when the epoch would overflow', () => {
    const t = { ...fresh(), producerEpoch: 2 ** 31 - 2 };
    expect(initProducerId(t, ID, none, { nowMs: 1 }).kind).toBe('needsProducerId');
    expect(written(initProducerId(t, ID, none, { nowMs: 1, freshProducerId: 99n }))).toMatchObject({ producerId: 99n, producerEpoch: 0 });
  });

  it('bounds offsets per transaction (one store transaction holds them)', () => {
    const offsets = Array.from({ length: 101 }, (_, i) => ({ topic: 'in', partition: i, offset: 1n, metadata: '' }));
    expect(addOffsets(ongoing(), ID, { producerId: 7n, producerEpoch: 0, groupId: 'g', memberId: '', memberEpoch: -1, offsets }, 1)).toMatchObject({
      kind: 'problem',
      problem: { reason: 'INVALID_REQUEST' },
    });
  });

  // A seeded walk over every operation from every reachable state: a decision is never undone or
  // reversed, epochs and transaction numbers never go back, and the old epoch never acts again.
  it('never leaves a decision except to complete it in the same direction (seeded random walk)', () => {
    for (let seed = 1; seed <= 200; seed++) {
      let s = seed;
      const rand = (n: number) => {
        s = (s * 1103515245 + 12345) % 2 ** 31;
        return s % n;
      };
      let t = fresh();
      let nowMs = 0;
      for (let step = 0; step < 60; step++) {
        nowMs += rand(4000);
        const epoch = rand(3) === 0 ? t.producerEpoch - 1 : t.producerEpoch;
        const producer = { producerId: 7n, producerEpoch: epoch };
        let next: TransactionMetadata | undefined;
        const pick = rand(8);
        const out: Outcome<unknown> | { kind: 'needsProducerId' } | undefined =
          pick === 0
            ? initProducerId(t, ID, none, { nowMs })
            : pick === 1
              ? addPartitions(t, ID, { ...producer, partitions: [`t:${rand(3)}`] }, nowMs)
              : pick === 2
                ? addOffsets(
                    t,
                    ID,
                    { ...producer, groupId: 'g', memberId: 'm', memberEpoch: 1, offsets: [{ topic: 'in', partition: 0, offset: BigInt(step), metadata: '' }] },
                    nowMs,
                  )
                : pick === 3
                  ? endTxn(t, ID, { ...producer, result: 'commit' }, nowMs)
                  : pick === 4
                    ? endTxn(t, ID, { ...producer, result: 'abort' }, nowMs)
                    : pick === 5
                      ? adminAbort(t, nowMs)
                      : undefined;
        if (pick === 6) next = abortTimedOut(t, nowMs);
        else if (pick === 7) next = completeTxn(t, nowMs);
        else if (out?.kind === 'write') next = out.next;
        else if (out?.kind === 'complete') next = out.next ?? completeTxn(t, nowMs);
        if (!next) continue;
        if (isPrepare(t.state)) {
          expect(
            next.state === t.state || next.state === (t.state === 'PrepareCommit' ? 'CompleteCommit' : 'CompleteAbort'),
            `seed ${seed} step ${step}: ${t.state} -> ${next.state}`,
          ).toBe(true);
          expect(decidedResult(next.state)).toBe(decidedResult(t.state));
        }
        if (isPrepare(next.state) && !isPrepare(t.state)) expect(next.producerEpoch, `seed ${seed}`).toBe(t.producerEpoch + 1);
        expect(next.producerEpoch).toBeGreaterThanOrEqual(t.producerEpoch);
        expect(next.coordinatorEpoch).toBeGreaterThanOrEqual(t.coordinatorEpoch);
        if (next.state === 'Ongoing' && t.state !== 'Ongoing') expect(next.coordinatorEpoch).toBe(t.coordinatorEpoch + 1);
        if (epoch < t.producerEpoch && (pick === 1 || pick === 2)) throw new Error(`seed ${seed}: a fenced epoch changed the transaction`);
        t = next;
      }
    }
  });
});

describe('offsets in a transaction are fenced like ordinary commits (KIP-447)', () => {
  const group = (owned: string[], memberEpoch = 4): GroupState => ({
    groupId: 'g',
    assignor: 'uniform',
    groupEpoch: 4,
    targetEpoch: 4,
    target: {},
    partitionCounts: {},
    members: { m: { memberId: 'm', clientId: 'c', memberEpoch, topics: ['in'], owned, lastHeartbeatMs: 0 } },
  });
  const pending = (memberEpoch: number, partition = 0) => ({
    groupId: 'g',
    memberId: 'm',
    memberEpoch,
    offsets: [{ topic: 'in', partition, offset: 1n, metadata: '' }],
  });

  it('accepts the owner at its epoch and refuses a stale epoch, a partition not owned, an unknown member, and -1 on a group with members', () => {
    expect(groupOffsetsProblem(group(['in:0']), pending(4))).toBeUndefined();
    expect(groupOffsetsProblem(group(['in:0'], 5), pending(4))?.reason).toBe('STALE_MEMBER_EPOCH');
    expect(groupOffsetsProblem(group(['in:1']), pending(4))?.reason).toBe('STALE_MEMBER_EPOCH');
    expect(groupOffsetsProblem(undefined, pending(4))?.reason).toBe('UNKNOWN_MEMBER');
    expect(groupOffsetsProblem(group(['in:0']), { ...pending(-1), memberId: '' })?.reason).toBe('GROUP_NOT_EMPTY');
    expect(groupOffsetsProblem(undefined, { ...pending(-1), memberId: '' })).toBeUndefined();
  });
});
