// The pure part of group commit: who in a batch is refused, and how the rest is packed into
// transactions within etcd's limits (no store here; group-committer.test.ts runs the shell).
import { describe, expect, it } from 'vitest';
import { emptyGroup, type GroupState } from '../domain/group.js';
import { planTxns, validateBatch, writeTooLarge, type GroupGuard, type KeyWrite, type PlannedTxn, type QueuedCommit, type TxnLimits } from './commit-batch.js';
import { seededRandom as rng } from '@skein/common/seeded-random.js';


const groupKey = (g: string) => `/p/groups/${g}`;
const createWrite = (g: string): KeyWrite => ({ key: groupKey(g), value: Buffer.from(JSON.stringify(emptyGroup(g))) });

/** A group with members `m0..m(n-1)` at epoch 3, member i owning orders:i. */
function groupWith(groupId: string, members: number): GroupState {
  const g = emptyGroup(groupId);
  for (let i = 0; i < members; i++) g.members[`m${i}`] = { memberId: `m${i}`, clientId: 'c', memberEpoch: 3, topics: ['orders'], owned: [`orders:${i}`], lastHeartbeatMs: 0 };
  return g;
}

let seq = 0;
function commit(groupId: string, memberId: string, memberEpoch: number, partitions: number[], value = 'v'): QueuedCommit {
  const writes = partitions.map((p) => ({ key: `/p/offsets/${groupId}/orders/${p}`, value: Buffer.from(`${value}@${p}`) }));
  return { seq: seq++, groupId, memberId, memberEpoch, offsets: partitions.map((partition) => ({ topic: 'orders', partition })), writes, remaining: new Set(writes.map((w) => w.key)) };
}

/** Every invariant a plan must keep, whatever the batch. */
function checkPlan(plan: PlannedTxn[], accepted: QueuedCommit[], guards: ReadonlyMap<string, GroupGuard>, limits: TxnLimits, isolate: ReadonlySet<string> = new Set()): void {
  const written = new Map<string, Buffer>();
  const createdIn = new Map<string, number>();
  plan.forEach((t, i) => {
    expect(t.writes.length).toBeGreaterThan(0);
    expect(t.writes.length).toBeLessThanOrEqual(limits.maxTxnOps);
    expect(t.groups.length).toBeLessThanOrEqual(limits.maxTxnOps);
    const bytes = t.writes.reduce((n, w) => n + w.key.length + w.value.length, 0) + t.groups.reduce((n, g) => n + groupKey(g).length, 0);
    expect(bytes).toBeLessThanOrEqual(limits.maxTxnBytes);
    expect(new Set(t.groups).size).toBe(t.groups.length); // one compare per group
    expect(new Set(t.writes.map((w) => w.key)).size).toBe(t.writes.length); // etcd refuses a key put twice
    if (t.groups.some((g) => isolate.has(g))) expect(t.groups).toHaveLength(1);
    for (const w of t.writes) {
      const group = t.groups.find((g) => w.key === groupKey(g) || w.key.startsWith(`/p/offsets/${g}/`));
      expect(group, `${w.key} is guarded by its group`).toBeDefined();
      if (w.key === groupKey(group!)) continue;
      expect(written.has(w.key), `${w.key} written once`).toBe(false);
      written.set(w.key, w.value);
    }
    for (const g of t.creates) {
      expect(guards.get(g)!.revision).toBe(0n);
      expect(createdIn.has(g)).toBe(false);
      createdIn.set(g, i);
    }
    // A transaction guarding a group created earlier in the plan waits for it.
    for (const g of t.groups) if (createdIn.has(g) && createdIn.get(g) !== i) expect(t.after).toContain(createdIn.get(g));
    for (const j of t.after) expect(j).toBeLessThan(i);
  });
  // Every remaining key of an accepted commit is written once, with the latest accepted commit's value.
  const expected = new Map<string, Buffer>();
  for (const c of [...accepted].sort((a, b) => a.seq - b.seq)) for (const w of c.writes) if (c.remaining.has(w.key)) expected.set(w.key, w.value);
  expect(new Map([...written].sort())).toEqual(new Map([...expected].sort()));
  // Every new group is created exactly once, before or with its offsets.
  for (const g of new Set(accepted.map((c) => c.groupId))) if (guards.get(g)!.revision === 0n) expect(createdIn.has(g)).toBe(true);
}

