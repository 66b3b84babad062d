// The group-commit shell on the embedded store (in memory), with the flush run by hand so that a
// test decides which commits share a batch, and a hook on the store's txn to play another
// coordinator changing a group between the guard read and the write.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EmbeddedStore } from '@skein/common/store/embedded-store.js';
import type { TxnRequest } from '@skein/common/store/types.js';
import { emptyGroup, type GroupState } from '../domain/group.js';
import { GroupCommitter, type CommitRequest } from './group-committer.js';
import { GroupStore } from './group-store.js';

const PREFIX = '/t/';

function groupWith(groupId: string, members: number, epoch = 3): GroupState {
  const g = emptyGroup(groupId);
  for (let i = 0; i < members; i++)
    g.members[`m${i}`] = { memberId: `m${i}`, clientId: 'c', memberEpoch: epoch, topics: ['orders'], owned: [`orders:${i}`], lastHeartbeatMs: 0 };
  return g;
}

describe('GroupCommitter', () => {
  let store: EmbeddedStore;
  let groups: GroupStore;
  let scheduled: Array<() => void>;
  /** Runs before each store transaction that a commit makes (the guarded puts). */
  let beforeTxn: ((req: TxnRequest) => Promise<void>) | undefined;
  let txns: number;

  const committer = (limits = { maxTxnOps: 128, maxTxnBytes: 1 << 20 }, maxAttempts = 10) =>
    new GroupCommitter(groups, { limits, nowMs: () => 1000, maxAttempts, schedule: (fn) => void scheduled.push(fn) });
  const writeGroup = (g: GroupState) =>
    store.txn({ compare: [], success: [{ type: 'put', key: `${PREFIX}groups/${g.groupId}`, value: Buffer.from(JSON.stringify(g)) }] });
  const req = (groupId: string, memberId: string, memberEpoch: number, partitions: number[], offset: bigint): CommitRequest => ({
    groupId,
    memberId,
    memberEpoch,
    offsets: partitions.map((partition) => ({ topic: 'orders', partition, offset, metadata: '', committedAtMs: 1000 })),
  });
  /** Queues the commits, runs the flush, and returns how each ended (reason of the refusal, or 'ok'). */
  async function batch(c: GroupCommitter, requests: CommitRequest[]): Promise<string[]> {
    const answers = requests.map((r) => c.commit(r));
    while (scheduled.length > 0) scheduled.shift()!();
    return (await Promise.allSettled(answers)).map((a) => (a.status === 'fulfilled' ? 'ok' : ((a.reason as { reason?: string }).reason ?? String(a.reason))));
  }
  const stored = async (groupId: string) => new Map((await groups.fetchOffsets(groupId)).map((o) => [o.partition, o.offset]));

  beforeEach(async () => {
    store = await EmbeddedStore.open();
    groups = new GroupStore(store, PREFIX);
    scheduled = [];
    beforeTxn = undefined;
    txns = 0;
    const txn = store.txn.bind(store);
    store.txn = async (request) => {
      if (request.success.some((op) => op.type === 'put' && op.key.startsWith(`${PREFIX}offsets/`))) {
        txns++;
        await beforeTxn?.(request);
      }
      return txn(request);
    };
  });
  afterEach(async () => {
    await store.close();
  });

  it('writes the commits of many groups in one transaction; a fenced member in the batch is refused alone', async () => {
    for (let i = 0; i < 50; i++) await writeGroup(groupWith(`g${i}`, 2));
    const c = committer();
    const requests = Array.from({ length: 50 }, (_, i) => [req(`g${i}`, 'm0', 3, [0], BigInt(i)), req(`g${i}`, 'm1', 3, [1], BigInt(i))]).flat();
    requests.splice(7, 0, req('g3', 'm1', 2, [1], 999n)); // a zombie at an old epoch, between valid commits of its group
    const answers = await batch(c, requests);
    expect(answers[7]).toBe('STALE_MEMBER_EPOCH');
    expect(answers.filter((a) => a === 'ok')).toHaveLength(100);
    expect(txns).toBe(1); // 100 offsets and 50 compares fit in one transaction of 128
    expect(await stored('g3')).toEqual(
      new Map([
        [0, 3n],
        [1, 3n],
      ]),
    );
    expect(await stored('g49')).toEqual(
      new Map([
        [0, 49n],
        [1, 49n],
      ]),
    );
  });

  it('a member fenced between the read and the write sinks its transaction once; the others land on the retry and it is refused', async () => {
    for (const g of ['a', 'b', 'c']) await writeGroup(groupWith(g, 1));
    const c = committer();
    // Another coordinator bumps b's member epoch (a rebalance) just before the first write.
    beforeTxn = async () => {
      beforeTxn = undefined;
      await writeGroup(groupWith('b', 1, 4));
    };
    const answers = await batch(c, [req('a', 'm0', 3, [0], 10n), req('b', 'm0', 3, [0], 11n), req('c', 'm0', 3, [0], 12n)]);
    expect(answers).toEqual(['ok', 'STALE_MEMBER_EPOCH', 'ok']);
    expect(c.stats.lostCompares).toBe(1);
    expect(await stored('a')).toEqual(new Map([[0, 10n]]));
    expect(await stored('b')).toEqual(new Map());
    expect(await stored('c')).toEqual(new Map([[0, 12n]]));
  });

  it('a group that changes under every write is isolated: the others in its batch still land, it ends CONCURRENT_MODIFICATION', async () => {
    for (const g of ['calm', 'busy']) await writeGroup(groupWith(g, 1));
    const c = committer(undefined, 4);
    // Every write races a change of busy (same members, new revision: the commit stays valid but its compare fails).
    beforeTxn = async (request) => {
      if (request.compare.some((cmp) => cmp.key === `${PREFIX}groups/busy`)) await writeGroup(groupWith('busy', 1));
    };
    const answers = await batch(c, [req('busy', 'm0', 3, [0], 1n), req('calm', 'm0', 3, [0], 2n)]);
    expect(answers).toEqual(['CONCURRENT_MODIFICATION', 'ok']);
    expect(await stored('calm')).toEqual(new Map([[0, 2n]]));
    expect(await stored('busy')).toEqual(new Map());
    // Round 1 shares a transaction and loses; then busy alone, once per remaining attempt: calm landed in round 2.
    expect(c.stats.txns).toBe(1 + 1 + 3);
  });

  it('decides a refusal on the store, not on a cached guard: a member at an epoch newer than the cache commits', async () => {
    await writeGroup(groupWith('g', 1, 3));
    const c = committer();
    expect(await batch(c, [req('g', 'm0', 3, [0], 1n)])).toEqual(['ok']); // caches the guard at epoch 3
    await writeGroup(groupWith('g', 1, 4)); // the member heartbeated through another coordinator
    expect(await batch(c, [req('g', 'm0', 4, [0], 2n)])).toEqual(['ok']);
    expect(await batch(c, [req('g', 'm0', 3, [0], 3n)])).toEqual(['STALE_MEMBER_EPOCH']);
    expect(await stored('g')).toEqual(new Map([[0, 2n]]));
  });

  it('splits a commit beyond the op limit over several transactions, creating a new group once', async () => {
    const c = committer({ maxTxnOps: 128, maxTxnBytes: 1 << 20 });
    const partitions = Array.from({ length: 300 }, (_, i) => i);
    expect(await batch(c, [req('fresh', '', -1, partitions, 7n)])).toEqual(['ok']);
    expect(txns).toBe(3); // 301 ops (the group key and 300 offsets) at 128 per transaction
    const offsets = await stored('fresh');
    expect(offsets.size).toBe(300);
    expect([...offsets.values()].every((o) => o === 7n)).toBe(true);
    expect((await store.get(`${PREFIX}groups/fresh`))!.version).toBe(1n);
  });

  it('refuses an offset too large for any transaction as INVALID_REQUEST, before queueing it', async () => {
    const c = committer({ maxTxnOps: 128, maxTxnBytes: 16 * 1024 });
    const big = { ...req('g', '', -1, [0], 1n) };
    big.offsets = [{ ...big.offsets[0]!, metadata: 'x'.repeat(20 * 1024) }];
    await expect(c.commit(big)).rejects.toMatchObject({ reason: 'INVALID_REQUEST' });
    expect(scheduled).toHaveLength(0);
  });

  it('fails only the commits whose transaction hit a store error', async () => {
    for (const g of ['a', 'b']) await writeGroup(emptyGroup(g));
    const c = committer({ maxTxnOps: 2, maxTxnBytes: 1 << 20 }); // two offsets fill a transaction: one group each
    beforeTxn = async (request) => {
      if (request.compare.some((cmp) => cmp.key === `${PREFIX}groups/b`)) throw new Error('etcd went away');
    };
    const answers = await batch(c, [req('a', '', -1, [0, 1], 1n), req('b', '', -1, [0, 1], 2n)]);
    expect(answers).toEqual(['ok', 'Error: etcd went away']);
    expect(txns).toBe(2);
    expect(await stored('a')).toEqual(
      new Map([
        [0, 1n],
        [1, 1n],
      ]),
    );
  });
});
