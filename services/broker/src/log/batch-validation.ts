/**
 * Validates a produced batch by its header alone. Pure. The records payload is checked only by its
 * CRC-32C, never decompressed or decoded: the broker stores the batch bytes as they came.
 */
import { crc32c } from '@node-rs/crc32';
import { BinaryReader } from '@bufbuild/protobuf/wire';
import { CompressionCodec } from '@skein/proto/skein/broker/v1/broker.js';
import { LogError } from './log-error.js';

export interface BatchHeader {
  compression: CompressionCodec;
  recordCount: number;
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
  firstTimestampMs: bigint;
  maxTimestampMs: bigint;
}

const SUPPORTED_FORMAT_VERSION = 1;

/**
 * Reads the header fields of an encoded skein.broker.v1.RecordBatch, skipping over `records`
 * (a view, no copy), and checks them and the payload CRC. Throws LogError with a precise reason.
 */
export function validateBatch(bytes: Buffer, maxMessageBytes: number, isCodecSupported: (c: number) => boolean): BatchHeader {
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
  return { compression, recordCount, producerId, producerEpoch, baseSequence, firstTimestampMs, maxTimestampMs };
}
