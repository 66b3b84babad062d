// The metadata service against a real etcd: membership, topics, placement, the watch stream,
// the controller's reaction to broker session expiry, and bad input.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { fromServiceError } from '@skein/common/errors.js';
import type { ClusterMetadata, MetadataChange, WatchMetadataResponse } from '@skein/proto/skein/metadata/v1/metadata.js';
import { startStores, type TestStores } from './harness/stores.js';
import { metadataClient, rejection } from './harness/clients.js';
import { FakeBroker } from './harness/fake-broker.js';
import { healthCheck, startService, waitFor, type ServiceProcess } from './harness/services.js';
import { METADATA_ENTRY } from './harness/entries.js';

let stores: TestStores;
let metadata: ServiceProcess;
let client: ReturnType<typeof metadataClient>;
const brokers: FakeBroker[] = [];
const prefix = `/skein-test-${process.pid}-${Date.now()}/`;

beforeAll(async () => {
  stores = await startStores();
  metadata = await startService({
    name: 'metadata',
    entry: METADATA_ENTRY,
    args: [...stores.args('metadata', prefix), '--controller-session-ttl-ms', '2000'],
  });
  client = metadataClient(metadata.address);
  for (const id of [1, 2, 3]) {
    const b = new FakeBroker(client, id, { rack: id === 3 ? 'b' : 'a' });
    await b.register();
    brokers.push(b);
  }
  await waitFor(async () => (await client.getClusterMetadata({ topics: [] })).metadata?.controller !== undefined, { timeoutMs: 15_000, message: 'a controller is elected' });
});

afterAll(async () => {
  for (const b of brokers) b.crash();
  client?.close();
  await metadata?.stop();
  await stores?.stop();
});

const cluster = async (): Promise<ClusterMetadata> => (await client.getClusterMetadata({ topics: [] })).metadata!;

describe('operability', () => {
  it('answers the gRPC health check and lists its services through reflection (what grpcurl uses)', async () => {
    expect(await healthCheck(metadata.address)).toBe('SERVING');
    expect(await healthCheck(metadata.address, 'skein.metadata.v1.MetadataService')).toBe('SERVING');
    const raw = new grpc.Client(metadata.address, grpc.credentials.createInsecure());
    const listed = await new Promise<string>((resolve, reject) => {
      const call = raw.makeBidiStreamRequest('/grpc.reflection.v1.ServerReflection/ServerReflectionInfo', (b: Buffer) => b, (b: Buffer) => b);
      call.on('data', (b: Buffer) => { resolve(b.toString('latin1')); call.end(); });
      call.on('error', reject);
      // ServerReflectionRequest { string list_services = 7; } — field 7, length-delimited, empty.
      call.write(Buffer.from([0x3a, 0x00]));
    });
    raw.close();
    expect(listed).toContain('skein.metadata.v1.MetadataService');
    expect(listed).toContain('grpc.health.v1.Health');
  });
});

describe('broker membership', () => {
  it('lists registered brokers with their endpoints and racks', async () => {
    const c = await cluster();
    expect(c.brokers.map((b) => [b.brokerId, b.rack])).toEqual([[1, 'a'], [2, 'a'], [3, 'b']]);
    expect(c.clusterId).toMatch(/[0-9a-f-]{36}/);
  });

  it('refuses a second registration of a live broker id', async () => {
    const err = await rejection(client.registerBroker({ brokerId: 1, endpoint: { host: '127.0.0.1', port: 1 }, rack: '', sessionTtlMs: 2000, directoryId: '' }));
    expect(err.reason).toBe('BROKER_ID_IN_USE');
    expect(err.code).toBe(grpc.status.ALREADY_EXISTS);
  });

  it('refuses heartbeats for an unknown session', async () => {
    const err = await rejection(client.brokerHeartbeat({ brokerId: 1, sessionId: 12345n }));
    expect(err.reason).toBe('SESSION_EXPIRED');
  });

  it('frees a broker id at once when the broker unregisters', async () => {
    const b = new FakeBroker(client, 50);
    await b.register();
    await b.unregister();
    const again = new FakeBroker(client, 50);
    await again.register();
    await again.unregister();
    expect((await cluster()).brokers.some((x) => x.brokerId === 50)).toBe(false);
  });
});

