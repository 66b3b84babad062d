/**
 * Builds and reads skein.broker.v1.RecordBatch messages. Pure (no I/O): producers call
 * `buildRecordBatch`, consumers call `decodeRecordBatch` on fetched batches. The broker itself only
 * reads batch headers and never uses the record-level functions on its produce/fetch path.
 */
import { crc32c } from '@node-rs/crc32';
import {
  CompressionCodec,
  RecordBatch,
} from '@skein/proto/skein/broker/v1/broker.js';
import { compress, decompress } from './compression.js';
import { decodeRecords, encodeRecords, type RecordBytes } from './records-codec.js';
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
  const t0 = records[0]!.timestampMs;
  // Numbers while every timestamp is one (the common case: no bigint per record); bigints otherwise.
  const first = typeof t0 === 'number' ? t0 : Number(t0);
  let max = first;
  const encoded: RecordBytes[] = new Array(records.length);
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    const t = typeof r.timestampMs === 'number' ? r.timestampMs : Number(r.timestampMs);
    if (t > max) max = t;
    encoded[i] = {
      key: r.key == null ? undefined : toBytes(r.key),
      value: r.value === null ? null : toBytes(r.value),
      headers: r.headers?.map((h) => ({ key: h.key, value: toBytes(h.value) })),
      deltaMs: typeof r.timestampMs === 'number' && typeof t0 === 'number' ? r.timestampMs - t0 : Number(BigInt(r.timestampMs) - BigInt(t0)),
    };
  }
  const codec = options.compression ?? CompressionCodec.COMPRESSION_CODEC_NONE;
  const payload = toBytes(compress(codec, encodeRecords(encoded)));
  return {
    formatVersion: RECORD_BATCH_FORMAT_VERSION,
    compression: codec,
    recordCount: records.length,
    producerId: options.producerId ?? NO_PRODUCER_ID,
    producerEpoch: options.producerEpoch ?? NO_PRODUCER_EPOCH,
    baseSequence: options.baseSequence ?? NO_SEQUENCE,
    firstTimestampMs: typeof t0 === 'bigint' ? t0 : BigInt(first),
    maxTimestampMs: typeof t0 === 'bigint' || !Number.isSafeInteger(max) ? records.reduce((m, r) => (BigInt(r.timestampMs) > m ? BigInt(r.timestampMs) : m), BigInt(t0)) : BigInt(max),
    crc32c: crc32c(payload) >>> 0,
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
  const records = decodeRecords(toBytes(decompress(batch.compression, payload, options.maxUncompressedBytes)));
  if (records.length !== batch.recordCount) {
    throw new CorruptBatchError(`record batch says ${batch.recordCount} records but holds ${records.length}`);
  }
  const out: ConsumedRecord[] = new Array(records.length);
  let offset = baseOffset;
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    out[i] = { offset, timestampMs: r.deltaMs === 0 ? batch.firstTimestampMs : batch.firstTimestampMs + BigInt(r.deltaMs), key: r.key, value: r.value, headers: r.headers };
    offset += 1n;
  }
  return out;
}
