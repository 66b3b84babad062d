import { describe, expect, it } from 'vitest';
import { murmur2, partitionForKey } from './murmur2.js';
import { KAFKA_MURMUR2_VECTORS } from './murmur2-vectors.js';

const JAVA_MURMUR2 = KAFKA_MURMUR2_VECTORS;

describe('murmur2', () => {
  it('matches Kafka’s Java implementation', () => {
    for (const [key, hash] of Object.entries(JAVA_MURMUR2)) expect(murmur2(Buffer.from(key))).toBe(hash);
  });
  it('maps keys to partitions as Kafka’s default partitioner does', () => {
    for (const [key, hash] of Object.entries(JAVA_MURMUR2)) expect(partitionForKey(Buffer.from(key), 6)).toBe((hash & 0x7fffffff) % 6);
    expect(partitionForKey(Buffer.alloc(0), 3)).toBeGreaterThanOrEqual(0);
  });
});
