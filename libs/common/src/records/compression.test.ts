// Bounded decompression: a payload that would expand past the caller's limit is refused before
// the output is built (a gzip bomb must not cost the memory it claims), for every codec.
import { describe, expect, it } from 'vitest';
import { CompressionCodec } from '@skein/proto/skein/broker/v1/broker.js';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { compress, decompress, decompressAsync, DecompressionLimitError, isCodecSupported, lz4FrameMaxOutput, snappyUncompressedLength, zstdFrames, zstdWorker } from './compression.js';
import { buildRecordBatch, decodeRecordBatch } from './record-batch.js';

/** The zstd command line (Debian package zstd), to make frames another encoder wrote. */
const hasZstdCli = (() => {
  try {
    execFileSync('zstd', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

// Every codec Kafka offers, on every supported Node (zstd and snappy included on Node 20).
const codecs = [CompressionCodec.COMPRESSION_CODEC_GZIP, CompressionCodec.COMPRESSION_CODEC_LZ4, CompressionCodec.COMPRESSION_CODEC_SNAPPY, CompressionCodec.COMPRESSION_CODEC_ZSTD];

/** Byte equality without vitest's element-by-element diff (slow on 100s of KiB). */
function expectBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual.length).toBe(expected.length);
  expect(Buffer.compare(Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength), expected)).toBe(0);
}

/** A log-like text: what real batches hold, compressible but not trivially. */
function logText(bytes: number): Buffer {
  const lines: string[] = [];
  for (let n = 0, i = 0; n < bytes; i++) {
    const line = `2026-11-30T12:00:${String(i % 60).padStart(2, '0')}Z INFO id=${(i * 7919) % 100_000} path=/items/${i % 977} status=200\n`;
    lines.push(line);
    n += line.length;
  }
  return Buffer.from(lines.join('')).subarray(0, bytes);
}

describe('codecs', () => {
  it('supports none, gzip, lz4, snappy and zstd on this runtime', () => {
    for (const codec of [CompressionCodec.COMPRESSION_CODEC_NONE, ...codecs]) expect(isCodecSupported(codec), CompressionCodec[codec]).toBe(true);
    expect(isCodecSupported(CompressionCodec.COMPRESSION_CODEC_UNSPECIFIED)).toBe(false);
  });

  for (const codec of codecs) {
    it(`round-trips ${CompressionCodec[codec]} (sync and off-thread), empty, random and text payloads`, async () => {
      // gzip, snappy and zstd bound exactly; an LZ4 frame's header bound exceeds the real size by
      // less than one block (4 MiB at most).
      const slack = codec === CompressionCodec.COMPRESSION_CODEC_LZ4 ? 4 << 20 : 0;
      for (const data of [Buffer.alloc(0), randomBytes(70_000), logText(300_000)]) {
        const packed = compress(codec, data);
        expectBytes(decompress(codec, packed, data.length + slack), data);
        expectBytes(await decompressAsync(codec, packed, data.length + slack), data);
        if (slack === 0 && data.length > 0) {
          expect(() => decompress(codec, packed, data.length - 1)).toThrow(DecompressionLimitError);
          await expect(decompressAsync(codec, packed, data.length - 1)).rejects.toThrow(DecompressionLimitError);
        }
      }
      expect(compress(codec, logText(300_000)).length).toBeLessThan(150_000);
    });

    it(`rejects a ${CompressionCodec[codec]} payload that is not one, and a corrupted one`, async () => {
      const garbage = Buffer.from('this is not compressed data at all, whatever it says');
      expect(() => decompress(codec, garbage, 1 << 20)).toThrow();
      await expect(decompressAsync(codec, garbage, 1 << 20)).rejects.toThrow();
      const truncated = compress(codec, logText(100_000)).subarray(0, 500);
      expect(() => decompress(codec, truncated, 1 << 20)).toThrow();
      await expect(decompressAsync(codec, truncated, 1 << 20)).rejects.toThrow();
    });
  }
});

describe('zstd off the event loop', () => {
  it('decodes large payloads in the worker thread, with the same limits and errors as inline', async () => {
    const zstd = CompressionCodec.COMPRESSION_CODEC_ZSTD;
    const data = logText(3 << 20);
    const packed = compress(zstd, data);
    const before = zstdWorker().decoded;
    expectBytes(await decompressAsync(zstd, packed, data.length), data);
    expect(zstdWorker().decoded).toBe(before + 1);
    await expect(decompressAsync(zstd, packed, data.length - 1)).rejects.toThrow(DecompressionLimitError);
    // Two frames, the second one damaged inside a compressed block: the worker's error, not a crash.
    const damaged = Buffer.concat([Buffer.from(packed), Buffer.from(packed)]);
    damaged[damaged.length - 1000] ^= 0xff;
    await expect(decompressAsync(zstd, damaged, 2 * data.length)).rejects.toThrow(/zstd: the frame does not decode/);
    expect(zstdWorker().decoded).toBe(before + 2);
    // Small payloads stay inline.
    expectBytes(await decompressAsync(zstd, compress(zstd, logText(1000)), 1000), logText(1000));
    expect(zstdWorker().decoded).toBe(before + 2);
    // The source payload is still whole (the worker got a copy).
    expectBytes(decompress(zstd, packed, data.length), data);
  });
});

describe('snappy raw block', () => {
  it('is the raw format (varint length preamble, no stream identifier), bounded by its preamble', async () => {
    const packed = Buffer.from(compress(CompressionCodec.COMPRESSION_CODEC_SNAPPY, Buffer.alloc(300, 1)));
    expect([...packed.subarray(0, 2)]).toEqual([0xac, 0x02]); // 300 as a varint
    expect(snappyUncompressedLength(packed)).toBe(300);
    // A preamble claiming 4 GiB is refused before the decoder allocates anything.
    const liar = Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]), packed.subarray(2)]);
    expect(() => decompress(CompressionCodec.COMPRESSION_CODEC_SNAPPY, liar, 1 << 20)).toThrow(DecompressionLimitError);
    await expect(decompressAsync(CompressionCodec.COMPRESSION_CODEC_SNAPPY, liar, 1 << 20)).rejects.toThrow(DecompressionLimitError);
    expect(() => snappyUncompressedLength(Buffer.from([0x80, 0x80]))).toThrow(/truncated/);
    expect(() => snappyUncompressedLength(Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x01]))).toThrow(/longer/);
  });
});

