/**
 * The aborted-transaction index of one partition (Kafka's TransactionIndex, `.txnindex`): which
 * transactions were aborted, so READ_COMMITTED fetches can tell the reader what to drop
 * (broker.proto, ISOLATION_LEVEL_READ_COMMITTED).
 *
 * On disk, one file per segment, `<segment base offset>.txnindex`, holding the transactions whose
 * ABORT marker lies in that segment, in marker order, each 24 bytes:
 *
 * | offset | size | field                                   |
 * |-------:|-----:|-----------------------------------------|
 * |      0 |    8 | producer_id, int64 BE                   |
 * |      8 |    8 | first_offset (the BEGIN), int64 BE      |
 * |     16 |    8 | last_offset (the ABORT marker), int64 BE |
 *
 * A file lives and dies with its segment: retention deletes both, truncation cuts both, and the
 * cleaner moves the entries of the segments it merges to the merged segment's file. Entries are
 * appended with an fsync: aborts are rare, and a durable entry means recovery never needs the
 * transaction's first offset again (the BEGIN may have been deleted by then); entries past the
 * log end after a crash are dropped on load, and entries the recovery replay re-derives are
 * dropped first (`truncateFrom`), so nothing is listed twice.
 *
 * The whole index is also kept in memory (a few dozen bytes per abort), sorted by last_offset,
 * which is what fetches read. Not thread-safe; Node runs it on one thread.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';

export interface AbortedTxn {
  producerId: bigint;
  firstOffset: bigint;
  lastOffset: bigint;
}

export const ABORTED_ENTRY_BYTES = 24;
export const TXN_INDEX_SUFFIX = '.txnindex';

/** Encodes entries as the file stores them. */
export function encodeAbortedEntries(entries: readonly AbortedTxn[]): Buffer {
  const buf = Buffer.alloc(entries.length * ABORTED_ENTRY_BYTES);
  entries.forEach((e, i) => {
    buf.writeBigInt64BE(e.producerId, i * ABORTED_ENTRY_BYTES);
    buf.writeBigInt64BE(e.firstOffset, i * ABORTED_ENTRY_BYTES + 8);
    buf.writeBigInt64BE(e.lastOffset, i * ABORTED_ENTRY_BYTES + 16);
  });
  return buf;
}

/** Decodes a file's entries; a torn last entry (a crash mid-append) is ignored. */
export function decodeAbortedEntries(buf: Buffer): AbortedTxn[] {
  const out: AbortedTxn[] = [];
  for (let at = 0; at + ABORTED_ENTRY_BYTES <= buf.length; at += ABORTED_ENTRY_BYTES) {
    out.push({ producerId: buf.readBigInt64BE(at), firstOffset: buf.readBigInt64BE(at + 8), lastOffset: buf.readBigInt64BE(at + 16) });
  }
  return out;
}

/**
 * The aborted transactions a read of [fromOffset, upTo) must list: those whose data can be in the
 * range (first_offset below upTo) and that had not ended before it (last_offset at or after
 * fromOffset), ordered by first_offset as the reader's algorithm wants. Pure.
 */
export function abortedInRange(entries: readonly AbortedTxn[], fromOffset: bigint, upTo: bigint): AbortedTxn[] {
  const out = entries.filter((e) => e.lastOffset >= fromOffset && e.firstOffset < upTo);
  return out.sort((a, b) => (a.firstOffset < b.firstOffset ? -1 : a.firstOffset > b.firstOffset ? 1 : 0));
}

interface Placed extends AbortedTxn {
  segment: bigint;
}

export class AbortedTxnIndex {
  private entries: Placed[] = [];

  private constructor(private readonly dir: string) {}

  /** Loads the files of `segmentBases`, drops entries at or past `logEndOffset`, removes orphan files. */
  static load(dir: string, segmentBases: readonly bigint[], logEndOffset: bigint): AbortedTxnIndex {
    const index = new AbortedTxnIndex(dir);
    const live = new Set(segmentBases.map(fileName));
    for (const name of fs.readdirSync(dir)) {
      if (name.endsWith(TXN_INDEX_SUFFIX) && !live.has(name)) fs.rmSync(join(dir, name), { force: true });
    }
    for (const base of segmentBases) {
      let raw: Buffer;
      try {
        raw = fs.readFileSync(join(dir, fileName(base)));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw e;
      }
      for (const e of decodeAbortedEntries(raw)) index.entries.push({ ...e, segment: base });
    }
    index.entries.sort((a, b) => (a.lastOffset < b.lastOffset ? -1 : a.lastOffset > b.lastOffset ? 1 : 0));
    index.truncateFrom(logEndOffset);
    return index;
  }

  get size(): number {
    return this.entries.length;
  }

  /** Every entry, in marker order. */
  all(): readonly AbortedTxn[] {
    return this.entries;
  }

  /** Records an abort whose marker is in segment `segment`; durable when it returns. */
  add(txn: AbortedTxn, segment: bigint): void {
    const fd = fs.openSync(join(this.dir, fileName(segment)), 'a');
    try {
      fs.writeSync(fd, encodeAbortedEntries([txn]));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    this.entries.push({ ...txn, segment });
  }

  /** See abortedInRange. */
  collect(fromOffset: bigint, upTo: bigint): AbortedTxn[] {
    if (this.entries.length === 0) return [];
    return abortedInRange(this.entries, fromOffset, upTo).map(({ producerId, firstOffset, lastOffset }) => ({ producerId, firstOffset, lastOffset }));
  }

  /** Drops entries whose marker is at or after `offset` (log truncation), rewriting their files. */
  truncateFrom(offset: bigint): void {
    const dropped = this.entries.filter((e) => e.lastOffset >= offset);
    if (dropped.length === 0) return;
    this.entries = this.entries.filter((e) => e.lastOffset < offset);
    for (const seg of new Set(dropped.map((e) => e.segment))) this.rewrite(seg);
  }

  /** Forgets the entries of deleted segments and removes their files (retention, truncation). */
  deleteSegments(bases: readonly bigint[]): void {
    const gone = new Set(bases);
    this.entries = this.entries.filter((e) => !gone.has(e.segment));
    for (const b of bases) fs.rmSync(join(this.dir, fileName(b)), { force: true });
  }

  /**
   * The cleaner replaced `bases` by one segment at `bases[0]`: their entries move to its file,
   * except those `keep` refuses (an aborted transaction whose data and marker the cleaner removed).
   */
  mergeSegments(bases: readonly bigint[], keep: (e: AbortedTxn) => boolean = () => true): void {
    if (bases.length === 0) return;
    const merged = new Set(bases);
    const into = bases[0]!;
    this.entries = this.entries.filter((e) => !merged.has(e.segment) || keep(e));
    for (const e of this.entries) if (merged.has(e.segment)) e.segment = into;
    for (const b of bases.slice(1)) fs.rmSync(join(this.dir, fileName(b)), { force: true });
    this.rewrite(into);
  }

  /** Removes every file (the log starts over empty). */
  clear(): void {
    this.deleteSegments([...new Set(this.entries.map((e) => e.segment))]);
  }

  private rewrite(segment: bigint): void {
    const mine = this.entries.filter((e) => e.segment === segment);
    const path = join(this.dir, fileName(segment));
    if (mine.length === 0) {
      fs.rmSync(path, { force: true });
      return;
    }
    const tmp = `${path}.tmp`;
    fs.writeFileSync(tmp, encodeAbortedEntries(mine));
    const fd = fs.openSync(tmp, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, path);
  }
}

function fileName(base: bigint): string {
  return base.toString().padStart(20, '0') + TXN_INDEX_SUFFIX;
}
