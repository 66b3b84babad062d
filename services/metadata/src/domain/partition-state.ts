/**
 * The controller's decisions about one partition's leader and ISR, as pure functions of the
 * current state and the set of live brokers. They return the next state (with epochs bumped) or
 * undefined when nothing changes; the runtime persists the result with a CAS guarded by the
 * controller epoch and the partition's revision, and only then is it true.
 *
 * Epoch rules (as in Kafka KRaft): leaderEpoch increases whenever the leader changes (including to
 * "no leader"); partitionEpoch increases on every change of leader, ISR or replicas.
 */

export const NO_LEADER = -1;

export interface PartitionRecord {
  topicId: string;
  /** Assigned replicas, preferred leader first. */
  replicas: number[];
  leaderId: number;
  leaderEpoch: number;
  isr: number[];
  partitionEpoch: number;
  /** Set while a reassignment runs: the replica set it moves to. */
  targetReplicas?: number[];
}

export function initialPartitionRecord(topicId: string, replicas: number[]): PartitionRecord {
  return { topicId, replicas: [...replicas], leaderId: replicas[0] ?? NO_LEADER, leaderEpoch: 0, isr: [...replicas], partitionEpoch: 0 };
}

/**
 * Brings a partition in line with the live broker set:
 * - a live leader keeps leading; dead followers leave the ISR;
 * - a dead (or missing) leader is replaced by the first live ISR member in replica order, and the
 *   dead members leave the ISR;
 * - with no live ISR member the partition goes offline (leader -1) but keeps its last ISR, so the
 *   first of those brokers to come back leads again without losing acknowledged data;
 * - only when the topic enables unclean election may a live non-ISR replica lead (ISR = itself).
 *
 * `fenced` lists brokers whose data directory was replaced (an empty or new disk, see
 * broker-directories.ts). They count as not live for every choice above, and unlike a dead broker
 * they also leave the ISR of an offline partition: a dead ISR member still holds what the ISR
 * promised, a fenced one holds nothing, and electing it would make the others truncate to nothing.
 * If a fenced broker was the only ISR member the ISR becomes empty and the partition stays offline
 * (only unclean election can bring it back): its acknowledged records are gone with that disk.
 */
export function reconcilePartition(
  current: PartitionRecord,
  live: ReadonlySet<number>,
  options: { uncleanLeaderElection: boolean; fenced?: ReadonlySet<number> },
): PartitionRecord | undefined {
  const fenced = options.fenced;
  const eligible = fenced && fenced.size > 0 ? new Set([...live].filter((id) => !fenced.has(id))) : live;
  const leaderAlive = current.leaderId !== NO_LEADER && eligible.has(current.leaderId);
  if (leaderAlive) {
    const isr = current.isr.filter((id) => eligible.has(id));
    if (sameMembers(isr, current.isr)) return undefined;
    return { ...current, isr, partitionEpoch: current.partitionEpoch + 1 };
  }

  const candidates = current.replicas.filter((id) => current.isr.includes(id) && eligible.has(id));
  const newLeader = candidates[0];
  if (newLeader !== undefined) {
    return {
      ...current,
      leaderId: newLeader,
      leaderEpoch: current.leaderEpoch + 1,
      isr: current.isr.filter((id) => eligible.has(id)),
      partitionEpoch: current.partitionEpoch + 1,
    };
  }
  if (options.uncleanLeaderElection) {
    const unclean = current.replicas.find((id) => eligible.has(id));
    if (unclean !== undefined) {
      return {
        ...current,
        leaderId: unclean,
        leaderEpoch: current.leaderEpoch + 1,
        isr: [unclean],
        partitionEpoch: current.partitionEpoch + 1,
      };
    }
  }
  // Keep the ISR as it was, less fenced brokers: its members hold every acknowledged record, so one
  // of them must lead next.
  const isr = fenced ? current.isr.filter((id) => !fenced.has(id)) : current.isr;
  if (current.leaderId === NO_LEADER) {
    if (sameMembers(isr, current.isr)) return undefined;
    return { ...current, isr, partitionEpoch: current.partitionEpoch + 1 };
  }
  return { ...current, leaderId: NO_LEADER, leaderEpoch: current.leaderEpoch + 1, isr, partitionEpoch: current.partitionEpoch + 1 };
}

/** Moves leadership to the preferred (first) replica if it is live, in the ISR, and not leading. */
export function electPreferredLeader(current: PartitionRecord, live: ReadonlySet<number>): PartitionRecord | undefined {
  const preferred = current.replicas[0];
  if (preferred === undefined || preferred === current.leaderId) return undefined;
  if (!live.has(preferred) || !current.isr.includes(preferred)) return undefined;
  return { ...current, leaderId: preferred, leaderEpoch: current.leaderEpoch + 1, partitionEpoch: current.partitionEpoch + 1 };
}

export type AlterPartitionProblem =
  | { reason: 'NOT_LEADER_OR_FOLLOWER'; message: string }
  | { reason: 'FENCED_LEADER_EPOCH'; message: string }
  | { reason: 'STALE_PARTITION_EPOCH'; message: string }
  | { reason: 'INVALID_ISR'; message: string };

