/**
 * Per-batch compression codecs. gzip comes from node:zlib, LZ4 (frame format) from lz4-napi, and
 * zstd from node:zlib where the runtime has it (Node 22.15+); on Node 20 zstd is reported as
 * unsupported rather than hand-written.
 */
import * as zlib from 'node:zlib';
import { compressFrameSync, decompressFrame, decompressFrameSync } from 'lz4-napi';
import { CompressionCodec } from '@skein/proto/skein/broker/v1/broker.js';

type ZstdZlib = {
  zstdCompressSync?: (buf: Uint8Array) => Buffer;
  zstdDecompressSync?: (buf: Uint8Array, options?: { maxOutputLength?: number }) => Buffer;
};
const zstd = zlib as unknown as ZstdZlib;

/** Whether this runtime can compress and decompress `codec`. */
export function isCodecSupported(codec: CompressionCodec): boolean {
  switch (codec) {
    case CompressionCodec.COMPRESSION_CODEC_NONE:
    case CompressionCodec.COMPRESSION_CODEC_GZIP:
    case CompressionCodec.COMPRESSION_CODEC_LZ4:
      return true;
    case CompressionCodec.COMPRESSION_CODEC_ZSTD:
      return typeof zstd.zstdCompressSync === 'function' && typeof zstd.zstdDecompressSync === 'function';
    default:
      return false;
  }
}

export class UnsupportedCodecError extends Error {
  readonly reason = 'UNSUPPORTED_COMPRESSION_TYPE';
  constructor(readonly codec: number) {
    super(`compression codec ${codec} is not supported here`);
  }
}

