/**
 * Per-batch compression codecs, the same on every Node this project supports (20 and later):
 * - gzip (RFC 1952) from node:zlib;
 * - LZ4 frame format from lz4-napi (native, prebuilt per platform, no install script);
 * - snappy raw block format (google/snappy format_description.txt: a varint of the uncompressed
 *   length, then the compressed elements; one block for the whole payload, no stream framing)
 *   from `snappy` (napi-rs, prebuilt like lz4-napi): its async uncompress runs on the libuv
 *   threadpool, so the broker checks snappy batches off the event loop like gzip and LZ4;
 * - Zstandard frame format (RFC 8878) from @bokuweb/zstd-wasm (libzstd compiled to WebAssembly,
 *   no native code): node:zlib has zstd only from Node 22.15. WebAssembly runs on the thread
 *   that calls it (2.5-4 ms per decompressed MiB here), so `decompressAsync` hands payloads of
 *   256 KiB or more to a worker thread (zstdWorker).
 * Every decompression is bounded by the caller's output limit before the output is built.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import * as zlib from 'node:zlib';
import { compressFrameSync, decompressFrame, decompressFrameSync } from 'lz4-napi';
import { compressSync as snappyCompressSync, uncompress as snappyUncompress, uncompressSync as snappyUncompressSync } from 'snappy';
import { compress as zstdCompressWasm, decompress as zstdDecompressWasm, init as initZstdWasm } from '@bokuweb/zstd-wasm';
import { CompressionCodec } from '@skein/proto/skein/broker/v1/broker.js';

// The zstd WebAssembly module is compiled once per process (a few ms) when this module loads, so
// that compress/decompress can stay synchronous like the other codecs.
await initZstdWasm();

/** Kafka's default zstd level (compression.zstd.level). */
const ZSTD_LEVEL = 3;

