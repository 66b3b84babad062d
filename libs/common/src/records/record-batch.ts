/**
 * Builds and reads skein.broker.v1.RecordBatch messages. Pure (no I/O): producers call
 * `buildRecordBatch`, consumers call `decodeRecordBatch` on fetched batches. The broker itself only
 * reads batch headers and never uses the record-level functions on its produce/fetch path.
 */
import { crc32c } from '@node-rs/crc32';
import {
  CompressionCodec,
  type Record as PbRecord,
  RecordBatch,
  Records,
} from '@skein/proto/skein/broker/v1/broker.js';
import { compress, decompress } from './compression.js';
import { CorruptBatchError } from './record-framing.js';

export const RECORD_BATCH_FORMAT_VERSION = 1;
/** Producer id, epoch and sequence of a batch without idempotence. */
export const NO_PRODUCER_ID = -1n;
export const NO_PRODUCER_EPOCH = -1;
export const NO_SEQUENCE = -1;

export interface RecordHeaderInput {
  key: string;
  value: Uint8Array;
}

/** A record as an application sees it. `value: null` is a tombstone; `key` empty means no key. */
export interface RecordInput {
  key?: Uint8Array | string | null;
  value: Uint8Array | string | null;
  headers?: RecordHeaderInput[];
  timestampMs: bigint | number;
}

export interface BuildBatchOptions {
  compression?: CompressionCodec;
  producerId?: bigint;
  producerEpoch?: number;
  baseSequence?: number;
  /** Part of a transaction (skein.broker.v1.RecordBatch.is_transactional); needs the producer fields. */
  isTransactional?: boolean;
}

/** A record read back from a batch, with its offset. */
export interface ConsumedRecord {
  offset: bigint;
  timestampMs: bigint;
  key: Buffer;
  value: Buffer | null;
  headers: Array<{ key: string; value: Buffer }>;
}

function toBytes(v: Uint8Array | string): Buffer {
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  return Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

/** Builds a batch: encodes the records, compresses them and computes the CRC-32C. */
export function buildRecordBatch(records: readonly RecordInput[], options: BuildBatchOptions = {}): RecordBatch {
  if (records.length === 0) throw new RangeError('a record batch needs at least one record');
  const first = BigInt(records[0]!.timestampMs);
  let max = first;
  for (const r of records) {
    const t = BigInt(r.timestampMs);
    if (t > max) max = t;
  }
  const pb: PbRecord[] = records.map((r) => ({
    key: r.key == null ? Buffer.alloc(0) : toBytes(r.key),
    value: r.value === null ? undefined : toBytes(r.value),
    headers: (r.headers ?? []).map((h) => ({ key: h.key, value: toBytes(h.value) })),
    timestampDeltaMs: BigInt(r.timestampMs) - first,
  }));
  const codec = options.compression ?? CompressionCodec.COMPRESSION_CODEC_NONE;
  const payload = toBytes(compress(codec, Records.encode({ records: pb }).finish()));
  return {
    formatVersion: RECORD_BATCH_FORMAT_VERSION,
    compression: codec,
    recordCount: records.length,
    producerId: options.producerId ?? NO_PRODUCER_ID,
    producerEpoch: options.producerEpoch ?? NO_PRODUCER_EPOCH,
    baseSequence: options.baseSequence ?? NO_SEQUENCE,
    firstTimestampMs: first,
    maxTimestampMs: max,
    crc32c: crc32c(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)) >>> 0,
    records: payload,
    // Left unset (not false) outside transactions: the bytes stay those of a batch before transactions existed.
    ...(options.isTransactional ? { isTransactional: true } : {}),
  };
}

/** Encodes a batch to the bytes a client puts on the wire (or a test feeds the broker's log). */
export function encodeRecordBatch(batch: RecordBatch): Buffer {
  const bytes = RecordBatch.encode(batch).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

// Defined beside the framing check, which raises it too; exported here as before.
export { CorruptBatchError } from './record-framing.js';

/**
 * Decodes a batch's records, checking its CRC-32C and record count. `baseOffset` is where the
 * broker stored it; record i gets offset baseOffset + i. `maxUncompressedBytes` bounds what a
 * compressed payload may expand to (DecompressionLimitError beyond it).
 */
export function decodeRecordBatch(batch: RecordBatch, baseOffset: bigint, options: { maxUncompressedBytes?: number } = {}): ConsumedRecord[] {
  const payload = Buffer.from(batch.records.buffer, batch.records.byteOffset, batch.records.byteLength);
  if (crc32c(payload) >>> 0 !== batch.crc32c >>> 0) throw new CorruptBatchError('record batch CRC-32C mismatch');
  const records = Records.decode(decompress(batch.compression, payload, options.maxUncompressedBytes)).records;
  if (records.length !== batch.recordCount) {
    throw new CorruptBatchError(`record batch says ${batch.recordCount} records but holds ${records.length}`);
  }
  return records.map((r, i) => ({
    offset: baseOffset + BigInt(i),
    timestampMs: batch.firstTimestampMs + r.timestampDeltaMs,
    key: Buffer.from(r.key.buffer, r.key.byteOffset, r.key.byteLength),
    value: r.value === undefined ? null : Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength),
    headers: r.headers.map((h) => ({ key: h.key, value: Buffer.from(h.value.buffer, h.value.byteOffset, h.value.byteLength) })),
  }));
}
