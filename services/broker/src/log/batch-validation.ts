/**
 * Validates a produced batch before it is stored. The broker stores batch bytes as they came and
 * serves them back untouched, so whatever it accepts must be readable later (DESIGN.md section 4:
 * "stored as sent, but never trusted").
 *
 * Two levels:
 * - `validateBatch`: the header fields and the payload CRC-32C. Pure, synchronous, cheap; the log
 *   runs it on every append (leader and follower) as its own guard.
 * - `validateRecords`: that, plus the record framing inside the payload (record count, varints,
 *   lengths, field framing) and the timestamps against the header (`first_timestamp_ms` is the
 *   first record's, `max_timestamp_ms` the largest: the time index and retention trust the header).
 *   An uncompressed batch is checked synchronously in one pass (record-framing.ts); a compressed
 *   one is decompressed first, off the event loop (libuv threadpool) and bounded to
 *   `maxDecompressedBytes(maxMessageBytes)`, so it returns a promise. The produce path runs it
 *   before the (synchronous) append, through `ProduceAdmission`, which keeps appends to a partition
 *   in arrival order while a compressed batch is being checked.
 */
import { crc32c } from '@node-rs/crc32';
import { BinaryReader } from '@bufbuild/protobuf/wire';
import { CompressionCodec } from '@skein/proto/skein/broker/v1/broker.js';
import { decompressAsync, isCodecSupported as codecSupportedHere } from '@skein/common/records/compression.js';
import { type SchemaIdScan, scanRecordsFraming } from '@skein/common/records/record-framing.js';
import { LogError } from './log-error.js';
import type { RecordsSpan } from './entry-format.js';

export interface BatchHeader {
  compression: CompressionCodec;
  recordCount: number;
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
  firstTimestampMs: bigint;
  maxTimestampMs: bigint;
  /**
   * Where the records payload is in the batch bytes, and its CRC-32C: computed here and equal to
   * the batch's, so the log's entry CRC can reuse it instead of reading the payload again.
   */
  records: RecordsSpan;
}

const SUPPORTED_FORMAT_VERSION = 1;

/**
 * Reads the header fields of an encoded skein.broker.v1.RecordBatch, skipping over `records`
 * (a view, no copy), and checks them and the payload CRC. Throws LogError with a precise reason.
 */
export function validateBatch(bytes: Buffer, maxMessageBytes: number, isCodecSupported: (c: number) => boolean): BatchHeader {
  const known = validated.get(bytes);
  if (known !== undefined && bytes.length <= maxMessageBytes && isCodecSupported(known.compression)) {
    validated.delete(bytes);
    return known;
  }
  return readBatch(bytes, maxMessageBytes, isCodecSupported).header;
}

/**
 * Headers of batches validateRecords just accepted, keyed by the very Buffer it checked, so the
 * append that follows (appendAsLeader runs validateBatch as the log's own guard) does not parse
 * the header and compute the CRC-32C a second time: that was 0.2 CPU s/GB on the produce path
 * (bench/validation.js). Used once, then forgotten; weak, so an unappended batch is not held.
 * Nobody writes to a request buffer between the check and the append.
 */
const validated = new WeakMap<Uint8Array, BatchHeader>();

