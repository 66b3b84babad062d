/**
 * One segment of a partition log: a `.log` file of framed entries (see entry-format.ts) with its
 * sparse `.index` (offset → position) and `.timeindex` (timestamp → offset), all named by the
 * segment's base offset, zero-padded to 20 digits.
 *
 * Invariants: entries are in offset order; every batch offset is >= baseOffset and < nextOffset;
 * index entries point at entry starts; `size` is the byte length of whole, valid entries (a torn
 * tail is cut off by `recover`). Only the last segment of a log (the active one) is appended to.
 *
 * Thread-safety: Node's single thread; file I/O here is synchronous (page-cache reads and writes take
 * microseconds and keep offsets, sizes and indexes consistent without locks). Only fsync is
 * asynchronous, and `close` waits for an fsync in flight.
 *
 * Where CRCs are checked (each byte once per hop; entry-format.ts says how the entry CRC is built):
 * - append: validation computes the batch's payload CRC-32C; the entry CRC reuses it (no second
 *   pass). Recovery checks every entry's CRC in full, so a torn or damaged entry is still found.
 * - replication reads ('header'): the leader checks the entry header and the batch's fields but not
 *   its payload, which the follower's appendAsFollower checks against the batch CRC on receipt (as
 *   Kafka's replica fetcher does; a damaged batch is refused there, never stored).
 * - consumer reads ('full'): checked in full, although libs/client also checks the payload CRC.
 *   Measured (1 MiB batches of 1 KiB records, page cache, bench/.exp ad hoc): reading costs 0.49
 *   CPU s/GB with the full check and 0.27 with 'header', i.e. ~0.2 s/GB, ~7 % of the catch-up
 *   read's ~3 CPU s/GB (bench/PROFILE.md section 3); with 100-byte batches the two are equal. Kept
 *   because not every reader checks (grpcurl, other languages' clients), and a damaged batch
 *   then fails on the broker as DATA_LOSS with a `corrupt-batch` event for the operator, instead
 *   of reaching an application that may not look.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { LogError } from './log-error.js';
import { ENTRY_HEADER_SIZE, encodeEntryHeader, type Entry, type EntryCheck, type EntryHeader, lastOffsetOf, parseEntry, type RecordsSpan } from './entry-format.js';
import { OffsetIndex } from './offset-index.js';
import { TimeIndex } from './time-index.js';

export interface SegmentOptions {
  indexIntervalBytes: number;
}

/** What opening or recovering a segment found, for the caller to log. */
export interface SegmentReport {
  rebuiltIndexes?: string;
  truncatedBytes?: number;
  truncationReason?: string;
  entriesScanned?: number;
}

export function segmentFileName(baseOffset: bigint, suffix: '.log' | '.index' | '.timeindex'): string {
  return baseOffset.toString().padStart(20, '0') + suffix;
}

const SCAN_CHUNK_BYTES = 1 << 20;

type ScanStop = { kind: 'end' } | { kind: 'incomplete'; position: number } | { kind: 'corrupt'; position: number; why: string };

function fdatasync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fdatasync(fd, (e) => (e ? reject(e) : resolve())));
}

export class LogSegment {
  private fd: number;
  private indexFd: number;
  private timeIndexFd: number;
  private offsetIndex: OffsetIndex;
  private timeIndex: TimeIndex;
  private bytesSinceIndexEntry = 0;
  private syncing: Promise<void> | undefined;
  private closed = false;
  /** Byte size of the valid entries. */
  size = 0;
  /** One past the last offset stored here (baseOffset when empty). */
  nextOffset: bigint;
  /** Largest batch timestamp stored here; -1 when empty. */
  maxTimestampMs = -1n;
  private offsetOfMaxTimestamp: bigint;

