/**
 * Server-side assignors: deterministic pure functions from (members and their subscriptions,
 * partition counts, current target) to a new target assignment. Partitions are "topic:partition"
 * strings so sets and maps stay cheap and printable.
 */

export type TopicPartition = string;
export const tp = (topic: string, partition: number): TopicPartition => `${topic}:${partition}`;
export const topicOf = (p: TopicPartition): string => p.slice(0, p.lastIndexOf(':'));

export interface AssignorInput {
  members: ReadonlyArray<{ memberId: string; topics: readonly string[] }>;
  partitionCounts: ReadonlyMap<string, number>;
  /** The previous target, for sticky assignors. */
  current: ReadonlyMap<string, readonly TopicPartition[]>;
}

export type Assignment = Map<string, TopicPartition[]>;
export type Assignor = (input: AssignorInput) => Assignment;

const byId = <T extends { memberId: string }>(a: T, b: T) => (a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0);
const sortTps = (list: TopicPartition[]) => list.sort((a, b) => {
  const ta = topicOf(a);
  const tb = topicOf(b);
  return ta !== tb ? (ta < tb ? -1 : 1) : Number(a.slice(ta.length + 1)) - Number(b.slice(tb.length + 1));
});

function empty(input: AssignorInput): Assignment {
  return new Map([...input.members].sort(byId).map((m) => [m.memberId, [] as TopicPartition[]]));
}

function subscribedTopics(input: AssignorInput): string[] {
  return [...new Set(input.members.flatMap((m) => m.topics))].filter((t) => input.partitionCounts.has(t)).sort();
}

/** Kafka's range: per topic, contiguous ranges to the subscribed members in id order. */
export const rangeAssignor: Assignor = (input) => {
  const out = empty(input);
  for (const topic of subscribedTopics(input)) {
    const members = input.members.filter((m) => m.topics.includes(topic)).sort(byId);
    const n = input.partitionCounts.get(topic)!;
    const per = Math.floor(n / members.length);
    const extra = n % members.length;
    let p = 0;
    members.forEach((m, i) => {
      const count = per + (i < extra ? 1 : 0);
      for (let k = 0; k < count; k++) out.get(m.memberId)!.push(tp(topic, p++));
    });
  }
  return out;
};

/** Round robin over all subscribed partitions, each to the next member subscribed to its topic. */
export const roundRobinAssignor: Assignor = (input) => {
  const out = empty(input);
  const members = [...input.members].sort(byId);
  let cursor = 0;
  for (const topic of subscribedTopics(input)) {
    for (let p = 0; p < input.partitionCounts.get(topic)!; p++) {
      for (let tries = 0; tries < members.length; tries++) {
        const m = members[cursor++ % members.length]!;
        if (m.topics.includes(topic)) {
          out.get(m.memberId)!.push(tp(topic, p));
          break;
        }
      }
    }
  }
  return out;
};

/**
 * Uniform and sticky: keeps every partition where it is unless balance requires a move, then
 * hands out unowned partitions to the least-loaded eligible member, then moves partitions from the
 * most- to the least-loaded eligible member until no member has two more than another it could
 * give to. Works with different subscriptions per member.
 */
export const uniformAssignor: Assignor = (input) => {
  const out = empty(input);
  const subscribers = new Map<string, string[]>();
  for (const m of [...input.members].sort(byId)) for (const t of m.topics) {
    if (!subscribers.has(t)) subscribers.set(t, []);
    subscribers.get(t)!.push(m.memberId);
  }
  const eligible = (memberId: string, p: TopicPartition) => subscribers.get(topicOf(p))?.includes(memberId) ?? false;
  const all: TopicPartition[] = [];
  for (const topic of subscribedTopics(input)) for (let p = 0; p < input.partitionCounts.get(topic)!; p++) all.push(tp(topic, p));
  const exists = new Set(all);
  const owner = new Map<TopicPartition, string>();
  for (const [memberId, list] of [...input.current.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (!out.has(memberId)) continue;
    for (const p of list) {
      if (exists.has(p) && !owner.has(p) && eligible(memberId, p)) {
        owner.set(p, memberId);
        out.get(memberId)!.push(p);
      }
    }
  }
  const load = (id: string) => out.get(id)!.length;
  const leastLoaded = (candidates: string[]) => candidates.reduce((best, id) => (load(id) < load(best) || (load(id) === load(best) && id < best) ? id : best));
  for (const p of all) {
    if (owner.has(p)) continue;
    const id = leastLoaded(subscribers.get(topicOf(p))!);
    owner.set(p, id);
    out.get(id)!.push(p);
  }
  // Balance: move from the heaviest member to an eligible member with at least two fewer.
  for (let guard = 0; guard < all.length * 2; guard++) {
    let moved = false;
    const ids = [...out.keys()].sort((a, b) => load(b) - load(a) || (a < b ? -1 : 1));
    for (const heavy of ids) {
      const list = sortTps([...out.get(heavy)!]).reverse();
      for (const p of list) {
        const candidates = subscribers.get(topicOf(p))!.filter((id) => load(id) <= load(heavy) - 2);
        if (candidates.length === 0) continue;
        const to = leastLoaded(candidates);
        out.set(heavy, out.get(heavy)!.filter((x) => x !== p));
        out.get(to)!.push(p);
        moved = true;
        break;
      }
      if (moved) break;
    }
    if (!moved) break;
  }
  for (const list of out.values()) sortTps(list);
  return out;
};

export const ASSIGNORS: Readonly<Record<string, Assignor>> = { range: rangeAssignor, roundrobin: roundRobinAssignor, uniform: uniformAssignor };
