// Bounded decompression: a payload that would expand past the caller's limit is refused before
// the output is built (a gzip bomb must not cost the memory it claims), for every codec.
import { describe, expect, it } from 'vitest';
import { CompressionCodec } from '@skein/proto/skein/broker/v1/broker.js';
import { compress, decompress, DecompressionLimitError, isCodecSupported, lz4FrameMaxOutput } from './compression.js';
import { buildRecordBatch, decodeRecordBatch } from './record-batch.js';

const codecs = [CompressionCodec.COMPRESSION_CODEC_GZIP, CompressionCodec.COMPRESSION_CODEC_LZ4, CompressionCodec.COMPRESSION_CODEC_ZSTD].filter(isCodecSupported);

describe('bounded decompression', () => {
  for (const codec of codecs) {
    it(`refuses a ${CompressionCodec[codec]} payload that expands past the limit, and accepts one within it`, () => {
      const bomb = compress(codec, Buffer.alloc(16 << 20));
      expect(bomb.length).toBeLessThan(1 << 20);
      expect(() => decompress(codec, bomb, 1 << 20)).toThrow(DecompressionLimitError);
      const small = Buffer.from('x'.repeat(1000));
      expect(Buffer.from(decompress(codec, compress(codec, small), 1 << 20))).toEqual(small);
      // Without a limit, behaviour is unchanged.
      expect(decompress(codec, bomb).length).toBe(16 << 20);
    });
  }

  it('bounds an LZ4 frame by its block headers: within one block of the real size', () => {
    for (const size of [0, 5, 100_000, 4 << 20, (9 << 20) + 17]) {
      const frame = Buffer.from(compress(CompressionCodec.COMPRESSION_CODEC_LZ4, Buffer.alloc(size, 7)));
      const bound = lz4FrameMaxOutput(frame);
      expect(bound).toBeGreaterThanOrEqual(size);
      expect(bound - size).toBeLessThanOrEqual(4 << 20);
    }
    expect(() => lz4FrameMaxOutput(Buffer.from('not lz4 at all'))).toThrow();
  });

  it('decodeRecordBatch passes the limit on: an over-limit batch fails with MESSAGE_TOO_LARGE', () => {
    const batch = buildRecordBatch([{ value: Buffer.alloc(8 << 20), timestampMs: 1 }], { compression: CompressionCodec.COMPRESSION_CODEC_GZIP });
    expect(() => decodeRecordBatch(batch, 0n, { maxUncompressedBytes: 1 << 20 })).toThrow(expect.objectContaining({ reason: 'MESSAGE_TOO_LARGE' }));
    expect(decodeRecordBatch(batch, 0n, { maxUncompressedBytes: 9 << 20 })[0]!.value!.length).toBe(8 << 20);
  });
});
