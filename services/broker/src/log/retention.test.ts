import { describe, expect, it } from 'vitest';
import { segmentsToDelete, type SegmentSummary } from './retention.js';

const seg = (base: number, next: number, size: number, ts: number): SegmentSummary => ({
  baseOffset: BigInt(base), nextOffset: BigInt(next), sizeBytes: size, maxTimestampMs: BigInt(ts),
});

describe('segmentsToDelete', () => {
  const segments = [seg(0, 10, 100, 1000), seg(10, 20, 100, 2000), seg(20, 30, 100, 3000), seg(30, 35, 50, 4000)];

  it('deletes segments older than retention.ms, oldest first, never the active one', () => {
    expect(segmentsToDelete(segments, { retentionMs: 500, retentionBytes: -1 }, 2600, 35n)).toEqual({ deleteCount: 2, reason: 'time' });
    expect(segmentsToDelete(segments, { retentionMs: 0, retentionBytes: -1 }, 1_000_000, 35n).deleteCount).toBe(3);
  });

  it('deletes while the log stays at or above retention.bytes', () => {
    expect(segmentsToDelete(segments, { retentionMs: -1, retentionBytes: 150 }, 0, 35n)).toEqual({ deleteCount: 2, reason: 'size' });
    expect(segmentsToDelete(segments, { retentionMs: -1, retentionBytes: 1000 }, 0, 35n).deleteCount).toBe(0);
  });

  it('keeps segments at or above the high watermark', () => {
    expect(segmentsToDelete(segments, { retentionMs: 0, retentionBytes: -1 }, 1_000_000, 15n).deleteCount).toBe(1);
  });
});