  private constructor(
    readonly dir: string,
    readonly baseOffset: bigint,
    private readonly options: SegmentOptions,
    /** When the segment was created (clock ms), for segment.ms rolling. */
    readonly createdAtMs: number,
  ) {
    this.nextOffset = baseOffset;
    this.offsetOfMaxTimestamp = baseOffset;
    this.offsetIndex = new OffsetIndex(baseOffset);
    this.timeIndex = new TimeIndex(baseOffset);
    this.fd = fs.openSync(this.path('.log'), fs.constants.O_RDWR | fs.constants.O_CREAT);
    this.indexFd = fs.openSync(this.path('.index'), fs.constants.O_RDWR | fs.constants.O_CREAT);
    this.timeIndexFd = fs.openSync(this.path('.timeindex'), fs.constants.O_RDWR | fs.constants.O_CREAT);
  }

  path(suffix: '.log' | '.index' | '.timeindex'): string {
    return join(this.dir, segmentFileName(this.baseOffset, suffix));
  }

  static create(dir: string, baseOffset: bigint, options: SegmentOptions, nowMs: number): LogSegment {
    const s = new LogSegment(dir, baseOffset, options, nowMs);
    fs.ftruncateSync(s.fd, 0);
    fs.ftruncateSync(s.indexFd, 0);
    fs.ftruncateSync(s.timeIndexFd, 0);
    return s;
  }

  /**
   * Opens an existing segment. Index files are loaded when they look sound; the segment is fully
   * checked (every entry's CRC, a torn or corrupt tail cut off, indexes rebuilt) when they do not,
   * or when it holds offsets at or above `recoveryPoint` (data that may not have reached the disk
   * whole). Pass `recoveryPoint` undefined for a segment known to be wholly below it.
   */
  static open(dir: string, baseOffset: bigint, options: SegmentOptions, nowMs: number, recoveryPoint: bigint | undefined): { segment: LogSegment; report: SegmentReport } {
    const createdAtMs = Math.min(nowMs, fs.statSync(join(dir, segmentFileName(baseOffset, '.log'))).mtimeMs);
    const s = new LogSegment(dir, baseOffset, options, createdAtMs);
    s.size = fs.fstatSync(s.fd).size;
    const problem = s.loadIndexes();
    if (problem === undefined && (recoveryPoint === undefined || s.nextOffset <= recoveryPoint)) return { segment: s, report: {} };
    const report = s.recover();
    if (problem !== undefined) report.rebuiltIndexes = problem;
    return { segment: s, report };
  }

  private loadIndexes(): string | undefined {
    if (this.size === 0) return undefined;
    const idxBuf = fs.readFileSync(this.path('.index'));
    const idx = OffsetIndex.fromBuffer(this.baseOffset, idxBuf, this.size);
    if (typeof idx === 'string') return `offset index: ${idx}`;
    if (idx.entries === 0 && this.size > this.options.indexIntervalBytes * 2) return 'offset index is empty';
    this.offsetIndex = idx;
    // Find the last entry from the last index entry on: reads about one index interval.
    let last: Entry | undefined;
    const stop = this.scan(idx.last()?.position ?? 0, false, (e) => {
      last = e;
    });
    if (stop.kind !== 'end' || !last) return `log does not end on an entry boundary (${stop.kind})`;
    this.nextOffset = lastOffsetOf(last) + 1n;
    const tbuf = fs.readFileSync(this.path('.timeindex'));
    const tidx = TimeIndex.fromBuffer(this.baseOffset, tbuf, this.nextOffset);
    if (typeof tidx === 'string') return `time index: ${tidx}`;
    this.timeIndex = tidx;
    const t = tidx.last();
    if (t) {
      this.maxTimestampMs = t.timestampMs;
      this.offsetOfMaxTimestamp = t.offset;
    }
    // The time index may miss the batches after its last entry: they are at most one interval.
    this.scan(this.offsetIndex.lookup(t?.offset ?? this.baseOffset).position, false, (e) => {
      if (e.maxTimestampMs > this.maxTimestampMs) {
        this.maxTimestampMs = e.maxTimestampMs;
        this.offsetOfMaxTimestamp = e.baseOffset;
      }
    });
    this.bytesSinceIndexEntry = this.size - (idx.last()?.position ?? 0);
    return undefined;
  }

