/**
 * Sparse time index of one segment. Pure: the segment persists it.
 *
 * On disk (`<base>.timeindex`): entries of 12 bytes, [timestamp ms int64 BE][relative offset
 * uint32 BE]. An entry (T, O) says: the largest batch timestamp among the batches up to and
 * including the batch at base offset O is T. Entries are added at most once per index interval and
 * only when T grows, plus a final one when the segment stops being active.
 *
 * Invariants: timestamps and offsets strictly increase. So every batch before O has max timestamp
 * <= T, and to find the first batch with max timestamp >= t a scan can start at the last entry with
 * T < t (all batches at or before it are older than t).
 */
export const TIME_INDEX_ENTRY_SIZE = 12;

export interface TimestampOffset {
  timestampMs: bigint;
  offset: bigint;
}

export class TimeIndex {
  private readonly items: TimestampOffset[] = [];

  constructor(readonly baseOffset: bigint) {}

  get entries(): number {
    return this.items.length;
  }

  last(): TimestampOffset | undefined {
    return this.items[this.items.length - 1];
  }

  /** Adds (timestamp, offset) if it moves the index forward; returns the bytes to persist, if any. */
  maybeAppend(timestampMs: bigint, offset: bigint): Buffer | undefined {
    const last = this.last();
    if (last && (timestampMs <= last.timestampMs || offset <= last.offset)) return undefined;
    const relative = offset - this.baseOffset;
    if (relative < 0n || relative > 0xffffffffn) throw new RangeError(`offset ${offset} outside segment ${this.baseOffset}`);
    this.items.push({ timestampMs, offset });
    const out = Buffer.allocUnsafe(TIME_INDEX_ENTRY_SIZE);
    out.writeBigInt64BE(timestampMs, 0);
    out.writeUInt32BE(Number(relative), 8);
    return out;
  }

  /**
   * Where a scan for the first batch with timestamp >= target can start: the offset of the last
   * entry with timestamp < target, or the segment's base offset when there is none.
   */
  lookup(targetMs: bigint): bigint {
    let lo = 0;
    let hi = this.items.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.items[mid]!.timestampMs < targetMs) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found < 0 ? this.baseOffset : this.items[found]!.offset;
  }

  truncateToOffset(offset: bigint): void {
    while (this.items.length > 0 && this.items[this.items.length - 1]!.offset >= offset) this.items.pop();
  }

  toBuffer(): Buffer {
    const out = Buffer.allocUnsafe(this.items.length * TIME_INDEX_ENTRY_SIZE);
    this.items.forEach((e, i) => {
      out.writeBigInt64BE(e.timestampMs, i * 12);
      out.writeUInt32BE(Number(e.offset - this.baseOffset), i * 12 + 8);
    });
    return out;
  }

  /** Loads a time index file's bytes, or returns why it cannot be trusted. */
  static fromBuffer(baseOffset: bigint, buf: Buffer, nextOffset: bigint): TimeIndex | string {
    if (buf.length % TIME_INDEX_ENTRY_SIZE !== 0) return `size ${buf.length} is not a multiple of ${TIME_INDEX_ENTRY_SIZE}`;
    const idx = new TimeIndex(baseOffset);
    for (let i = 0; i < buf.length; i += TIME_INDEX_ENTRY_SIZE) {
      const ts = buf.readBigInt64BE(i);
      const off = baseOffset + BigInt(buf.readUInt32BE(i + 8));
      if (off >= nextOffset) return `entry ${i / 12} points at offset ${off} past the segment end ${nextOffset}`;
      const last = idx.last();
      if (last && (ts <= last.timestampMs || off <= last.offset)) return `entry ${i / 12} is out of order`;
      idx.items.push({ timestampMs: ts, offset: off });
    }
    return idx;
  }
}
