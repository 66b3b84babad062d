import { describe, expect, it } from 'vitest';
import { ProducerStateManager } from './producer-state.js';
import { LogError } from './log-error.js';

function reasonOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return (e as LogError).reason;
  }
  return undefined;
}

describe('ProducerStateManager', () => {
  const b = (seq: number, count = 2, epoch = 0) => ({ producerId: 5n, producerEpoch: epoch, baseSequence: seq, recordCount: count });

  it('appends in sequence, recognises duplicates of the last five batches, refuses gaps', () => {
    const s = new ProducerStateManager();
    let offset = 100n;
    for (let i = 0; i < 7; i++) {
      expect(s.check(b(i * 2))).toEqual({ kind: 'append' });
      s.update(b(i * 2), offset, 1000n);
      offset += 2n;
    }
    // Batches 2..6 (sequences 4..13) are remembered; batch 1 (sequence 2) is not.
    expect(s.check(b(12))).toEqual({ kind: 'duplicate', baseOffset: 112n });
    expect(s.check(b(4))).toEqual({ kind: 'duplicate', baseOffset: 104n });
    expect(reasonOf(() => s.check(b(2)))).toBe('OUT_OF_ORDER_SEQUENCE');
    expect(reasonOf(() => s.check(b(16)))).toBe('OUT_OF_ORDER_SEQUENCE');
    expect(s.check(b(14))).toEqual({ kind: 'append' });
  });

  it('fences older epochs and requires sequence 0 in a new epoch', () => {
    const s = new ProducerStateManager();
    s.update(b(0, 1, 3), 0n, 1n);
    expect(reasonOf(() => s.check(b(1, 1, 2)))).toBe('INVALID_PRODUCER_EPOCH');
    expect(reasonOf(() => s.check(b(5, 1, 4)))).toBe('OUT_OF_ORDER_SEQUENCE');
    expect(s.check(b(0, 1, 4))).toEqual({ kind: 'append' });
  });

  it('wraps sequences at int32 max', () => {
    const s = new ProducerStateManager();
    s.update(b(0x7ffffffe, 2), 0n, 1n);
    expect(s.check(b(0, 1))).toEqual({ kind: 'append' });
  });

  it('survives a snapshot round trip and truncation', () => {
    const s = new ProducerStateManager();
    s.update(b(0), 10n, 1n);
    s.update(b(2), 12n, 2n);
    const loaded = ProducerStateManager.fromSnapshot(s.snapshot(14n));
    if (typeof loaded === 'string') throw new Error(loaded);
    expect(loaded.offset).toBe(14n);
    expect(loaded.state.check(b(2))).toEqual({ kind: 'duplicate', baseOffset: 12n });
    loaded.state.truncateTo(12n);
    expect(loaded.state.check(b(2))).toEqual({ kind: 'append' });
    expect(typeof ProducerStateManager.fromSnapshot(Buffer.from('{oops'))).toBe('string');
  });
});
