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
import { type MemberTasks, type StreamsSubtopology, streamsAssignor, isTopologyProblem, taskPartitions, topologyProblem } from './streams-assignor.js';

/** The assignor for stream-processing members (KIP-1071): tasks, standbys, stickiness to local state. */
export const STREAMS_ASSIGNOR = 'streams';
const knownAssignor = (name: string) => name === STREAMS_ASSIGNOR || ASSIGNORS[name] !== undefined;

export interface MemberState {
  memberId: string;
  clientId: string;
  memberEpoch: number;
  topics: string[];
  /** Partitions the member may own right now: granted, or told to revoke but not yet released. */
  owned: TopicPartition[];
  lastHeartbeatMs: number;
  /**
   * Streams members: offset sum per task the member holds local state for, as last reported. Not
   * part of the structural view: a heartbeat that only refreshes these does not rewrite the group
   * key, so the stored values are those of the member's last structural change (the assignor runs
   * only on such changes, with the reporting member's fresh values).
   */
  taskOffsets?: Record<string, number>;
  /** Streams members: the standby tasks last given to the member. */
  standby?: string[];
}

/** A streams group's topology, standby count and task target (the partition target is derived from its active tasks). */
export interface StreamsGroupState {
  subtopologies: StreamsSubtopology[];
  numStandbyReplicas: number;
  tasks: Record<string, MemberTasks>;
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
  /** Groups with the streams assignor. */
  streams?: StreamsGroupState;
}

/** What a streams member sends: the topology (members of one group must agree), the standby count, its local state. */
export interface StreamsMemberRequest {
  subtopologies: StreamsSubtopology[];
  numStandbyReplicas: number;
  /** Offset sum per task with local state (numbers: exact up to 2^53, and only ever compared). */
  taskOffsets: Record<string, number>;
}

export interface HeartbeatRequest {
  memberId: string;
  /** 0 joins, -1 leaves, otherwise the epoch the member last received. */
  memberEpoch: number;
  clientId: string;
  topics: string[];
  ownedPartitions: TopicPartition[];
  /** The assignor the member asks for: adopted when no other member is in the group. */
  serverAssignor?: string;
  /** Required in a streams group (and only there); its source topics replace `topics`. */
  streams?: StreamsMemberRequest;
}

export interface HeartbeatResponse {
  memberId: string;
  memberEpoch: number;
  /** What the member may own now (it must release anything else it holds). */
  assignment: TopicPartition[];
  /** Streams members: the standby tasks the member should keep restored (empty otherwise). */
  standbyTasks: string[];
}

export type GroupProblem = { reason: 'STALE_MEMBER_EPOCH' | 'UNKNOWN_MEMBER' | 'UNKNOWN_ASSIGNOR' | 'INVALID_TOPOLOGY' | 'INVALID_REQUEST'; message: string };

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
  if (group.assignor === STREAMS_ASSIGNOR) return recomputeStreamsTarget(group, counts, epoch);
  const assignor = ASSIGNORS[group.assignor]!;
  const result = assignor({
    members: Object.values(group.members).map((m) => ({ memberId: m.memberId, topics: m.topics })),
    partitionCounts: new Map(Object.entries(counts)),
    current: new Map(Object.entries(group.target)),
  });
  return { ...group, groupEpoch: epoch, targetEpoch: epoch, partitionCounts: counts, target: Object.fromEntries(result) };
}

/**
 * Tasks to the streams assignor, active tasks back to partitions: the partition target drives the
 * same incremental reconciliation as any group (a task's partitions reach its new owner only once
 * the old owner released them). Topology problems were refused on the heartbeat; one that appears
 * anyway (a topic re-created with another count while a member leaves) keeps the previous target.
 */
function recomputeStreamsTarget(group: GroupState, counts: Record<string, number>, epoch: number): GroupState {
  const streams = group.streams ?? { subtopologies: [], numStandbyReplicas: 0, tasks: {} };
  const result = streamsAssignor({
    subtopologies: streams.subtopologies,
    partitionCounts: new Map(Object.entries(counts)),
    members: Object.values(group.members).map((m) => ({ memberId: m.memberId, taskOffsets: m.taskOffsets ?? {} })),
    current: streams.tasks,
    numStandbyReplicas: streams.numStandbyReplicas,
  });
  const tasks: Record<string, MemberTasks> = isTopologyProblem(result)
    ? Object.fromEntries(Object.keys(group.members).map((id) => [id, streams.tasks[id] ?? { active: [], standby: [] }]))
    : Object.fromEntries(result);
  const target = Object.fromEntries(Object.entries(tasks).map(([id, t]) => [id, t.active.flatMap((task) => taskPartitions(streams.subtopologies, task)).sort()]));
  return { ...group, groupEpoch: epoch, targetEpoch: epoch, partitionCounts: counts, target, streams: { ...streams, tasks } };
}

