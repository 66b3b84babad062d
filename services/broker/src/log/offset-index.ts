/**
 * Sparse offset index of one segment. Pure: the segment persists it.
 *
 * On disk (`<base>.index`): entries of 8 bytes, [relative offset uint32 BE][file position
 * uint32 BE], where relative offset = a batch's base offset - the segment's base offset and position
 * is where that batch's entry starts in the `.log` file. One entry per `index.interval.bytes` of log.
 *
 * Invariants: relative offsets and positions both strictly increase; every entry points at the
 * start of an entry in the log. So `lookup(t)` (the last entry with offset <= t) gives a position
 * from which a forward scan reaches the batch holding t, reading at most about one interval.
 */
export const OFFSET_INDEX_ENTRY_SIZE = 8;

export interface OffsetPosition {
  offset: bigint;
  position: number;
}

export class OffsetIndex {
  private rel: Uint32Array;
  private pos: Uint32Array;
  private count = 0;

  constructor(readonly baseOffset: bigint, capacity = 64) {
    this.rel = new Uint32Array(capacity);
    this.pos = new Uint32Array(capacity);
  }

  get entries(): number {
    return this.count;
  }

  /** The last entry, or undefined while empty. */
  last(): OffsetPosition | undefined {
    if (this.count === 0) return undefined;
    return { offset: this.baseOffset + BigInt(this.rel[this.count - 1]!), position: this.pos[this.count - 1]! };
  }

  /** Adds an entry; returns its on-disk bytes so the caller can append them to the file. */
  append(offset: bigint, position: number): Buffer {
    const relative = offset - this.baseOffset;
    if (relative < 0n || relative > 0xffffffffn) throw new RangeError(`offset ${offset} outside segment ${this.baseOffset}`);
    const r = Number(relative);
    if (this.count > 0 && (r <= this.rel[this.count - 1]! || position <= this.pos[this.count - 1]!)) {
      throw new RangeError(`index entry (${offset}, ${position}) does not follow the last one`);
    }
    if (this.count === this.rel.length) this.grow();
    this.rel[this.count] = r;
    this.pos[this.count] = position;
    this.count++;
    const out = Buffer.allocUnsafe(OFFSET_INDEX_ENTRY_SIZE);
    out.writeUInt32BE(r, 0);
    out.writeUInt32BE(position, 4);
    return out;
  }

  /** The last entry whose offset is <= target; the segment start when there is none. */
  lookup(target: bigint): OffsetPosition {
    const relative = target - this.baseOffset;
    if (relative < 0n || this.count === 0 || BigInt(this.rel[0]!) > relative) return { offset: this.baseOffset, position: 0 };
    const t = relative > 0xffffffffn ? 0xffffffff : Number(relative);
    let lo = 0;
    let hi = this.count - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.rel[mid]! <= t) lo = mid;
      else hi = mid - 1;
    }
    return { offset: this.baseOffset + BigInt(this.rel[lo]!), position: this.pos[lo]! };
  }

  /** Drops entries for offsets >= offset (log truncation). */
  truncateToOffset(offset: bigint): void {
    while (this.count > 0 && this.baseOffset + BigInt(this.rel[this.count - 1]!) >= offset) this.count--;
  }

  toBuffer(): Buffer {
    const out = Buffer.allocUnsafe(this.count * OFFSET_INDEX_ENTRY_SIZE);
    for (let i = 0; i < this.count; i++) {
      out.writeUInt32BE(this.rel[i]!, i * 8);
      out.writeUInt32BE(this.pos[i]!, i * 8 + 4);
    }
    return out;
  }

  /**
   * Loads an index file's bytes. Returns a reason instead of an index when the file cannot be
   * trusted (torn size, entries out of order, a position past the log's end), so the caller rebuilds.
   */
  static fromBuffer(baseOffset: bigint, buf: Buffer, logSizeBytes: number): OffsetIndex | string {
    if (buf.length % OFFSET_INDEX_ENTRY_SIZE !== 0) return `size ${buf.length} is not a multiple of ${OFFSET_INDEX_ENTRY_SIZE}`;
    const idx = new OffsetIndex(baseOffset, Math.max(64, buf.length / OFFSET_INDEX_ENTRY_SIZE));
    for (let i = 0; i < buf.length; i += OFFSET_INDEX_ENTRY_SIZE) {
      const r = buf.readUInt32BE(i);
      const p = buf.readUInt32BE(i + 4);
      if (p >= logSizeBytes) return `entry ${i / 8} points at position ${p} past the log end ${logSizeBytes}`;
      if (idx.count > 0 && (r <= idx.rel[idx.count - 1]! || p <= idx.pos[idx.count - 1]!)) return `entry ${i / 8} is out of order`;
      idx.rel[idx.count] = r;
      idx.pos[idx.count] = p;
      idx.count++;
    }
    return idx;
  }

  private grow(): void {
    const rel = new Uint32Array(this.rel.length * 2);
    rel.set(this.rel);
    const pos = new Uint32Array(this.pos.length * 2);
    pos.set(this.pos);
    this.rel = rel;
    this.pos = pos;
  }
}
