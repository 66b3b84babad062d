import { describe, expect, it } from 'vitest';
import { applyAlterPartition, applyLeaderReplicaOffline, electPreferredLeader, initialPartitionRecord, NO_LEADER, reconcilePartition } from './partition-state.js';

const clean = { uncleanLeaderElection: false };

describe('reconcilePartition', () => {
  it('changes nothing while every replica is live', () => {
    expect(reconcilePartition(initialPartitionRecord('t', [1, 2, 3]), new Set([1, 2, 3]), clean)).toBeUndefined();
  });

  it('elects the next live ISR member in replica order when the leader dies, bumping both epochs', () => {
    const p = initialPartitionRecord('t', [1, 2, 3]);
    const next = reconcilePartition(p, new Set([2, 3]), clean)!;
    expect(next).toMatchObject({ leaderId: 2, leaderEpoch: 1, isr: [2, 3], partitionEpoch: 1 });
  });

  it('removes a dead follower from the ISR without changing the leader epoch', () => {
    const next = reconcilePartition(initialPartitionRecord('t', [1, 2, 3]), new Set([1, 2]), clean)!;
    expect(next).toMatchObject({ leaderId: 1, leaderEpoch: 0, isr: [1, 2], partitionEpoch: 1 });
  });

  it('never elects a replica outside the ISR unless unclean election is enabled', () => {
    const p = { ...initialPartitionRecord('t', [1, 2]), isr: [1] };
    const offline = reconcilePartition(p, new Set([2]), clean)!;
    expect(offline).toMatchObject({ leaderId: NO_LEADER, leaderEpoch: 1, isr: [1] });
    const unclean = reconcilePartition(p, new Set([2]), { uncleanLeaderElection: true })!;
    expect(unclean).toMatchObject({ leaderId: 2, leaderEpoch: 1, isr: [2] });
  });

  it('brings an offline partition back when its last ISR member returns', () => {
    const p = initialPartitionRecord('t', [1]);
    const offline = reconcilePartition(p, new Set(), clean)!;
    expect(offline).toMatchObject({ leaderId: NO_LEADER, isr: [1] });
    expect(reconcilePartition(offline, new Set(), clean)).toBeUndefined();
    const back = reconcilePartition(offline, new Set([1]), clean)!;
    expect(back).toMatchObject({ leaderId: 1, leaderEpoch: 2, isr: [1], partitionEpoch: 2 });
  });

  it('keeps epochs strictly increasing through any sequence of failures', () => {
    let p = initialPartitionRecord('t', [1, 2, 3]);
    let seed = 42;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let i = 0; i < 500; i++) {
      const live = new Set([1, 2, 3].filter(() => rand() < 0.6));
      const next = reconcilePartition(p, live, clean);
      if (!next) continue;
      expect(next.partitionEpoch).toBe(p.partitionEpoch + 1);
      expect(next.leaderEpoch).toBeGreaterThanOrEqual(p.leaderEpoch);
      if (next.leaderId !== p.leaderId) expect(next.leaderEpoch).toBe(p.leaderEpoch + 1);
      if (next.leaderId !== NO_LEADER) {
        expect(next.isr).toContain(next.leaderId);
        // Clean election: the new leader was in the previous ISR, so it has every acknowledged record.
        expect(p.isr).toContain(next.leaderId);
      }
      expect(next.isr.length).toBeGreaterThan(0);
      p = next;
    }
  });
});

describe('electPreferredLeader', () => {
  it('moves leadership back to the first replica only when it is live and in sync', () => {
    const p = { ...initialPartitionRecord('t', [1, 2]), leaderId: 2, leaderEpoch: 3 };
    expect(electPreferredLeader(p, new Set([2]))).toBeUndefined();
    expect(electPreferredLeader({ ...p, isr: [2] }, new Set([1, 2]))).toBeUndefined();
    expect(electPreferredLeader(p, new Set([1, 2]))).toMatchObject({ leaderId: 1, leaderEpoch: 4 });
  });
});

