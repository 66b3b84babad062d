/**
 * Per-batch compression codecs. gzip comes from node:zlib, LZ4 (frame format) from lz4-napi, and
 * zstd from node:zlib where the runtime has it (Node 22.15+); on Node 20 zstd is reported as
 * unsupported rather than hand-written.
 */
import * as zlib from 'node:zlib';
import { compressFrameSync, decompressFrameSync } from 'lz4-napi';
import { CompressionCodec } from '@skein/proto/skein/broker/v1/broker.js';

type ZstdZlib = {
  zstdCompressSync?: (buf: Uint8Array) => Buffer;
  zstdDecompressSync?: (buf: Uint8Array) => Buffer;
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

export function decompress(codec: CompressionCodec, data: Uint8Array): Uint8Array {
  switch (codec) {
    case CompressionCodec.COMPRESSION_CODEC_NONE:
      return data;
    case CompressionCodec.COMPRESSION_CODEC_GZIP:
      return zlib.gunzipSync(data);
    case CompressionCodec.COMPRESSION_CODEC_LZ4:
      return decompressFrameSync(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    case CompressionCodec.COMPRESSION_CODEC_ZSTD:
      if (zstd.zstdDecompressSync) return zstd.zstdDecompressSync(data);
      throw new UnsupportedCodecError(codec);
    default:
      throw new UnsupportedCodecError(codec);
  }
}