describe('zstd frames', () => {
  it('reads content sizes and block bounds from the headers; concatenated and skippable frames decode whole', () => {
    const a = logText(200_000);
    const b = randomBytes(1000);
    const fa = Buffer.from(compress(CompressionCodec.COMPRESSION_CODEC_ZSTD, a));
    const fb = Buffer.from(compress(CompressionCodec.COMPRESSION_CODEC_ZSTD, b));
    const skippable = Buffer.concat([Buffer.from([0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0]), Buffer.from('abc')]);
    const all = Buffer.concat([fa, skippable, fb]);
    const frames = zstdFrames(all);
    expect(frames.map((f) => f.contentSize)).toEqual([a.length, b.length]);
    expect(frames.map((f) => [f.start, f.end])).toEqual([[0, fa.length], [fa.length + skippable.length, all.length]]);
    for (const f of frames) expect(f.maxOutput).toBeGreaterThanOrEqual(f.contentSize!);
    expectBytes(decompress(CompressionCodec.COMPRESSION_CODEC_ZSTD, all, a.length + b.length), Buffer.concat([a, b]));
    expect(() => decompress(CompressionCodec.COMPRESSION_CODEC_ZSTD, all, a.length + b.length - 1)).toThrow(DecompressionLimitError);
    expect(() => zstdFrames(Buffer.from('not zstd'))).toThrow(/not a zstd frame/);
  });

  it('bounds a frame without a content size by what is left of the limit', () => {
    // Built by hand: header without Frame_Content_Size (descriptor 0, window 2 MiB), then an RLE
    // block of 100,000 x 'a', a raw block, and a last RLE block: 300,000 bytes in all.
    const block = (last: boolean, type: number, size: number) => Buffer.from([((size << 3) | (type << 1) | (last ? 1 : 0)) & 0xff, (size >> 5) & 0xff, (size >> 13) & 0xff]);
    const raw = logText(100_000);
    const frame = Buffer.concat([
      Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58]),
      block(false, 1, 100_000), Buffer.from('a'),
      block(false, 0, raw.length), raw,
      block(true, 1, 100_000), Buffer.from('b'),
    ]);
    const expected = Buffer.concat([Buffer.alloc(100_000, 'a'), raw, Buffer.alloc(100_000, 'b')]);
    expect(zstdFrames(frame)[0]).toMatchObject({ contentSize: undefined, maxOutput: 300_000 });
    expectBytes(decompress(CompressionCodec.COMPRESSION_CODEC_ZSTD, frame, 300_000), expected);
    expect(() => decompress(CompressionCodec.COMPRESSION_CODEC_ZSTD, frame, 299_999)).toThrow(DecompressionLimitError);
  });

  it.skipIf(!hasZstdCli)('bounds a frame the zstd CLI streams (compressed blocks, no content size) by what is left of the limit', () => {
    const data = logText(2 << 20);
    const streamed = execFileSync('zstd', ['-q', '-c', '-'], { input: data });
    const [frame] = zstdFrames(streamed);
    expect(frame!.contentSize).toBeUndefined();
    expect(frame!.maxOutput).toBeGreaterThanOrEqual(data.length);
    expectBytes(decompress(CompressionCodec.COMPRESSION_CODEC_ZSTD, streamed, data.length), data);
    // Over the limit by one byte, and far over it: refused, never built whole.
    expect(() => decompress(CompressionCodec.COMPRESSION_CODEC_ZSTD, streamed, data.length - 1)).toThrow(DecompressionLimitError);
    expect(() => decompress(CompressionCodec.COMPRESSION_CODEC_ZSTD, streamed, 1 << 20)).toThrow(DecompressionLimitError);
  });

  it('refuses a frame whose declared content size is over the limit before decoding it', () => {
    // Single-segment frame header claiming 2^40 bytes, followed by one empty last raw block.
    const header = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0xe0, 0, 0, 0, 0, 0, 1, 0, 0, 0x01, 0, 0]);
    expect(zstdFrames(header)[0]!.contentSize).toBe(2 ** 40);
    expect(() => decompress(CompressionCodec.COMPRESSION_CODEC_ZSTD, header, 1 << 30)).toThrow(DecompressionLimitError);
  });
});

describe('bounded decompression', () => {
  for (const codec of codecs) {
    it(`refuses a ${CompressionCodec[codec]} payload that expands past the limit, and accepts one within it`, () => {
      const bomb = compress(codec, Buffer.alloc(16 << 20));
      expect(bomb.length).toBeLessThan(1 << 20);
      expect(() => decompress(codec, bomb, 1 << 20)).toThrow(DecompressionLimitError);
      const small = Buffer.from('x'.repeat(1000));
      expectBytes(decompress(codec, compress(codec, small), 1 << 20), small);
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