describe('applyAlterPartition', () => {
  const p = { ...initialPartitionRecord('t', [1, 2, 3]), isr: [1], leaderEpoch: 2, partitionEpoch: 5 };
  const live = new Set([1, 2, 3]);
  it('accepts a proposal from the current leader with current epochs', () => {
    const r = applyAlterPartition(p, { brokerId: 1, leaderEpoch: 2, partitionEpoch: 5, newIsr: [3, 1] }, live);
    expect(r).toEqual({ next: { ...p, isr: [1, 3], partitionEpoch: 6 } });
  });
  it.each([
    [{ brokerId: 1, leaderEpoch: 1, partitionEpoch: 5, newIsr: [1, 2] }, 'FENCED_LEADER_EPOCH'],
    [{ brokerId: 2, leaderEpoch: 2, partitionEpoch: 5, newIsr: [1, 2] }, 'NOT_LEADER_OR_FOLLOWER'],
    [{ brokerId: 1, leaderEpoch: 2, partitionEpoch: 4, newIsr: [1, 2] }, 'STALE_PARTITION_EPOCH'],
    [{ brokerId: 1, leaderEpoch: 2, partitionEpoch: 5, newIsr: [2] }, 'INVALID_ISR'],
    [{ brokerId: 1, leaderEpoch: 2, partitionEpoch: 5, newIsr: [1, 9] }, 'INVALID_ISR'],
    [{ brokerId: 1, leaderEpoch: 2, partitionEpoch: 5, newIsr: [1, 1] }, 'INVALID_ISR'],
  ])('refuses %j with %s', (request, reason) => {
    const r = applyAlterPartition(p, request, live);
    expect('problem' in r && r.problem.reason).toBe(reason);
  });
  it('refuses adding a broker that is not live', () => {
    const r = applyAlterPartition(p, { brokerId: 1, leaderEpoch: 2, partitionEpoch: 5, newIsr: [1, 2] }, new Set([1]));
    expect('problem' in r && r.problem.reason).toBe('INVALID_ISR');
  });
});

describe('reassignment', () => {
  it('adds the targets first, completes only when every target is in the ISR, and moves leadership off a dropped leader', async () => {
    const { startReassignment, completeReassignment } = await import('./partition-state.js');
    const p = { ...initialPartitionRecord('t', [1, 2]), partitionEpoch: 4 };
    const started = startReassignment(p, [3, 2])!;
    expect(started).toMatchObject({ replicas: [3, 2, 1], targetReplicas: [3, 2], leaderId: 1, partitionEpoch: 5 });
    expect(completeReassignment(started)).toBeUndefined(); // 3 not in the ISR yet
    const caughtUp = { ...started, isr: [1, 2, 3] };
    const done = completeReassignment(caughtUp)!;
    expect(done).toMatchObject({ replicas: [3, 2], isr: [3, 2], leaderId: 3, leaderEpoch: 1, partitionEpoch: 6 });
    expect(done.targetReplicas).toBeUndefined();
    expect(startReassignment(done, [3, 2])).toBeUndefined();
  });
});

describe('applyLeaderReplicaOffline', () => {
  const base = { ...initialPartitionRecord('t1', [1, 2, 3]), leaderEpoch: 4, partitionEpoch: 9 };
  it('moves leadership to the first other live ISR member and drops the offline leader from the ISR', () => {
    const r = applyLeaderReplicaOffline(base, { brokerId: 1, leaderEpoch: 4 }, new Set([1, 3]));
    expect(r).toEqual({ next: { ...base, leaderId: 3, leaderEpoch: 5, isr: [2, 3], partitionEpoch: 10 } });
  });
  it('refuses when no other ISR member is live, and fences stale or foreign requests', () => {
    expect(applyLeaderReplicaOffline({ ...base, isr: [1, 2] }, { brokerId: 1, leaderEpoch: 4 }, new Set([1, 3]))).toMatchObject({ problem: { reason: 'INVALID_ISR' } });
    expect(applyLeaderReplicaOffline(base, { brokerId: 1, leaderEpoch: 3 }, new Set([1, 2, 3]))).toMatchObject({ problem: { reason: 'FENCED_LEADER_EPOCH' } });
    expect(applyLeaderReplicaOffline(base, { brokerId: 2, leaderEpoch: 4 }, new Set([1, 2, 3]))).toMatchObject({ problem: { reason: 'NOT_LEADER_OR_FOLLOWER' } });
  });
});
