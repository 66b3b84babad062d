// Consumer groups across two stateless coordinator instances on real etcd: members converge to an
// assignment where each partition has exactly one owner, commits are fenced by ownership and
// member epoch, a killed coordinator changes nothing for members, and a regex subscription picks
// up a new topic without a restart.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipUnless } from './harness/requirements.js';
import { GroupCoordinatorServiceClient, type TopicPartitions } from '@skein/proto/skein/group/v1/group.js';
import { startEtcd, type EtcdCluster } from './harness/etcd.js';
import { brokerClient, metadataClient, promisify, rejection } from './harness/clients.js';
import { Acks } from '@skein/proto/skein/broker/v1/broker.js';
import { ResetSpec } from '@skein/proto/skein/group/v1/group.js';
import { buildRecordBatch } from '@skein/common/records/record-batch.js';
import { GroupConsumer, SkeinClient } from '@skein/client';
import { startService, stopAll, waitFor, type ServiceProcess } from './harness/services.js';
import { BROKER_ENTRY, COORDINATOR_ENTRY, METADATA_ENTRY } from './harness/entries.js';

const skip = skipUnless(import.meta.url, 'etcd');

let etcd: EtcdCluster;
let meta: ReturnType<typeof metadataClient>;
const coordinators: ServiceProcess[] = [];
let brokerAddress = '';
let metadataAddress = '';
let clients: Array<ReturnType<typeof promisify<GroupCoordinatorServiceClient>>> = [];

beforeAll(async () => {
  etcd = await startEtcd({ members: 1 });
  const prefix = `/groups-${process.pid}/`;
  const metadata = await startService({ name: 'metadata', entry: METADATA_ENTRY, args: ['--store', `etcd://${etcd.endpoints.join(',')}`, '--prefix', prefix] });
  meta = metadataClient(metadata.address);
  metadataAddress = metadata.address;
  brokerAddress = (await startService({ name: 'broker-1', entry: BROKER_ENTRY, dataDirFlag: '--data-dir', args: ['--broker-id', '1', '--metadata-addresses', metadata.address] })).address;
  await waitFor(async () => (await meta.getClusterMetadata({ topics: [] })).metadata!.brokers.length === 1, { timeoutMs: 15_000, message: 'broker registered' });
  await meta.createTopic({ name: 'orders', partitions: 6, replicationFactor: 1, configs: {}, validateOnly: false });
  for (const name of ['coord-a', 'coord-b']) {
    coordinators.push(await startService({ name, entry: COORDINATOR_ENTRY, args: ['--store', `etcd://${etcd.endpoints.join(',')}`, '--prefix', prefix, '--metadata-addresses', metadata.address, '--session-timeout-ms', '3000', '--heartbeat-interval-ms', '200'] }));
  }
  clients = coordinators.map((c) => promisify(new GroupCoordinatorServiceClient(c.address, grpc.credentials.createInsecure())));
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.close();
  meta?.close();
  await stopAll();
  await etcd?.stop();
});

const flat = (list: TopicPartitions[]) => list.flatMap((t) => t.partitions.map((p) => `${t.topic}:${p}`));
const unflat = (list: string[]): TopicPartitions[] => {
  const m = new Map<string, number[]>();
  for (const x of list) {
    const [t, p] = x.split(':') as [string, string];
    m.set(t, [...(m.get(t) ?? []), Number(p)]);
  }
  return [...m.entries()].map(([topic, partitions]) => ({ topic, partitions }));
};

/** A member that owns exactly what it was last told, heartbeating through any live coordinator. */
class Member {
  id = '';
  epoch = 0;
  owned: string[] = [];
  constructor(readonly group: string, readonly sub: { topics?: string[]; regex?: string }) {}
  async beat(via: number, epoch = this.epoch): Promise<void> {
    const res = await clients[via % clients.length]!.heartbeat({ groupId: this.group, memberId: this.id, memberEpoch: epoch, clientId: 'test', subscribedTopics: this.sub.topics ?? [], subscribedTopicRegex: this.sub.regex ?? '', serverAssignor: 'uniform', ownedPartitions: unflat(this.owned) });
    this.id = res.memberId;
    this.epoch = res.memberEpoch;
    this.owned = epoch === -1 ? [] : flat(res.assignment);
  }
}

