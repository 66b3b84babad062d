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
 */
import { crc32c } from '@node-rs/crc32';

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

/** Builds an entry's header (the batch bytes are written right after it, unchanged). */
export function encodeEntryHeader(h: EntryHeader, batch: Uint8Array): Buffer {
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
  const crc = crc32c(batch as Buffer, crc32c(buf.subarray(CRC_END)));
  buf.writeUInt32BE(crc >>> 0, 4);
  return buf;
}

export type ParseResult =
  | { kind: 'entry'; entry: Entry }
  /** Fewer bytes than the entry needs: the end of the data read, or a torn tail. */
  | { kind: 'incomplete'; needBytes: number }
  | { kind: 'corrupt'; why: string };

/**
 * Parses the entry starting at `pos`. With `verifyCrc` the CRC is checked (recovery and reads);
 * without it only the framing is (index rebuilds of data already verified).
 */
export function parseEntry(buf: Buffer, pos: number, verifyCrc = true): ParseResult {
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
  if (verifyCrc) {
    const want = buf.readUInt32BE(pos + 4);
    const have = crc32c(buf.subarray(pos + CRC_END, pos + size)) >>> 0;
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
