/**
 * The replication rules of one partition as pure functions: the leader's high watermark, its ISR
 * proposals, when an acks=all write may be acknowledged, what a leader answers a follower's fetch
 * with, and what a follower does with the answer. The broker's shells (replica-manager.ts,
 * leader-session.ts, replica-streams.ts, replica-service.ts, isr-manager.ts) call these and do the I/O; the seeded
 * simulation (replication-simulation.test.ts) calls the very same functions, so what it proves is
 * what runs.
 *
 * The safety rules, and why:
 * - **Strict min ISR** (Kafka KIP-966): the high watermark advances only while the controller-
 *   confirmed ISR has at least `min.insync.replicas` members, and only to the smallest log end
 *   offset of the *maximal* ISR (confirmed ∪ proposed, KIP-497). Every member of that set holds
 *   every offset below the watermark, and any of them may be elected, so nothing below the
 *   watermark can be lost while fewer than min.insync.replicas replicas fail. acks=1 records above
 *   the watermark stay invisible to consumers until the ISR recovers.
 * - **acks=all** is acknowledged once the watermark passes the batch, which by the rule above means
 *   at least min.insync.replicas replicas hold it. If the confirmed ISR is below min.insync.replicas
 *   before that, the write fails with NOT_ENOUGH_REPLICAS_AFTER_APPEND: it is in the leader's log
 *   and its outcome is unknown (it becomes visible if the ISR recovers before the leader changes);
 *   an idempotent retry is answered as a duplicate or appended once.
 * - A follower whose whole log lies below the leader's log start truncates fully and starts there
 *   (Kafka's truncateFullyAndStartAt); one whose last epoch diverges truncates to where it diverges.
 */

export interface FollowerProgress {
  /** The follower's log end offset, from its last fetch or acknowledgement. */
  logEndOffset: bigint;
  /** When the follower was last known to have everything the leader had (Kafka's lastCaughtUpTime). */
  lastCaughtUpMs: number;
  /** When that last fetch or acknowledgement arrived, and the leader's log end offset then. */
  lastFetchMs: number;
  leaderLogEndOffsetAtLastFetch: bigint;
}

/** What the leader knows when it decides: its log, the confirmed ISR, and followers' progress. */
export interface LeaderView {
  leaderId: number;
  replicas: readonly number[];
  /** The ISR the controller confirmed (the one it elects from). */
  isr: readonly number[];
  /** An ISR proposal sent to the controller and not answered yet. */
  pendingIsr?: readonly number[];
  minInsyncReplicas: number;
  logEndOffset: bigint;
  highWatermark: bigint;
  followers: ReadonlyMap<number, FollowerProgress>;
  /** When this broker became leader at its current epoch; lag of unseen followers counts from here. */
  leaderSinceMs: number;
  /**
   * The leader's log end offset when it became leader at its current epoch. Everything committed
   * before lies below it, while a new leader's high watermark may still lag behind that.
   */
  leaderEpochStartOffset: bigint;
}

/** The confirmed ISR together with a pending proposal's members (KIP-497's "maximal ISR"). */
export function maximalIsr(v: Pick<LeaderView, 'isr' | 'pendingIsr'>): number[] {
  const out = [...v.isr];
  for (const id of v.pendingIsr ?? []) if (!out.includes(id)) out.push(id);
  return out;
}

/**
 * The leader's next high watermark: never lower than the current one; unchanged while the
 * confirmed ISR is below min.insync.replicas or a member's progress is unknown.
 */
export function nextHighWatermark(v: LeaderView): bigint {
  if (v.isr.length < v.minInsyncReplicas) return v.highWatermark;
  let hw = v.logEndOffset;
  for (const id of maximalIsr(v)) {
    if (id === v.leaderId) continue;
    const f = v.followers.get(id);
    if (!f) return v.highWatermark;
    if (f.logEndOffset < hw) hw = f.logEndOffset;
  }
  return hw > v.highWatermark ? hw : v.highWatermark;
}

/**
 * A follower's progress after it reported `fetchOffset` (its log end offset) at `nowMs`. Kafka's
 * rule: it was caught up now if it has the leader's whole log, or at its previous report if it now
 * has everything the leader had then — so a follower that keeps up with a steady stream of appends
 * (always one batch behind the live end) is not dropped from the ISR.
 */