/** validateBatch, also returning the records payload (a view into `bytes`). */
function readBatch(bytes: Buffer, maxMessageBytes: number, isCodecSupported: (c: number) => boolean): { header: BatchHeader; records: Uint8Array } {
  if (bytes.length === 0) throw new LogError('INVALID_RECORD', 'empty record batch');
  if (bytes.length > maxMessageBytes) {
    throw new LogError('MESSAGE_TOO_LARGE', `record batch of ${bytes.length} bytes exceeds max.message.bytes ${maxMessageBytes}`);
  }
  let formatVersion = 0;
  let compression = 0;
  let recordCount = 0;
  let producerId = 0n;
  let producerEpoch = 0;
  let baseSequence = 0;
  let firstTimestampMs = 0n;
  let maxTimestampMs = 0n;
  let crc = 0;
  let records: Uint8Array = new Uint8Array(0);
  const seen = new Set<number>();
  try {
    const r = new BinaryReader(bytes);
    while (r.pos < r.len) {
      const tag = r.uint32();
      const field = tag >>> 3;
      const wire = tag & 7;
      const expect = field === 9 ? 5 : field === 10 ? 2 : field >= 1 && field <= 8 ? 0 : -1;
      if (expect === -1) {
        r.skip(wire);
        continue;
      }
      if (wire !== expect) throw new Error(`field ${field} has wire type ${wire}`);
      seen.add(field);
      switch (field) {
        case 1: formatVersion = r.uint32(); break;
        case 2: compression = r.int32(); break;
        case 3: recordCount = r.int32(); break;
        case 4: producerId = BigInt(r.int64().toString()); break;
        case 5: producerEpoch = r.int32(); break;
        case 6: baseSequence = r.int32(); break;
        case 7: firstTimestampMs = BigInt(r.int64().toString()); break;
        case 8: maxTimestampMs = BigInt(r.int64().toString()); break;
        case 9: crc = r.fixed32(); break;
        case 10: records = r.bytes(); break;
      }
    }
  } catch (e) {
    throw new LogError('CORRUPT_MESSAGE', `malformed record batch: ${(e as Error).message}`, { cause: e });
  }
  if (formatVersion !== SUPPORTED_FORMAT_VERSION) {
    throw new LogError('INVALID_RECORD', `unsupported record batch format_version ${formatVersion} (want ${SUPPORTED_FORMAT_VERSION})`);
  }
  if (!isCodecSupported(compression)) {
    throw new LogError('UNSUPPORTED_COMPRESSION_TYPE', `compression codec ${compression} is not supported`);
  }
  if (recordCount < 1) throw new LogError('INVALID_RECORD', `record_count must be at least 1, got ${recordCount}`);
  if (records.length === 0) throw new LogError('INVALID_RECORD', 'record batch has no records payload');
  if (!seen.has(9)) throw new LogError('CORRUPT_MESSAGE', 'record batch has no crc32c');
  const have = crc32c(records as Buffer) >>> 0;
  if (have !== crc >>> 0) throw new LogError('CORRUPT_MESSAGE', `record batch crc32c mismatch (batch says ${crc >>> 0}, payload has ${have})`);
  if (maxTimestampMs < firstTimestampMs && recordCount === 1) {
    throw new LogError('INVALID_RECORD', 'max_timestamp_ms is below first_timestamp_ms');
  }
  const idempotent = producerId !== -1n;
  if (idempotent) {
    if (producerId <= 0n) throw new LogError('INVALID_PRODUCER_ID', `producer_id must be -1 or a positive id from InitProducerId, got ${producerId}`);
    if (producerEpoch < 0 || producerEpoch > 0x7fff) throw new LogError('INVALID_PRODUCER_EPOCH', `producer_epoch ${producerEpoch} out of range`);
    if (baseSequence < 0) throw new LogError('OUT_OF_ORDER_SEQUENCE', `base_sequence ${baseSequence} is negative for an idempotent batch`);
  }
  const start = records.byteOffset - bytes.byteOffset;
  const span = { start, end: start + records.length, crc32c: have };
  return { header: { compression, recordCount, producerId, producerEpoch, baseSequence, firstTimestampMs, maxTimestampMs, records: span }, records };
}

/**
 * The producer_id of an encoded batch without validating it (the append does that): -1 when the
 * field is absent or the bytes do not parse, so a malformed batch is left to validation to refuse.
 * Stops at the field, which producers write before the records payload.
 */
export function peekProducerId(bytes: Uint8Array): bigint {
  try {
    const r = new BinaryReader(bytes);
    while (r.pos < r.len) {
      const tag = r.uint32();
      if (tag >>> 3 === 4 && (tag & 7) === 0) return BigInt(r.int64().toString());
      r.skip(tag & 7);
    }
  } catch {
    // Malformed: validation says how.
  }
  return -1n;
}

/**
 * How far a compressed batch may expand: 16 times max.message.bytes (16 MiB at the default
 * 1 MiB). Generous for real data (text and JSON compress 5-10x), small enough that a compression
 * bomb costs at most that much memory per batch being checked; over it the batch is refused with
 * MESSAGE_TOO_LARGE (the producer should send smaller batches).
 */
export const DECOMPRESSED_BYTES_PER_MAX_MESSAGE_BYTE = 16;

export function maxDecompressedBytes(maxMessageBytes: number): number {
  return Math.min(maxMessageBytes * DECOMPRESSED_BYTES_PER_MAX_MESSAGE_BYTE, 0x7fffffff);
}

/** Checks the uncompressed Records payload against the header. Throws LogError CORRUPT_MESSAGE. */
export function checkRecords(header: Pick<BatchHeader, 'recordCount' | 'firstTimestampMs' | 'maxTimestampMs'>, payload: Uint8Array, ids?: SchemaIdScan): void {
  let framing;
  try {
    framing = scanRecordsFraming(payload, ids);
  } catch (e) {
    throw new LogError('CORRUPT_MESSAGE', `malformed record batch: ${(e as Error).message}`, { cause: e });
  }
  if (framing.count !== header.recordCount) {
    throw new LogError('CORRUPT_MESSAGE', `record batch says record_count ${header.recordCount} but holds ${framing.count} records`);
  }
  if (framing.firstDeltaMs !== 0) {
    throw new LogError('CORRUPT_MESSAGE', `first record has timestamp_delta_ms ${framing.firstDeltaMs}, not 0 (first_timestamp_ms is the first record's timestamp)`);
  }
  const max = header.firstTimestampMs + BigInt(framing.maxDeltaMs);
  if (max !== header.maxTimestampMs) {
    throw new LogError('CORRUPT_MESSAGE', `record batch says max_timestamp_ms ${header.maxTimestampMs} but its records' largest timestamp is ${max}`);
  }
}