export function compress(codec: CompressionCodec, data: Uint8Array): Uint8Array {
  switch (codec) {
    case CompressionCodec.COMPRESSION_CODEC_NONE:
      return data;
    case CompressionCodec.COMPRESSION_CODEC_GZIP:
      return zlib.gzipSync(data, { level: 1 });
    case CompressionCodec.COMPRESSION_CODEC_LZ4:
      return compressFrameSync(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    case CompressionCodec.COMPRESSION_CODEC_ZSTD:
      if (zstd.zstdCompressSync) return zstd.zstdCompressSync(data);
      throw new UnsupportedCodecError(codec);
    default:
      throw new UnsupportedCodecError(codec);
  }
}

/** A payload that would decompress to more than the caller allows: refused before it is built. */
export class DecompressionLimitError extends Error {
  readonly reason = 'MESSAGE_TOO_LARGE';
  constructor(readonly maxOutputLength: number) {
    super(`compressed payload decompresses to more than ${maxOutputLength} bytes`);
  }
}

/**
 * Decompresses `data`, never building more than `maxOutputLength` bytes (default: no limit):
 * a small gzip/zstd payload can expand a thousandfold, so whoever decompresses untrusted bytes
 * passes a limit and gets DecompressionLimitError instead of running out of memory. gzip and zstd
 * stop inflating at the limit (zlib's maxOutputLength). lz4-napi has no such option, so an LZ4
 * frame is first bounded by walking its block headers (see lz4FrameMaxOutput).
 */
export function decompress(codec: CompressionCodec, data: Uint8Array, maxOutputLength = Infinity): Uint8Array {
  const limited = Number.isFinite(maxOutputLength);
  const tooLarge = (err: unknown) => (err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE' ? new DecompressionLimitError(maxOutputLength) : err;
  switch (codec) {
    case CompressionCodec.COMPRESSION_CODEC_NONE:
      return data;
    case CompressionCodec.COMPRESSION_CODEC_GZIP:
      try {
        return limited ? zlib.gunzipSync(data, { maxOutputLength }) : zlib.gunzipSync(data);
      } catch (err) {
        throw tooLarge(err);
      }
    case CompressionCodec.COMPRESSION_CODEC_LZ4: {
      const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      if (limited && lz4FrameMaxOutput(buf) > maxOutputLength) throw new DecompressionLimitError(maxOutputLength);
      const out = decompressFrameSync(buf);
      if (out.length > maxOutputLength) throw new DecompressionLimitError(maxOutputLength);
      return out;
    }
    case CompressionCodec.COMPRESSION_CODEC_ZSTD:
      if (!zstd.zstdDecompressSync) throw new UnsupportedCodecError(codec);
      try {
        return limited ? zstd.zstdDecompressSync(data, { maxOutputLength }) : zstd.zstdDecompressSync(data);
      } catch (err) {
        throw tooLarge(err);
      }
    default:
      throw new UnsupportedCodecError(codec);
  }
}

type ZstdAsync = {
  zstdDecompress?: (buf: Uint8Array, options: { maxOutputLength: number }, cb: (err: Error | null, out: Buffer) => void) => void;
};
const zstdAsync = zlib as unknown as ZstdAsync;

/**
 * `decompress` with a mandatory limit, off the event loop: gzip and zstd inflate on the libuv
 * threadpool (zlib's async API, stopping at `maxOutputLength`), LZ4 through lz4-napi's async
 * decompressFrame (also a threadpool task) after its frame is bounded by its block headers. The
 * broker uses this to check produced batches, so one large compressed batch never stalls every
 * other request. Rejects with DecompressionLimitError over the limit, with the codec's own error
 * for bytes that do not decompress.
 */
export async function decompressAsync(codec: CompressionCodec, data: Uint8Array, maxOutputLength: number): Promise<Uint8Array> {
  const tooLarge = (err: unknown) => (err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE' ? new DecompressionLimitError(maxOutputLength) : err;
  const viaZlib = (run: (cb: (err: Error | null, out: Buffer) => void) => void) =>
    new Promise<Uint8Array>((resolve, reject) => run((err, out) => (err ? reject(tooLarge(err)) : resolve(out))));
  switch (codec) {
    case CompressionCodec.COMPRESSION_CODEC_NONE:
      if (data.length > maxOutputLength) throw new DecompressionLimitError(maxOutputLength);
      return data;
    case CompressionCodec.COMPRESSION_CODEC_GZIP:
      return viaZlib((cb) => zlib.gunzip(data, { maxOutputLength }, cb));
    case CompressionCodec.COMPRESSION_CODEC_LZ4: {
      const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      if (lz4FrameMaxOutput(buf) > maxOutputLength) throw new DecompressionLimitError(maxOutputLength);
      const out = await decompressFrame(buf);
      if (out.length > maxOutputLength) throw new DecompressionLimitError(maxOutputLength);
      return out;
    }
    case CompressionCodec.COMPRESSION_CODEC_ZSTD: {
      const run = zstdAsync.zstdDecompress;
      if (!run || !isCodecSupported(codec)) throw new UnsupportedCodecError(codec);
      return viaZlib((cb) => run(data, { maxOutputLength }, cb));
    }
    default:
      throw new UnsupportedCodecError(codec);
  }
}

const LZ4_MAGIC = 0x184d2204;
/** Block maximum sizes by the BD byte's block-size id (LZ4 frame format, section "BD byte"). */
const LZ4_BLOCK_MAX: Record<number, number> = { 4: 64 << 10, 5: 256 << 10, 6: 1 << 20, 7: 4 << 20 };

/**
 * An upper bound on what LZ4 frames (concatenated, skippable frames allowed) decompress to, read
 * from their headers without decompressing: a stored block adds its size, a compressed block at
 * most the frame's block maximum (the decoder never writes more into one block). For frames an
 * encoder wrote, the bound exceeds the real size by less than one block. Throws on bytes that are
 * not LZ4 frames.
 */
export function lz4FrameMaxOutput(buf: Buffer): number {
  let pos = 0;
  let total = 0;
  const need = (n: number) => {
    if (pos + n > buf.length) throw new Error('truncated LZ4 frame');
  };
  while (pos < buf.length) {
    need(4);
    const magic = buf.readUInt32LE(pos);
    pos += 4;
    if ((magic & 0xfffffff0) === 0x184d2a50) {
      need(4);
      pos += 4 + buf.readUInt32LE(pos);
      continue;
    }
    if (magic !== LZ4_MAGIC) throw new Error('not an LZ4 frame');
    need(3);
    const flg = buf[pos]!;
    const blockMax = LZ4_BLOCK_MAX[(buf[pos + 1]! >> 4) & 7];
    if (flg >> 6 !== 1 || blockMax === undefined) throw new Error('unsupported LZ4 frame header');
    const blockChecksum = (flg & 0x10) !== 0;
    pos += 2 + ((flg & 0x08) !== 0 ? 8 : 0) + ((flg & 0x01) !== 0 ? 4 : 0) + 1;
    for (;;) {
      need(4);
      const word = buf.readUInt32LE(pos);
      pos += 4;
      if (word === 0) break;
      const size = word & 0x7fffffff;
      const stored = (word & 0x80000000) !== 0;
      if (size > blockMax) throw new Error('LZ4 block larger than its frame allows');
      need(size);
      pos += size + (blockChecksum ? 4 : 0);
      total += stored ? size : blockMax;
    }
    if ((flg & 0x04) !== 0) pos += 4;
  }
  return total;
}
