import { describe, expect, it } from 'vitest';
import { murmur2, partitionForKey } from './murmur2.js';

// Values produced by Kafka's Java Utils.murmur2 for the UTF-8 bytes of each string.
const JAVA_MURMUR2: Record<string, number> = {
  '0': 971027396,
  '1': -1993445489,
  '128': -326012175,
  '2187': -1508407203,
  '16384': -325739742,
  '78125': -1654490814,
  '279936': 1462227128,
  '823543': -2014198330,
};

describe('murmur2', () => {
  it('matches Kafka’s Java implementation', () => {
    for (const [key, hash] of Object.entries(JAVA_MURMUR2)) expect(murmur2(Buffer.from(key))).toBe(hash);
  });
  it('maps keys to partitions as Kafka’s default partitioner does', () => {
    for (const [key, hash] of Object.entries(JAVA_MURMUR2)) expect(partitionForKey(Buffer.from(key), 6)).toBe((hash & 0x7fffffff) % 6);
    expect(partitionForKey(Buffer.alloc(0), 3)).toBeGreaterThanOrEqual(0);
  });
});
