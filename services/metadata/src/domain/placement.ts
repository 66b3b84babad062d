/**
 * Replica placement for new partitions. Goals, in order: no broker twice in one partition; spread
 * each partition's replicas across racks when brokers declare racks; spread leaders (the first
 * replica, the preferred leader) and then replicas evenly across brokers, counting what the
 * cluster already holds so that adding partitions keeps the balance. Deterministic for a given
 * input, so tests and operators can predict it. Pure.
 */

export interface PlacementBroker {
  brokerId: number;
  rack?: string;
}

export interface PlacementLoad {
  /** Partitions each broker currently leads (preferred leader = first replica). */
  leaders: ReadonlyMap<number, number>;
  /** Replicas each broker currently holds. */
  replicas: ReadonlyMap<number, number>;
}

export const EMPTY_LOAD: PlacementLoad = { leaders: new Map(), replicas: new Map() };

export class PlacementError extends Error {}

export function placeReplicas(args: {
  partitionCount: number;
  replicationFactor: number;
  brokers: readonly PlacementBroker[];
  load?: PlacementLoad;
  /** Rotates tie-breaking so that topics created on an idle cluster do not all start at broker 0. */
  seed?: number;
}): number[][] {
  const { partitionCount, replicationFactor } = args;
  const brokers = [...args.brokers].sort((a, b) => a.brokerId - b.brokerId);
  if (replicationFactor < 1) throw new PlacementError('replication factor must be at least 1');
  if (replicationFactor > brokers.length) {
    throw new PlacementError(`replication factor ${replicationFactor} is larger than the ${brokers.length} live brokers`);
  }
  const leaders = new Map(args.load?.leaders ?? []);
  const replicas = new Map(args.load?.replicas ?? []);
  const n = brokers.length;
  const seed = ((args.seed ?? 0) % n + n) % n;
  // Position in a rotated order breaks ties: spreads consecutive topics over different brokers.
  const rank = new Map(brokers.map((b, i) => [b.brokerId, (i - seed + n) % n]));
  const rackCount = new Set(brokers.map((b) => b.rack ?? '')).size;

  const result: number[][] = [];
  for (let p = 0; p < partitionCount; p++) {
    const chosen: PlacementBroker[] = [];
    const usedRacks = new Map<string, number>();
    for (let r = 0; r < replicationFactor; r++) {
      let best: PlacementBroker | undefined;
      let bestKey: number[] = [];
      for (const b of brokers) {
        if (chosen.includes(b)) continue;
        const rackUses = usedRacks.get(b.rack ?? '') ?? 0;
        const key = [
          // Prefer a rack this partition uses least; only matters when racks differ.
          rackCount > 1 ? rackUses : 0,
          r === 0 ? (leaders.get(b.brokerId) ?? 0) : 0,
          replicas.get(b.brokerId) ?? 0,
          // A follower slot goes to a broker that already leads more: those that lead less will
          // take leader slots later, and so would end up with more replicas overall.
          r === 0 ? 0 : -(leaders.get(b.brokerId) ?? 0),
          (rank.get(b.brokerId)! - p % n + n) % n,
        ];
        if (!best || lexLess(key, bestKey)) {
          best = b;
          bestKey = key;
        }
      }
      chosen.push(best!);
      usedRacks.set(best!.rack ?? '', (usedRacks.get(best!.rack ?? '') ?? 0) + 1);
      replicas.set(best!.brokerId, (replicas.get(best!.brokerId) ?? 0) + 1);
      if (r === 0) leaders.set(best!.brokerId, (leaders.get(best!.brokerId) ?? 0) + 1);
    }
    result.push(chosen.map((b) => b.brokerId));
  }
  return result;
}

function lexLess(a: number[], b: number[]): boolean {
  for (let i = 0; i < a.length; i++) {
    if (a[i]! !== b[i]!) return a[i]! < b[i]!;
  }
  return false;
}

/** Current load from existing partition replica lists. */
export function loadOf(replicaLists: Iterable<readonly number[]>): PlacementLoad {
  const leaders = new Map<number, number>();
  const replicas = new Map<number, number>();
  for (const list of replicaLists) {
    const first = list[0];
    if (first !== undefined) leaders.set(first, (leaders.get(first) ?? 0) + 1);
    for (const id of list) replicas.set(id, (replicas.get(id) ?? 0) + 1);
  }
  return { leaders, replicas };
}
