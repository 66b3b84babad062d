import { describe, expect, it } from 'vitest';
import {
  acksAllDecision,
  desiredIsr,
  followerAction,
  followerFetched,
  followersToForget,
  type LeaderView,
  leaderFetchDecision,
  isStalePartitionState,
  nextHighWatermark,
} from './replication-core.js';
import { LeaderEpochCache } from '../log/leader-epoch-cache.js';

function view(over: Partial<LeaderView> = {}): LeaderView {
  return {
    leaderId: 1,
    replicas: [1, 2, 3],
    isr: [1, 2, 3],
    minInsyncReplicas: 2,
    logEndOffset: 100n,
    highWatermark: 50n,
    followers: new Map([[2, { logEndOffset: 90n, lastCaughtUpMs: 0 }], [3, { logEndOffset: 80n, lastCaughtUpMs: 0 }]]),
    leaderSinceMs: 0,
    leaderEpochStartOffset: 0n,
    ...over,
  };
}

describe('nextHighWatermark', () => {
  it('is the smallest log end offset of the ISR', () => {
    expect(nextHighWatermark(view())).toBe(80n);
  });
  it('does not advance while the confirmed ISR is below min.insync.replicas (strict min ISR)', () => {
    expect(nextHighWatermark(view({ isr: [1] }))).toBe(50n);
  });
  it('counts members of a pending proposal (maximal ISR)', () => {
    expect(nextHighWatermark(view({ isr: [1, 2], pendingIsr: [1, 2, 3] }))).toBe(80n);
    expect(nextHighWatermark(view({ isr: [1, 2, 3], pendingIsr: [1, 2] }))).toBe(80n);
    expect(nextHighWatermark(view({ isr: [1, 2] }))).toBe(90n);
  });
  it('holds while a member has not fetched since the leader change, and never goes back', () => {
    expect(nextHighWatermark(view({ followers: new Map([[2, { logEndOffset: 90n, lastCaughtUpMs: 0 }]]) }))).toBe(50n);
    expect(nextHighWatermark(view({ highWatermark: 85n }))).toBe(85n);
  });
});

describe('acksAllDecision', () => {
  it('acknowledges once the watermark passed the batch', () => {
    expect(acksAllDecision({ isr: [1, 2], minInsyncReplicas: 2, highWatermark: 10n }, 10n)).toEqual({ kind: 'ack' });
    expect(acksAllDecision({ isr: [1, 2], minInsyncReplicas: 2, highWatermark: 9n }, 10n)).toEqual({ kind: 'wait' });
  });
  it('fails with NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR fell below min.insync.replicas first', () => {
    expect(acksAllDecision({ isr: [1], minInsyncReplicas: 2, highWatermark: 9n }, 10n)).toEqual({ kind: 'fail', reason: 'NOT_ENOUGH_REPLICAS_AFTER_APPEND' });
  });
});

describe('desiredIsr', () => {
  it('drops a member that has not caught up for lagMs, counting from the leader change if never seen', () => {
    const v = view({ followers: new Map([[2, { logEndOffset: 100n, lastCaughtUpMs: 1000 }]]), leaderSinceMs: 0 });
    expect(desiredIsr(v, 500, 1000)).toBeUndefined();
    expect(desiredIsr(v, 1500, 1000)).toEqual([1, 2]);
  });
  it('adds a caught-up replica only once it reached both the watermark and the leader epoch start offset', () => {
    const v = view({ isr: [1, 2], highWatermark: 60n, leaderEpochStartOffset: 95n, followers: new Map([[2, { logEndOffset: 100n, lastCaughtUpMs: 0 }], [3, { logEndOffset: 90n, lastCaughtUpMs: 0 }]]) });
    expect(desiredIsr(v, 0, 1000)).toBeUndefined();
    const caughtUp = { ...v, followers: new Map([[2, { logEndOffset: 100n, lastCaughtUpMs: 0 }], [3, { logEndOffset: 96n, lastCaughtUpMs: 0 }]]) };
    expect(desiredIsr(caughtUp, 0, 1000)).toEqual([1, 2, 3]);
  });
});

describe('fetch decisions', () => {
  const epochs = new LeaderEpochCache();
  epochs.assign(0, 0n);
  epochs.assign(3, 40n);
  const log = { logStartOffset: 10n, logEndOffset: 60n, endOffsetForEpoch: (e: number) => epochs.endOffsetForEpoch(e, 60n), latestEpoch: () => 3 };
  it('sends a follower below the log start to start over there', () => {
    expect(leaderFetchDecision(log, 5n, 0)).toEqual({ kind: 'below-log-start', logStartOffset: 10n });
    expect(followerAction({ logStartOffset: 0n, logEndOffset: 5n }, { logStartOffset: 10n, highWatermark: 60n })).toEqual({ kind: 'truncate-fully-and-start-at', offset: 10n });
  });
  it('tells a diverged follower where its last epoch ends', () => {
    expect(leaderFetchDecision(log, 45n, 1)).toEqual({ kind: 'diverging', epoch: 0, endOffset: 40n });
    expect(followerAction({ logStartOffset: 0n, logEndOffset: 45n }, { logStartOffset: 10n, highWatermark: 40n, divergingEpoch: { epoch: 0, endOffset: 40n } })).toEqual({ kind: 'truncate', to: 40n });
    expect(leaderFetchDecision(log, 45n, 3)).toEqual({ kind: 'read', fetchOffset: 45n });
  });
});

it('ignores a partition state older than the one applied', () => {
  expect(isStalePartitionState({ leaderEpoch: 3, partitionEpoch: 7 }, { leaderEpoch: 3, partitionEpoch: 6 })).toBe(true);
  expect(isStalePartitionState({ leaderEpoch: 3, partitionEpoch: 7 }, { leaderEpoch: 4, partitionEpoch: 6 })).toBe(false);
  expect(isStalePartitionState({ leaderEpoch: 3, partitionEpoch: 7 }, { leaderEpoch: 3, partitionEpoch: 7 })).toBe(false);
});

it('forgets the progress of followers the controller took out of the ISR (a fenced empty disk must not rejoin on old reports)', () => {
  expect(followersToForget([1, 2, 3], [1, 3], 1)).toEqual([2]);
  expect(followersToForget([1, 2], [1, 2, 3], 1)).toEqual([]);
  expect(followersToForget([1, 2], [2], 1)).toEqual([]);
});

it('counts a follower one report behind a steady stream of appends as caught up (Kafka\'s rule)', () => {
  const first = followerFetched(undefined, 100n, 120n, 1000, 0);
  expect(first.lastCaughtUpMs).toBe(0);
  const second = followerFetched(first, 120n, 150n, 1100, 0);
  expect(second.lastCaughtUpMs).toBe(1000);
  const behind = followerFetched(second, 130n, 200n, 1200, 0);
  expect(behind.lastCaughtUpMs).toBe(1000);
});
