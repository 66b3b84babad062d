import { describe, expect, it } from 'vitest';
import { ControlRecordType } from '@skein/proto/skein/broker/v1/broker.js';
import { ProducerStateManager } from './producer-state.js';
import { abortedInRange, decodeAbortedEntries, encodeAbortedEntries } from './aborted-index.js';

const BEGIN = ControlRecordType.CONTROL_RECORD_TYPE_BEGIN;
const COMMIT = ControlRecordType.CONTROL_RECORD_TYPE_COMMIT;
const ABORT = ControlRecordType.CONTROL_RECORD_TYPE_ABORT;
const P = 7n;
const data = (epoch: number, seq: number, n = 1) => ({ producerId: P, producerEpoch: epoch, baseSequence: seq, recordCount: n });
const reason = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return (e as { reason: string }).reason;
  }
  return 'accepted';
};

/** Appends a control batch the way the log does: check, then apply. */
function control(s: ProducerStateManager, epoch: number, type: ControlRecordType, c: bigint, offset: bigint) {
  const check = s.checkControl(P, epoch, type, c);
  return check.kind === 'noop' ? 'noop' : (s.applyControl(P, epoch, type, c, offset, 0n) ?? 'appended');
}

describe('producer state: transactions', () => {
  it('accepts transactional data only inside a begun transaction, at its epoch', () => {
    const s = new ProducerStateManager();
    expect(reason(() => s.check(data(0, 0), true))).toBe('INVALID_TXN_STATE');
    control(s, 0, BEGIN, 1n, 10n);
    expect(s.check(data(0, 0), true)).toEqual({ kind: 'append' });
    s.update(data(0, 0), 11n, 0n);
    expect(reason(() => s.check(data(0, 1), false))).toBe('INVALID_TXN_STATE'); // non-transactional while open
    expect(reason(() => s.check(data(1, 0), true))).toBe('INVALID_TXN_STATE'); // an epoch not begun here
    control(s, 1, ABORT, 1n, 12n); // the coordinator fenced the producer: abort at epoch 1
    expect(reason(() => s.check(data(0, 1), true))).toBe('PRODUCER_FENCED');
    expect(reason(() => s.check(data(1, 0), true))).toBe('INVALID_TXN_STATE'); // a late retry after the abort
  });

  it('bounds the last stable offset by the earliest open transaction', () => {
    const s = new ProducerStateManager();
    expect(s.firstUnstableOffset()).toBeUndefined();
    control(s, 0, BEGIN, 1n, 5n);
    s.applyControl(8n, 0, BEGIN, 1n, 3n, 0n);
    expect(s.firstUnstableOffset()).toBe(3n);
    s.applyControl(8n, 0, COMMIT, 1n, 9n, 0n);
    expect(s.firstUnstableOffset()).toBe(5n);
    expect(control(s, 0, COMMIT, 1n, 10n)).toEqual({ producerId: P, firstOffset: 5n, lastOffset: 10n, aborted: false });
    expect(s.firstUnstableOffset()).toBeUndefined();
  });

  it('makes markers idempotent and never reopens an ended transaction', () => {
    const s = new ProducerStateManager();
    expect(control(s, 0, BEGIN, 4n, 0n)).toBe('appended');
    expect(control(s, 0, BEGIN, 4n, 1n)).toBe('noop'); // BeginTxn retry
    expect(control(s, 0, ABORT, 4n, 2n)).toEqual({ producerId: P, firstOffset: 0n, lastOffset: 2n, aborted: true });
    expect(control(s, 0, ABORT, 4n, 3n)).toBe('noop'); // marker retry
    expect(reason(() => s.checkControl(P, 0, BEGIN, 4n))).toBe('TRANSACTION_COORDINATOR_FENCED'); // late BeginTxn
    expect(control(s, 0, BEGIN, 5n, 3n)).toBe('appended');
    expect(control(s, 0, COMMIT, 4n, 4n)).toBe('noop'); // a zombie's marker for the earlier transaction
    expect(s.firstUnstableOffset()).toBe(3n);
    expect(reason(() => s.checkControl(P, 0, COMMIT, 6n))).toBe('INVALID_TXN_STATE'); // 5 is still open
    expect(reason(() => s.checkControl(P, 0, BEGIN, 6n))).toBe('INVALID_TXN_STATE');
  });

  it('writes a marker with nothing open when it is new, fencing a late BEGIN', () => {
    const s = new ProducerStateManager();
    expect(control(s, 0, ABORT, 9n, 0n)).toBe('appended');
    expect(reason(() => s.checkControl(P, 0, BEGIN, 9n))).toBe('TRANSACTION_COORDINATOR_FENCED');
    expect(reason(() => s.checkControl(P, 1, BEGIN, 8n))).toBe('TRANSACTION_COORDINATOR_FENCED');
  });

  it('keeps transaction state through a snapshot, and never expires an open transaction', () => {
    const s = new ProducerStateManager();
    control(s, 2, BEGIN, 3n, 40n);
    s.applyControl(8n, 0, BEGIN, 1n, 41n, 0n);
    s.applyControl(8n, 0, ABORT, 1n, 42n, 0n);
    const loaded = ProducerStateManager.fromSnapshot(s.snapshot(43n));
    if (typeof loaded === 'string') throw new Error(loaded);
    expect(loaded.state.firstUnstableOffset()).toBe(40n);
    expect(reason(() => loaded.state.checkControl(8n, 0, BEGIN, 1n))).toBe('TRANSACTION_COORDINATOR_FENCED');
    expect(loaded.state.expire(1_000n)).toBe(1); // producer 8 (nothing open) goes, P stays
    expect(loaded.state.firstUnstableOffset()).toBe(40n);
  });

  it('on a replay from the log start, an abort whose BEGIN retention removed starts at the log start', () => {
    const s = new ProducerStateManager();
    s.replayingFromStart = true;
    expect(s.applyControl(P, 0, ABORT, 2n, 50n, 0n, 30n)).toEqual({ producerId: P, firstOffset: 30n, lastOffset: 50n, aborted: true });
  });
});

describe('aborted index', () => {
  const entries = [
    { producerId: 1n, firstOffset: 10n, lastOffset: 20n },
    { producerId: 2n, firstOffset: 5n, lastOffset: 30n },
    { producerId: 3n, firstOffset: 40n, lastOffset: 45n },
  ];
  it('lists the aborts overlapping a read, ordered by first offset', () => {
    expect(abortedInRange(entries, 0n, 100n).map((e) => e.producerId)).toEqual([2n, 1n, 3n]);
    expect(abortedInRange(entries, 21n, 40n).map((e) => e.producerId)).toEqual([2n]); // 1 ended before; 3 starts at the end
    expect(abortedInRange(entries, 0n, 6n).map((e) => e.producerId)).toEqual([2n]);
  });
  it('encodes 24 bytes per entry and ignores a torn tail', () => {
    const buf = encodeAbortedEntries(entries);
    expect(buf.length).toBe(72);
    expect(decodeAbortedEntries(Buffer.concat([buf, Buffer.alloc(10)]))).toEqual(entries);
  });
});
