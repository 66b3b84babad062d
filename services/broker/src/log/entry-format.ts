/**
 * The framing of one stored batch in a segment file. Pure: no I/O.
 *
 * On disk, a segment is a sequence of entries, each:
 *
 * | offset | size | field                                                            |
 * |-------:|-----:|------------------------------------------------------------------|
 * |      0 |    4 | length: bytes after this field (header rest + batch), uint32 BE  |
 * |      4 |    4 | crc32c of bytes [8, 4 + length), uint32 BE                       |
 * |      8 |    1 | entry format version (1)                                         |
 * |      9 |    3 | reserved, zero                                                   |
 * |     12 |    8 | base_offset, int64 BE                                            |
 * |     20 |    4 | leader_epoch, int32 BE                                           |
 * |     24 |    4 | record_count, int32 BE                                           |
 * |     28 |    8 | max_timestamp_ms, int64 BE                                       |
 * |     36 |    8 | producer_id, int64 BE (-1 none)                                  |
 * |     44 |    4 | producer_epoch, int32 BE                                         |
 * |     48 |    4 | base_sequence, int32 BE                                          |
 * |     52 |    n | the RecordBatch bytes exactly as the producer sent them          |
 *
 * Why this shape: the fixed header carries everything the broker needs (offsets for the index,
 * timestamps for the time index and retention, producer fields to rebuild idempotence state) so
 * recovery and lookups never decode a batch; the batch bytes follow untouched so a fetch slices
 * them out of a read buffer. The leading length lets recovery walk the file, and the CRC over
 * everything after it finds the last intact entry after a torn write or a flipped bit.
 *
 * One pass per byte on append: the entry CRC still covers the whole entry (so this format is the
 * one every earlier broker wrote, and old segments read as they are), but it is not computed by a
 * second pass over the batch. The batch carries its own CRC-32C of its records payload (field 9
 * over field 10), which validation has just checked; the entry CRC is the CRC of the header and
 * the few bytes of batch header around the payload, combined (crc32c-combine.ts) with that
 * checked payload CRC. Below COMBINE_MIN_BYTES of payload a plain pass is cheaper and is used.
 * The same identity lets a reader check everything but the payload ('header' check) by trusting
 * the payload CRC stored in the batch: for readers that verify the payload themselves (a follower).
 */
import { crc32c } from '@node-rs/crc32';
import { COMBINE_MIN_BYTES, crc32cCombine } from './crc32c-combine.js';

export const ENTRY_HEADER_SIZE = 52;
export const ENTRY_FORMAT_VERSION = 1;
/** Bytes covered by the length field but not by the CRC: the CRC field itself. */
const CRC_END = 8;

export interface EntryHeader {
  baseOffset: bigint;
  leaderEpoch: number;
  recordCount: number;
  maxTimestampMs: bigint;
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
}

/** A parsed entry inside a buffer: header plus where its batch bytes are. */
export interface Entry extends EntryHeader {
  /** Byte position of the entry's first byte within the buffer parsed. */
  position: number;
  /** Total entry size in bytes, header included. */
  size: number;
  batch: Buffer;
}

export function lastOffsetOf(h: { baseOffset: bigint; recordCount: number }): bigint {
  return h.baseOffset + BigInt(h.recordCount) - 1n;
}

/**
 * Where a RecordBatch's records payload (field 10) lies in its bytes, and the CRC-32C the batch
 * states for it (field 9). Not a claim that the two agree: see where each comes from.
 */
export interface RecordsSpan {
  start: number;
  end: number;
  crc32c: number;
}

/**
 * Finds field 9 (crc32c, fixed32) and field 10 (records, bytes) among the top-level fields of
 * encoded skein.broker.v1.RecordBatch bytes, the last of each as a protobuf parser keeps them.
 * Undefined when the bytes do not walk as protobuf fields or either field is missing. A few
 * varints per batch: no decoding, no allocation but the result.
 */
export function locateRecords(batch: Uint8Array): RecordsSpan | undefined {
  let pos = 0;
  let crc: number | undefined;
  let start = -1;
  let end = -1;
  const len = batch.length;
  const varint = (): number => {
    // Values above 2^53 only occur as skipped int64 fields: their exact value does not matter.
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= len) return -1;
      const b = batch[pos++]!;
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 128;
    }
    return -1;
  };
  while (pos < len) {
    const tag = varint();
    if (tag < 0) return undefined;
    const field = Math.floor(tag / 8);
    switch (tag % 8) {
      case 0:
        if (varint() < 0) return undefined;
        break;
      case 1:
        pos += 8;
        break;
      case 2: {
        const n = varint();
        if (n < 0 || pos + n > len) return undefined;
        if (field === 10) {
          start = pos;
          end = pos + n;
        }
        pos += n;
        break;
      }
      case 5:
        if (field === 9 && pos + 4 <= len) crc = (batch[pos]! | (batch[pos + 1]! << 8) | (batch[pos + 2]! << 16) | (batch[pos + 3]! << 24)) >>> 0;
        pos += 4;
        break;
      default:
        return undefined;
    }
    if (pos > len) return undefined;
  }
  if (crc === undefined || start < 0) return undefined;
  return { start, end, crc32c: crc };
}

/**
 * CRC-32C of `head` followed by `batch`, where `records.crc32c` is taken as the CRC of
 * batch[records.start, records.end) instead of reading those bytes (when there are enough of them
 * for that to pay).
 */
