/**
 * A consumer group as a pure state machine in the model of Kafka's KIP-848: members heartbeat
 * with their subscription and the partitions they own; the coordinator keeps a group epoch and a
 * target assignment, and answers each member with what it may own now. Reconciliation is
 * incremental: a member first gives up what moves away; a partition goes to its new owner only
 * once no other member may still own it; members whose partitions do not change never pause.
 * `heartbeat` returns the next state and the response and never mutates its input, so the shell
 * can persist the state (with a CAS) before answering.
 */

import { ASSIGNORS, type TopicPartition } from './assignors.js';

export interface MemberState {
  memberId: string;
  clientId: string;
  memberEpoch: number;
  topics: string[];
  /** Partitions the member may own right now: granted, or told to revoke but not yet released. */
  owned: TopicPartition[];
  lastHeartbeatMs: number;
}

export interface GroupState {
  groupId: string;
  assignor: string;
  groupEpoch: number;
  targetEpoch: number;
  members: Record<string, MemberState>;
  target: Record<string, TopicPartition[]>;
  /** Partition counts the target was computed from: a change bumps the group epoch. */
  partitionCounts: Record<string, number>;
  /** When the group last became empty (no members); absent while it has members. Starts offsets retention. */
  emptySinceMs?: number;
}

export interface HeartbeatRequest {
  memberId: string;
  /** 0 joins, -1 leaves, otherwise the epoch the member last received. */
  memberEpoch: number;
  clientId: string;
  topics: string[];
  ownedPartitions: TopicPartition[];
}

export interface HeartbeatResponse {
  memberId: string;
  memberEpoch: number;
  /** What the member may own now (it must release anything else it holds). */
  assignment: TopicPartition[];
}

export type GroupProblem = { reason: 'STALE_MEMBER_EPOCH' | 'UNKNOWN_MEMBER' | 'UNKNOWN_ASSIGNOR'; message: string };

export function emptyGroup(groupId: string, assignor = 'uniform'): GroupState {
  return { groupId, assignor, groupEpoch: 0, targetEpoch: 0, members: {}, target: {}, partitionCounts: {} };
}

/** Removes members whose session expired; returns the state unchanged when none did. */
export function expireMembers(group: GroupState, nowMs: number, sessionTimeoutMs: number, alive?: string): GroupState {
  const expired = Object.values(group.members).filter((m) => m.memberId !== alive && nowMs - m.lastHeartbeatMs > sessionTimeoutMs);
  if (expired.length === 0) return group;
  const members = { ...group.members };
  for (const m of expired) delete members[m.memberId];
  return { ...group, members, groupEpoch: group.groupEpoch + 1 };
}

function relevantCounts(group: GroupState, partitionCounts: ReadonlyMap<string, number>): Record<string, number> {
  const topics = new Set(Object.values(group.members).flatMap((m) => m.topics));
  const out: Record<string, number> = {};
  for (const t of [...topics].sort()) {
    const n = partitionCounts.get(t);
    if (n !== undefined) out[t] = n;
  }
  return out;
}