/** Whether this runtime can compress and decompress `codec`. */
export function isCodecSupported(codec: CompressionCodec): boolean {
  switch (codec) {
    case CompressionCodec.COMPRESSION_CODEC_NONE:
    case CompressionCodec.COMPRESSION_CODEC_GZIP:
    case CompressionCodec.COMPRESSION_CODEC_LZ4:
    case CompressionCodec.COMPRESSION_CODEC_SNAPPY:
    case CompressionCodec.COMPRESSION_CODEC_ZSTD:
      return true;
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
    case CompressionCodec.COMPRESSION_CODEC_SNAPPY:
      return snappyCompressSync(data);
    case CompressionCodec.COMPRESSION_CODEC_ZSTD:
      return zstdCompressWasm(data, ZSTD_LEVEL);
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
 * a small compressed payload can expand a thousandfold, so whoever decompresses untrusted bytes
 * passes a limit and gets DecompressionLimitError instead of running out of memory. gzip stops
 * inflating at the limit (zlib's maxOutputLength). The other libraries take no limit, so each
 * payload is bounded from its headers first: an LZ4 frame by its block headers
 * (lz4FrameMaxOutput), a snappy block by its uncompressed-length preamble (the decoder refuses a
 * block whose output differs from it), zstd frame by frame by the content size in the frame
 * header or, where a frame has none, by an output buffer no larger than what is left of the limit
 * (libzstd never writes past it).
 */
export function decompress(codec: CompressionCodec, data: Uint8Array, maxOutputLength = Infinity): Uint8Array {
  const limited = Number.isFinite(maxOutputLength);
  const tooLarge = (err: unknown) => (err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE' ? new DecompressionLimitError(maxOutputLength) : err;
  switch (codec) {
    case CompressionCodec.COMPRESSION_CODEC_NONE:
      return data;
    case CompressionCodec.COMPRESSION_CODEC_GZIP:
      try {
        // zlib takes no limit below 1 byte: a limit of 0 is checked on the output instead.
        const out = limited ? zlib.gunzipSync(data, { maxOutputLength: Math.max(1, maxOutputLength) }) : zlib.gunzipSync(data);
        if (out.length > maxOutputLength) throw new DecompressionLimitError(maxOutputLength);
        return out;
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
    case CompressionCodec.COMPRESSION_CODEC_SNAPPY:
      if (snappyUncompressedLength(data) > maxOutputLength) throw new DecompressionLimitError(maxOutputLength);
      return snappyUncompressSync(data, { asBuffer: true }) as Buffer;
    case CompressionCodec.COMPRESSION_CODEC_ZSTD:
      return zstdDecompressBounded(data, maxOutputLength);
    default:
      throw new UnsupportedCodecError(codec);
  }
}

/**
 * `decompress` with a mandatory limit, off the event loop: gzip inflates on the libuv threadpool
 * (zlib's async API, stopping at `maxOutputLength`), LZ4 and snappy through their napi libraries'
 * async calls (also threadpool tasks) after the payload is bounded from its headers, zstd in a
 * worker thread (WebAssembly, bounded as in `decompress`) once it may decode to 256 KiB or more.
 * Measured here, the event loop's share for a 1 MiB batch: 0.1-0.2 ms for zstd (4 ms inline), and
 * 2 ms at the broker's 16 MiB limit (25-40 ms inline). The broker uses this to check produced
 * batches. Rejects with DecompressionLimitError over the limit, with the codec's own error for
 * bytes that do not decompress.
 */
export async function decompressAsync(codec: CompressionCodec, data: Uint8Array, maxOutputLength: number): Promise<Uint8Array> {
  const tooLarge = (err: unknown) => (err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE' ? new DecompressionLimitError(maxOutputLength) : err;
  const viaZlib = (run: (cb: (err: Error | null, out: Buffer) => void) => void) =>
    new Promise<Uint8Array>((resolve, reject) => run((err, out) => (err ? reject(tooLarge(err)) : resolve(out))));
  switch (codec) {
    case CompressionCodec.COMPRESSION_CODEC_NONE:
      if (data.length > maxOutputLength) throw new DecompressionLimitError(maxOutputLength);
      return data;
    case CompressionCodec.COMPRESSION_CODEC_GZIP: {
      const out = await viaZlib((cb) => zlib.gunzip(data, { maxOutputLength: Math.max(1, maxOutputLength) }, cb));
      if (out.length > maxOutputLength) throw new DecompressionLimitError(maxOutputLength);
      return out;
    }
    case CompressionCodec.COMPRESSION_CODEC_LZ4: {
      const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      if (lz4FrameMaxOutput(buf) > maxOutputLength) throw new DecompressionLimitError(maxOutputLength);
      const out = await decompressFrame(buf);
      if (out.length > maxOutputLength) throw new DecompressionLimitError(maxOutputLength);
      return out;
    }
    case CompressionCodec.COMPRESSION_CODEC_SNAPPY: {
      if (snappyUncompressedLength(data) > maxOutputLength) throw new DecompressionLimitError(maxOutputLength);
      return (await snappyUncompress(data, { asBuffer: true })) as Buffer;
    }
    case CompressionCodec.COMPRESSION_CODEC_ZSTD:
      return zstdDecompressOffThread(data, maxOutputLength);
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

/**
 * The uncompressed length a snappy raw block declares in its preamble (a little-endian base-128
 * varint of at most 5 bytes, below 2^32). The decoder allocates exactly this much and refuses a
 * block that decodes to anything else, so checking it against the limit bounds the output.
 * Throws on a missing or malformed preamble.
 */
export function snappyUncompressedLength(buf: Uint8Array): number {
  let length = 0;
  for (let i = 0; i < 5; i++) {
    const b = buf[i];
    if (b === undefined) throw new Error('snappy: truncated length preamble');
    length += (b & 0x7f) * 2 ** (7 * i);
    if ((b & 0x80) === 0) {
      if (length > 0xffffffff) throw new Error('snappy: length preamble over 2^32');
      return length;
    }
  }
  throw new Error('snappy: length preamble longer than 5 bytes');
}

const ZSTD_MAGIC = 0xfd2fb528;
/** Block_Maximum_Size's upper limit (RFC 8878 section 3.1.1.2.4). */
const ZSTD_BLOCK_SIZE_MAX = 128 << 10;

export interface ZstdFrame {
  /** Byte range of the frame in the payload. */
  start: number;
  end: number;
  /** Frame_Content_Size from the header, when the encoder wrote it (libzstd checks the output against it). */
  contentSize: number | undefined;
  /** An upper bound on what the frame decodes to, from its block headers. */
  maxOutput: number;
}

/**
 * The zstd frames of a payload (concatenated frames; skippable frames are passed over), read from
 * their headers without decompressing (RFC 8878): each frame's byte range, declared content size
 * and an output bound from its blocks (a raw block adds its size, an RLE block its regenerated
 * size, a compressed block at most Block_Maximum_Size = min(Window_Size, 128 KiB)). Throws on bytes
 * that are not zstd frames. Dictionary frames are walked like others; decoding them fails later.
 */
export function zstdFrames(buf: Buffer): ZstdFrame[] {
  const frames: ZstdFrame[] = [];
  let pos = 0;
  const need = (n: number) => {
    if (pos + n > buf.length) throw new Error('zstd: truncated frame');
  };
  while (pos < buf.length) {
    const start = pos;
    need(4);
    const magic = buf.readUInt32LE(pos);
    pos += 4;
    if ((magic & 0xfffffff0) === 0x184d2a50) {
      need(4);
      pos += 4 + buf.readUInt32LE(pos);
      need(0);
      continue;
    }
    if (magic !== ZSTD_MAGIC) throw new Error('zstd: not a zstd frame');
    need(1);
    const descriptor = buf[pos++]!;
    if ((descriptor & 0x08) !== 0) throw new Error('zstd: reserved bit set in frame header');
    const singleSegment = (descriptor & 0x20) !== 0;
    let windowSize = 0;
    if (!singleSegment) {
      need(1);
      const wd = buf[pos++]!;
      const base = 2 ** (10 + (wd >> 3));
      windowSize = base + (base / 8) * (wd & 7);
    }
    pos += [0, 1, 2, 4][descriptor & 3]!;
    const fcsFlag = descriptor >> 6;
    const fcsBytes = fcsFlag === 0 ? (singleSegment ? 1 : 0) : [0, 2, 4, 8][fcsFlag]!;
    need(fcsBytes);
    let contentSize: number | undefined;
    if (fcsBytes === 1) contentSize = buf[pos]!;
    else if (fcsBytes === 2) contentSize = buf.readUInt16LE(pos) + 256;
    else if (fcsBytes === 4) contentSize = buf.readUInt32LE(pos);
    else if (fcsBytes === 8) contentSize = Number(buf.readBigUInt64LE(pos));
    pos += fcsBytes;
    if (singleSegment) windowSize = contentSize!;
    const blockMax = Math.min(windowSize, ZSTD_BLOCK_SIZE_MAX);
    let maxOutput = 0;
    for (;;) {
      need(3);
      const header = buf.readUIntLE(pos, 3);
      pos += 3;
      const type = (header >> 1) & 3;
      const size = header >>> 3;
      if (type === 3) throw new Error('zstd: reserved block type');
      if (size > ZSTD_BLOCK_SIZE_MAX) throw new Error('zstd: block larger than 128 KiB');
      if (type === 1) {
        need(1);
        pos += 1;
        maxOutput += size;
      } else {
        need(size);
        pos += size;
        maxOutput += type === 0 ? size : blockMax;
      }
      if ((header & 1) !== 0) break;
    }
    if ((descriptor & 0x04) !== 0) {
      need(4);
      pos += 4;
    }
    frames.push({ start, end: pos, contentSize, maxOutput });
  }
  return frames;
}

/**
 * zstd decompression never building more than `maxOutputLength` bytes: the declared content sizes
 * are checked against the limit before anything is decoded, then each frame is decoded into a
 * buffer of its declared size or, without one, of its block bound capped at what is left of the
 * limit (libzstd stops with dstSize_tooSmall rather than write past it).
 */
function zstdDecompressBounded(data: Uint8Array, maxOutputLength: number): Uint8Array {
  const frames = zstdPlan(data, maxOutputLength);
  return zstdResult(decodeZstdFrames(data, frames, maxOutputLength, (bytes, capacity) => zstdDecompressWasm(bytes, { defaultHeapSize: capacity })), maxOutputLength);
}

/** The payload's frames, after refusing one whose declared content sizes exceed the limit. */
function zstdPlan(data: Uint8Array, maxOutputLength: number): ZstdFrame[] {
  const frames = zstdFrames(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  const declared = frames.reduce((sum, f) => sum + (f.contentSize ?? 0), 0);
  if (declared > maxOutputLength) throw new DecompressionLimitError(maxOutputLength);
  return frames;
}

function zstdResult(result: ZstdDecoded, maxOutputLength: number): Uint8Array {
  if (!result.ok) {
    if (result.overLimit) throw new DecompressionLimitError(maxOutputLength);
    throw new Error(result.message);
  }
  if (result.parts.length === 1) return result.parts[0]!;
  return Buffer.concat(result.parts);
}

type ZstdDecoded = { ok: true; parts: Uint8Array[] } | { ok: false; overLimit: boolean; message: string };

/**
 * Decodes `frames` of `data` one by one with `decodeFrame` (libzstd's ZSTD_decompress into a
 * buffer of `capacity` bytes), each into its declared size or, without one, its block bound capped
 * at what is left of the limit. Self-contained on purpose (no imports, constants or closures; an
 * answer instead of an exception class): the zstd worker runs this very function from its source.
 */
function decodeZstdFrames(data: Uint8Array, frames: readonly ZstdFrame[], maxOutputLength: number, decodeFrame: (bytes: Uint8Array, capacity: number) => Uint8Array): ZstdDecoded {
  const parts: Uint8Array[] = [];
  let produced = 0;
  for (const frame of frames) {
    const left = maxOutputLength - produced;
    const capacity = frame.contentSize ?? Math.min(frame.maxOutput, left);
    if (capacity > left) return { ok: false, overLimit: true, message: '' };
    let out: Uint8Array;
    try {
      out = decodeFrame(data.subarray(frame.start, frame.end), capacity);
    } catch (err) {
      // The library's message says "compress"; its number is the negated libzstd error code, and
      // 70 is ZSTD_error_dstSize_tooSmall: past the capped capacity, so past the limit.
      const message = String((err as Error).message);
      const code = -Number(/code (-?\d+)/.exec(message)?.[1]);
      if (code === 70 && frame.contentSize === undefined && capacity < frame.maxOutput) return { ok: false, overLimit: true, message: '' };
      return { ok: false, overLimit: false, message: `zstd: the frame does not decode (libzstd error ${Number.isFinite(code) ? code : message})` };
    }
    produced += out.length;
    parts.push(out);
  }
  return { ok: true, parts };
}

/**
 * Off the event loop for zstd: WebAssembly runs on the thread that calls it, so a payload that
 * may decode to ZSTD_WORKER_MIN_BYTES or more (its declared sizes and block bounds, capped at the
 * limit) is decoded by one worker thread holding its own zstd module, running decodeZstdFrames
 * from its source. Smaller ones (under about 1 ms) decode inline, where the hand-off would cost
 * more than it saves. The worker is started on first use and never keeps the process alive
 * while idle; if it fails, the payload is decoded inline instead.
 */
export const ZSTD_WORKER_MIN_BYTES = 256 << 10;

async function zstdDecompressOffThread(data: Uint8Array, maxOutputLength: number): Promise<Uint8Array> {
  const frames = zstdPlan(data, maxOutputLength);
  const bound = Math.min(maxOutputLength, frames.reduce((sum, f) => sum + (f.contentSize ?? f.maxOutput), 0));
  if (bound < ZSTD_WORKER_MIN_BYTES) return zstdDecompressBounded(data, maxOutputLength);
  let result: ZstdDecoded;
  try {
    result = await zstdWorker().decode(data, frames, maxOutputLength);
  } catch {
    return zstdDecompressBounded(data, maxOutputLength);
  }
  return zstdResult(result, maxOutputLength);
}

interface ZstdWorker {
  decode(data: Uint8Array, frames: readonly ZstdFrame[], maxOutputLength: number): Promise<ZstdDecoded>;
  /** Decodes done by this worker (for tests: the off-thread path was taken). */
  decoded: number;
}
let zstdWorkerInstance: ZstdWorker | undefined;

/** The zstd worker, started on first use (and again after a failure). */
export function zstdWorker(): ZstdWorker {
  if (zstdWorkerInstance) return zstdWorkerInstance;
  // An eval'd worker given the library's resolved location, so that no compiled file of ours has
  // to sit beside this one (tests run these sources through vitest, not tsc). Dynamic imports
  // only: an eval'd worker is a script or a module depending on the parent's flags.
  const library = pathToFileURL(createRequire(import.meta.url).resolve('@bokuweb/zstd-wasm')).href;
  const source = `
    const decodeZstdFrames = (${decodeZstdFrames.toString()});
    Promise.all([import('node:worker_threads'), import(${JSON.stringify(library)})]).then(async ([{ parentPort }, lib]) => {
      const zstd = lib.default ?? lib;
      await zstd.init();
      parentPort.on('message', ({ id, data, frames, maxOutputLength }) => {
        const result = decodeZstdFrames(data, frames, maxOutputLength, (bytes, capacity) => zstd.decompress(bytes, { defaultHeapSize: capacity }));
        parentPort.postMessage({ id, result }, result.ok ? result.parts.map((p) => p.buffer) : []);
      });
    });`;
  const worker = new Worker(source, { eval: true });
  worker.unref();
  const pending = new Map<number, { resolve: (r: ZstdDecoded) => void; reject: (e: Error) => void }>();
  let nextId = 0;
  const fail = (err: Error) => {
    if (zstdWorkerInstance === instance) zstdWorkerInstance = undefined;
    for (const p of pending.values()) p.reject(err);
    pending.clear();
    void worker.terminate().catch(() => {});
  };
  worker.on('message', ({ id, result }: { id: number; result: ZstdDecoded }) => {
    const p = pending.get(id);
    pending.delete(id);
    if (pending.size === 0) worker.unref();
    instance.decoded++;
    p?.resolve(result);
  });
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`the zstd worker exited (${code})`)));
  const instance: ZstdWorker = {
    decoded: 0,
    decode(data, frames, maxOutputLength) {
      // A copy of exactly the payload: posting a view would copy its whole underlying buffer
      // (often the whole gRPC request), and transferring it would take it from its owner.
      const copy = new Uint8Array(data);
      const id = nextId++;
      worker.ref();
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        worker.postMessage({ id, data: copy, frames, maxOutputLength }, [copy.buffer]);
      });
    },
  };
  zstdWorkerInstance = instance;
  return instance;
}
