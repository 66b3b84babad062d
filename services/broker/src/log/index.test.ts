import { describe, expect, it } from 'vitest';
import { OffsetIndex } from './offset-index.js';
import { TimeIndex } from './time-index.js';

/** Small seeded PRNG (mulberry32) so property tests are reproducible. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('OffsetIndex', () => {
  it('lookup returns the last entry <= target (property, 200 seeded cases)', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const r = rng(seed);
      const base = BigInt(Math.floor(r() * 1e12));
      const idx = new OffsetIndex(base, 1);
      const entries: Array<[bigint, number]> = [];
      let off = base + BigInt(Math.floor(r() * 3));
      let pos = Math.floor(r() * 100);
      const n = Math.floor(r() * 300);
      for (let i = 0; i < n; i++) {
        idx.append(off, pos);
        entries.push([off, pos]);
        off += 1n + BigInt(Math.floor(r() * 50));
        pos += 1 + Math.floor(r() * 5000);
      }
      for (let q = 0; q < 50; q++) {
        const target = base - 5n + BigInt(Math.floor(r() * Number(off - base + 10n)));
        let want = { offset: base, position: 0 };
        for (const [o, p] of entries) if (o <= target) want = { offset: o, position: p };
        expect(idx.lookup(target)).toEqual(want);
      }
      const reloaded = OffsetIndex.fromBuffer(base, idx.toBuffer(), pos + 1);
      expect(reloaded).toBeInstanceOf(OffsetIndex);
      expect((reloaded as OffsetIndex).entries).toBe(n);
    }
  });

  it('truncates entries at or above an offset', () => {
    const idx = new OffsetIndex(100n);
    idx.append(100n, 0);
    idx.append(110n, 500);
    idx.append(120n, 900);
    idx.truncateToOffset(110n);
    expect(idx.entries).toBe(1);
    expect(idx.lookup(130n)).toEqual({ offset: 100n, position: 0 });
  });

  it('refuses out-of-order appends and untrustworthy files', () => {
    const idx = new OffsetIndex(0n);
    idx.append(5n, 100);
    expect(() => idx.append(5n, 200)).toThrow(RangeError);
    expect(() => idx.append(6n, 100)).toThrow(RangeError);
    expect(typeof OffsetIndex.fromBuffer(0n, Buffer.alloc(7), 1000)).toBe('string');
    expect(typeof OffsetIndex.fromBuffer(0n, idx.toBuffer(), 50)).toBe('string');
  });
});

describe('TimeIndex', () => {
  it('lookup gives a start offset no later than the first batch at or after the target (property)', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const r = rng(seed * 7919);
      const base = 1000n;
      const idx = new TimeIndex(base);
      const batches: Array<{ offset: bigint; ts: bigint }> = [];
      let off = base;
      let maxSoFar = -1n;
      for (let i = 0; i < 200; i++) {
        const ts = BigInt(1_000_000 + Math.floor(r() * 10_000) + i * 10);
        batches.push({ offset: off, ts });
        if (ts > maxSoFar) maxSoFar = ts;
        if (r() < 0.3) idx.maybeAppend(maxSoFar, off);
        off += BigInt(1 + Math.floor(r() * 5));
      }
      for (let q = 0; q < 40; q++) {
        const target = BigInt(1_000_000 + Math.floor(r() * 13_000));
        const first = batches.find((b) => b.ts >= target);
        const start = idx.lookup(target);
        if (first) expect(start <= first.offset).toBe(true);
        // Everything before the start is older than the target.
        for (const b of batches) if (b.offset < start) expect(b.ts < target).toBe(true);
      }
      const reloaded = TimeIndex.fromBuffer(base, idx.toBuffer(), off);
      expect((reloaded as TimeIndex).entries).toBe(idx.entries);
    }
  });
});