/** Validates a leader's ISR proposal (Kafka's AlterPartition) against the current state. */
export function applyAlterPartition(
  current: PartitionRecord,
  request: { brokerId: number; leaderEpoch: number; partitionEpoch: number; newIsr: readonly number[] },
  live: ReadonlySet<number>,
): { next: PartitionRecord } | { problem: AlterPartitionProblem } {
  if (request.leaderEpoch !== current.leaderEpoch) {
    return { problem: { reason: 'FENCED_LEADER_EPOCH', message: `leader epoch ${request.leaderEpoch} is not the current ${current.leaderEpoch}` } };
  }
  if (request.brokerId !== current.leaderId) {
    return { problem: { reason: 'NOT_LEADER_OR_FOLLOWER', message: `broker ${request.brokerId} is not the leader (leader is ${current.leaderId})` } };
  }
  if (request.partitionEpoch !== current.partitionEpoch) {
    return { problem: { reason: 'STALE_PARTITION_EPOCH', message: `partition epoch ${request.partitionEpoch} is not the current ${current.partitionEpoch}` } };
  }
  const isr = [...request.newIsr];
  if (new Set(isr).size !== isr.length) return { problem: { reason: 'INVALID_ISR', message: 'ISR lists a broker twice' } };
  if (!isr.includes(current.leaderId)) return { problem: { reason: 'INVALID_ISR', message: 'ISR must contain the leader' } };
  const notReplica = isr.find((id) => !current.replicas.includes(id));
  if (notReplica !== undefined) return { problem: { reason: 'INVALID_ISR', message: `broker ${notReplica} is not a replica of the partition` } };
  const notLive = isr.find((id) => !current.isr.includes(id) && !live.has(id));
  if (notLive !== undefined) return { problem: { reason: 'INVALID_ISR', message: `broker ${notLive} is not live and cannot join the ISR` } };
  // Keep replica order so the ISR reads the same everywhere.
  const ordered = current.replicas.filter((id) => isr.includes(id));
  return { next: { ...current, isr: ordered, partitionEpoch: current.partitionEpoch + 1 } };
}

/**
 * The leader reports its own replica offline (a storage error): it leaves the ISR and the first
 * other live ISR member in replica order leads. With no such member the request is refused: the
 * ISR's members hold every acknowledged record, so leadership must not leave them.
 */
export function applyLeaderReplicaOffline(
  current: PartitionRecord,
  request: { brokerId: number; leaderEpoch: number },
  live: ReadonlySet<number>,
): { next: PartitionRecord } | { problem: AlterPartitionProblem } {
  if (request.leaderEpoch !== current.leaderEpoch) {
    return { problem: { reason: 'FENCED_LEADER_EPOCH', message: `leader epoch ${request.leaderEpoch} is not the current ${current.leaderEpoch}` } };
  }
  if (request.brokerId !== current.leaderId) {
    return { problem: { reason: 'NOT_LEADER_OR_FOLLOWER', message: `broker ${request.brokerId} is not the leader (leader is ${current.leaderId})` } };
  }
  const next = current.replicas.find((id) => id !== current.leaderId && current.isr.includes(id) && live.has(id));
  if (next === undefined) {
    return { problem: { reason: 'INVALID_ISR', message: `no other live in-sync replica can take over from broker ${current.leaderId}` } };
  }
  return {
    next: {
      ...current,
      leaderId: next,
      leaderEpoch: current.leaderEpoch + 1,
      isr: current.isr.filter((id) => id !== current.leaderId),
      partitionEpoch: current.partitionEpoch + 1,
    },
  };
}

function sameMembers(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}

/**
 * Starts a reassignment: replicas become the target followed by the old replicas not in it, so the
 * new ones start following while the old ones keep the data safe.
 */
export function startReassignment(current: PartitionRecord, target: readonly number[]): PartitionRecord | undefined {
  const same = target.length === current.replicas.length && target.every((id, i) => current.replicas[i] === id);
  if (same && !current.targetReplicas) return undefined;
  const replicas = [...target, ...current.replicas.filter((id) => !target.includes(id))];
  return { ...current, replicas, targetReplicas: [...target], partitionEpoch: current.partitionEpoch + 1 };
}

/**
 * Completes a reassignment once every target replica is in the ISR: old replicas go, and a leader
 * that is not a target hands over to the first target in the ISR.
 */
export function completeReassignment(current: PartitionRecord): PartitionRecord | undefined {
  const target = current.targetReplicas;
  if (!target?.every((id) => current.isr.includes(id))) return undefined;
  const { targetReplicas: _done, ...rest } = current;
  const isr = target.filter((id) => current.isr.includes(id));
  const leaderMoves = !target.includes(current.leaderId);
  return {
    ...rest,
    replicas: [...target],
    isr,
    leaderId: leaderMoves ? target.find((id) => isr.includes(id))! : current.leaderId,
    leaderEpoch: leaderMoves ? current.leaderEpoch + 1 : current.leaderEpoch,
    partitionEpoch: current.partitionEpoch + 1,
  };
}