const sameTopology = (a: readonly StreamsSubtopology[], b: readonly StreamsSubtopology[]) => canonicalTopology(a) === canonicalTopology(b);

function canonicalTopology(list: readonly StreamsSubtopology[]): string {
  return JSON.stringify(
    [...list]
      .map((s) => ({ subtopologyId: s.subtopologyId, sourceTopics: [...s.sourceTopics].sort(), changelogTopics: [...s.changelogTopics].sort() }))
      .sort((a, b) => (a.subtopologyId < b.subtopologyId ? -1 : 1)),
  );
}

/** Names the first difference between two topologies, for the refusal message. */
function topologyDifference(group: readonly StreamsSubtopology[], member: readonly StreamsSubtopology[]): string {
  const show = (s: StreamsSubtopology | undefined) => (s ? `sources [${[...s.sourceTopics].sort().join(', ')}], changelogs [${[...s.changelogTopics].sort().join(', ')}]` : 'absent');
  const ids = [...new Set([...group, ...member].map((s) => s.subtopologyId))].sort();
  for (const id of ids) {
    const g = group.find((s) => s.subtopologyId === id);
    const m = member.find((s) => s.subtopologyId === id);
    if (!g || !m || canonicalTopology([g]) !== canonicalTopology([m])) return `subtopology ${id}: the group's has ${show(g)}, this member's has ${show(m)}`;
  }
  return 'the topologies differ';
}

/**
 * Streams checks and bookkeeping before the usual heartbeat: a streams group needs the topology
 * from every member, the same one from all of them (adopted from the member when it is alone),
 * and topics that make it co-partitioned. Returns the group with the topology adopted and the
 * member's topics (the topology's source topics).
 */
function admitStreamsMember(
  g: GroupState,
  request: HeartbeatRequest,
  partitionCounts: ReadonlyMap<string, number>,
): { group: GroupState; topics: string[] } | { problem: GroupProblem } {
  const streams = request.streams;
  if (g.assignor !== STREAMS_ASSIGNOR) {
    if (streams) return { problem: { reason: 'INVALID_REQUEST', message: `group ${g.groupId} uses the ${g.assignor} assignor; a member sending a streams topology needs server_assignor streams in a group without other members` } };
    return { group: g, topics: request.topics };
  }
  if (!streams) return { problem: { reason: 'INVALID_REQUEST', message: `group ${g.groupId} uses the streams assignor: every member sends its topology (streams)` } };
  const others = Object.keys(g.members).filter((id) => id !== request.memberId);
  let next = g;
  if (!g.streams || others.length === 0) {
    const changed = !g.streams || !sameTopology(g.streams.subtopologies, streams.subtopologies) || g.streams.numStandbyReplicas !== streams.numStandbyReplicas;
    if (changed) {
      const subtopologies = streams.subtopologies.map((s) => ({ subtopologyId: s.subtopologyId, sourceTopics: [...s.sourceTopics].sort(), changelogTopics: [...s.changelogTopics].sort() }));
      next = { ...g, groupEpoch: g.groupEpoch + 1, streams: { subtopologies, numStandbyReplicas: streams.numStandbyReplicas, tasks: g.streams?.tasks ?? {} } };
    }
  } else if (!sameTopology(g.streams.subtopologies, streams.subtopologies)) {
    return { problem: { reason: 'INVALID_TOPOLOGY', message: `this member's topology differs from the one the members of group ${g.groupId} run: ${topologyDifference(g.streams.subtopologies, streams.subtopologies)}` } };
  } else if (g.streams.numStandbyReplicas !== streams.numStandbyReplicas) {
    return { problem: { reason: 'INVALID_TOPOLOGY', message: `num_standby_replicas ${streams.numStandbyReplicas} differs from the ${g.streams.numStandbyReplicas} the members of group ${g.groupId} use` } };
  }
  const problem = topologyProblem(streams.subtopologies, partitionCounts);
  if (problem) return { problem };
  return { group: next, topics: [...new Set(streams.subtopologies.flatMap((s) => s.sourceTopics))].sort() };
}

