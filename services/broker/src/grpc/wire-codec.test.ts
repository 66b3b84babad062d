import { describe, expect, it } from 'vitest';
import { FetchResponse, ProduceRequest, ProduceStreamRequest, SubscribeResponse, Acks } from '@skein/proto/skein/broker/v1/broker.js';
import { buildRecordBatch, encodeRecordBatch } from '@skein/common/records/record-batch.js';
import { decodeProduceRequest, encodeFetchResponse, encodeSubscribeResponse } from './wire-codec.js';

const batch = buildRecordBatch([{ key: 'k', value: 'v', timestampMs: 5n }]);
const batchBytes = encodeRecordBatch(batch);

describe('wire codec', () => {
  it('reads a typed ProduceRequest with the batch as a byte view of the request', () => {
    const buf = Buffer.from(ProduceRequest.encode({ acks: Acks.ACKS_ALL, timeoutMs: 7, topics: [{ topic: 't', partitions: [{ partition: 3, batch }] }] }).finish());
    const wire = decodeProduceRequest(buf, false);
    expect(wire).toMatchObject({ acks: Acks.ACKS_ALL, timeoutMs: 7 });
    const p = wire.topics[0]!.partitions[0]!;
    expect(p.partition).toBe(3);
    expect(p.batch.equals(batchBytes)).toBe(true);
    expect(p.batch.buffer).toBe(buf.buffer);
  });

  it('reads a ProduceStreamRequest with its correlation id', () => {
    const buf = Buffer.from(ProduceStreamRequest.encode({ correlationId: 99n, acks: Acks.ACKS_LEADER, timeoutMs: 1, topics: [{ topic: 'x', partitions: [{ partition: 0, batch }] }] }).finish());
    expect(decodeProduceRequest(buf, true)).toMatchObject({ correlationId: 99n, acks: Acks.ACKS_LEADER, timeoutMs: 1 });
  });

  it('writes fetch and subscribe responses that typed clients decode', () => {
    const buf = encodeFetchResponse([
      { topic: 't', partitions: [{ partition: 1, highWatermark: 10n, logStartOffset: 2n, batches: [{ baseOffset: 4n, leaderEpoch: 3, batch: batchBytes }] }] },
      { topic: 'u', partitions: [{ partition: 0, highWatermark: 0n, logStartOffset: 0n, batches: [], error: { code: 5, reason: 'UNKNOWN_TOPIC_OR_PARTITION', message: 'm', retriable: false, leaderHint: undefined, offsetRange: undefined } }] },
    ]);
    const typed = FetchResponse.decode(buf);
    const p = typed.topics[0]!.partitions[0]!;
    expect(p).toMatchObject({ partition: 1, highWatermark: 10n, logStartOffset: 2n });
    expect(p.batches[0]).toMatchObject({ baseOffset: 4n, leaderEpoch: 3 });
    expect(p.batches[0]!.batch!.crc32c).toBe(batch.crc32c);
    expect(typed.topics[1]!.partitions[0]!.error!.reason).toBe('UNKNOWN_TOPIC_OR_PARTITION');
    const sub = SubscribeResponse.decode(encodeSubscribeResponse(9n, 1n, [{ baseOffset: 0n, leaderEpoch: 0, batch: batchBytes }]));
    expect(sub.highWatermark).toBe(9n);
    expect(sub.batches[0]!.batch!.recordCount).toBe(1);
  });

  // 200,000 batches: the old encoder spread each partition's buffer list into push(), which throws
  // RangeError (call stack) beyond ~55,000 batches, so such a fetch answered INTERNAL.
  it('writes a fetch response of 200,000 tiny batches that the generated decoder reads back', () => {
    const n = 200_000;
    const batches = Array.from({ length: n }, (_, i) => ({ baseOffset: BigInt(i), leaderEpoch: i % 3, batch: batchBytes }));
    const buf = encodeFetchResponse([{ topic: 'many', partitions: [{ partition: 0, highWatermark: BigInt(n), logStartOffset: 0n, batches }] }]);
    const typed = FetchResponse.decode(buf);
    const got = typed.topics[0]!.partitions[0]!.batches;
    expect(got).toHaveLength(n);
    for (let i = 0; i < n; i += 9_973) {
      expect(got[i]).toMatchObject({ baseOffset: BigInt(i), leaderEpoch: i % 3 });
      expect(got[i]!.batch!.crc32c).toBe(batch.crc32c);
    }
    expect(got[n - 1]!.baseOffset).toBe(BigInt(n - 1));
    const sub = SubscribeResponse.decode(encodeSubscribeResponse(BigInt(n), 0n, batches));
    expect(sub.batches).toHaveLength(n);
    expect(sub.batches[n - 1]!.baseOffset).toBe(BigInt(n - 1));
  });
});
