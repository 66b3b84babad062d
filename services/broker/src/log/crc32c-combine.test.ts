import { crc32c } from '@node-rs/crc32';
import { describe, expect, it } from 'vitest';
import { crc32cCombine } from './crc32c-combine.js';

/** Seeded (mulberry32), so a failure names lengths that reproduce. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function bytes(random: () => number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(random() * 256);
  return b;
}

describe('crc32cCombine', () => {
  it('equals the CRC-32C of the concatenation, for 300 seeded random splits', () => {
    const random = rng(20261201);
    for (let i = 0; i < 300; i++) {
      // Lengths 0..~70 KiB, so every bit position of the length up to 2^16 is exercised.
      const a = bytes(random, Math.floor(random() ** 3 * 70_000));
      const b = bytes(random, Math.floor(random() ** 3 * 70_000));
      const want = crc32c(Buffer.concat([a, b])) >>> 0;
      expect(crc32cCombine(crc32c(a), crc32c(b), b.length), `|A| ${a.length}, |B| ${b.length}`).toBe(want);
    }
  });

  it('handles an empty second part, an empty first part, and chains over three parts', () => {
    const a = Buffer.from('entry header');
    const b = Buffer.alloc(100_000, 0x5a);
    const c = Buffer.from('tail');
    expect(crc32cCombine(crc32c(a), crc32c(Buffer.alloc(0)), 0)).toBe(crc32c(a) >>> 0);
    expect(crc32cCombine(crc32c(Buffer.alloc(0)), crc32c(b), b.length)).toBe(crc32c(b) >>> 0);
    expect(crc32c(c, crc32cCombine(crc32c(a), crc32c(b), b.length)) >>> 0).toBe(crc32c(Buffer.concat([a, b, c])) >>> 0);
  });

  it('refuses lengths it cannot represent', () => {
    expect(() => crc32cCombine(0, 0, -1)).toThrow(RangeError);
    expect(() => crc32cCombine(0, 0, 2 ** 32)).toThrow(RangeError);
  });
});