/**
 * Full validation of a produced batch: header and CRC (validateBatch), then the records inside.
 * Returns undefined when it could check synchronously (an uncompressed batch), else a promise
 * that settles once the payload was decompressed on the threadpool and checked. Throws/rejects
 * with LogError: CORRUPT_MESSAGE naming the problem, MESSAGE_TOO_LARGE past the decompression
 * limit, or whatever validateBatch raises.
 */
export function validateRecords(
  bytes: Buffer,
  maxMessageBytes: number,
  isCodecSupported: (c: number) => boolean = codecSupportedHere,
  ids?: SchemaIdScan,
): Promise<void> | undefined {
  const { header, records } = readBatch(bytes, maxMessageBytes, isCodecSupported);
  if (header.compression === CompressionCodec.COMPRESSION_CODEC_NONE) {
    checkRecords(header, records, ids);
    validated.set(bytes, header);
    return undefined;
  }
  const limit = maxDecompressedBytes(maxMessageBytes);
  return decompressAsync(header.compression, records, limit).then(
    (payload) => {
      checkRecords(header, payload, ids);
      validated.set(bytes, header);
    },
    (e: unknown) => {
      if ((e as { reason?: unknown }).reason === 'MESSAGE_TOO_LARGE') {
        throw new LogError('MESSAGE_TOO_LARGE', `record batch decompresses to more than ${limit} bytes (${DECOMPRESSED_BYTES_PER_MAX_MESSAGE_BYTE} x max.message.bytes ${maxMessageBytes})`, { cause: e });
      }
      if ((e as { reason?: unknown }).reason === 'UNSUPPORTED_COMPRESSION_TYPE') {
        throw new LogError('UNSUPPORTED_COMPRESSION_TYPE', (e as Error).message, { cause: e });
      }
      throw new LogError('CORRUPT_MESSAGE', `record batch payload does not decompress as ${CompressionCodec[header.compression] ?? header.compression}: ${(e as Error).message}`, { cause: e });
    },
  );
}

/** Broker-side schema validation of one batch (runtime/schema-validation.ts builds it per topic). */
export interface SchemaAdmissionCheck {
  /** A fresh collector saying which of key and value to read. */
  scan(): SchemaIdScan;
  /** Refuses (throws or rejects with LogError) when an id is missing, unknown or not under the subject; undefined when decided synchronously. */
  check(ids: SchemaIdScan): Promise<void> | undefined;
}

/**
 * Runs `validateRecords` before each produced batch is appended, and keeps appends to one
 * partition in arrival order: a batch that arrives while an earlier batch to the same partition is
 * still being checked (decompressing on the threadpool) waits for that batch's append, so a small
 * uncompressed batch never overtakes a large compressed one (order is the partition's promise, and
 * idempotent sequence numbers depend on it). When nothing is pending for the partition and the
 * batch is uncompressed, `append` runs synchronously, as it did before validation existed.
 *
 * `append` must do its appending synchronously when called (the partition log's append is); the
 * next batch may go as soon as it returned, not when its promise settles (an acks=all append
 * waits for replication, which must not serialize the partition).
 */
export class ProduceAdmission {
  /** Per partition: settles once the last admitted batch was appended or refused. Never rejects. */
  private readonly turns = new Map<object, Promise<void>>();

  /**
   * With `schema` (the topic validates keys or values against the schema registry), the framing
   * scan also collects the records' schema ids and `schema.check` decides on them before the
   * append, in the same turn (synchronously when it can: every id already cached).
   */
  admit<T>(partition: object, batch: Buffer, maxMessageBytes: number, append: () => Promise<T>, schema?: SchemaAdmissionCheck): Promise<T> {
    let checked: Promise<void> | undefined;
    try {
      const ids = schema?.scan();
      checked = validateRecords(batch, maxMessageBytes, codecSupportedHere, ids);
      if (schema && ids) checked = checked === undefined ? schema.check(ids) : checked.then(() => schema.check(ids));
    } catch (e) {
      return Promise.reject(e);
    }
    const previous = this.turns.get(partition);
    if (checked === undefined && previous === undefined) return append();
    let release!: () => void;
    const turn = new Promise<void>((resolve) => (release = resolve));
    this.turns.set(partition, turn);
    const run = async (): Promise<T> => {
      try {
        // Both settle before the turn passes, a refused batch included: otherwise the next batch
        // could overtake the one before this.
        const [validation] = await Promise.allSettled([checked, previous]);
        if (validation.status === 'rejected') throw validation.reason;
        // Not awaited inside the try: the turn passes as soon as the append was made.
        return append();
      } finally {
        release();
        if (this.turns.get(partition) === turn) this.turns.delete(partition);
      }
    };
    return run();
  }

  /** Partitions with a batch being checked or waiting (for tests). */
  get pending(): number {
    return this.turns.size;
  }
}