  /** Checks every entry, cuts off a torn or corrupt tail, rebuilds both indexes. */
  recover(): SegmentReport {
    return this.rebuildIndexes(true);
  }

  private rebuildIndexes(verify: boolean): SegmentReport {
    this.offsetIndex = new OffsetIndex(this.baseOffset);
    this.timeIndex = new TimeIndex(this.baseOffset);
    this.nextOffset = this.baseOffset;
    this.maxTimestampMs = -1n;
    this.offsetOfMaxTimestamp = this.baseOffset;
    this.bytesSinceIndexEntry = 0;
    let entries = 0;
    let validEnd = 0;
    let badOrder: string | undefined;
    const stop = this.scan(0, verify, (e) => {
      if (e.baseOffset < this.nextOffset) {
        badOrder = `entry at position ${e.position} has base offset ${e.baseOffset} below ${this.nextOffset}`;
        return false;
      }
      this.indexEntry(e.baseOffset, e.position, e.size, e.maxTimestampMs);
      this.nextOffset = lastOffsetOf(e) + 1n;
      validEnd = e.position + e.size;
      entries++;
      return true;
    });
    const report: SegmentReport = { entriesScanned: entries, rebuiltIndexes: 'rebuilt from the log' };
    if (badOrder !== undefined || stop.kind !== 'end') {
      const why = badOrder ?? (stop.kind === 'corrupt' ? stop.why : stop.kind === 'incomplete' ? 'torn entry at the end' : '');
      if (!verify) throw new LogError('CORRUPT_MESSAGE', `segment ${this.path('.log')} is damaged: ${why}`);
      report.truncatedBytes = this.size - validEnd;
      report.truncationReason = why;
      fs.ftruncateSync(this.fd, validEnd);
      this.size = validEnd;
    }
    this.rewriteIndexFiles();
    return report;
  }

  private rewriteIndexFiles(): void {
    const idx = this.offsetIndex.toBuffer();
    fs.ftruncateSync(this.indexFd, 0);
    if (idx.length > 0) fs.writeSync(this.indexFd, idx, 0, idx.length, 0);
    const tidx = this.timeIndex.toBuffer();
    fs.ftruncateSync(this.timeIndexFd, 0);
    if (tidx.length > 0) fs.writeSync(this.timeIndexFd, tidx, 0, tidx.length, 0);
  }

  private indexEntry(baseOffset: bigint, position: number, size: number, maxTimestampMs: bigint): void {
    if (maxTimestampMs > this.maxTimestampMs) {
      this.maxTimestampMs = maxTimestampMs;
      this.offsetOfMaxTimestamp = baseOffset;
    }
    if (this.offsetIndex.entries === 0 || this.bytesSinceIndexEntry >= this.options.indexIntervalBytes) {
      const ib = this.offsetIndex.append(baseOffset, position);
      fs.writeSync(this.indexFd, ib, 0, ib.length, (this.offsetIndex.entries - 1) * ib.length);
      const tb = this.timeIndex.maybeAppend(this.maxTimestampMs, this.offsetOfMaxTimestamp);
      if (tb) fs.writeSync(this.timeIndexFd, tb, 0, tb.length, (this.timeIndex.entries - 1) * tb.length);
      this.bytesSinceIndexEntry = 0;
    }
    this.bytesSinceIndexEntry += size;
  }

