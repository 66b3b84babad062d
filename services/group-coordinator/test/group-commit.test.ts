// Group commit through the coordinator's handlers (in process) on both store backends: the
// embedded store, and a real etcd (test/harness startEtcd, where this machine has one). 200 members
// in 100 groups commit concurrently with fenced members of the same groups: every valid commit
// lands with its value, no fenced commit ever lands, and the commits share few transactions. A
// commit beyond etcd's 128 operations per transaction is split instead of failing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@skein/common/logger.js';
import { EmbeddedStore } from '@skein/common/store/embedded-store.js';
import { EtcdStore } from '@skein/common/store/etcd-store.js';
import type { MetadataStore } from '@skein/common/store/types.js';
import type { GroupCoordinatorServiceServer } from '@skein/proto/skein/group/v1/group.js';
import { startEtcd, type EtcdCluster } from '../../../test/harness/etcd.js';
import { skipUnless } from '../../../test/harness/requirements.js';
import { groupServiceHandlers } from '../src/grpc/group-service.js';

const skipEtcd = skipUnless({ url: import.meta.url, part: 'the etcd backend' }, 'etcd');
let etcd: EtcdCluster | undefined;
beforeAll(async () => {
  if (!skipEtcd) etcd = await startEtcd({ members: 1 });
}, 60_000);
afterAll(async () => {
  await etcd?.stop();
});

type Handler = GroupCoordinatorServiceServer[keyof GroupCoordinatorServiceServer];
/** Calls a unary handler the way grpc-js would, resolving with the response or rejecting with the SkeinError. */
function invoke<Res>(handler: Handler, request: object): Promise<Res> {
  return new Promise((resolve, reject) => {
    (handler as unknown as (call: { request: object; getPeer(): string; metadata: { get(): [] } }, cb: (e: unknown, r: Res) => void) => void)(
      { request, getPeer: () => 'test', metadata: { get: () => [] } },
      (err, res) => (err ? reject(err) : resolve(res)),
    );
  });
}

const backends: Array<[string, () => Promise<MetadataStore>]> = [
  ['embedded', () => EmbeddedStore.open()],
  ...(skipEtcd ? [] : [['etcd', () => EtcdStore.connect({ endpoints: etcd!.endpoints })] as [string, () => Promise<MetadataStore>]]),
];

let run = 0;