describe('validateBatch', () => {
  it('refuses only the fenced commits of a batch, each with its own reason; the others are accepted', () => {
    const guards = new Map<string, GroupGuard>([
      ['a', { group: groupWith('a', 3), revision: 10n }],
      ['b', { group: groupWith('b', 2), revision: 11n }],
      ['new', { group: undefined, revision: 0n }],
    ]);
    const ok1 = commit('a', 'm0', 3, [0]);
    const stale = commit('a', 'm1', 2, [1]); // a zombie: its epoch was bumped
    const ok2 = commit('a', 'm2', 3, [2]);
    const notOwner = commit('b', 'm0', 3, [1]); // epoch is current, but orders:1 moved to m1
    const ok3 = commit('b', 'm1', 3, [1]);
    const gone = commit('b', 'm9', 3, [0]);
    const admin = commit('b', '', -1, [0]); // the group has members
    const adminNew = commit('new', '', -1, [0, 1]);
    const { rejected, accepted } = validateBatch([ok1, stale, ok2, notOwner, ok3, gone, admin, adminNew], guards);
    expect(accepted).toEqual([ok1, ok2, ok3, adminNew]);
    expect(rejected.map((r) => [r.commit, r.problem.reason])).toEqual([[stale, 'STALE_MEMBER_EPOCH'], [notOwner, 'STALE_MEMBER_EPOCH'], [gone, 'UNKNOWN_MEMBER'], [admin, 'GROUP_NOT_EMPTY']]);
    expect(rejected[1]!.problem.metadata).toMatchObject({ group_id: 'b', topic: 'orders', partition: '1' });

    // The fenced commits never reach a transaction: the plan guards a and b once each and writes only accepted offsets.
    const limits = { maxTxnOps: 128, maxTxnBytes: 1 << 20 };
    const plan = planTxns(accepted, guards, { limits, groupKey, createWrite });
    expect(plan).toHaveLength(1);
    expect(plan[0]!.groups).toEqual(['a', 'b', 'new']);
    expect(plan[0]!.creates).toEqual(['new']);
    expect(plan[0]!.writes.map((w) => w.key)).toEqual(['/p/offsets/a/orders/0', '/p/offsets/a/orders/2', '/p/offsets/b/orders/1', groupKey('new'), '/p/offsets/new/orders/0', '/p/offsets/new/orders/1']);
    checkPlan(plan, accepted, guards, limits);
  });
});

