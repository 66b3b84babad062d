import { describe, expect, it } from 'vitest';
import {
  isTopologyProblem,
  type StreamsAssignment,
  type StreamsAssignorInput,
  type StreamsSubtopology,
  streamsAssignor,
  topologyTasks,
} from './streams-assignor.js';
import { seededRandom as rng } from '@skein/common/seeded-random.js';

// A word count's shape: subtopology 0 is stateless (reads the input, writes a repartition topic),
// subtopology 1 counts (one store, changelogged).
const TOPOLOGY: StreamsSubtopology[] = [
  { subtopologyId: '0', sourceTopics: ['lines'], changelogTopics: [] },
  { subtopologyId: '1', sourceTopics: ['app-repartition'], changelogTopics: ['app-counts-changelog'] },
];
const COUNTS = new Map([
  ['lines', 4],
  ['app-repartition', 4],
]);

function assign(
  members: Array<string | { memberId: string; taskOffsets: Record<string, number> }>,
  current: StreamsAssignorInput['current'] = {},
  numStandbyReplicas = 0,
  subtopologies = TOPOLOGY,
  counts = COUNTS,
): StreamsAssignment {
  const result = streamsAssignor({
    subtopologies,
    partitionCounts: counts,
    members: members.map((m) => (typeof m === 'string' ? { memberId: m, taskOffsets: {} } : m)),
    current,
    numStandbyReplicas,
  });
  if (isTopologyProblem(result)) throw new Error(result.message);
  return result;
}

const asCurrent = (a: StreamsAssignment) => Object.fromEntries(a);
const active = (a: StreamsAssignment, id: string) => a.get(id)!.active;
const stateful = (tasks: readonly string[]) => tasks.filter((t) => t.startsWith('1_'));

/** Every task active exactly once; counts balanced per class and in total; standbys valid. */
function checkInvariants(a: StreamsAssignment, subtopologies: StreamsSubtopology[], counts: Map<string, number>, numStandbyReplicas: number): void {
  const tasks = topologyTasks(subtopologies, counts);
  const owners = new Map<string, string>();
  for (const [id, m] of a) {
    for (const t of m.active) {
      expect(owners.has(t), `${t} active twice`).toBe(false);
      owners.set(t, id);
    }
  }
  expect([...owners.keys()].sort()).toEqual(tasks.map((t) => t.id).sort());
  const isStateful = new Map(tasks.map((t) => [t.id, t.stateful]));
  const loads = [...a.values()].map((m) => ({
    total: m.active.length,
    stateful: m.active.filter((t) => isStateful.get(t)).length,
    stateless: m.active.filter((t) => !isStateful.get(t)).length,
  }));
  for (const k of ['total', 'stateful', 'stateless'] as const) {
    const values = loads.map((l) => l[k]);
    expect(Math.max(...values) - Math.min(...values), k).toBeLessThanOrEqual(1);
  }
  const copies = Math.min(numStandbyReplicas, a.size - 1);
  for (const t of tasks) {
    const holders = [...a].filter(([, m]) => m.standby.includes(t.id)).map(([id]) => id);
    expect(new Set(holders).size, `${t.id} standby twice on one member`).toBe(holders.length);
    expect(holders, `${t.id} standby on its active member`).not.toContain(owners.get(t.id));
    expect(holders.length, `${t.id} standbys`).toBe(t.stateful ? copies : 0);
  }
}

