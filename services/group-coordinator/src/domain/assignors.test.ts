import { describe, expect, it } from 'vitest';
import { ASSIGNORS, rangeAssignor, roundRobinAssignor, tp, uniformAssignor, type AssignorInput } from './assignors.js';
import { seededRandom as rng } from '@skein/common/seeded-random.js';


function randomInput(seed: number, sameSubscriptions: boolean): AssignorInput {
  const r = rng(seed);
  const topics = Array.from({ length: 1 + Math.floor(r() * 4) }, (_, i) => `t${i}`);
  const partitionCounts = new Map(topics.map((t) => [t, 1 + Math.floor(r() * 12)]));
  const members = Array.from({ length: 1 + Math.floor(r() * 7) }, (_, i) => ({
    memberId: `m${i}`,
    topics: sameSubscriptions ? topics : topics.filter(() => r() < 0.6),
  }));
  return { members, partitionCounts, current: new Map() };
}

function flat(a: Map<string, string[]>) {
  return [...a.values()].flat();
}

describe.each(Object.entries(ASSIGNORS))('%s assignor', (_name, assignor) => {
  it('assigns every subscribed partition exactly once, only to subscribers, deterministically (200 seeded cases)', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const input = randomInput(seed, seed % 2 === 0);
      const out = assignor(input);
      const all = flat(out);
      expect(new Set(all).size).toBe(all.length);
      const subscribed = new Set(input.members.flatMap((m) => m.topics));
      const expected = [...subscribed].reduce((n, t) => n + input.partitionCounts.get(t)!, 0);
      expect(all.length).toBe(expected);
      for (const [memberId, list] of out) {
        const m = input.members.find((x) => x.memberId === memberId)!;
        for (const p of list) expect(m.topics).toContain(p.split(':')[0]);
      }
      expect(assignor({ ...input, members: [...input.members].reverse() })).toEqual(out);
    }
  });
});

describe('balance', () => {
  it('uniform and roundrobin differ by at most one partition per member when subscriptions are equal', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const input = randomInput(seed, true);
      for (const assignor of [uniformAssignor, roundRobinAssignor]) {
        const counts = [...assignor(input).values()].map((l) => l.length);
        expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
      }
    }
  });

  it('range gives contiguous ranges per topic', () => {
    const out = rangeAssignor({ members: [{ memberId: 'a', topics: ['t'] }, { memberId: 'b', topics: ['t'] }], partitionCounts: new Map([['t', 5]]), current: new Map() });
    expect(out.get('a')).toEqual([tp('t', 0), tp('t', 1), tp('t', 2)]);
    expect(out.get('b')).toEqual([tp('t', 3), tp('t', 4)]);
  });
});

describe('uniform stickiness', () => {
  it('moves only as many partitions as balance requires when a member joins', () => {
    for (let seed = 1; seed <= 100; seed++) {
      const input = randomInput(seed, true);
      const before = uniformAssignor(input);
      const joined = { ...input, members: [...input.members, { memberId: 'zz-new', topics: input.members[0]!.topics }], current: before };
      const after = uniformAssignor(joined);
      let moved = 0;
      for (const [id, list] of before) moved += list.filter((p) => !after.get(id)!.includes(p)).length;
      const total = flat(before).length;
      const n = joined.members.length;
      // The newcomer needs floor(total/n) partitions; nobody else should lose more than that in all.
      expect(moved).toBe(after.get('zz-new')!.length);
      expect(after.get('zz-new')!.length).toBeLessThanOrEqual(Math.ceil(total / n));
    }
  });
});
