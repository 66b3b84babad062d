import { describe, expect, it } from 'vitest';
import { CompressionCodec, RecordBatch } from '@skein/proto/skein/broker/v1/broker.js';
import { buildRecordBatch, decodeRecordBatch, encodeRecordBatch, CorruptBatchError } from './record-batch.js';
import { isCodecSupported } from './compression.js';

const codecs = [
  CompressionCodec.COMPRESSION_CODEC_NONE,
  CompressionCodec.COMPRESSION_CODEC_GZIP,
  CompressionCodec.COMPRESSION_CODEC_LZ4,
  CompressionCodec.COMPRESSION_CODEC_ZSTD,
].filter(isCodecSupported);

describe('record batch codec', () => {
  for (const codec of codecs) {
    it(`round-trips keys, headers, null and empty values with codec ${CompressionCodec[codec]}`, () => {
      const batch = buildRecordBatch(
        [
          { key: 'k1', value: 'v1', headers: [{ key: 'h', value: Buffer.from([1, 2]) }], timestampMs: 1000n },
          { key: 'k2', value: null, timestampMs: 1005n },
          { key: null, value: '', timestampMs: 999n },
        ],
        { compression: codec, producerId: 7n, producerEpoch: 1, baseSequence: 10 },
      );
      const wire = encodeRecordBatch(batch);
      const decoded = RecordBatch.decode(wire);
      expect(decoded.maxTimestampMs).toBe(1005n);
      expect(decoded.producerId).toBe(7n);
      const records = decodeRecordBatch(decoded, 42n);
      expect(records.map((r) => r.offset)).toEqual([42n, 43n, 44n]);
      expect(records.map((r) => r.timestampMs)).toEqual([1000n, 1005n, 999n]);
      expect(records[0]!.key.toString()).toBe('k1');
      expect(records[0]!.headers).toEqual([{ key: 'h', value: Buffer.from([1, 2]) }]);
      expect(records[1]!.value).toBeNull();
      expect(records[2]!.value).toEqual(Buffer.alloc(0));
      expect(records[2]!.key.length).toBe(0);
    });
  }

  it('detects a flipped payload byte', () => {
    const batch = buildRecordBatch([{ key: 'k', value: 'value', timestampMs: 1 }]);
    const records = Buffer.from(batch.records);
    records[0] = records[0]! ^ 0xff;
    expect(() => decodeRecordBatch({ ...batch, records }, 0n)).toThrow(CorruptBatchError);
  });

  it('refuses an empty batch', () => {
    expect(() => buildRecordBatch([])).toThrow(RangeError);
  });
});
