/**
 * Retention decisions. Pure: given the segments of a log (oldest first, the last one active), say
 * how many of the oldest to delete. Only whole segments go, never the active one, and never one
 * holding offsets at or above the high watermark (consumers may not have seen it; replicas may
 * still need it).
 */
export interface SegmentSummary {
  baseOffset: bigint;
  nextOffset: bigint;
  sizeBytes: number;
  maxTimestampMs: bigint;
}

export interface RetentionPolicy {
  retentionMs: number;
  retentionBytes: number;
}

export interface RetentionDecision {
  deleteCount: number;
  reason: 'time' | 'size' | 'time+size' | 'none';
}

export function segmentsToDelete(segments: readonly SegmentSummary[], policy: RetentionPolicy, nowMs: number, highWatermark: bigint): RetentionDecision {
  const candidates = segments.length - 1;
  let total = segments.reduce((a, s) => a + s.sizeBytes, 0);
  let count = 0;
  let byTime = false;
  let bySize = false;
  while (count < candidates) {
    const s = segments[count]!;
    if (s.nextOffset > highWatermark) break;
    const expired = policy.retentionMs >= 0 && s.maxTimestampMs >= 0n && Number(s.maxTimestampMs) < nowMs - policy.retentionMs;
    const oversize = policy.retentionBytes >= 0 && total - s.sizeBytes >= policy.retentionBytes && total > policy.retentionBytes;
    if (!expired && !oversize) break;
    byTime ||= expired;
    bySize ||= oversize && !expired;
    total -= s.sizeBytes;
    count++;
  }
  return { deleteCount: count, reason: count === 0 ? 'none' : byTime && bySize ? 'time+size' : byTime ? 'time' : 'size' };
}
