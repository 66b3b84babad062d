/**
 * The `streams` assignor: server-side task assignment for stream-processing members, in the model
 * of Kafka's KIP-1071 (its StickyTaskAssignor). A pure, deterministic function.
 *
 * Tasks. Members describe one topology: subtopologies, each with its source topics (co-partitioned:
 * every source topic of a subtopology has the same partition count n) and the changelog topics of
 * its state stores. Subtopology s yields tasks `${s}_0` .. `${s}_${n-1}`; task `${s}_${p}` reads
 * partition p of every source topic of s. A subtopology with a changelog topic is stateful.
 *
 * Local state. Each member reports, per task it holds state for, the task's offset sum: the sum
 * of the changelog offsets its local stores are checkpointed at. Every member compares against the
 * same changelogs, so a higher offset sum means less to restore (lower lag).
 *
 * Rules, in order:
 *  1. Sticky: every active task stays with its current owner (if still a member).
 *  2. Unowned active tasks go to the member with local state for it (highest offset sum) unless
 *     that member already has its fair share, else to the least-loaded member.
 *  3. Balance, per class (stateful tasks, then stateless ones): while some member has two more
 *     tasks of a class than another, one moves from the heaviest to the lightest, preferring a
 *     task the receiver has state for. Stateless tasks then also move from a member with one more
 *     of them to one with two fewer tasks in all, so total counts differ by at most one too.
 *  4. Standbys: each stateful task gets up to `numStandbyReplicas` standby copies (fewer when
 *     there are not enough members), never on the member running it active and never two on one
 *     member; a previous standby holder keeps its copy, then members with state for the task
 *     (highest offset sum first), then the member with the fewest standbys.
 *
 * Stateful tasks are balanced on their own because they are the expensive ones: a join that
 * balanced only totals could give the new member every stateless task and leave the state where
 * it was, which defeats standbys and spreads no restore work.
 */

export interface StreamsSubtopology {
  /** 1-64 characters of [a-zA-Z0-9._-]; tasks are `${subtopologyId}_${partition}`. */
  subtopologyId: string;
  sourceTopics: string[];
  changelogTopics: string[];
}

export interface StreamsAssignorInput {
  subtopologies: readonly StreamsSubtopology[];
  partitionCounts: ReadonlyMap<string, number>;
  /** Members with the offset sums of the tasks they hold local state for. */
  members: ReadonlyArray<{ memberId: string; taskOffsets: Readonly<Record<string, number>> }>;
  /** The previous target, for stickiness. */
  current: Readonly<Record<string, { active: readonly string[]; standby: readonly string[] }>>;
  numStandbyReplicas: number;
}

export interface MemberTasks {
  active: string[];
  standby: string[];
}

export type StreamsAssignment = Map<string, MemberTasks>;

export type TopologyProblem = { reason: 'INVALID_TOPOLOGY'; message: string };

export const taskId = (subtopologyId: string, partition: number) => `${subtopologyId}_${partition}`;

/** Subtopology and partition of a task id (split at the last '_'). */
export function parseTaskId(id: string): { subtopologyId: string; partition: number } | undefined {
  const i = id.lastIndexOf('_');
  if (i <= 0) return undefined;
  const partition = Number(id.slice(i + 1));
  return Number.isInteger(partition) && partition >= 0 && String(partition) === id.slice(i + 1) ? { subtopologyId: id.slice(0, i), partition } : undefined;
}

/**
 * Whether the topology can be turned into tasks on these topics: every source topic of a
 * subtopology has the same partition count, and no topic is the source of two subtopologies.
 * A source topic that does not exist yet is left out (its subtopology has no tasks until it does).
 */
export function topologyProblem(subtopologies: readonly StreamsSubtopology[], partitionCounts: ReadonlyMap<string, number>): TopologyProblem | undefined {
  const sourceOf = new Map<string, string>();
  for (const s of subtopologies) {
    for (const t of s.sourceTopics) {
      const other = sourceOf.get(t);
      if (other !== undefined && other !== s.subtopologyId) {
        return {
          reason: 'INVALID_TOPOLOGY',
          message: `topic ${t} is a source of subtopologies ${other} and ${s.subtopologyId}; a topic may feed one subtopology`,
        };
      }
      sourceOf.set(t, s.subtopologyId);
    }
    const known = s.sourceTopics.filter((t) => partitionCounts.has(t)).sort();
    for (const t of known) {
      const first = known[0]!;
      if (partitionCounts.get(t) !== partitionCounts.get(first)) {
        return {
          reason: 'INVALID_TOPOLOGY',
          message: `subtopology ${s.subtopologyId} is not co-partitioned: source topic ${first} has ${partitionCounts.get(first)} partitions and ${t} has ${partitionCounts.get(t)}`,
        };
      }
    }
  }
  return undefined;
}