describe('topics', () => {
  it('creates, lists, describes, alters, grows and deletes a topic', async () => {
    const created = await client.createTopic({ name: 'orders', partitions: 6, replicationFactor: 3, configs: { 'retention.ms': '3600000' }, validateOnly: false });
    expect(created.topic!.partitions).toHaveLength(6);
    for (const p of created.topic!.partitions) {
      expect(new Set(p.replicas).size).toBe(3);
      expect(p.leaderId).toBe(p.replicas[0]);
      expect(p.isr.sort()).toEqual([...p.replicas].sort());
    }
    // Leaders spread evenly: 6 partitions over 3 brokers = 2 each.
    const leaders = created.topic!.partitions.map((p) => p.leaderId);
    for (const id of [1, 2, 3]) expect(leaders.filter((l) => l === id)).toHaveLength(2);

    expect((await client.listTopics({})).topics.find((t) => t.name === 'orders')).toMatchObject({ partitionCount: 6, replicationFactor: 3 });
    const described = await client.describeTopic({ name: 'orders' });
    expect(described.configs.find((c) => c.name === 'retention.ms')).toMatchObject({ value: '3600000', isDefault: false });
    expect(described.configs.find((c) => c.name === 'cleanup.policy')).toMatchObject({ value: 'delete', isDefault: true });

    const altered = await client.alterTopicConfigs({ name: 'orders', set: { 'cleanup.policy': 'compact' }, remove: ['retention.ms'], validateOnly: false });
    expect(altered.topic!.configs).toEqual({ 'cleanup.policy': 'compact' });

    const grown = await client.createPartitions({ name: 'orders', totalCount: 9, validateOnly: false });
    expect(grown.topic!.partitions).toHaveLength(9);
    expect(grown.topic!.partitions[8]!.leaderId).toBeGreaterThan(0);

    const id = created.topic!.topicId;
    expect((await client.deleteTopic({ name: 'orders' })).topicId).toBe(id);
    const recreated = await client.createTopic({ name: 'orders', partitions: 1, replicationFactor: 1, configs: {}, validateOnly: false });
    expect(recreated.topic!.topicId).not.toBe(id);
    await client.deleteTopic({ name: 'orders' });
  });

  it('spreads the replicas of each partition across racks', async () => {
    const t = await client.createTopic({ name: 'racked', partitions: 4, replicationFactor: 2, configs: {}, validateOnly: false });
    const rack = (id: number) => (id === 3 ? 'b' : 'a');
    for (const p of t.topic!.partitions) expect(new Set(p.replicas.map(rack)).size).toBe(2);
  });

  it('creates a topic with more partitions than one store transaction can hold', async () => {
    const t = await client.createTopic({ name: 'wide', partitions: 450, replicationFactor: 2, configs: {}, validateOnly: false });
    expect(t.topic!.partitions).toHaveLength(450);
    expect(t.topic!.partitions.every((p) => p.leaderId >= 1 && p.partitionEpoch === 0)).toBe(true);
  });

  it('validate_only checks without creating', async () => {
    await client.createTopic({ name: 'dry', partitions: 2, replicationFactor: 1, configs: {}, validateOnly: true });
    expect((await client.listTopics({})).topics.some((t) => t.name === 'dry')).toBe(false);
  });
});

