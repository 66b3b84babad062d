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
}

function isCorrupt(e: unknown): e is LogError {
  return isLogError(e) && e.reason === 'CORRUPT_MESSAGE';
}

/**
 * Visits the batches of `seg` below `endOffset`. Returns false when a damaged entry stopped the
 * walk (the rest of the segment cannot be read). `report` reports unreadable batches (pass 1
 * only, so each cleaning run reports a batch once).
 */
async function forEachBatch(log: PartitionLog, seg: LogSegment, endOffset: bigint, report: boolean, visit: (b: VisitedBatch) => void): Promise<boolean> {
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
      let records: ConsumedRecord[] | undefined;
      try {
        records = decodeRecordBatch(RecordBatch.decode(entry.batch), entry.baseOffset, { maxUncompressedBytes });
      } catch (e) {
        if (report) log.reportCorruptBatch(entry.baseOffset, lastOffsetOf(entry), 'compaction', (e as Error).message);
        records = undefined;
      }
      visit({ entry, batch: Buffer.from(entry.batch), records });
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
  const cleanable = log.cleanableSegments().filter((s) => Number(s.maxTimestampMs) <= nowMs - lagMs);
  if (cleanable.length === 0) return result;
  const endOffset = log.highWatermark;

  // Pass 1: the latest offset of every key up to the high watermark.
  const latest = new Map<string, bigint>();
  for (const seg of log.allSegments()) {
    await forEachBatch(log, seg, endOffset, true, ({ records }) => {
      if (records) for (const r of records) if (r.key.length > 0) latest.set(r.key.toString('latin1'), r.offset);
    });
  }

  // Pass 2: rewrite each cleanable segment that loses something.
  for (const seg of cleanable) {
    const parts: Buffer[] = [];
    let removed = 0;
    const whole = await forEachBatch(log, seg, endOffset, false, ({ entry, batch, records }) => {
      const leaderEpoch = entry.leaderEpoch;
      if (!records) {
        // Unreadable: kept exactly as stored, header included.
        parts.push(Buffer.concat([encodeEntryHeader(entry, batch), batch]));
        return;
      }
      const keep = records.map((r) => shouldKeep(r, latest, nowMs, log.config.deleteRetentionMs));
      if (keep.every(Boolean)) {
        parts.push(frame(records[0]!.offset, leaderEpoch, records, batch));
        return;
      }
      const original = RecordBatch.decode(batch);
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
        const rebuilt = encodeRecordBatch(
          buildRecordBatch(
            run.map((r) => ({ key: r.key, value: r.value, headers: r.headers, timestampMs: r.timestampMs })),
            {
              compression: original.compression,
              producerId: original.producerId,
              producerEpoch: original.producerEpoch,
              baseSequence: original.baseSequence < 0 ? -1 : original.baseSequence + i,
            },
          ),
        );
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