/** Every task of the topology, with whether it is stateful, in a stable order. */
export function topologyTasks(
  subtopologies: readonly StreamsSubtopology[],
  partitionCounts: ReadonlyMap<string, number>,
): Array<{ id: string; stateful: boolean }> {
  const out: Array<{ id: string; stateful: boolean }> = [];
  for (const s of [...subtopologies].sort((a, b) => (a.subtopologyId < b.subtopologyId ? -1 : a.subtopologyId > b.subtopologyId ? 1 : 0))) {
    const known = s.sourceTopics.filter((t) => partitionCounts.has(t));
    if (known.length < s.sourceTopics.length || known.length === 0) continue;
    const n = partitionCounts.get(known[0]!)!;
    for (let p = 0; p < n; p++) out.push({ id: taskId(s.subtopologyId, p), stateful: s.changelogTopics.length > 0 });
  }
  return out;
}

/** The partitions ("topic:partition") an active task reads. */
export function taskPartitions(subtopologies: readonly StreamsSubtopology[], id: string): string[] {
  const parsed = parseTaskId(id);
  const s = parsed && subtopologies.find((x) => x.subtopologyId === parsed.subtopologyId);
  return s ? s.sourceTopics.map((t) => `${t}:${parsed.partition}`) : [];
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export function streamsAssignor(input: StreamsAssignorInput): StreamsAssignment | TopologyProblem {
  const problem = topologyProblem(input.subtopologies, input.partitionCounts);
  if (problem) return problem;
  const tasks = topologyTasks(input.subtopologies, input.partitionCounts);
  const stateful = new Set(tasks.filter((t) => t.stateful).map((t) => t.id));
  const members = [...input.members].sort((a, b) => cmp(a.memberId, b.memberId));
  const out: StreamsAssignment = new Map(members.map((m) => [m.memberId, { active: [], standby: [] }]));
  if (members.length === 0) return out;
  const offsets = new Map(members.map((m) => [m.memberId, m.taskOffsets]));
  /** -1 when the member has no state for the task. */
  const offsetOf = (memberId: string, task: string) => offsets.get(memberId)?.[task] ?? -1;

  // Sets and load counters: the balance loop runs once per moved task, so each step stays
  // O(members + tasks per member) (10,000 tasks over 100 members assign in well under a second).
  const owner = new Map<string, string>();
  /** Per member, its active tasks of each class (stateful, stateless). */
  const activeSets = new Map(members.map((m) => [m.memberId, { stateful: new Set<string>(), stateless: new Set<string>() }]));
  const classOf = (task: string) => stateful.has(task);
  const setOf = (id: string, cls: boolean) => (cls ? activeSets.get(id)!.stateful : activeSets.get(id)!.stateless);
  const classLoad = (id: string, cls: boolean) => setOf(id, cls).size;
  const load = (id: string) => classLoad(id, true) + classLoad(id, false);
  const give = (task: string, to: string) => {
    const from = owner.get(task);
    if (from !== undefined) setOf(from, classOf(task)).delete(task);
    owner.set(task, to);
    setOf(to, classOf(task)).add(task);
  };

  // 1. Sticky.
  const exists = new Set(tasks.map((t) => t.id));
  for (const [memberId, assigned] of Object.entries(input.current).sort(([a], [b]) => cmp(a, b))) {
    if (!activeSets.has(memberId)) continue;
    for (const t of assigned.active) if (exists.has(t) && !owner.has(t)) give(t, memberId);
  }

  // 2. Unowned tasks, stateful first (they are the ones where placement saves a restore).
  const fairShare = (cls: boolean) => Math.ceil((cls ? stateful.size : tasks.length - stateful.size) / members.length);
  const ids = members.map((m) => m.memberId);
  /** The member with the fewest tasks of the class, then the fewest in all, then the lowest id. */
  const lightest = (cls: boolean, candidates: readonly string[]) =>
    candidates.reduce((best, id) => ((classLoad(id, cls) - classLoad(best, cls) || load(id) - load(best) || cmp(id, best)) < 0 ? id : best));
  const heaviest = (cls: boolean, candidates: readonly string[]) =>
    candidates.reduce((best, id) => ((classLoad(best, cls) - classLoad(id, cls) || load(best) - load(id) || cmp(id, best)) < 0 ? id : best));
  for (const cls of [true, false]) {
    for (const t of tasks) {
      if (t.stateful !== cls || owner.has(t.id)) continue;
      const withState = ids.filter((id) => offsetOf(id, t.id) >= 0 && classLoad(id, cls) < fairShare(cls));
      withState.sort((a, b) => offsetOf(b, t.id) - offsetOf(a, t.id) || classLoad(a, cls) - classLoad(b, cls) || cmp(a, b));
      give(t.id, withState[0] ?? lightest(cls, ids));
    }
  }

  // 3. Balance each class; stateless tasks also even out the totals.
  /** The task of the class the receiver has the most state for, else the first of the class `from` holds. */
  const pickToMove = (from: string, to: string, cls: boolean) => {
    let best: string | undefined;
    for (const [t, offset] of Object.entries(offsets.get(to) ?? {})) {
      if (owner.get(t) !== from || classOf(t) !== cls) continue;
      if (best === undefined || offset > offsetOf(to, best) || (offset === offsetOf(to, best) && t > best)) best = t;
    }
    if (best !== undefined) return best;
    for (const t of setOf(from, cls)) return t;
    return undefined;
  };
  const nextMove = (cls: boolean): { from: string; to: string } | undefined => {
    const from = heaviest(cls, ids);
    const to = lightest(cls, ids);
    if (classLoad(from, cls) - classLoad(to, cls) >= 2) return { from, to };
    if (cls) return undefined;
    // Class loads now differ by at most one: move from a member with one more of the class to one
    // with two fewer tasks in all, so that totals differ by at most one as well.
    const top = classLoad(from, cls);
    if (classLoad(to, cls) !== top - 1) return undefined;
    const busiest = ids.filter((id) => classLoad(id, cls) === top).reduce((a, b) => (load(b) > load(a) ? b : a));
    const idlest = ids.filter((id) => classLoad(id, cls) === top - 1).reduce((a, b) => (load(b) < load(a) ? b : a));
    return load(busiest) - load(idlest) >= 2 ? { from: busiest, to: idlest } : undefined;
  };
  for (const cls of [true, false]) {
    for (let guard = 0; guard <= tasks.length * 2; guard++) {
      const move = nextMove(cls);
      if (!move) break;
      give(pickToMove(move.from, move.to, cls)!, move.to);
    }
  }
  for (const [id, sets] of activeSets) out.get(id)!.active = [...sets.stateful, ...sets.stateless];

  // 4. Standbys.
  const n = Math.max(0, Math.min(input.numStandbyReplicas, members.length - 1));
  const previous = new Map<string, Set<string>>();
  for (const [id, m] of Object.entries(input.current)) {
    for (const t of m.standby) {
      if (!previous.has(t)) previous.set(t, new Set());
      previous.get(t)!.add(id);
    }
  }
  if (n > 0) {
    for (const t of tasks) {
      if (!t.stateful) continue;
      const was = previous.get(t.id);
      const better = (a: string, b: string) =>
        Number(was?.has(b) ?? false) - Number(was?.has(a) ?? false) ||
        offsetOf(b, t.id) - offsetOf(a, t.id) ||
        out.get(a)!.standby.length - out.get(b)!.standby.length ||
        load(a) - load(b) ||
        cmp(a, b);
      const holders = new Set<string>();
      for (let copy = 0; copy < n; copy++) {
        let chosen: string | undefined;
        for (const id of ids) if (id !== owner.get(t.id) && !holders.has(id) && (chosen === undefined || better(id, chosen) < 0)) chosen = id;
        if (chosen === undefined) break;
        holders.add(chosen);
        out.get(chosen)!.standby.push(t.id);
      }
    }
  }

  const order = new Map(tasks.map((t, i) => [t.id, i]));
  for (const m of out.values()) {
    m.active.sort((a, b) => order.get(a)! - order.get(b)!);
    m.standby.sort((a, b) => order.get(a)! - order.get(b)!);
  }
  return out;
}

export function isTopologyProblem(x: StreamsAssignment | TopologyProblem): x is TopologyProblem {
  return 'reason' in x;
}
