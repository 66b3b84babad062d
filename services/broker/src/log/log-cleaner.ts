/**
 * Log compaction (cleanup.policy=compact): keeps the latest record per key and drops tombstones
 * older than delete.retention.ms, in closed segments below the high watermark.
 *
 * Offsets never change: a batch whose records all survive is kept byte for byte; a batch that
 * loses records is rewritten as one batch per run of consecutive surviving records, each with the
 * base offset of its first record (record offsets are base_offset + index, so runs stay dense).
 * This is the only place the broker decodes and re-encodes records, and it is off the request path:
 * it reads in slices and yields to the event loop between them, and swaps each cleaned segment in
 * with one synchronous step, so produce and fetch never wait for it.
 *
 * Batches that cannot be read never stop compaction nor lose data: a batch whose records do not
 * decode (stored before record framing was checked) is kept byte for byte and its keys are unknown,
 * which only makes the cleaner keep more (an older version it cannot prove superseded); a segment
 * with a damaged entry (checksum mismatch) is not rewritten, and its keys after the damage are
 * unknown likewise. Each is reported through the log (`corrupt-batch` event, a warn log).
 *
 * Transactions (issue 16), as Kafka's cleaner: only offsets below the last stable offset are
 * cleaned (an open transaction's outcome is not known yet); the records of aborted transactions
 * (a transactional batch of a producer inside an entry of the aborted index) are dropped and never
 * count as the latest value of their key; rewritten batches keep is_transactional; control batches
 * (BEGIN, COMMIT, ABORT markers) are kept, so a reader still meets the ABORT that ends an aborted
 * transaction, and an aborted-index entry stays until retention deletes its segment. (Kafka also
 * removes markers once their transaction's data is gone and delete.retention.ms has passed; not
 * done yet: a marker is one small batch per partition per transaction.)
 */
import * as fs from 'node:fs';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { RecordBatch } from '@skein/proto/skein/broker/v1/broker.js';
import { buildRecordBatch, decodeRecordBatch, encodeRecordBatch, type ConsumedRecord } from '@skein/common/records/record-batch.js';
import { maxDecompressedBytes } from './batch-validation.js';
import { encodeEntryHeader, type Entry, lastOffsetOf } from './entry-format.js';
import { isLogError, type LogError } from './log-error.js';
import type { LogSegment } from './log-segment.js';
import type { PartitionLog } from './partition-log.js';
import type { AbortedTxn } from './aborted-index.js';
import { readTxnAttributes } from './control-batch.js';

const READ_SLICE_BYTES = 1 << 20;

export interface CleanResult {
  segmentsCleaned: number;
  recordsRemoved: number;
  bytesBefore: number;
  bytesAfter: number;
}

/** Survivor rule. Pure. */
export function shouldKeep(r: ConsumedRecord, latest: ReadonlyMap<string, bigint>, nowMs: number, deleteRetentionMs: number): boolean {
  if (r.key.length === 0) return true; // nothing to compact against
  if (latest.get(r.key.toString('latin1')) !== r.offset) return false;
  if (r.value === null && Number(r.timestampMs) < nowMs - deleteRetentionMs) return false;
  return true;
}

interface VisitedBatch {
  entry: Entry;
  /** A copy of the stored batch bytes (the read buffer is reused). */
  batch: Buffer;
  /** The decoded records, or undefined when the batch cannot be decoded (kept as it is). */
  records: ConsumedRecord[] | undefined;
  /** A transactional data batch of an aborted transaction: every record goes. */
  aborted: boolean;
  /** A control batch (kept as it is). */
  control: boolean;
}

/** Whether a transactional batch of `producerId` at `offset` belongs to an aborted transaction. Pure. */
export function inAbortedTxn(aborted: readonly AbortedTxn[], producerId: bigint, offset: bigint): boolean {
  return aborted.some((a) => a.producerId === producerId && a.firstOffset <= offset && offset < a.lastOffset);
}

function isCorrupt(e: unknown): e is LogError {
  return isLogError(e) && e.reason === 'CORRUPT_MESSAGE';
}

/**
 * Visits the batches of `seg` below `endOffset`. Returns false when a damaged entry stopped the
 * walk (the rest of the segment cannot be read). `report` reports unreadable batches (pass 1
 * only, so each cleaning run reports a batch once).
 */
async function forEachBatch(
  log: PartitionLog,
  seg: LogSegment,
  endOffset: bigint,
  report: boolean,
  visit: (b: VisitedBatch) => void,
  abortedTxns: readonly AbortedTxn[] = [],
): Promise<boolean> {
  const maxUncompressedBytes = maxDecompressedBytes(log.config.maxMessageBytes);
  let from = seg.baseOffset;
  while (from < seg.nextOffset && from < endOffset) {
    if (seg.isClosed) throw new Error('segment went away during cleaning');
    let entries: Entry[];
    try {
      entries = seg.read(from, READ_SLICE_BYTES, endOffset);
    } catch (e) {
      if (!isCorrupt(e)) throw e;
      if (report) log.reportCorruptBatch(from, undefined, 'compaction', e.message);
      return false;
    }
    if (entries.length === 0) break;
    for (const entry of entries) {
      const attrs = entry.producerId > 0n ? readTxnAttributes(entry.batch) : undefined;
      const control = attrs?.isControl === true;
      const aborted = attrs?.isTransactional === true && !control && inAbortedTxn(abortedTxns, entry.producerId, entry.baseOffset);
      let records: ConsumedRecord[] | undefined;
      try {
        records = decodeRecordBatch(RecordBatch.decode(entry.batch), entry.baseOffset, { maxUncompressedBytes });
      } catch (e) {
        if (report) log.reportCorruptBatch(entry.baseOffset, lastOffsetOf(entry), 'compaction', (e as Error).message);
        records = undefined;
      }
      visit({ entry, batch: Buffer.from(entry.batch), records, aborted, control });
      // From the entry header, not the records: a batch whose count lies must not shift the walk.
      from = lastOffsetOf(entry) + 1n;
    }
    await yieldToLoop();
  }
  return true;
}