describe('bad input is refused precisely and changes nothing', () => {
  const create = (over: Record<string, unknown>) =>
    client.createTopic({ name: 'ok-name', partitions: 1, replicationFactor: 1, configs: {}, validateOnly: false, ...over });

  it.each([
    [{ name: '' }, 'INVALID_TOPIC_NAME'],
    [{ name: '.' }, 'INVALID_TOPIC_NAME'],
    [{ name: '..' }, 'INVALID_TOPIC_NAME'],
    [{ name: 'x'.repeat(250) }, 'INVALID_TOPIC_NAME'],
    [{ name: 'a/b' }, 'INVALID_TOPIC_NAME'],
    [{ name: 'bad name' }, 'INVALID_TOPIC_NAME'],
    [{ partitions: -1 }, 'INVALID_PARTITIONS'],
    [{ partitions: 100_001 }, 'INVALID_PARTITIONS'],
    [{ replicationFactor: -2 }, 'INVALID_REPLICATION_FACTOR'],
    [{ replicationFactor: 4 }, 'INVALID_REPLICATION_FACTOR'],
    [{ configs: { 'retention.ms': 'forever' } }, 'INVALID_CONFIG'],
    [{ configs: { 'no.such.config': '1' } }, 'UNKNOWN_CONFIG'],
    [{ configs: { 'min.insync.replicas': '2' } }, 'INVALID_CONFIG'],
  ])('create %j → %s', async (over, reason) => {
    const err = await rejection(create(over));
    expect(err.reason).toBe(reason);
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect((await client.listTopics({})).topics.some((t) => t.name === 'ok-name')).toBe(false);
  });

  it('names the offending config key', async () => {
    const err = await rejection(create({ configs: { 'segment.bytes': '12' } }));
    expect(err.metadata.config).toBe('segment.bytes');
    expect(err.message).toContain('segment.bytes');
  });

  it('refuses an existing topic, and unknown topics on delete, describe, alter and grow', async () => {
    await client.createTopic({ name: 'exists', partitions: 2, replicationFactor: 1, configs: {}, validateOnly: false });
    const dup = await rejection(create({ name: 'exists' }));
    expect([dup.reason, dup.code]).toEqual(['TOPIC_ALREADY_EXISTS', grpc.status.ALREADY_EXISTS]);
    for (const call of [
      () => client.deleteTopic({ name: 'nope' }),
      () => client.describeTopic({ name: 'nope' }),
      () => client.alterTopicConfigs({ name: 'nope', set: {}, remove: [], validateOnly: false }),
      () => client.createPartitions({ name: 'nope', totalCount: 3, validateOnly: false }),
    ]) {
      const err = await rejection(call());
      expect([err.reason, err.code]).toEqual(['UNKNOWN_TOPIC', grpc.status.NOT_FOUND]);
    }
    const shrink = await rejection(client.createPartitions({ name: 'exists', totalCount: 1, validateOnly: false }));
    expect(shrink.reason).toBe('INVALID_PARTITIONS');
    const badAlter = await rejection(client.alterTopicConfigs({ name: 'exists', set: { 'max.message.bytes': '-5' }, remove: [], validateOnly: false }));
    expect(badAlter.reason).toBe('INVALID_CONFIG');
    expect((await client.describeTopic({ name: 'exists' })).topic!.partitions).toHaveLength(2);
  });

  it('refuses stale epochs on AlterPartition', async () => {
    const t = (await client.createTopic({ name: 'isr', partitions: 1, replicationFactor: 3, configs: {}, validateOnly: false })).topic!;
    const p = t.partitions[0]!;
    const controller = (await cluster()).controller!;
    const ctl = metadataClient(`${controller.endpoint!.host}:${controller.endpoint!.port}`);
    try {
      const base = { brokerId: p.leaderId, topic: 'isr', topicId: t.topicId, partition: 0, newIsr: [p.leaderId] };
      const fenced = await rejection(ctl.alterPartition({ ...base, leaderEpoch: p.leaderEpoch - 1, partitionEpoch: p.partitionEpoch }));
      expect([fenced.reason, fenced.code]).toEqual(['FENCED_LEADER_EPOCH', grpc.status.FAILED_PRECONDITION]);
      const stale = await rejection(ctl.alterPartition({ ...base, leaderEpoch: p.leaderEpoch, partitionEpoch: p.partitionEpoch + 7 }));
      expect(stale.reason).toBe('STALE_PARTITION_EPOCH');
      const notLeader = await rejection(ctl.alterPartition({ ...base, brokerId: p.replicas.find((r) => r !== p.leaderId)!, leaderEpoch: p.leaderEpoch, partitionEpoch: p.partitionEpoch }));
      expect(notLeader.reason).toBe('NOT_LEADER_OR_FOLLOWER');
      expect(notLeader.leaderHint?.leaderId).toBe(p.leaderId);
      const ok = await ctl.alterPartition({ ...base, leaderEpoch: p.leaderEpoch, partitionEpoch: p.partitionEpoch });
      expect(ok.state).toMatchObject({ isr: [p.leaderId], partitionEpoch: p.partitionEpoch + 1, leaderEpoch: p.leaderEpoch });
    } finally {
      ctl.close();
    }
  });

  it('keeps serving after a garbage request body', async () => {
    const raw = new grpc.Client(metadata.address, grpc.credentials.createInsecure());
    const err = await new Promise<grpc.ServiceError>((resolve) => {
      raw.makeUnaryRequest('/skein.metadata.v1.MetadataService/CreateTopic', (b: Buffer) => b, (b: Buffer) => b, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]), (e) => resolve(e!));
    });
    raw.close();
    // Bad input, not a server fault: the shared shell answers INVALID_ARGUMENT (grpc-js said INTERNAL).
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(fromServiceError(err).reason).toBe('INVALID_REQUEST');
    expect((await cluster()).brokers.length).toBeGreaterThanOrEqual(3);
  });
});

