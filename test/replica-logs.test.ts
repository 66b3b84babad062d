// The replica comparison the replication fault tests end with (harness/replica-logs.ts): it must
// see every kind of divergence below the smallest high watermark, and ignore what lies above it.
import { describe, expect, it } from 'vitest';
import type { StoredBatch } from '@skein/proto/skein/broker/v1/broker.js';
import { diffReplicaLogs, type ReplicaLogSnapshot } from './harness/replica-logs.js';

const batch = (baseOffset: bigint, count: number, leaderEpoch: number, fill: string): StoredBatch => ({
  baseOffset,
  lastOffset: baseOffset + BigInt(count) - 1n,
  leaderEpoch,
  batch: Buffer.from(fill.repeat(count)),
});

const log = [batch(0n, 3, 0, 'a'), batch(3n, 2, 0, 'b'), batch(5n, 4, 1, 'c')];

function replica(brokerId: number, batches: StoredBatch[], highWatermark = 9n, logStartOffset = 0n): ReplicaLogSnapshot {
  const last = batches[batches.length - 1];
  return { brokerId, logStartOffset, logEndOffset: last ? last.lastOffset + 1n : logStartOffset, highWatermark, batches };
}

describe('diffReplicaLogs', () => {
  it('accepts identical replicas', () => {
    const d = diffReplicaLogs([replica(1, log), replica(2, [...log]), replica(3, [...log])]);
    expect(d).toMatchObject({ from: 0n, limit: 9n, batches: 3, differences: [] });
  });

  it('finds different bytes, leader epochs and batch boundaries below the high watermark', () => {
    const bytes = [log[0]!, { ...log[1]!, batch: Buffer.from('bx') }, log[2]!];
    const epoch = [log[0]!, log[1]!, { ...log[2]!, leaderEpoch: 2 }];
    const bounds = [log[0]!, batch(3n, 1, 0, 'b'), batch(4n, 1, 0, 'b'), log[2]!];
    expect(diffReplicaLogs([replica(1, log), replica(2, bytes)]).differences).toEqual([expect.stringContaining('bytes differ')]);
    expect(diffReplicaLogs([replica(1, log), replica(2, epoch)]).differences).toEqual([expect.stringContaining('leader epochs differ')]);
    expect(diffReplicaLogs([replica(1, log), replica(2, bounds)]).differences).toEqual([expect.stringContaining('offsets differ')]);
  });

  it('finds a replica that misses data below its own high watermark, or has a gap', () => {
    expect(diffReplicaLogs([replica(1, log), replica(2, log.slice(0, 2))]).differences.join('\n')).toContain('holds offsets only up to 5');
    expect(diffReplicaLogs([replica(1, log), replica(2, [log[0]!, log[2]!])]).differences.join('\n')).toContain('gap');
  });

  it('compares only below the smallest high watermark and from the largest log start', () => {
    // Broker 2 has a divergent tail above the HW it knows (it would truncate it): not compared.
    const tail = [log[0]!, log[1]!, batch(5n, 2, 0, 'z')];
    expect(diffReplicaLogs([replica(1, log), replica(2, tail, 5n)])).toMatchObject({ limit: 5n, batches: 2, differences: [] });
    // Broker 3 deleted its first batch (retention): compared from offset 3.
    expect(diffReplicaLogs([replica(1, log), replica(3, log.slice(1), 9n, 3n)])).toMatchObject({ from: 3n, batches: 2, differences: [] });
  });
});