function entryCrc(head: Uint8Array, batch: Uint8Array, records: RecordsSpan | undefined): number {
  const crcHead = crc32c(head as Buffer);
  if (records === undefined || records.end - records.start < COMBINE_MIN_BYTES) return crc32c(batch as Buffer, crcHead) >>> 0;
  const upToRecords = crc32c(batch.subarray(0, records.start) as Buffer, crcHead);
  const withRecords = crc32cCombine(upToRecords, records.crc32c, records.end - records.start);
  return crc32c(batch.subarray(records.end) as Buffer, withRecords) >>> 0;
}

/**
 * Builds an entry's header (the batch bytes are written right after it, unchanged). With
 * `records`, its `crc32c` MUST be the CRC-32C of those bytes as computed by the caller (validation
 * checked the batch against it): it stands in for a second pass over the payload, and a wrong one
 * would make recovery cut the log there.
 */
export function encodeEntryHeader(h: EntryHeader, batch: Uint8Array, records?: RecordsSpan): Buffer {
  const buf = Buffer.allocUnsafe(ENTRY_HEADER_SIZE);
  buf.writeUInt32BE(ENTRY_HEADER_SIZE - 4 + batch.byteLength, 0);
  buf.writeUInt8(ENTRY_FORMAT_VERSION, 8);
  buf.writeUInt8(0, 9);
  buf.writeUInt16BE(0, 10);
  buf.writeBigInt64BE(h.baseOffset, 12);
  buf.writeInt32BE(h.leaderEpoch, 20);
  buf.writeInt32BE(h.recordCount, 24);
  buf.writeBigInt64BE(h.maxTimestampMs, 28);
  buf.writeBigInt64BE(h.producerId, 36);
  buf.writeInt32BE(h.producerEpoch, 44);
  buf.writeInt32BE(h.baseSequence, 48);
  buf.writeUInt32BE(entryCrc(buf.subarray(CRC_END), batch, records), 4);
  return buf;
}

export type ParseResult =
  | { kind: 'entry'; entry: Entry }
  /** Fewer bytes than the entry needs: the end of the data read, or a torn tail. */
  | { kind: 'incomplete'; needBytes: number }
  | { kind: 'corrupt'; why: string };

/**
 * How much of an entry a parse checks against its CRC:
 * - 'full': every byte (recovery, consumer reads);
 * - 'header': every byte but the batch's records payload, whose CRC is taken from the batch (field
 *   9) instead of computed: for a reader that verifies the payload against that CRC itself (a
 *   follower's append does), so each byte is checked once on the way. Small payloads, and batches
 *   whose fields cannot be found, are checked fully;
 * - 'none': only the framing (index rebuilds of data already verified, header walks).
 */
export type EntryCheck = 'full' | 'header' | 'none';

/** Parses the entry starting at `pos`, checking its CRC as `check` says (see EntryCheck). */
export function parseEntry(buf: Buffer, pos: number, check: EntryCheck = 'full'): ParseResult {
  if (buf.length - pos < ENTRY_HEADER_SIZE) {
    return { kind: 'incomplete', needBytes: ENTRY_HEADER_SIZE - (buf.length - pos) };
  }
  const length = buf.readUInt32BE(pos);
  if (length < ENTRY_HEADER_SIZE - 4) return { kind: 'corrupt', why: `entry length ${length} below header size` };
  const size = length + 4;
  if (buf.length - pos < size) return { kind: 'incomplete', needBytes: size - (buf.length - pos) };
  if (buf.readUInt8(pos + 8) !== ENTRY_FORMAT_VERSION) {
    return { kind: 'corrupt', why: `unknown entry format version ${buf.readUInt8(pos + 8)}` };
  }
  if (check !== 'none') {
    const want = buf.readUInt32BE(pos + 4);
    let have: number;
    // Under COMBINE_MIN_BYTES of batch there is no payload big enough to spare: check it all.
    if (check === 'full' || size - ENTRY_HEADER_SIZE < COMBINE_MIN_BYTES) {
      have = crc32c(buf.subarray(pos + CRC_END, pos + size)) >>> 0;
    } else {
      const batch = buf.subarray(pos + ENTRY_HEADER_SIZE, pos + size);
      // Fields not found (a batch no parser here would accept, or one with group-typed unknown
      // fields, which this walk does not skip): check every byte instead.
      const records = locateRecords(batch);
      have = entryCrc(buf.subarray(pos + CRC_END, pos + ENTRY_HEADER_SIZE), batch, records);
    }
    if (want !== have) return { kind: 'corrupt', why: `entry crc32c mismatch (stored ${want}, computed ${have})` };
  }
  const recordCount = buf.readInt32BE(pos + 24);
  if (recordCount < 1) return { kind: 'corrupt', why: `entry record count ${recordCount}` };
  return {
    kind: 'entry',
    entry: {
      position: pos,
      size,
      baseOffset: buf.readBigInt64BE(pos + 12),
      leaderEpoch: buf.readInt32BE(pos + 20),
      recordCount,
      maxTimestampMs: buf.readBigInt64BE(pos + 28),
      producerId: buf.readBigInt64BE(pos + 36),
      producerEpoch: buf.readInt32BE(pos + 44),
      baseSequence: buf.readInt32BE(pos + 48),
      batch: buf.subarray(pos + ENTRY_HEADER_SIZE, pos + size),
    },
  };
}

/** Reads only the total size of the entry at `pos` from its length field, or undefined if cut. */
export function peekEntrySize(buf: Buffer, pos: number): number | undefined {
  if (buf.length - pos < 4) return undefined;
  return buf.readUInt32BE(pos) + 4;
}
