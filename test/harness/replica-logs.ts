/**
 * Compares every replica of a partition byte for byte, from outside, through each broker's
 * ReadReplicaLog (brokers must run with --replica-log-read-enabled). The invariant: below the
 * smallest high watermark of the replicas, every replica holds the same batches — same base and
 * last offsets, same leader epochs, same bytes. (Above it replicas may legitimately differ: a
 * follower may not have fetched yet, or holds a tail it will truncate.)
 *
 * `diffReplicaLogs` is the pure check; `readReplicaLogSnapshot` pages one replica's log;
 * `expectReplicasIdentical` waits (with a deadline) until the replicas have settled, then checks.
 */
import type { ReadReplicaLogRequest, ReadReplicaLogResponse, StoredBatch } from '@skein/proto/skein/broker/v1/broker.js';
import { waitFor } from './wait.js';

/** What the helpers need of a broker client (the promisified BrokerServiceClient of clients.ts fits). */
export interface ReplicaLogReader {
  readReplicaLog(request: ReadReplicaLogRequest, options?: { deadlineMs?: number }): Promise<ReadReplicaLogResponse>;
}

/** One replica's log as read: its offsets at the first read and its batches from its log start. */
export interface ReplicaLogSnapshot {
  brokerId: number;
  logStartOffset: bigint;
  logEndOffset: bigint;
  highWatermark: bigint;
  batches: StoredBatch[];
}

export interface ReplicaLogDiff {
  /** Offsets compared: [from, limit) with from = the largest log start, limit = the smallest HW. */
  from: bigint;
  limit: bigint;
  /** Batches compared per replica. */
  batches: number;
  /** Human-readable differences; empty when the replicas agree. */
  differences: string[];
}

const PAGE_BYTES = 4 << 20;

/** Reads from offset 0, or from the log start the refusal names when retention moved it past 0. */
async function readFromLogStart(reader: ReplicaLogReader, topic: string, partition: number, maxBytes: number): Promise<ReadReplicaLogResponse> {
  try {
    return await reader.readReplicaLog({ topic, partition, startOffset: 0n, maxBytes });
  } catch (e) {
    const start = (e as { offsetRangeHint?: { logStartOffset: bigint } }).offsetRangeHint?.logStartOffset;
    if (start === undefined) throw e;
    return reader.readReplicaLog({ topic, partition, startOffset: start, maxBytes });
  }
}

/**
 * Reads a replica from its log start up to `upTo` (default: its high watermark at the first read).
 * Paged: each call is bounded by max_bytes. Offsets below a high watermark never change on a correct
 * replica, so reading them over several calls is consistent.
 */
export async function readReplicaLogSnapshot(reader: ReplicaLogReader, topic: string, partition: number, upTo?: bigint): Promise<ReplicaLogSnapshot> {
  const first = await readFromLogStart(reader, topic, partition, PAGE_BYTES);
  const end = upTo ?? first.highWatermark;
  const snapshot: ReplicaLogSnapshot = {
    brokerId: first.brokerId,
    logStartOffset: first.logStartOffset,
    logEndOffset: first.logEndOffset,
    highWatermark: first.highWatermark,
    batches: [...first.batches],
  };
  for (;;) {
    const last = snapshot.batches[snapshot.batches.length - 1];
    const next = last ? last.lastOffset + 1n : first.logStartOffset;
    if (next >= end) return snapshot;
    const page = await reader.readReplicaLog({ topic, partition, startOffset: next, maxBytes: PAGE_BYTES });
    if (page.batches.length === 0) return snapshot;
    snapshot.batches.push(...page.batches.filter((b) => b.baseOffset >= next));
  }
}

function describeBatch(b: StoredBatch | undefined): string {
  return b ? `[${b.baseOffset}..${b.lastOffset}] epoch ${b.leaderEpoch}, ${b.batch.length} bytes` : 'no batch';
}

/**
 * Pure: compares the replicas' batches overlapping [max log start, min high watermark). Each
 * replica must cover that range with contiguous batches, and all must hold the same batches.
 */