describe.each(backends)('group commit on the %s store', (_name, open) => {
  let store: MetadataStore;
  let svc: GroupCoordinatorServiceServer;
  /** Store transactions that wrote offsets. */
  let offsetTxns = 0;
  const prefix = `/group-commit-${process.pid}-${run++}/`;

  beforeAll(async () => {
    store = await open();
    const txn = store.txn.bind(store);
    store.txn = async (request) => {
      if (request.success.some((op) => op.type === 'put' && op.key.startsWith(`${prefix}offsets/`))) offsetTxns++;
      return txn(request);
    };
    svc = groupServiceHandlers({
      store,
      prefix,
      logger: createLogger({ service: 'test', level: 'silent' }),
      sessionTimeoutMs: 600_000,
      heartbeatIntervalMs: 1000,
      offsetsRetentionMs: 600_000,
      sessionBreakGraceMs: 1000,
      topics: async () =>
        new Map([
          ['orders', 4],
          ['wide', 400],
        ]),
      listOffset: async () => 0n,
    });
  }, 30_000);
  afterAll(async () => {
    await store?.close();
  });

  interface Member {
    groupId: string;
    id: string;
    epoch: number;
    owned: number[];
  }
  const beat = async (m: Member) => {
    const r = await invoke<{ memberId: string; memberEpoch: number; assignment: Array<{ topic: string; partitions: number[] }> }>(svc.heartbeat, {
      groupId: m.groupId,
      memberId: m.id,
      memberEpoch: m.epoch,
      clientId: 'c',
      subscribedTopics: ['orders'],
      subscribedTopicRegex: '',
      serverAssignor: '',
      ownedPartitions: m.owned.length > 0 ? [{ topic: 'orders', partitions: m.owned }] : [],
    });
    m.id = r.memberId;
    m.epoch = r.memberEpoch;
    m.owned = r.assignment.flatMap((t) => t.partitions);
  };
  const commit = (groupId: string, memberId: string, memberEpoch: number, partitions: number[], offset: bigint) =>
    invoke(svc.commitOffsets, {
      groupId,
      memberId,
      memberEpoch,
      offsets: partitions.map((partition) => ({ topic: 'orders', partition, offset, metadata: '' })),
    });
  const reasonOf = (p: Promise<unknown>) =>
    p.then(
      () => 'ok',
      (err: { reason?: string }) => err.reason ?? String(err),
    );

  it('200 members in 100 groups commit concurrently: every commit lands with its value, fenced members never land, few transactions', async () => {
    const GROUPS = 100;
    const ROUNDS = 5;
    const members: Member[] = [];
    await Promise.all(
      Array.from({ length: GROUPS }, async (_, g) => {
        const pair: Member[] = [
          { groupId: `g${g}`, id: '', epoch: 0, owned: [] },
          { groupId: `g${g}`, id: '', epoch: 0, owned: [] },
        ];
        // Members that keep what they are told, until the group is reconciled: two partitions each.
        for (let i = 0; i < 6 && !pair.every((m) => m.owned.length === 2); i++) for (const m of pair) await beat(m);
        expect(pair.map((m) => m.owned.length)).toEqual([2, 2]);
        members.push(...pair);
      }),
    );
    expect(members).toHaveLength(2 * GROUPS);
    // Fenced: in every tenth group, a zombie of member 0 at its previous epoch, and a member that left.
    const zombies = members.filter((_m, i) => i % 20 === 0);
    const leavers: Member[] = [];
    for (const z of zombies) {
      const leaver: Member = { groupId: z.groupId, id: '', epoch: 0, owned: [] };
      await beat(leaver);
      const id = leaver.id;
      leaver.epoch = -1;
      await beat(leaver); // left: its member id is no longer in the group
      leavers.push({ ...leaver, id, epoch: 1, owned: [0, 1, 2, 3] });
    }
    const zombieEpochs = new Map(zombies.map((z) => [z, z.epoch]));
    for (const z of zombies) expect(z.epoch).toBeGreaterThan(1);

    const before = offsetTxns;
    const FENCED = 999_999n;
    const fencedAnswers: Array<Promise<string>> = [];
    const validAnswers = await Promise.all(
      members.map(async (m, i) => {
        const answers: string[] = [];
        for (let round = 1; round <= ROUNDS; round++) {
          if (zombieEpochs.has(m)) fencedAnswers.push(reasonOf(commit(m.groupId, m.id, zombieEpochs.get(m)! - 1, m.owned, FENCED)));
          if (i % 20 === 0) fencedAnswers.push(reasonOf(commit(leavers[i / 20]!.groupId, leavers[i / 20]!.id, 1, [0], FENCED)));
          answers.push(await reasonOf(commit(m.groupId, m.id, m.epoch, m.owned, BigInt(round * 1000 + i))));
        }
        return answers;
      }),
    );
    const valid = members.length * ROUNDS;
    expect(validAnswers.flat().filter((a) => a === 'ok')).toHaveLength(valid);
    const fenced = await Promise.all(fencedAnswers);
    expect(fenced.filter((a) => a === 'STALE_MEMBER_EPOCH')).toHaveLength(zombies.length * ROUNDS);
    expect(fenced.filter((a) => a === 'UNKNOWN_MEMBER')).toHaveLength(leavers.length * ROUNDS);
    // Coalesced: a flush carries the commits that arrived while the previous one ran.
    expect(offsetTxns - before).toBeLessThanOrEqual(valid / 5);

    // Every partition holds its owner's last commit; no fenced value anywhere.
    for (let g = 0; g < GROUPS; g++) {
      const { offsets } = await invoke<{ offsets: Array<{ partition: number; offset: bigint }> }>(svc.fetchOffsets, { groupId: `g${g}`, partitions: [] });
      const expected = members.flatMap((m, i) => (m.groupId === `g${g}` ? m.owned.map((p) => [p, BigInt(ROUNDS * 1000 + i)] as const) : []));
      expect(new Map(offsets.map((o) => [o.partition, o.offset]))).toEqual(new Map(expected));
    }
  }, 120_000);

  it("splits a commit of 300 offsets (over etcd's 128 operations per transaction) and refuses one over the documented limit as INVALID_ARGUMENT", async () => {
    const partitions = Array.from({ length: 300 }, (_, i) => i);
    await invoke(svc.commitOffsets, {
      groupId: 'wide',
      memberId: '',
      memberEpoch: -1,
      offsets: partitions.map((partition) => ({ topic: 'wide', partition, offset: BigInt(partition + 1), metadata: 'm' })),
    });
    const { offsets } = await invoke<{ offsets: Array<{ partition: number; offset: bigint }> }>(svc.fetchOffsets, { groupId: 'wide', partitions: [] });
    expect(offsets).toHaveLength(300);
    expect(offsets.every((o) => o.offset === BigInt(o.partition + 1))).toBe(true);
    const tooMany = Array.from({ length: 10_001 }, (_, i) => ({ topic: 'wide', partition: i % 400, offset: 1n, metadata: '' }));
    await expect(invoke(svc.commitOffsets, { groupId: 'wide', memberId: '', memberEpoch: -1, offsets: tooMany })).rejects.toMatchObject({
      reason: 'INVALID_REQUEST',
      code: 3,
    });
  }, 60_000);
});