export function heartbeat(
  group: GroupState,
  request: HeartbeatRequest,
  context: { nowMs: number; sessionTimeoutMs: number; partitionCounts: ReadonlyMap<string, number>; newMemberId: () => string },
): { group: GroupState; response: HeartbeatResponse } | { problem: GroupProblem } {
  // The member heartbeating now is alive, however long its last heartbeat took to arrive.
  let g = expireMembers(group, context.nowMs, context.sessionTimeoutMs, request.memberId);
  const alone = Object.keys(g.members).every((id) => id === request.memberId);
  if (request.memberEpoch !== -1 && request.serverAssignor && request.serverAssignor !== g.assignor && alone && knownAssignor(request.serverAssignor)) {
    // The assignor is fixed by the first member to join a group without members.
    const { streams: _, ...rest } = g;
    g = { ...rest, assignor: request.serverAssignor, target: {}, groupEpoch: g.groupEpoch + 1 };
  }
  if (!knownAssignor(g.assignor)) return { problem: { reason: 'UNKNOWN_ASSIGNOR', message: `unknown assignor ${g.assignor}` } };
  const existing = request.memberId ? g.members[request.memberId] : undefined;

  if (request.memberEpoch === -1) {
    if (!existing) return { problem: { reason: 'UNKNOWN_MEMBER', message: `member ${request.memberId} is not in group ${g.groupId}` } };
    const members = { ...g.members };
    delete members[request.memberId];
    g = recomputeTarget({ ...g, members, groupEpoch: g.groupEpoch + 1 }, context.partitionCounts);
    return { group: g, response: { memberId: request.memberId, memberEpoch: -1, assignment: [], standbyTasks: [] } };
  }

  const admitted = admitStreamsMember(g, request, context.partitionCounts);
  if ('problem' in admitted) return admitted;
  g = admitted.group;
  const taskOffsets = g.assignor === STREAMS_ASSIGNOR ? { ...request.streams!.taskOffsets } : undefined;

  let member: MemberState;
  if (request.memberEpoch === 0) {
    member = { memberId: existing?.memberId ?? (request.memberId || context.newMemberId()), clientId: request.clientId, memberEpoch: 0, topics: [...admitted.topics].sort(), owned: existing?.owned ?? [], lastHeartbeatMs: context.nowMs, ...(taskOffsets ? { taskOffsets } : {}) };
    g = { ...g, members: { ...g.members, [member.memberId]: member }, groupEpoch: g.groupEpoch + 1 };
  } else {
    if (!existing) return { problem: { reason: 'UNKNOWN_MEMBER', message: `member ${request.memberId} is not in group ${g.groupId} (expired or never joined); join again with epoch 0` } };
    if (request.memberEpoch !== existing.memberEpoch) {
      return { problem: { reason: 'STALE_MEMBER_EPOCH', message: `member epoch ${request.memberEpoch} is not the current ${existing.memberEpoch}` } };
    }
    member = { ...existing, lastHeartbeatMs: context.nowMs, ...(taskOffsets ? { taskOffsets } : {}) };
    const topics = [...admitted.topics].sort();
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
  const standbyTasks = g.streams ? streamsStandby(g, member, assignment) : [];
  const updated: MemberState = { ...member, memberEpoch, owned: nextOwned, ...(g.streams ? { standby: standbyTasks } : {}) };
  g = { ...g, members: { ...g.members, [member.memberId]: updated } };
  return { group: g, response: { memberId: member.memberId, memberEpoch, assignment, standbyTasks } };
}

/**
 * The member's target standby tasks, plus any standby it had that is now its active task but
 * whose partitions it has not been given yet (their old owner has not released them): the member
 * keeps that copy restored until the task starts, so the new owner replays only the tail.
 */
function streamsStandby(g: GroupState, member: MemberState, assignment: readonly TopicPartition[]): string[] {
  const tasks = g.streams!.tasks[member.memberId] ?? { active: [], standby: [] };
  const granted = new Set(assignment);
  const waiting = tasks.active.filter((t) => (member.standby ?? []).includes(t) && !taskPartitions(g.streams!.subtopologies, t).every((p) => granted.has(p)));
  return [...tasks.standby, ...waiting].sort();
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
  const members = Object.fromEntries(Object.entries(group.members).sort(([a], [b]) => (a < b ? -1 : 1)).map(([id, m]) => [id, { ...m, lastHeartbeatMs: 0, taskOffsets: undefined }]));
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