describe('WatchMetadata and failover of partition leadership', () => {
  it('streams a snapshot, then changes; moves leadership off a broker whose session expires', async () => {
    const watcher = client.raw.watchMetadata({ fromRevision: 0n });
    const messages: WatchMetadataResponse[] = [];
    watcher.on('data', (m: WatchMetadataResponse) => messages.push(m));
    watcher.on('error', () => {});
    try {
      await waitFor(() => messages.length > 0, { timeoutMs: 5000, message: 'snapshot arrives' });
      expect(messages[0]!.snapshot?.brokers.length).toBeGreaterThanOrEqual(3);

      const t = (await client.createTopic({ name: 'failover', partitions: 6, replicationFactor: 2, configs: {}, validateOnly: false })).topic!;
      const victim = brokers.find((b) => b.brokerId === t.partitions[0]!.leaderId)!;
      const led = t.partitions.filter((p) => p.leaderId === victim.brokerId);
      victim.crash();

      await waitFor(async () => {
        const now = (await client.describeTopic({ name: 'failover' })).topic!;
        return now.partitions.every((p) => p.leaderId !== victim.brokerId && !p.isr.includes(victim.brokerId));
      }, { timeoutMs: 15_000, message: 'leadership moves off the dead broker' });

      const after = (await client.describeTopic({ name: 'failover' })).topic!;
      for (const before of led) {
        const now = after.partitions[before.partition]!;
        expect(before.isr).toContain(now.leaderId);
        expect(now.leaderEpoch).toBe(before.leaderEpoch + 1);
        expect(now.partitionEpoch).toBeGreaterThan(before.partitionEpoch);
      }
      const changes: MetadataChange[] = messages.flatMap((m) => m.changes);
      expect(changes.some((c) => c.change?.$case === 'brokerUnregistered' && c.change.value === victim.brokerId)).toBe(true);
      expect(changes.some((c) => c.change?.$case === 'partitionChanged' && c.change.value.topic === 'failover' && c.change.value.state?.leaderEpoch === 1)).toBe(true);
      const revisions = messages.map((m) => m.revision);
      expect([...revisions].sort((a, b) => (a < b ? -1 : 1))).toEqual(revisions);

      // The broker comes back as a follower; a single-replica partition it held comes back online.
      await victim.register();
      await waitFor(async () => (await cluster()).brokers.some((b) => b.brokerId === victim.brokerId), { timeoutMs: 5000, message: 'broker back' });
    } finally {
      watcher.cancel();
    }
  });

  it('resumes a watch from a revision without a new snapshot', async () => {
    const rev = (await cluster()).revision;
    await client.createTopic({ name: 'resume-me', partitions: 1, replicationFactor: 1, configs: {}, validateOnly: false });
    const watcher = client.raw.watchMetadata({ fromRevision: rev });
    const messages: WatchMetadataResponse[] = [];
    watcher.on('data', (m: WatchMetadataResponse) => messages.push(m));
    watcher.on('error', () => {});
    try {
      await waitFor(() => messages.some((m) => m.changes.some((c) => c.change?.$case === 'topicChanged' && c.change.value.name === 'resume-me')), { timeoutMs: 5000, message: 'missed change replayed' });
      expect(messages[0]!.snapshot).toBeUndefined();
    } finally {
      watcher.cancel();
    }
  });

  it('brings a single-replica partition back when its broker returns', async () => {
    const solo = new FakeBroker(client, 9);
    await solo.register();
    const t = (await client.createTopic({ name: 'solo', partitions: 3, replicationFactor: 1, configs: {}, validateOnly: false })).topic!;
    const mine = t.partitions.filter((p) => p.leaderId === 9);
    expect(mine.length).toBeGreaterThan(0);
    solo.crash();
    await waitFor(async () => (await client.describeTopic({ name: 'solo' })).topic!.partitions.filter((p) => mine.some((m) => m.partition === p.partition)).every((p) => p.leaderId === -1), { timeoutMs: 15_000, message: 'partitions offline' });
    await solo.register();
    await waitFor(async () => (await client.describeTopic({ name: 'solo' })).topic!.partitions.filter((p) => mine.some((m) => m.partition === p.partition)).every((p) => p.leaderId === 9 && p.leaderEpoch === 2), { timeoutMs: 15_000, message: 'partitions back on broker 9' });
    solo.crash();
  });
});