  /**
   * Appends one batch as an entry; returns the entry's size in bytes. `records`, from validation,
   * lets the entry CRC reuse the payload CRC just checked (see entry-format.ts).
   */
  append(header: EntryHeader, batch: Buffer, records?: RecordsSpan): number {
    const head = encodeEntryHeader(header, batch, records);
    const position = this.size;
    const size = head.length + batch.length;
    const written = fs.writevSync(this.fd, [head, batch], position);
    if (written !== size) throw new Error(`short write to ${this.path('.log')}: ${written} of ${size}`);
    this.size += size;
    this.indexEntry(header.baseOffset, position, size, header.maxTimestampMs);
    this.nextOffset = header.baseOffset + BigInt(header.recordCount);
    return size;
  }

  /**
   * Walks entries from `position`, calling `visit` for each until it returns false. Reads in large
   * chunks; an entry larger than a chunk is read whole.
   */
  scan(position: number, verify: boolean, visit: (e: Entry) => boolean | void): ScanStop {
    let pos = position;
    let buf = Buffer.allocUnsafe(Math.min(SCAN_CHUNK_BYTES, Math.max(this.size - pos, 0)));
    while (pos < this.size) {
      const want = Math.min(Math.max(buf.length, 1), this.size - pos);
      if (buf.length < want) buf = Buffer.allocUnsafe(want);
      const n = fs.readSync(this.fd, buf, 0, want, pos);
      const chunk = buf.subarray(0, n);
      let at = 0;
      while (at < chunk.length) {
        const r = parseEntry(chunk, at, verify ? 'full' : 'none');
        if (r.kind === 'corrupt') return { kind: 'corrupt', position: pos + at, why: r.why };
        if (r.kind === 'incomplete') {
          if (pos + chunk.length >= this.size) return { kind: 'incomplete', position: pos + at };
          if (at === 0) buf = Buffer.allocUnsafe(chunk.length + r.needBytes);
          break;
        }
        r.entry.position += pos;
        if (visit(r.entry) === false) return { kind: 'end' };
        at += r.entry.size;
      }
      pos += at;
    }
    return { kind: 'end' };
  }

  /** The entry holding `offset` (the first with lastOffset >= offset), or undefined past the end. */
  findEntry(offset: bigint): Pick<Entry, 'position' | 'size' | 'baseOffset' | 'recordCount'> | undefined {
    // Hops from entry header to entry header (52 bytes read per entry) rather than scanning 1 MiB
    // chunks: callers need only where the entry is; read() verifies CRCs of what it returns.
    const head = Buffer.allocUnsafe(ENTRY_HEADER_SIZE);
    for (let pos = this.offsetIndex.lookup(offset).position; pos + ENTRY_HEADER_SIZE <= this.size; ) {
      fs.readSync(this.fd, head, 0, ENTRY_HEADER_SIZE, pos);
      const length = head.readUInt32BE(0);
      // Corrupt or torn: scan() stops there too (`size` covers whole entries only).
      if (length < ENTRY_HEADER_SIZE - 4 || pos + length + 4 > this.size) return undefined;
      const baseOffset = head.readBigInt64BE(12);
      const recordCount = head.readInt32BE(24);
      if (recordCount < 1) return undefined;
      if (baseOffset + BigInt(recordCount) - 1n >= offset) return { position: pos, size: length + 4, baseOffset, recordCount };
      pos += length + 4;
    }
    return undefined;
  }

