// The coordinator's shell over a real store implementation (the embedded one; the multi-process
// suite in test/groups.test.ts runs the same code on etcd): heartbeats that change nothing but
// liveness do not disturb commits, expired members are swept even in a silent group, and an empty
// group's offsets expire after the retention, counted from when it became empty.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '@skein/common/logger.js';
import { EmbeddedStore } from '@skein/common/store/embedded-store.js';
import type { SkeinError } from '@skein/common/errors.js';
import type { GroupCoordinatorServiceServer } from '@skein/proto/skein/group/v1/group.js';
import { groupServiceHandlers, sweepGroups } from './group-service.js';
import { GroupStore } from '../store/group-store.js';

const SESSION_MS = 10_000;
const RETENTION_MS = 60_000;

type Handler = GroupCoordinatorServiceServer[keyof GroupCoordinatorServiceServer];

/** Calls a unary handler the way grpc-js would, resolving with the response or the SkeinError. */
function invoke<Res>(handler: Handler, request: object): Promise<Res> {
  return new Promise((resolve, reject) => {
    (handler as unknown as (call: { request: object; getPeer(): string; metadata: { get(): [] } }, cb: (e: unknown, r: Res) => void) => void)(
      { request, getPeer: () => 'test', metadata: { get: () => [] } },
      (err, res) => (err ? reject(err) : resolve(res)),
    );
  });
}