export function followerFetched(prev: FollowerProgress | undefined, fetchOffset: bigint, leaderLogEndOffset: bigint, nowMs: number, leaderSinceMs: number): FollowerProgress {
  let lastCaughtUpMs = prev?.lastCaughtUpMs ?? leaderSinceMs;
  if (fetchOffset >= leaderLogEndOffset) lastCaughtUpMs = nowMs;
  else if (prev && fetchOffset >= prev.leaderLogEndOffsetAtLastFetch && prev.lastFetchMs > lastCaughtUpMs) lastCaughtUpMs = prev.lastFetchMs;
  return { logEndOffset: fetchOffset, lastCaughtUpMs, lastFetchMs: nowMs, leaderLogEndOffsetAtLastFetch: leaderLogEndOffset };
}

/**
 * The ISR the leader should propose, or undefined when no change is due. A member that has not
 * caught up to the log end for `lagMs` leaves (a follower never heard from since this leadership
 * began counts from its start); a replica that reached the high watermark and is caught up
 * recently joins — and has also reached the leader's epoch start offset, since a new leader's
 * watermark may lag behind what the previous leader committed (a replica that joined with less
 * could be elected and lose it; Kafka checks the same). The leader always stays. The result keeps
 * replica order.
 */
export function desiredIsr(v: LeaderView, nowMs: number, lagMs: number): number[] | undefined {
  const next = v.replicas.filter((id) => {
    if (id === v.leaderId) return true;
    const f = v.followers.get(id);
    const lastCaughtUp = f?.lastCaughtUpMs ?? v.leaderSinceMs;
    if (v.isr.includes(id)) return (f !== undefined && f.logEndOffset >= v.logEndOffset) || nowMs - lastCaughtUp <= lagMs;
    return f !== undefined && f.logEndOffset >= v.highWatermark && f.logEndOffset >= v.leaderEpochStartOffset && nowMs - f.lastCaughtUpMs <= lagMs;
  });
  const same = next.length === v.isr.length && next.every((id) => v.isr.includes(id));
  return same ? undefined : next;
}

/** Before append: whether an acks=all write may be appended at all. */
export function mayAppendAcksAll(v: Pick<LeaderView, 'isr' | 'minInsyncReplicas'>): boolean {
  return v.isr.length >= v.minInsyncReplicas;
}

export type AcksAllDecision =
  | { kind: 'ack' }
  | { kind: 'wait' }
  | { kind: 'fail'; reason: 'NOT_ENOUGH_REPLICAS_AFTER_APPEND' };

/**
 * After append: whether an acks=all write ending at `endOffset` (exclusive) is acknowledged now,
 * must wait, or fails because the ISR fell below min.insync.replicas first.
 */
export function acksAllDecision(v: Pick<LeaderView, 'isr' | 'minInsyncReplicas' | 'highWatermark'>, endOffset: bigint): AcksAllDecision {
  // The watermark only passed the batch while enough replicas held it (nextHighWatermark).
  if (v.highWatermark >= endOffset) return { kind: 'ack' };
  if (v.isr.length < v.minInsyncReplicas) return { kind: 'fail', reason: 'NOT_ENOUGH_REPLICAS_AFTER_APPEND' };
  return { kind: 'wait' };
}

/** The leader's log as the fetch decision needs it. */
export interface LeaderLogView {
  logStartOffset: bigint;
  logEndOffset: bigint;
  /** End offset (exclusive) of `epoch` in the leader's history, or of the largest epoch below it. */
  endOffsetForEpoch(epoch: number): { epoch: number; endOffset: bigint };
  latestEpoch(): number;
}

export type LeaderFetchDecision =
  /** The follower is below the log start: it must truncate fully and start at `logStartOffset`. */
  | { kind: 'below-log-start'; logStartOffset: bigint }
  /** The follower's history diverges: it must truncate to `endOffset` (at most) first. */
  | { kind: 'diverging'; epoch: number; endOffset: bigint }
  /** Serve batches from `fetchOffset`; the follower has everything below it. */
  | { kind: 'read'; fetchOffset: bigint };