export async function compactLog(log: PartitionLog, nowMs: number): Promise<CleanResult> {
  const result: CleanResult = { segmentsCleaned: 0, recordsRemoved: 0, bytesBefore: 0, bytesAfter: 0 };
  const lagMs = log.config.minCompactionLagMs;
  // Up to the last stable offset: past it, a transaction's outcome is not known yet.
  const endOffset = log.lastStableOffset;
  const cleanable = log.cleanableSegments().filter((s) => Number(s.maxTimestampMs) <= nowMs - lagMs && s.nextOffset <= endOffset);
  if (cleanable.length === 0) return result;
  const abortedTxns = log.abortedTransactions(log.logStartOffset, endOffset);

  // Pass 1: the latest offset of every key up to the last stable offset; aborted records and
  // markers are no value of any key.
  const latest = new Map<string, bigint>();
  for (const seg of log.allSegments()) {
    await forEachBatch(
      log,
      seg,
      endOffset,
      true,
      ({ records, aborted, control }) => {
        if (records && !aborted && !control) for (const r of records) if (r.key.length > 0) latest.set(r.key.toString('latin1'), r.offset);
      },
      abortedTxns,
    );
  }

  // Pass 2: rewrite each cleanable segment that loses something.
  for (const seg of cleanable) {
    const parts: Buffer[] = [];
    let removed = 0;
    const whole = await forEachBatch(log, seg, endOffset, false, ({ entry, batch, records, aborted, control }) => {
      const leaderEpoch = entry.leaderEpoch;
      if (aborted && records) {
        removed += records.length;
        return;
      }
      if (!records || control) {
        // Unreadable: kept exactly as stored, header included.
        parts.push(Buffer.concat([encodeEntryHeader(entry, batch), batch]));
        return;
      }
      const keep = records.map((r) => shouldKeep(r, latest, nowMs, log.config.deleteRetentionMs));
      if (keep.every(Boolean)) {
        parts.push(frame(records[0]!.offset, leaderEpoch, records, batch));
        return;
      }
      const orig = original(batch);
      const isTransactional = orig.isTransactional === true;
      let i = 0;
      while (i < records.length) {
        if (!keep[i]) {
          removed++;
          i++;
          continue;
        }
        let j = i;
        while (j < records.length && keep[j]) j++;
        const run = records.slice(i, j);
        const rebuilt = encodeRecordBatch({
          ...buildRecordBatch(
            run.map((r) => ({ key: r.key, value: r.value, headers: r.headers, timestampMs: r.timestampMs })),
            {
              compression: orig.compression,
              producerId: orig.producerId,
              producerEpoch: orig.producerEpoch,
              baseSequence: orig.baseSequence < 0 ? -1 : orig.baseSequence + i,
            },
          ),
          // A committed transaction's records stay transactional (readers track the producer by it).
          ...(isTransactional ? { isTransactional: true } : {}),
        });
        parts.push(frame(run[0]!.offset, leaderEpoch, run, rebuilt));
        i = j;
      }
    });
    // A damaged segment is left alone: rewriting it would drop what follows the damage.
    if (removed === 0 || !whole) continue;
    const cleanedPath = seg.path('.log') + '.cleaned';
    const data = Buffer.concat(parts);
    fs.writeFileSync(cleanedPath, data);
    const fd = fs.openSync(cleanedPath, 'r');
    fs.fdatasyncSync(fd);
    fs.closeSync(fd);
    result.bytesBefore += seg.size;
    result.bytesAfter += data.length;
    await log.replaceSegments([seg], cleanedPath);
    result.segmentsCleaned++;
    result.recordsRemoved += removed;
  }
  return result;
}

function original(batch: Buffer): RecordBatch {
  return RecordBatch.decode(batch);
}

function frame(baseOffset: bigint, leaderEpoch: number, records: ConsumedRecord[], batch: Buffer): Buffer {
  const b = RecordBatch.decode(batch);
  let max = -1n;
  for (const r of records) if (r.timestampMs > max) max = r.timestampMs;
  const header = encodeEntryHeader(
    {
      baseOffset,
      leaderEpoch,
      recordCount: records.length,
      maxTimestampMs: max,
      producerId: b.producerId,
      producerEpoch: b.producerEpoch,
      baseSequence: b.baseSequence,
    },
    batch,
  );
  return Buffer.concat([header, batch]);
}
