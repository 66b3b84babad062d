import { describe, expect, it } from 'vitest';
import { buildRecordBatch } from '@skein/common/records/record-batch.js';
import { RecordBatch } from '@skein/proto/skein/broker/v1/broker.js';
import { peekProducerId } from './log/batch-validation.js';
import { ProducerIdOwners } from './producer-id-owners.js';

describe('ProducerIdOwners', () => {
  it('binds an issued id to its principal and refuses it to any other', () => {
    const owners = new ProducerIdOwners();
    owners.issued(7n, 'User:alice');
    expect(owners.check(7n, 'User:alice')).toEqual({ allowed: true });
    expect(owners.check(7n, 'User:mallory')).toEqual({ allowed: false, owner: 'User:alice' });
    // The refusal binds nothing: alice keeps it.
    expect(owners.check(7n, 'User:alice')).toEqual({ allowed: true });
  });

  it('binds an unknown id to its first writer (ids from another broker, the coordinator, or before a failover)', () => {
    const owners = new ProducerIdOwners();
    expect(owners.check(9n, 'User:bob')).toEqual({ allowed: true });
    expect(owners.check(9n, 'User:alice')).toEqual({ allowed: false, owner: 'User:bob' });
  });

  it('leaves non-idempotent batches alone', () => {
    const owners = new ProducerIdOwners();
    expect(owners.check(-1n, 'User:alice')).toEqual({ allowed: true });
    expect(owners.check(-1n, 'User:bob')).toEqual({ allowed: true });
    expect(owners.size).toBe(0);
  });

  it('forgets the least recently used id past its bound', () => {
    const owners = new ProducerIdOwners(2);
    owners.issued(1n, 'User:a');
    owners.issued(2n, 'User:b');
    expect(owners.check(1n, 'User:a').allowed).toBe(true); // 1 is now the most recent
    owners.issued(3n, 'User:c'); // evicts 2
    expect(owners.size).toBe(2);
    expect(owners.check(1n, 'User:x')).toEqual({ allowed: false, owner: 'User:a' });
    expect(owners.check(2n, 'User:x')).toEqual({ allowed: true }); // forgotten: bound again
  });
});

describe('peekProducerId', () => {
  it('reads the producer id of an encoded batch, -1 without one or for garbage', () => {
    const encode = (b: RecordBatch) => Buffer.from(RecordBatch.encode(b).finish());
    const records = [{ value: 'v', timestampMs: 1 }];
    expect(peekProducerId(encode(buildRecordBatch(records, { producerId: 4_000_000_123n, producerEpoch: 0, baseSequence: 0 })))).toBe(4_000_000_123n);
    expect(peekProducerId(encode(buildRecordBatch(records)))).toBe(-1n);
    expect(peekProducerId(Buffer.from([0xff, 0xff, 0xff]))).toBe(-1n);
  });
});