/** What a leader answers a follower fetching at `fetchOffset` whose last batch has `lastFetchedEpoch`. */
export function leaderFetchDecision(log: LeaderLogView, fetchOffset: bigint, lastFetchedEpoch: number): LeaderFetchDecision {
  // Everything the follower holds lies below the leader's log start: nothing to compare, nothing kept.
  if (fetchOffset < log.logStartOffset) return { kind: 'below-log-start', logStartOffset: log.logStartOffset };
  if (lastFetchedEpoch >= 0 && fetchOffset > 0n) {
    const end = log.endOffsetForEpoch(lastFetchedEpoch);
    if (end.epoch !== lastFetchedEpoch || end.endOffset < fetchOffset) {
      // An epoch the leader no longer knows (older than its history): diverge at the log start.
      if (end.epoch < 0) return { kind: 'diverging', epoch: -1, endOffset: log.logStartOffset };
      return { kind: 'diverging', epoch: end.epoch, endOffset: end.endOffset };
    }
  }
  if (fetchOffset > log.logEndOffset) return { kind: 'diverging', epoch: log.latestEpoch(), endOffset: log.logEndOffset };
  return { kind: 'read', fetchOffset };
}

/** What the leader answered, as the follower's decision needs it. */
export interface FetchAnswer {
  logStartOffset: bigint;
  highWatermark: bigint;
  divergingEpoch?: { epoch: number; endOffset: bigint };
  /** Base offset of the first batch served, if any. */
  firstBaseOffset?: bigint;
}

export type FollowerAction =
  | { kind: 'truncate'; to: bigint }
  | { kind: 'truncate-fully-and-start-at'; offset: bigint }
  /** Append the batches at or above the log end, then follow the leader's watermark. */
  | { kind: 'append' };

/** What a follower whose log ends at `logEndOffset` does with the leader's answer. */
export function followerAction(local: { logStartOffset: bigint; logEndOffset: bigint }, answer: FetchAnswer): FollowerAction {
  if (answer.divergingEpoch) {
    const to = answer.divergingEpoch.endOffset < local.logEndOffset ? answer.divergingEpoch.endOffset : local.logEndOffset;
    // Truncating below our own start cannot bring us in line: start over at the leader's start.
    if (to < local.logStartOffset || to < answer.logStartOffset) return { kind: 'truncate-fully-and-start-at', offset: answer.logStartOffset };
    return { kind: 'truncate', to };
  }
  if (local.logEndOffset < answer.logStartOffset) return { kind: 'truncate-fully-and-start-at', offset: answer.logStartOffset };
  return { kind: 'append' };
}

/** The follower's high watermark after a fetch: the leader's, capped at its own log end. */
export function followerHighWatermark(localLogEndOffset: bigint, leaderHighWatermark: bigint): bigint {
  return leaderHighWatermark < localLogEndOffset ? leaderHighWatermark : localLogEndOffset;
}

/**
 * Followers whose progress the leader must forget when the controller's ISR changes from `prevIsr`
 * to `nextIsr` at the same leader epoch: those the controller took out. Their last report may come
 * from a disk that is gone (the controller fences a broker back with an empty data directory,
 * KIP-858); kept, it would let desiredIsr propose the empty replica straight back into the ISR.
 * A live follower reports again at its next acknowledgement.
 */
export function followersToForget(prevIsr: readonly number[], nextIsr: readonly number[], leaderId: number): number[] {
  return prevIsr.filter((id) => id !== leaderId && !nextIsr.includes(id));
}

/**
 * Whether a partition state from the metadata stream is older than what the broker already has:
 * the same leader epoch with a lower partition epoch (the leader applied its own AlterPartition
 * answer before the watch delivered the change), or a lower leader epoch.
 */
export function isStalePartitionState(current: { leaderEpoch: number; partitionEpoch: number }, incoming: { leaderEpoch: number; partitionEpoch: number }): boolean {
  if (incoming.leaderEpoch < current.leaderEpoch) return true;
  return incoming.leaderEpoch === current.leaderEpoch && incoming.partitionEpoch < current.partitionEpoch;
}