function sameCounts(a: Record<string, number>, b: Record<string, number>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

function recomputeTarget(group: GroupState, partitionCounts: ReadonlyMap<string, number>): GroupState {
  const counts = relevantCounts(group, partitionCounts);
  const epoch = sameCounts(counts, group.partitionCounts) ? group.groupEpoch : group.groupEpoch + 1;
  if (epoch === group.targetEpoch) return group;
  const assignor = ASSIGNORS[group.assignor]!;
  const result = assignor({
    members: Object.values(group.members).map((m) => ({ memberId: m.memberId, topics: m.topics })),
    partitionCounts: new Map(Object.entries(counts)),
    current: new Map(Object.entries(group.target)),
  });
  return { ...group, groupEpoch: epoch, targetEpoch: epoch, partitionCounts: counts, target: Object.fromEntries(result) };
}

export function heartbeat(
  group: GroupState,
  request: HeartbeatRequest,
  context: { nowMs: number; sessionTimeoutMs: number; partitionCounts: ReadonlyMap<string, number>; newMemberId: () => string },
): { group: GroupState; response: HeartbeatResponse } | { problem: GroupProblem } {
  if (!ASSIGNORS[group.assignor]) return { problem: { reason: 'UNKNOWN_ASSIGNOR', message: `unknown assignor ${group.assignor}` } };
  // The member heartbeating now is alive, however long its last heartbeat took to arrive.
  let g = expireMembers(group, context.nowMs, context.sessionTimeoutMs, request.memberId);
  const existing = request.memberId ? g.members[request.memberId] : undefined;

  if (request.memberEpoch === -1) {
    if (!existing) return { problem: { reason: 'UNKNOWN_MEMBER', message: `member ${request.memberId} is not in group ${g.groupId}` } };
    const members = { ...g.members };
    delete members[request.memberId];
    g = recomputeTarget({ ...g, members, groupEpoch: g.groupEpoch + 1 }, context.partitionCounts);
    return { group: g, response: { memberId: request.memberId, memberEpoch: -1, assignment: [] } };
  }

  let member: MemberState;
  if (request.memberEpoch === 0) {
    member = { memberId: existing?.memberId ?? (request.memberId || context.newMemberId()), clientId: request.clientId, memberEpoch: 0, topics: [...request.topics].sort(), owned: existing?.owned ?? [], lastHeartbeatMs: context.nowMs };
    g = { ...g, members: { ...g.members, [member.memberId]: member }, groupEpoch: g.groupEpoch + 1 };
  } else {
    if (!existing) return { problem: { reason: 'UNKNOWN_MEMBER', message: `member ${request.memberId} is not in group ${g.groupId} (expired or never joined); join again with epoch 0` } };
    if (request.memberEpoch !== existing.memberEpoch) {
      return { problem: { reason: 'STALE_MEMBER_EPOCH', message: `member epoch ${request.memberEpoch} is not the current ${existing.memberEpoch}` } };
    }
    member = { ...existing, lastHeartbeatMs: context.nowMs };
    const topics = [...request.topics].sort();
    if (topics.join('\u0000') !== existing.topics.join('\u0000')) {
      member = { ...member, topics };
      g = { ...g, groupEpoch: g.groupEpoch + 1 };
    }
    g = { ...g, members: { ...g.members, [member.memberId]: member } };
  }
  g = recomputeTarget(g, context.partitionCounts);

  // Reconcile: trust what the member reports owning, within what we allowed it.
  const allowed = new Set(g.members[member.memberId]!.owned);
  const owned = request.ownedPartitions.filter((p) => allowed.has(p) || request.memberEpoch === 0);
  const target = new Set(g.target[member.memberId] ?? []);
  const toRevoke = owned.filter((p) => !target.has(p));
  let assignment: TopicPartition[];
  let nextOwned: TopicPartition[];
  let memberEpoch = member.memberEpoch;
  if (toRevoke.length > 0) {
    assignment = owned.filter((p) => target.has(p));
    nextOwned = owned; // still held until the member confirms the release
  } else {
    const heldByOthers = new Set(Object.values(g.members).filter((m) => m.memberId !== member.memberId).flatMap((m) => m.owned));
    assignment = [...target].filter((p) => owned.includes(p) || !heldByOthers.has(p)).sort();
    nextOwned = assignment;
    memberEpoch = g.targetEpoch;
  }
  const updated: MemberState = { ...member, memberEpoch, owned: nextOwned };
  g = { ...g, members: { ...g.members, [member.memberId]: updated } };
  return { group: g, response: { memberId: member.memberId, memberEpoch, assignment } };
}

/** Records when a group became empty, so that its offsets' retention clock starts there (KIP-211). */
export function trackEmptiness(group: GroupState, nowMs: number): GroupState {
  const empty = Object.keys(group.members).length === 0;
  if (empty && group.emptySinceMs === undefined) return { ...group, emptySinceMs: nowMs };
  if (!empty && group.emptySinceMs !== undefined) {
    const { emptySinceMs: _, ...rest } = group;
    return rest;
  }
  return group;
}

/**
 * Whether an empty group's offsets have outlived `offsets.retention`: counted from the later of
 * when the group became empty and its last commit (an admin may commit to an empty group), as
 * Kafka does since KIP-211. A group with members never expires.
 */
export function offsetsExpired(group: GroupState, lastCommitMs: number | undefined, nowMs: number, retentionMs: number): boolean {
  if (Object.keys(group.members).length > 0 || group.emptySinceMs === undefined) return false;
  return nowMs - Math.max(group.emptySinceMs, lastCommitMs ?? 0) > retentionMs;
}

/** The group without per-heartbeat liveness, to tell a real change of state from a heartbeat. */
export function structuralView(group: GroupState): string {
  const members = Object.fromEntries(Object.entries(group.members).sort(([a], [b]) => (a < b ? -1 : 1)).map(([id, m]) => [id, { ...m, lastHeartbeatMs: 0 }]));
  return JSON.stringify({ ...group, members });
}

/**
 * Whether the group has settled on its target assignment: every member is at the target epoch and
 * owns exactly its target partitions (nothing left to revoke or to hand over). A rebalance runs
 * from a group epoch bump until this holds.
 */
export function isReconciled(group: GroupState): boolean {
  return Object.values(group.members).every((m) => {
    const target = group.target[m.memberId] ?? [];
    return m.memberEpoch === group.targetEpoch && m.owned.length === target.length && target.every((p) => m.owned.includes(p));
  });
}