export function diffReplicaLogs(replicas: readonly ReplicaLogSnapshot[]): ReplicaLogDiff {
  const differences: string[] = [];
  if (replicas.length === 0) return { from: 0n, limit: 0n, batches: 0, differences };
  const from = replicas.reduce((m, r) => (r.logStartOffset > m ? r.logStartOffset : m), replicas[0]!.logStartOffset);
  const limit = replicas.reduce((m, r) => (r.highWatermark < m ? r.highWatermark : m), replicas[0]!.highWatermark);
  const inRange = (r: ReplicaLogSnapshot) => r.batches.filter((b) => b.lastOffset >= from && b.baseOffset < limit);
  const views = replicas.map((r) => ({ r, batches: inRange(r) }));
  for (const { r, batches } of views) {
    // Coverage: no gap from `from` to `limit`.
    let expected = from;
    for (const b of batches) {
      if (b.baseOffset > expected || b.lastOffset < b.baseOffset) {
        differences.push(`broker ${r.brokerId}: gap or bad batch at offset ${expected}: found ${describeBatch(b)}`);
        break;
      }
      expected = b.lastOffset + 1n;
    }
    if (from < limit && expected < limit && !differences.some((d) => d.startsWith(`broker ${r.brokerId}:`))) {
      differences.push(`broker ${r.brokerId}: holds offsets only up to ${expected}, below the smallest high watermark ${limit}`);
    }
  }
  const ref = views[0]!;
  for (const { r, batches } of views.slice(1)) {
    const n = Math.max(batches.length, ref.batches.length);
    for (let i = 0; i < n; i++) {
      const a = ref.batches[i];
      const b = batches[i];
      const same = a !== undefined && b !== undefined && a.baseOffset === b.baseOffset && a.lastOffset === b.lastOffset && a.leaderEpoch === b.leaderEpoch && Buffer.from(a.batch).equals(Buffer.from(b.batch));
      if (!same) {
        const what = !a || !b ? 'missing' : a.baseOffset !== b.baseOffset || a.lastOffset !== b.lastOffset ? 'offsets differ' : a.leaderEpoch !== b.leaderEpoch ? 'leader epochs differ' : 'bytes differ';
        differences.push(`broker ${r.brokerId} vs broker ${ref.r.brokerId}, batch ${i}: ${what}: ${describeBatch(b)} vs ${describeBatch(a)}`);
        break;
      }
    }
  }
  return { from, limit, batches: ref.batches.length, differences };
}

/** The replicas' current offsets (one bounded read each). */
async function offsets(readers: ReadonlyMap<number, ReplicaLogReader>, topic: string, partition: number) {
  return Promise.all(
    [...readers.values()].map(async (c) => {
      const r = await readFromLogStart(c, topic, partition, 1);
      return { brokerId: r.brokerId, logEndOffset: r.logEndOffset, highWatermark: r.highWatermark };
    }),
  );
}

/**
 * Waits until every replica answers with the same log end offset and a high watermark equal to it
 * (followers caught up and told the high watermark), then compares them below the smallest high
 * watermark. Throws with the differences found; returns what was compared.
 */
export async function expectReplicasIdentical(
  readers: ReadonlyMap<number, ReplicaLogReader>,
  topic: string,
  partition: number,
  options: { timeoutMs?: number; minHighWatermark?: bigint } = {},
): Promise<ReplicaLogDiff> {
  let last = '';
  await waitFor(
    async () => {
      const o = await offsets(readers, topic, partition);
      last = o.map((x) => `broker ${x.brokerId}: LEO ${x.logEndOffset}, HW ${x.highWatermark}`).join('; ');
      const leo = o[0]!.logEndOffset;
      return o.every((x) => x.logEndOffset === leo && x.highWatermark === leo) && leo >= (options.minHighWatermark ?? 0n);
    },
    { timeoutMs: options.timeoutMs ?? 20_000, intervalMs: 100, message: `replicas of ${topic}-${partition} caught up` },
  ).catch((e: Error) => {
    throw new Error(`${e.message}; last seen: ${last}`);
  });
  const snapshots = await Promise.all([...readers.values()].map((c) => readReplicaLogSnapshot(c, topic, partition)));
  const diff = diffReplicaLogs(snapshots);
  if (diff.differences.length > 0) {
    throw new Error(`replicas of ${topic}-${partition} differ below the high watermark (offsets ${diff.from}..${diff.limit}):\n${diff.differences.join('\n')}`);
  }
  return diff;
}