describe('group service on a store', () => {
  let store: EmbeddedStore;
  let clock = 1_000_000;
  let svc: GroupCoordinatorServiceServer;
  const deps = () => ({ store, prefix: '/t/', logger: createLogger({ service: 'test', level: 'silent' }), sessionTimeoutMs: SESSION_MS, heartbeatIntervalMs: 1000, offsetsRetentionMs: RETENTION_MS, sessionBreakGraceMs: 1000, nowMs: () => clock });

  beforeEach(async () => {
    store = await EmbeddedStore.open();
    svc = groupServiceHandlers({ ...deps(), topics: async () => new Map([['orders', 4]]), listOffset: async () => 0n });
  });
  afterEach(async () => {
    await store.close();
  });

  const beat = (memberId: string, memberEpoch: number, owned: number[] = []) =>
    invoke<{ memberId: string; memberEpoch: number; assignment: Array<{ topic: string; partitions: number[] }> }>(svc.heartbeat, {
      groupId: 'g', memberId, memberEpoch, clientId: 'c', subscribedTopics: ['orders'], subscribedTopicRegex: '', serverAssignor: '', ownedPartitions: owned.length ? [{ topic: 'orders', partitions: owned }] : [],
    });
  const commit = (memberId: string, memberEpoch: number, partition: number, offset: bigint) =>
    invoke(svc.commitOffsets, { groupId: 'g', memberId, memberEpoch, offsets: [{ topic: 'orders', partition, offset, metadata: '' }] });
  const offsets = async () => (await invoke<{ offsets: Array<{ partition: number; offset: bigint }> }>(svc.fetchOffsets, { groupId: 'g', partitions: [] })).offsets;

  it('a heartbeat that changes nothing writes only liveness, so the group key (which commits are guarded by) stays put', async () => {
    const a = await beat('', 0);
    await beat(a.memberId, a.memberEpoch, a.assignment[0]!.partitions);
    const before = (await store.get('/t/groups/g'))!.modRevision;
    clock += 500;
    await beat(a.memberId, a.memberEpoch, a.assignment[0]!.partitions);
    expect((await store.get('/t/groups/g'))!.modRevision).toBe(before);
    expect(Number((await store.get(`/t/group-liveness/g/${a.memberId}`))!.value.toString())).toBe(clock);
    await commit(a.memberId, a.memberEpoch, 0, 5n);
    expect(await offsets()).toEqual([{ topic: 'orders', partition: 0, offset: 5n, metadata: '' }]);
  });

  it('keeps a member alive by its liveness key, and sweeps it once the session passes with nobody heartbeating', async () => {
    const a = await beat('', 0);
    const owned = a.assignment[0]!.partitions;
    await beat(a.memberId, a.memberEpoch, owned);
    clock += SESSION_MS - 1000;
    await beat(a.memberId, a.memberEpoch, owned); // liveness only
    clock += SESSION_MS - 1000; // past the group key's heartbeat time, within the liveness key's
    expect(await sweepGroups(deps())).toEqual({ expiredMembers: 0, deletedGroups: 0 });
    clock += 2000;
    expect(await sweepGroups(deps())).toEqual({ expiredMembers: 1, deletedGroups: 0 });
    const described = await invoke<{ members: unknown[] }>(svc.describeGroup, { groupId: 'g' });
    expect(described.members).toEqual([]);
    // The swept member is fenced: it must rejoin, and its late commit is refused.
    await expect(commit(a.memberId, a.memberEpoch, 0, 1n)).rejects.toMatchObject({ reason: 'UNKNOWN_MEMBER' } satisfies Partial<SkeinError>);
  });

  it('expires an empty group’s offsets after the retention, counted from when it became empty, never while it has members', async () => {
    const a = await beat('', 0);
    const owned = a.assignment[0]!.partitions;
    await beat(a.memberId, a.memberEpoch, owned);
    await commit(a.memberId, a.memberEpoch, 1, 42n);
    clock += RETENTION_MS * 2;
    await beat(a.memberId, a.memberEpoch, owned); // alive long past the retention: nothing expires
    expect(await sweepGroups(deps())).toEqual({ expiredMembers: 0, deletedGroups: 0 });
    expect(await offsets()).toHaveLength(1);
    await beat(a.memberId, -1, owned); // leaves: the group is empty from now
    clock += RETENTION_MS - 1;
    await sweepGroups(deps());
    expect(await offsets()).toHaveLength(1);
    clock += 2;
    expect(await sweepGroups(deps())).toEqual({ expiredMembers: 0, deletedGroups: 1 });
    expect(await offsets()).toEqual([]);
    await expect(invoke(svc.describeGroup, { groupId: 'g' })).rejects.toMatchObject({ reason: 'UNKNOWN_GROUP' });
  });

  it('an admin commit to an empty group restarts its retention clock', async () => {
    await invoke(svc.commitOffsets, { groupId: 'g', memberId: '', memberEpoch: -1, offsets: [{ topic: 'orders', partition: 0, offset: 3n, metadata: 'by admin' }] });
    clock += RETENTION_MS / 2;
    await invoke(svc.commitOffsets, { groupId: 'g', memberId: '', memberEpoch: -1, offsets: [{ topic: 'orders', partition: 0, offset: 4n, metadata: 'by admin' }] });
    clock += RETENTION_MS / 2 + 1;
    expect((await sweepGroups(deps())).deletedGroups).toBe(0);
    expect((await invoke<{ groups: Array<{ groupId: string }> }>(svc.listGroups, {})).groups.map((g) => g.groupId)).toEqual(['g']);
    clock += RETENTION_MS / 2;
    expect((await sweepGroups(deps())).deletedGroups).toBe(1);
  });

  it('a broken session ends after the grace unless the member heartbeats again, which clears the mark', async () => {
    const groups = new GroupStore(store, '/t/');
    // Members that keep what they are told, like real ones.
    const member = () => {
      const m = { id: '', epoch: 0, owned: [] as number[] };
      return { m, beat: async () => { const r = await beat(m.id, m.epoch, m.owned); m.id = r.memberId; m.epoch = r.memberEpoch; m.owned = r.assignment.flatMap((t) => t.partitions); } };
    };
    const a = member();
    const b = member();
    for (let i = 0; i < 3; i++) { await a.beat(); await b.beat(); }
    // b's stream broke: its session now ends 1 s from now instead of SESSION_MS.
    expect(await groups.markSessionBroken('g', b.m.id, clock - SESSION_MS + 1000, await groups.load('g'))).toBe(true);
    clock += 500;
    await b.beat(); // came back within the grace: the mark is gone
    clock += 2000;
    expect((await sweepGroups(deps())).expiredMembers).toBe(0);
    expect(await groups.markSessionBroken('g', b.m.id, clock - SESSION_MS + 1000, await groups.load('g'))).toBe(true);
    clock += 1500;
    await a.beat(); // the live member's heartbeat removes b, past its shortened session
    expect(Object.keys((await groups.load('g')).group!.members)).toEqual([a.m.id]);
    // A mark decided on a stale read loses to a heartbeat that landed in between.
    const stale = await groups.load('g');
    clock += 100;
    await a.beat();
    expect(await groups.markSessionBroken('g', a.m.id, clock - SESSION_MS, stale)).toBe(false);
  });
});