function assertExclusive(members: Member[]): void {
  const seen = new Set<string>();
  for (const m of members) for (const p of m.owned) {
    expect(seen.has(p), `${p} owned twice`).toBe(false);
    seen.add(p);
  }
}

describe.skipIf(skip)('consumer groups', () => {
  it('converges with every partition owned exactly once, across two coordinator instances', async () => {
    const members = [new Member('g1', { topics: ['orders'] }), new Member('g1', { topics: ['orders'] }), new Member('g1', { topics: ['orders'] })];
    let round = 0;
    await waitFor(async () => {
      for (const m of members) { await m.beat(round++); assertExclusive(members); }
      return members.every((m) => m.owned.length === 2);
    }, { timeoutMs: 15_000, intervalMs: 10, message: 'three members own two partitions each' });

    // Commits: the owner at its epoch succeeds; a non-owner and a stale epoch are refused.
    const [a, b] = members as [Member, Member];
    const [t, p] = a.owned[0]!.split(':') as [string, string];
    await clients[0]!.commitOffsets({ groupId: 'g1', memberId: a.id, memberEpoch: a.epoch, offsets: [{ topic: t, partition: Number(p), offset: 42n, metadata: 'm' }] });
    expect((await rejection(clients[1]!.commitOffsets({ groupId: 'g1', memberId: b.id, memberEpoch: b.epoch, offsets: [{ topic: t, partition: Number(p), offset: 1n, metadata: '' }] }))).reason).toBe('STALE_MEMBER_EPOCH');
    expect((await rejection(clients[1]!.commitOffsets({ groupId: 'g1', memberId: a.id, memberEpoch: a.epoch - 1, offsets: [{ topic: t, partition: Number(p), offset: 1n, metadata: '' }] }))).reason).toBe('STALE_MEMBER_EPOCH');
    const fetched = await clients[1]!.fetchOffsets({ groupId: 'g1', partitions: [] });
    expect(fetched.offsets).toEqual([{ topic: t, partition: Number(p), offset: 42n, metadata: 'm' }]);

    // A coordinator dies: members carry on through the other one; a member leaves and its partitions move.
    coordinators[0]!.kill();
    await members[2]!.beat(1, -1);
    const remaining = members.slice(0, 2);
    await waitFor(async () => {
      for (const m of remaining) { await m.beat(1); assertExclusive(remaining); }
      return remaining.every((m) => m.owned.length === 3);
    }, { timeoutMs: 15_000, intervalMs: 10, message: 'two members own three partitions each' });
    const described = await clients[1]!.describeGroup({ groupId: 'g1' });
    expect(described.members).toHaveLength(2);
    expect(described.offsets[0]!.offset).toBe(42n);
    await coordinators[0]!.restart();
  });

  it('reassigns a silent member’s partitions after the session timeout; the other member keeps its own throughout', async () => {
    const a = new Member('g4', { topics: ['orders'] });
    const b = new Member('g4', { topics: ['orders'] });
    await waitFor(async () => { await a.beat(0); await b.beat(1); assertExclusive([a, b]); return a.owned.length === 3 && b.owned.length === 3; }, { timeoutMs: 15_000, intervalMs: 10, message: 'two members own three each' });
    const mine = [...a.owned];
    // b goes silent (as if SIGKILLed); a keeps heartbeating and never loses what it had.
    await waitFor(async () => {
      await a.beat(0);
      for (const p of mine) expect(a.owned).toContain(p);
      return a.owned.length === 6;
    }, { timeoutMs: 15_000, intervalMs: 100, message: 'the silent member’s partitions move to the live one' });
  });

  it('reports lag per partition and resets an empty group’s offsets (dry run first)', async () => {
    await meta.createTopic({ name: 'lagged', partitions: 2, replicationFactor: 1, configs: {}, validateOnly: false });
    const broker = brokerClient(brokerAddress);
    await waitFor(async () => {
      const r = await broker.produce({ acks: Acks.ACKS_ALL, timeoutMs: 2000, topics: [{ topic: 'lagged', partitions: [{ partition: 0, batch: buildRecordBatch(Array.from({ length: 10 }, (_, i) => ({ value: `v${i}`, timestampMs: 1000 + i }))) }] }] });
      return !r.topics[0]!.partitions[0]!.error;
    }, { timeoutMs: 10_000, message: 'records produced' });
    broker.close();
    const m = new Member('g5', { topics: ['lagged'] });
    await waitFor(async () => { await m.beat(0); return m.owned.length === 2; }, { timeoutMs: 10_000, intervalMs: 50, message: 'member owns both partitions' });
    await clients[0]!.commitOffsets({ groupId: 'g5', memberId: m.id, memberEpoch: m.epoch, offsets: [{ topic: 'lagged', partition: 0, offset: 4n, metadata: '' }] });
    const described = await clients[1]!.describeGroup({ groupId: 'g5' });
    expect(described.lags).toEqual([
      { topic: 'lagged', partition: 0, committedOffset: 4n, logEndOffset: 10n, lag: 6n },
      { topic: 'lagged', partition: 1, committedOffset: -1n, logEndOffset: 0n, lag: 0n },
    ]);
    const reset = { groupId: 'g5', topic: 'lagged', partitions: [0], spec: ResetSpec.RESET_SPEC_EARLIEST, value: 0n, dryRun: true };
    expect((await rejection(clients[0]!.resetOffsets(reset))).reason).toBe('GROUP_NOT_EMPTY');
    await m.beat(0, -1);
    expect((await clients[0]!.resetOffsets(reset)).offsets[0]!.offset).toBe(0n);
    expect((await clients[0]!.fetchOffsets({ groupId: 'g5', partitions: [] })).offsets[0]!.offset).toBe(4n); // dry run changed nothing
    await clients[0]!.resetOffsets({ ...reset, spec: ResetSpec.RESET_SPEC_SHIFT_BY, value: 3n, dryRun: false });
    expect((await clients[0]!.fetchOffsets({ groupId: 'g5', partitions: [] })).offsets[0]!.offset).toBe(7n);
    await clients[0]!.resetOffsets({ ...reset, spec: ResetSpec.RESET_SPEC_TIMESTAMP, value: 1002n, dryRun: false });
    expect((await clients[0]!.fetchOffsets({ groupId: 'g5', partitions: [] })).offsets[0]!.offset).toBe(2n);
    await clients[0]!.resetOffsets({ ...reset, spec: ResetSpec.RESET_SPEC_TO_OFFSET, value: 999n, dryRun: false });
    expect((await clients[0]!.fetchOffsets({ groupId: 'g5', partitions: [] })).offsets[0]!.offset).toBe(10n); // clamped to the log end
  });

  it('fans out to two groups (each gets every record) and shares partitions within a group', async () => {
    await meta.createTopic({ name: 'fanout', partitions: 4, replicationFactor: 1, configs: {}, validateOnly: false });
    const client = new SkeinClient({ metadata: [metadataAddress] });
    const producer = client.producer();
    const values = Array.from({ length: 400 }, (_, i) => `rec-${i}`);
    await waitFor(async () => { try { await producer.send('fanout', values.slice(0, 1).map((v) => ({ key: v, value: v, timestampMs: 1 }))); return true; } catch { return false; } }, { timeoutMs: 10_000, message: 'topic writable' });
    for (let i = 1; i < values.length; i += 100) await producer.send('fanout', values.slice(i, i + 100).map((v) => ({ key: v, value: v, timestampMs: 1 })));
    const coordinatorAddresses = coordinators.map((c) => c.address);
    const seen = { a1: new Set<string>(), a2: new Set<string>(), b: new Set<string>() };
    const consumers = [
      new GroupConsumer(client, { groupId: 'fan-a', coordinator: coordinatorAddresses, topics: ['fanout'] }),
      new GroupConsumer(client, { groupId: 'fan-a', coordinator: coordinatorAddresses, topics: ['fanout'] }),
      new GroupConsumer(client, { groupId: 'fan-b', coordinator: coordinatorAddresses, topics: ['fanout'] }),
    ];
    await consumers[0]!.run((m) => { seen.a1.add(m.value!.toString()); });
    await consumers[1]!.run((m) => { seen.a2.add(m.value!.toString()); });
    await consumers[2]!.run((m) => { seen.b.add(m.value!.toString()); });
    try {
      await waitFor(() => new Set([...seen.a1, ...seen.a2]).size === values.length && seen.b.size === values.length && consumers[0]!.assignment.length === 2 && consumers[1]!.assignment.length === 2,
        { timeoutMs: 30_000, message: 'both groups consumed every record; group a shares the partitions' });
      expect(consumers[0]!.assignment.filter((p) => consumers[1]!.assignment.includes(p))).toEqual([]);
      expect(consumers[2]!.assignment).toHaveLength(4);
    } finally {
      for (const c of consumers) await c.close();
      client.close();
    }
    // Committed positions survived: the group resumes at the end, not from the beginning.
    const committed = await clients[0]!.fetchOffsets({ groupId: 'fan-a', partitions: [] });
    expect(committed.offsets.reduce((n, o) => n + Number(o.offset), 0)).toBe(values.length);
  });

  it('adds a new topic matching a regex subscription without a restart, and refuses bad input', async () => {
    const m = new Member('g2', { regex: 'logs-.*' });
    await meta.createTopic({ name: 'logs-a', partitions: 2, replicationFactor: 1, configs: {}, validateOnly: false });
    await waitFor(async () => { await m.beat(0); return m.owned.length === 2; }, { timeoutMs: 10_000, intervalMs: 50, message: 'logs-a assigned' });
    await meta.createTopic({ name: 'logs-b', partitions: 3, replicationFactor: 1, configs: {}, validateOnly: false });
    await waitFor(async () => { await m.beat(1); return m.owned.length === 5; }, { timeoutMs: 10_000, intervalMs: 50, message: 'logs-b picked up' });
    expect((await rejection(clients[0]!.heartbeat({ groupId: 'bad group', memberId: '', memberEpoch: 0, clientId: '', subscribedTopics: ['x'], subscribedTopicRegex: '', serverAssignor: '', ownedPartitions: [] }))).reason).toBe('INVALID_GROUP_ID');
    expect((await rejection(clients[0]!.heartbeat({ groupId: 'g3', memberId: '', memberEpoch: 0, clientId: '', subscribedTopics: [], subscribedTopicRegex: '(', serverAssignor: '', ownedPartitions: [] }))).reason).toBe('INVALID_SUBSCRIPTION');
    expect((await rejection(clients[0]!.heartbeat({ groupId: 'g3', memberId: '', memberEpoch: 0, clientId: '', subscribedTopics: ['x'], subscribedTopicRegex: '', serverAssignor: 'magic', ownedPartitions: [] }))).reason).toBe('UNKNOWN_ASSIGNOR');
    expect((await rejection(clients[0]!.describeGroup({ groupId: 'nope' }))).reason).toBe('UNKNOWN_GROUP');
    expect((await rejection(clients[0]!.deleteGroup({ groupId: 'g2' }))).reason).toBe('GROUP_NOT_EMPTY');
  });
});
