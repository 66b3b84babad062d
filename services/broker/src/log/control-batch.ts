/**
 * Control batches (transaction BEGIN / COMMIT / ABORT markers) and the transaction attributes of a
 * stored batch. Pure, no I/O.
 *
 * A control batch is an ordinary skein.broker.v1.RecordBatch written by the broker itself (see the
 * RecordBatch.is_control comment in broker.proto for the exact shape): is_transactional and
 * is_control set, the transaction's producer id and epoch, base_sequence 0, one uncompressed
 * record whose value is an encoded ControlRecord {type, coordinator_epoch}. It takes one offset,
 * is replicated and recovered like any batch, and readers skip it.
 *
 * The transaction attributes are not in the segment entry header (entry-format.ts), so recovery
 * and the append path read them from the batch bytes with `readTxnAttributes`: a walk over the
 * top-level protobuf fields that skips the records payload without copying it.
 */
import { crc32c } from '@node-rs/crc32';
import { BinaryReader } from '@bufbuild/protobuf/wire';
import { CompressionCodec, ControlRecord, ControlRecordType, RecordBatch, Records } from '@skein/proto/skein/broker/v1/broker.js';

export interface TxnAttributes {
  isTransactional: boolean;
  isControl: boolean;
}

const NONE: TxnAttributes = { isTransactional: false, isControl: false };

/**
 * Reads RecordBatch fields 11 (is_transactional) and 12 (is_control) from encoded batch bytes.
 * Batches that were validated already: malformed bytes answer "neither" rather than throw.
 */
export function readTxnAttributes(batch: Uint8Array): TxnAttributes {
  let isTransactional = false;
  let isControl = false;
  try {
    const r = new BinaryReader(batch);
    while (r.pos < r.len) {
      const tag = r.uint32();
      const field = tag >>> 3;
      const wire = tag & 7;
      if (field === 11 && wire === 0) isTransactional = r.bool();
      else if (field === 12 && wire === 0) isControl = r.bool();
      else r.skip(wire);
    }
  } catch {
    return NONE;
  }
  return isTransactional || isControl ? { isTransactional, isControl } : NONE;
}

export interface ControlMarker {
  type: ControlRecordType;
  coordinatorEpoch: bigint;
}

/** Builds the bytes of a control batch (what the broker appends for BeginTxn / WriteTxnMarkers). */
export function buildControlBatch(producerId: bigint, producerEpoch: number, marker: ControlMarker, nowMs: number): Buffer {
  const value = view(ControlRecord.encode({ type: marker.type, coordinatorEpoch: marker.coordinatorEpoch }).finish());
  const payload = view(Records.encode({ records: [{ key: Buffer.alloc(0), value, headers: [], timestampDeltaMs: 0n }] }).finish());
  const bytes = RecordBatch.encode({
    formatVersion: 1,
    compression: CompressionCodec.COMPRESSION_CODEC_NONE,
    recordCount: 1,
    producerId,
    producerEpoch,
    baseSequence: 0,
    firstTimestampMs: BigInt(nowMs),
    maxTimestampMs: BigInt(nowMs),
    crc32c: crc32c(payload) >>> 0,
    records: payload,
    isTransactional: true,
    isControl: true,
  }).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function view(b: Uint8Array): Buffer {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** The marker a stored control batch holds, or undefined when it holds none that can be read. */
export function readControlMarker(batch: Uint8Array): ControlMarker | undefined {
  try {
    const b = RecordBatch.decode(batch);
    if (!b.isControl || b.compression !== CompressionCodec.COMPRESSION_CODEC_NONE) return undefined;
    const rec = Records.decode(b.records).records[0];
    if (!rec?.value) return undefined;
    const c = ControlRecord.decode(rec.value);
    return { type: c.type, coordinatorEpoch: c.coordinatorEpoch };
  } catch {
    return undefined;
  }
}