  /**
   * Reads whole entries starting with the one holding `fromOffset`, up to about `maxBytes` (at
   * least one entry), stopping before any batch at or above `maxOffset`. CRCs are checked as
   * `check` says (see the class comment): the entries before a damaged one are returned, and a read
   * that starts at a damaged entry throws CORRUPT_MESSAGE (metadata source=storage, offset), so a
   * reader gets every good batch up to it.
   */
  read(fromOffset: bigint, maxBytes: number, maxOffset: bigint, check: Exclude<EntryCheck, 'none'> = 'full'): Entry[] {
    const first = this.findEntry(fromOffset);
    if (!first || first.baseOffset >= maxOffset) return [];
    const len = Math.min(Math.max(maxBytes, first.size), this.size - first.position);
    const buf = Buffer.allocUnsafe(len);
    const n = fs.readSync(this.fd, buf, 0, len, first.position);
    const out: Entry[] = [];
    let at = 0;
    while (at < n) {
      const r = parseEntry(buf.subarray(0, n), at, check);
      if (r.kind === 'corrupt') {
        if (out.length > 0) break;
        throw new LogError('CORRUPT_MESSAGE', `stored batch at offset ${first.baseOffset} is damaged: ${r.why} at position ${first.position + at} of ${this.path('.log')}`, {
          metadata: { source: 'storage', offset: first.baseOffset.toString() },
        });
      }
      if (r.kind === 'incomplete') break;
      if (r.entry.baseOffset >= maxOffset) break;
      r.entry.position += first.position;
      out.push(r.entry);
      at += r.entry.size;
    }
    if (out.length === 0) {
      throw new LogError('CORRUPT_MESSAGE', `stored batch at offset ${first.baseOffset} (position ${first.position} of ${this.path('.log')}) cannot be read whole`, {
        metadata: { source: 'storage', offset: first.baseOffset.toString() },
      });
    }
    return out;
  }

  /**
   * Visits, in offset order, the batches whose max timestamp is >= targetMs, starting where the
   * time index points (entry headers only), until `visit` returns false. The caller decodes them:
   * the first one may hold no record at or after targetMs (records below the log start, or a batch
   * stored before record framing was checked), so it may need the next. Returns whether `visit`
   * stopped the walk.
   */
  scanFromTimestamp(targetMs: bigint, visit: (e: Entry) => boolean): boolean {
    if (this.maxTimestampMs < targetMs) return false;
    const start = this.timeIndex.lookup(targetMs);
    let stopped = false;
    this.scan(this.offsetIndex.lookup(start).position, false, (e) => {
      if (e.maxTimestampMs < targetMs) return true;
      stopped = !visit(e);
      return !stopped;
    });
    return stopped;
  }

  /**
   * Removes the batch holding `offset` and everything after it. Returns the bytes removed.
   * The segment then ends at the base offset of that batch.
   */
  truncateTo(offset: bigint): number {
    const first = this.findEntry(offset);
    if (!first) return 0;
    const removed = this.size - first.position;
    fs.ftruncateSync(this.fd, first.position);
    this.size = first.position;
    this.rebuildIndexes(false);
    return removed;
  }

  /** Marks the end of appends: records the final max timestamp in the time index. */
  onBecomeInactive(): void {
    if (this.maxTimestampMs < 0n) return;
    const tb = this.timeIndex.maybeAppend(this.maxTimestampMs, this.offsetOfMaxTimestamp);
    if (tb) fs.writeSync(this.timeIndexFd, tb, 0, tb.length, (this.timeIndex.entries - 1) * tb.length);
  }

  /** fsyncs the log and index files. Concurrent calls share one fsync round. */
  flush(): Promise<void> {
    if (this.closed) return Promise.resolve();
    const run = async (): Promise<void> => {
      await Promise.all([fdatasync(this.fd), fdatasync(this.indexFd), fdatasync(this.timeIndexFd)]);
    };
    const p = (this.syncing ?? Promise.resolve()).then(run, run).finally(() => {
      if (this.syncing === p) this.syncing = undefined;
    });
    this.syncing = p;
    return p;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.syncing?.catch(() => undefined);
    this.closed = true;
    fs.closeSync(this.fd);
    fs.closeSync(this.indexFd);
    fs.closeSync(this.timeIndexFd);
  }

  /** Closes and removes the segment's files. */
  async delete(): Promise<void> {
    await this.close();
    for (const s of ['.log', '.index', '.timeindex'] as const) fs.rmSync(this.path(s), { force: true });
  }

  get isClosed(): boolean {
    return this.closed;
  }
}
