import { describe, expect, it } from 'vitest';
import { LeaderEpochCache } from './leader-epoch-cache.js';

describe('LeaderEpochCache', () => {
  it('answers end offsets per epoch and survives a checkpoint round trip', () => {
    const c = new LeaderEpochCache();
    c.assign(0, 0n);
    c.assign(2, 100n);
    c.assign(5, 250n);
    expect(c.endOffsetForEpoch(0, 300n)).toEqual({ epoch: 0, endOffset: 100n });
    expect(c.endOffsetForEpoch(3, 300n)).toEqual({ epoch: 2, endOffset: 250n });
    expect(c.endOffsetForEpoch(5, 300n)).toEqual({ epoch: 5, endOffset: 300n });
    expect(c.epochForOffset(120n)).toBe(2);
    const back = LeaderEpochCache.parse(c.serialize());
    expect(back).toBeInstanceOf(LeaderEpochCache);
    expect((back as LeaderEpochCache).list()).toEqual(c.list());
  });

  it('truncates from the end and from the start', () => {
    const c = new LeaderEpochCache();
    c.assign(1, 0n);
    c.assign(2, 100n);
    c.assign(3, 200n);
    c.truncateFromEnd(150n);
    expect(c.list()).toEqual([{ epoch: 1, startOffset: 0n }, { epoch: 2, startOffset: 100n }]);
    c.truncateFromStart(120n);
    expect(c.list()).toEqual([{ epoch: 2, startOffset: 120n }]);
  });
});