describe('planTxns', () => {
  const limits: TxnLimits = { maxTxnOps: 8, maxTxnBytes: 1 << 20 };

  it('writes a key committed twice in a batch once, with the later value', () => {
    const guards = new Map<string, GroupGuard>([['a', { group: groupWith('a', 1), revision: 5n }]]);
    const first = commit('a', 'm0', 3, [0], 'first');
    const second = commit('a', 'm0', 3, [0], 'second');
    const plan = planTxns([second, first], guards, { limits, groupKey, createWrite });
    expect(plan).toEqual([{ groups: ['a'], creates: [], writes: [{ key: '/p/offsets/a/orders/0', value: Buffer.from('second@0') }], after: [] }]);
  });

  it('splits a commit larger than one transaction into parts each guarded by the group; a new group is created by the first part and the others wait for it', () => {
    const guards = new Map<string, GroupGuard>([['n', { group: undefined, revision: 0n }], ['x', { group: groupWith('x', 1), revision: 7n }]]);
    const big = commit('n', '', -1, Array.from({ length: 20 }, (_, i) => i));
    const small = commit('x', 'm0', 3, [0]);
    const plan = planTxns([big, small], guards, { limits, groupKey, createWrite });
    checkPlan(plan, [big, small], guards, limits);
    // 21 ops (creation + 20 offsets) at 8 per transaction: 3 parts; the small group rides in the last one.
    expect(plan.map((t) => t.writes.length)).toEqual([8, 8, 6]);
    expect(plan.map((t) => t.creates)).toEqual([['n'], [], []]);
    expect(plan.map((t) => t.after)).toEqual([[], [0], [0]]);
    expect(plan[2]!.groups).toEqual(['n', 'x']);
  });

  it('keeps a group whole in a new transaction rather than splitting it across a full one', () => {
    const guards = new Map<string, GroupGuard>(['a', 'b'].map((g) => [g, { group: groupWith(g, 8), revision: 1n }]));
    const a = commit('a', 'm0', 3, [0, 1, 2, 3, 4]);
    const b = commit('b', 'm0', 3, [0, 1, 2, 3, 4]);
    const plan = planTxns([a, b], guards, { limits, groupKey, createWrite });
    expect(plan.map((t) => t.groups)).toEqual([['a'], ['b']]);
  });

  it('gives an isolated group (its key changed under the last transaction) a transaction of its own', () => {
    const guards = new Map<string, GroupGuard>(['a', 'b', 'c'].map((g) => [g, { group: groupWith(g, 1), revision: 1n }]));
    const commits = ['a', 'b', 'c'].map((g) => commit(g, 'm0', 3, [0]));
    const isolate = new Set(['b']);
    const plan = planTxns(commits, guards, { limits, groupKey, createWrite, isolate });
    expect(plan.map((t) => t.groups)).toEqual([['a'], ['b'], ['c']]);
    checkPlan(plan, commits, guards, limits, isolate);
  });

  it('bounds the bytes of a transaction, and says which single write can never fit', () => {
    const guards = new Map<string, GroupGuard>([['a', { group: groupWith('a', 1), revision: 1n }]]);
    const bytesLimits = { maxTxnOps: 128, maxTxnBytes: 600 };
    const big = (p: number) => ({ key: `/p/offsets/a/orders/${p}`, value: Buffer.alloc(200, 'x') });
    const c: QueuedCommit = { ...commit('a', '', -1, [0, 1, 2, 3, 4]), writes: [0, 1, 2, 3, 4].map(big) };
    c.remaining = new Set(c.writes.map((w) => w.key));
    const plan = planTxns([c], guards, { limits: bytesLimits, groupKey, createWrite });
    checkPlan(plan, [c], guards, bytesLimits);
    expect(plan.map((t) => t.writes.length)).toEqual([2, 2, 1]);
    expect(writeTooLarge(bytesLimits, groupKey('a'), createWrite('a'), big(0))).toBeUndefined();
    expect(writeTooLarge(bytesLimits, groupKey('a'), createWrite('a'), { key: 'k', value: Buffer.alloc(600) })).toMatch(/maxTxnBytes/);
  });

  it('writes only what is left of a commit whose other parts already landed', () => {
    const guards = new Map<string, GroupGuard>([['a', { group: groupWith('a', 1), revision: 1n }]]);
    const c = commit('a', 'm0', 3, [0, 1, 2]);
    c.remaining.delete('/p/offsets/a/orders/1');
    expect(planTxns([c], guards, { limits, groupKey, createWrite })[0]!.writes.map((w) => w.key)).toEqual(['/p/offsets/a/orders/0', '/p/offsets/a/orders/2']);
  });

  it('keeps every limit and writes every accepted key once with its latest value, for 300 seeded random batches', () => {
    for (let s = 1; s <= 300; s++) {
      const random = rng(s);
      const pick = (n: number) => Math.floor(random() * n);
      const caseLimits = { maxTxnOps: 2 + pick(20), maxTxnBytes: 400 + pick(2000) };
      const groups = Array.from({ length: 1 + pick(12) }, (_, i) => `g${i}`);
      const guards = new Map<string, GroupGuard>(groups.map((g) => [g, random() < 0.3 ? { group: undefined, revision: 0n } : { group: groupWith(g, 4), revision: BigInt(1 + pick(100)) }]));
      const isolate = new Set(groups.filter(() => random() < 0.2));
      const commits = Array.from({ length: 1 + pick(30) }, () => {
        const c = commit(groups[pick(groups.length)]!, '', -1, Array.from({ length: 1 + pick(25) }, () => pick(40)), `s${s}v${pick(1000)}`);
        for (const w of c.writes) if (random() < 0.1) c.remaining.delete(w.key);
        return c;
      });
      try {
        checkPlan(planTxns(commits, guards, { limits: caseLimits, groupKey, createWrite, isolate }), commits, guards, caseLimits, isolate);
      } catch (err) {
        throw new Error(`seed ${s}: ${(err as Error).message}`);
      }
    }
  });
});
