import { describe, expect, it } from 'vitest';
import { emptyGroup, heartbeat, isReconciled, type GroupState, type HeartbeatResponse } from './group.js';
import { seededRandom as rng } from '@skein/common/seeded-random.js';

const SESSION = 10_000;


/** Members that apply what they are told: they own exactly their last assignment. */
class Simulation {
  group: GroupState;
  now = 0;
  ids = 0;
  readonly owned = new Map<string, string[]>();
  readonly epochs = new Map<string, number>();
  readonly applied: Array<{ at: number; memberId: string; owned: string[] }> = [];

  constructor(assignor: string, readonly counts: Map<string, number>) {
    this.group = emptyGroup('g', assignor);
  }

  beat(memberId: string, topics = [...this.counts.keys()], epoch?: number): HeartbeatResponse {
    const res = heartbeat(this.group, { memberId, memberEpoch: epoch ?? this.epochs.get(memberId) ?? 0, clientId: 'c', topics, ownedPartitions: this.owned.get(memberId) ?? [] }, {
      nowMs: this.now, sessionTimeoutMs: SESSION, partitionCounts: this.counts, newMemberId: () => `m${this.ids++}`,
    });
    if ('problem' in res) throw new Error(res.problem.reason);
    this.group = res.group;
    const r = res.response;
    if (r.memberEpoch === -1) {
      this.owned.delete(r.memberId);
      this.epochs.delete(r.memberId);
    } else {
      this.owned.set(r.memberId, r.assignment);
      this.epochs.set(r.memberId, r.memberEpoch);
    }
    for (const gone of [...this.owned.keys()].filter((id) => !this.group.members[id])) {
      this.owned.delete(gone);
      this.epochs.delete(gone);
    }
    this.checkNoDoubleOwnership();
    return r;
  }

  checkNoDoubleOwnership(): void {
    const seen = new Map<string, string>();
    for (const [id, list] of this.owned) {
      for (const p of list) {
        if (seen.has(p)) throw new Error(`partition ${p} owned by ${seen.get(p)} and ${id} at ${this.now}`);
        seen.set(p, id);
      }
    }
  }

  settle(rounds = 10): void {
    for (let i = 0; i < rounds; i++) for (const id of [...this.owned.keys()]) this.beat(id);
  }

  total(): number {
    return [...this.counts.values()].reduce((a, b) => a + b, 0);
  }
}

describe('group reconciliation', () => {
  it('a joining member gets partitions only after their owner released them; the group settles fully owned', () => {
    const sim = new Simulation('uniform', new Map([['t', 6]]));
    const a = sim.beat('', ['t']).memberId;
    sim.settle();
    expect(sim.owned.get(a)).toHaveLength(6);
    const b = sim.beat('', ['t']).memberId;
    expect(sim.owned.get(b)).toEqual([]); // a still owns everything
    sim.beat(a); // a is told to release three
    expect(sim.owned.get(a)).toHaveLength(3);
    sim.beat(b);
    expect(sim.owned.get(b)).toEqual([]); // a has not confirmed the release yet
    sim.beat(a); // confirms
    sim.beat(b);
    expect(sim.owned.get(b)).toHaveLength(3);
    sim.settle();
    expect(sim.epochs.get(a)).toBe(sim.group.groupEpoch);
    expect(sim.epochs.get(b)).toBe(sim.group.groupEpoch);
  });

  it('refuses a stale member epoch and unknown members', () => {
    const sim = new Simulation('range', new Map([['t', 2]]));
    const a = sim.beat('', ['t']).memberId;
    sim.settle();
    const res = heartbeat(sim.group, { memberId: a, memberEpoch: 99, clientId: 'c', topics: ['t'], ownedPartitions: [] }, { nowMs: 0, sessionTimeoutMs: SESSION, partitionCounts: sim.counts, newMemberId: () => 'x' });
    expect('problem' in res && res.problem.reason).toBe('STALE_MEMBER_EPOCH');
    const unknown = heartbeat(sim.group, { memberId: 'ghost', memberEpoch: 3, clientId: 'c', topics: ['t'], ownedPartitions: [] }, { nowMs: 0, sessionTimeoutMs: SESSION, partitionCounts: sim.counts, newMemberId: () => 'x' });
    expect('problem' in unknown && unknown.problem.reason).toBe('UNKNOWN_MEMBER');
  });

  it('gives an expired member’s partitions to the others; members not affected keep theirs', () => {
    const sim = new Simulation('uniform', new Map([['t', 6]]));
    const ids = [sim.beat('', ['t']).memberId, sim.beat('', ['t']).memberId, sim.beat('', ['t']).memberId];
    sim.settle();
    const before = new Map(ids.map((id) => [id, [...sim.owned.get(id)!]]));
    sim.now += SESSION + 1;
    // Only the first two keep heartbeating; the third expires.
    for (let i = 0; i < 6; i++) { sim.beat(ids[0]!); sim.beat(ids[1]!); }
    expect(sim.group.members[ids[2]!]).toBeUndefined();
    expect(sim.owned.get(ids[0]!)!.length + sim.owned.get(ids[1]!)!.length).toBe(6);
    for (const id of ids.slice(0, 2)) for (const p of before.get(id)!) expect(sim.owned.get(id)).toContain(p);
  });

  it.each(['uniform', 'range', 'roundrobin'])('%s: random joins, leaves, expiries and new partitions never own a partition twice and converge (seeded)', (assignor) => {
    for (let seed = 1; seed <= 40; seed++) {
      const r = rng(seed);
      const counts = new Map([['a', 1 + Math.floor(r() * 8)], ['b', 1 + Math.floor(r() * 8)]]);
      const sim = new Simulation(assignor, counts);
      for (let step = 0; step < 60; step++) {
        const x = r();
        const members = [...sim.owned.keys()];
        if (x < 0.2 || members.length === 0) sim.beat('', r() < 0.7 ? ['a', 'b'] : ['a']);
        else if (x < 0.28) sim.beat(members[Math.floor(r() * members.length)]!, undefined, -1);
        else if (x < 0.32) { sim.now += SESSION + 1; for (const id of members.slice(1)) sim.beat(id); }
        else if (x < 0.35) counts.set('b', counts.get('b')! + 1);
        else sim.beat(members[Math.floor(r() * members.length)]!, sim.group.members[members[0]!]?.topics);
        sim.now += 10;
      }
      sim.settle(12);
      const owners = [...sim.owned.values()].flat();
      const subscribed = new Set(Object.values(sim.group.members).flatMap((m) => m.topics));
      const expected = [...subscribed].reduce((n, t) => n + counts.get(t)!, 0);
      expect(new Set(owners).size).toBe(owners.length);
      expect(owners.length).toBe(expected);
    }
  });
});

describe('isReconciled (a rebalance ends when it holds)', () => {
  it('is false from a join until every member owns exactly its target, then true', () => {
    const sim = new Simulation('uniform', new Map([['t', 6]]));
    const a = sim.beat('', ['t']).memberId;
    sim.settle();
    expect(isReconciled(sim.group)).toBe(true);
    sim.beat('', ['t']); // b joins: the group epoch moves, a still owns everything
    expect(isReconciled(sim.group)).toBe(false);
    sim.beat(a); // a is told to release three, has not confirmed
    expect(isReconciled(sim.group)).toBe(false);
    sim.settle();
    expect(isReconciled(sim.group)).toBe(true);
  });
});