describe('streams assignor', () => {
  it('balances stateful and stateless tasks apart, so a new member gets state to carry', () => {
    const one = assign(['a']);
    expect(active(one, 'a')).toHaveLength(8);
    const two = assign(['a', 'b'], asCurrent(one));
    expect(stateful(active(two, 'a'))).toHaveLength(2);
    expect(stateful(active(two, 'b'))).toHaveLength(2);
    expect(active(two, 'b')).toHaveLength(4);
    checkInvariants(two, TOPOLOGY, COUNTS, 0);
  });

  it('is sticky across a join: members keep what they had except what balance hands the newcomer', () => {
    const before = assign(['a', 'b']);
    const after = assign(['a', 'b', 'c'], asCurrent(before));
    for (const id of ['a', 'b']) for (const t of active(after, id)) expect(active(before, id)).toContain(t);
    // Only what c needed moved: 8 tasks over 3 members, c has 2 or 3 and every other task stayed.
    const moved = [...active(after, 'c')];
    expect(moved.length).toBeGreaterThanOrEqual(2);
    expect(active(after, 'a').length + active(after, 'b').length + moved.length).toBe(8);
    checkInvariants(after, TOPOLOGY, COUNTS, 0);
  });

  it("is sticky across a leave: only the leaver's tasks move", () => {
    const before = assign(['a', 'b', 'c']);
    const after = assign(['a', 'b'], asCurrent(before));
    for (const id of ['a', 'b']) for (const t of active(before, id)) expect(active(after, id)).toContain(t);
    checkInvariants(after, TOPOLOGY, COUNTS, 0);
  });

  it('gives an unowned task to the member with local state for it, the most caught-up first', () => {
    // c left; its tasks 1_2 and 1_3 are unowned. b holds state for 1_2 (ahead of a's), a for 1_3.
    const current = { a: { active: ['0_0', '1_0', '0_2'], standby: [] }, b: { active: ['0_1', '1_1', '0_3'], standby: [] } };
    const after = assign(
      [
        { memberId: 'a', taskOffsets: { '1_2': 10, '1_3': 500 } },
        { memberId: 'b', taskOffsets: { '1_2': 400 } },
      ],
      current,
    );
    expect(active(after, 'b')).toContain('1_2');
    expect(active(after, 'a')).toContain('1_3');
  });

  it('a member restarted with its local state (a new member id) gets its old stateful tasks back', () => {
    // b held the count tasks a member without state would be handed last.
    const before = assign(['a', 'b'], { a: { active: ['1_0', '1_1', '0_0', '0_1'], standby: [] }, b: { active: ['1_2', '1_3', '0_2', '0_3'], standby: [] } });
    const bStateful = stateful(active(before, 'b'));
    expect(bStateful).toEqual(['1_2', '1_3']);
    // b died: a runs everything (and so holds state for b's tasks too, further ahead).
    const alone = assign([{ memberId: 'a', taskOffsets: { '1_0': 900, '1_1': 900, '1_2': 900, '1_3': 900 } }], asCurrent(before));
    expect(active(alone, 'a')).toHaveLength(8);
    const restarted = assign(
      [
        { memberId: 'a', taskOffsets: { '1_0': 900, '1_1': 900, '1_2': 900, '1_3': 900 } },
        { memberId: 'b2', taskOffsets: Object.fromEntries(bStateful.map((t) => [t, 700])) },
      ],
      asCurrent(alone),
    );
    expect(stateful(active(restarted, 'b2'))).toEqual(bStateful);
    checkInvariants(restarted, TOPOLOGY, COUNTS, 0);
  });

  it('places standbys apart from the active copy, one per member at most, preferring state and previous holders', () => {
    const a = assign(['a', 'b', 'c'], {}, 1);
    checkInvariants(a, TOPOLOGY, COUNTS, 1);
    // Stateless tasks get none.
    for (const m of a.values()) expect(m.standby.every((t) => t.startsWith('1_'))).toBe(true);
    // More standbys asked for than members can hold: each stateful task on every other member.
    const many = assign(['a', 'b', 'c'], {}, 5);
    checkInvariants(many, TOPOLOGY, COUNTS, 5);
    // A member with state for a task gets its standby.
    const owner10 = [...a].find(([, m]) => m.active.includes('1_0'))![0];
    const other = ['a', 'b', 'c'].filter((id) => id !== owner10);
    const withState = assign(
      ['a', 'b', 'c'].map((id) => ({ memberId: id, taskOffsets: id === other[1] ? { '1_0': 50 } : {} })),
      asCurrent(a),
      1,
    );
    const holder = [...withState].find(([, m]) => m.standby.includes('1_0'))![0];
    const previous = [...a].find(([, m]) => m.standby.includes('1_0'))![0];
    // Stickiness beats state: the previous holder keeps it; without a previous holder, state decides.
    expect(holder).toBe(previous);
    const fresh = assign(
      ['a', 'b', 'c'].map((id) => ({ memberId: id, taskOffsets: id === other[1] ? { '1_0': 50 } : {} })),
      { [owner10]: { active: ['1_0'], standby: [] } },
      1,
    );
    expect([...fresh].find(([, m]) => m.standby.includes('1_0'))![0]).toBe(other[1]);
    // One member: no standbys at all.
    expect(assign(['a'], {}, 2).get('a')!.standby).toEqual([]);
  });

  it('keeps its invariants over seeded random joins, leaves and standby counts', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const rnd = rng(seed);
      const subtopologies: StreamsSubtopology[] = Array.from({ length: 1 + Math.floor(rnd() * 3) }, (_, i) => ({
        subtopologyId: String(i),
        sourceTopics: [`t${i}a`, `t${i}b`].slice(0, 1 + Math.floor(rnd() * 2)),
        changelogTopics: rnd() < 0.5 ? [`c${i}`] : [],
      }));
      const counts = new Map(
        subtopologies.flatMap((s) => {
          const n = 1 + Math.floor(rnd() * 7);
          return s.sourceTopics.map((t) => [t, n] as [string, number]);
        }),
      );
      const standbys = Math.floor(rnd() * 3);
      let members = ['m0'];
      let current: StreamsAssignorInput['current'] = {};
      let next = 1;
      for (let step = 0; step < 15; step++) {
        if (rnd() < 0.6 || members.length === 1) members = [...members, `m${next++}`];
        else {
          const leaver = Math.floor(rnd() * members.length);
          members = members.filter((_, i) => i !== leaver);
        }
        const a = assign(members, current, standbys, subtopologies, counts);
        try {
          checkInvariants(a, subtopologies, counts, standbys);
        } catch (err) {
          throw new Error(`seed ${seed} step ${step}: ${(err as Error).message}`);
        }
        // Sticky: a member present before and after keeps every task it still has room for.
        for (const id of members) {
          const kept = (current[id]?.active ?? []).filter((t) => a.get(id)!.active.includes(t)).length;
          expect(kept, `seed ${seed}: ${id} lost more than balance requires`).toBeGreaterThanOrEqual(
            Math.min(current[id]?.active.length ?? 0, a.get(id)!.active.length) - 1,
          );
        }
        current = asCurrent(a);
      }
    }
  });

  it('refuses a subtopology whose source topics are not co-partitioned, naming both topics and counts', () => {
    const result = streamsAssignor({
      subtopologies: [{ subtopologyId: 'join', sourceTopics: ['orders', 'customers'], changelogTopics: [] }],
      partitionCounts: new Map([
        ['orders', 6],
        ['customers', 4],
      ]),
      members: [{ memberId: 'a', taskOffsets: {} }],
      current: {},
      numStandbyReplicas: 0,
    });
    expect(isTopologyProblem(result) && result.message).toMatch(/customers has 4 partitions and orders has 6/);
    const twice = streamsAssignor({
      subtopologies: [
        { subtopologyId: '0', sourceTopics: ['x'], changelogTopics: [] },
        { subtopologyId: '1', sourceTopics: ['x'], changelogTopics: [] },
      ],
      partitionCounts: new Map([['x', 2]]),
      members: [{ memberId: 'a', taskOffsets: {} }],
      current: {},
      numStandbyReplicas: 0,
    });
    expect(isTopologyProblem(twice) && twice.reason).toBe('INVALID_TOPOLOGY');
  });
});
