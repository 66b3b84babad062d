// Controller failover and store failures against a real 3-member etcd: the controller moves when
// its process is killed, a deposed (frozen) controller cannot overwrite its successor's decisions,
// and losing one etcd member changes nothing visible.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipUnless } from './harness/requirements.js';
import type { ClusterMetadata } from '@skein/proto/skein/metadata/v1/metadata.js';
import { startEtcd, type EtcdCluster } from './harness/etcd.js';
import { metadataClient } from './harness/clients.js';
import { FakeBroker } from './harness/fake-broker.js';
import { startService, waitFor, type ServiceProcess } from './harness/services.js';
import { METADATA_ENTRY } from './harness/entries.js';

const skip = skipUnless(import.meta.url, 'etcd-binary');

const CONTROLLER_TTL_MS = 2000;
let etcd: EtcdCluster;
const instances: ServiceProcess[] = [];
const clients = new Map<ServiceProcess, ReturnType<typeof metadataClient>>();
const brokers: FakeBroker[] = [];
const prefix = `/skein-failover-${process.pid}-${Date.now()}/`;

async function startInstance(name: string): Promise<ServiceProcess> {
  const p = await startService({
    name,
    entry: METADATA_ENTRY,
    args: ['--store', `etcd://${etcd.endpoints.join(',')}`, '--prefix', prefix, '--controller-session-ttl-ms', String(CONTROLLER_TTL_MS), '--instance-id', name],
  });
  instances.push(p);
  clients.set(p, metadataClient(p.address));
  return p;
}

const clientOf = (p: ServiceProcess) => clients.get(p)!;
const clusterVia = async (p: ServiceProcess): Promise<ClusterMetadata> => (await clientOf(p).getClusterMetadata({ topics: [] })).metadata!;

beforeAll(async () => {
  etcd = await startEtcd({ members: 3 });
  await startInstance('meta-a');
  await startInstance('meta-b');
  const all = instances.map(clientOf);
  for (const id of [1, 2, 3]) {
    const b = new FakeBroker(all, id);
    await b.register();
    brokers.push(b);
  }
  await waitFor(async () => (await clusterVia(instances[1]!)).controller !== undefined, { timeoutMs: 15_000, message: 'controller elected' });
}, 60_000);

afterAll(async () => {
  for (const b of brokers) b.crash();
  for (const c of clients.values()) c.close();
  for (const p of instances) await p.stop().catch(() => {});
  await etcd?.stop();
});

describe.skipIf(skip)('controller failover', () => {
  it('moves the controller to the other instance when the controller is killed, with a higher epoch', async () => {
    const before = (await clusterVia(instances[0]!)).controller!;
    const victim = instances.find((p) => p.name === before.controllerId)!;
    const survivor = instances.find((p) => p !== victim)!;
    const killedAt = Date.now();
    victim.kill();
    await waitFor(async () => (await clusterVia(survivor)).controller?.controllerId === survivor.name, { timeoutMs: 4 * CONTROLLER_TTL_MS + 5000, intervalMs: 50, message: 'survivor becomes controller' });
    const failoverMs = Date.now() - killedAt;
    const after = (await clusterVia(survivor)).controller!;
    expect(after.controllerEpoch).toBeGreaterThan(before.controllerEpoch);
    console.log(`controller failover after SIGKILL: ${failoverMs} ms (session TTL ${CONTROLLER_TTL_MS} ms)`);

    // The new controller acts: a broker failure is handled.
    const c = clientOf(survivor);
    const t = (await c.createTopic({ name: 'after-failover', partitions: 3, replicationFactor: 2, configs: {}, validateOnly: false })).topic!;
    const dead = brokers.find((b) => b.brokerId === t.partitions[0]!.leaderId)!;
    dead.crash();
    await waitFor(async () => (await c.describeTopic({ name: 'after-failover' })).topic!.partitions.every((p) => p.leaderId !== dead.brokerId), { timeoutMs: 15_000, message: 'new controller moves leadership' });
    await dead.register();
    // Restarted on the same port, so the existing clients reconnect to it.
    await victim.restart();
  });

  it('a frozen controller that lost its session does not overwrite its successor', async () => {
    const current = (await clusterVia(instances[0]!)).controller!;
    const frozen = instances.find((p) => p.name === current.controllerId)!;
    const other = instances.find((p) => p !== frozen)!;
    const c = clientOf(other);
    const t = (await c.createTopic({ name: 'frozen', partitions: 2, replicationFactor: 3, configs: {}, validateOnly: false })).topic!;

    process.kill(frozen.pid, 'SIGSTOP');
    try {
      await waitFor(async () => (await clusterVia(other)).controller?.controllerId === other.name, { timeoutMs: 4 * CONTROLLER_TTL_MS + 5000, intervalMs: 50, message: 'other instance takes over' });
      const victim = brokers.find((b) => b.brokerId === t.partitions[0]!.leaderId)!;
      victim.crash();
      await waitFor(async () => (await c.describeTopic({ name: 'frozen' })).topic!.partitions.every((p) => p.leaderId !== victim.brokerId), { timeoutMs: 15_000, message: 'successor moves leadership' });
      await victim.register();
    } finally {
      process.kill(frozen.pid, 'SIGCONT');
    }
    const settled = (await c.describeTopic({ name: 'frozen' })).topic!;
    // Whatever the thawed instance had queued, it can no longer win a write: the state stays the successor's.
    await waitFor(async () => (await clusterVia(frozen)).controller?.controllerId === other.name, { timeoutMs: 10_000, message: 'thawed instance sees the new controller' });
    const later = (await c.describeTopic({ name: 'frozen' })).topic!;
    expect(later.partitions.map((p) => [p.leaderId, p.leaderEpoch])).toEqual(settled.partitions.map((p) => [p.leaderId, p.leaderEpoch]));
    expect((await clusterVia(other)).controller!.controllerId).toBe(other.name);
  });
});

describe.skipIf(skip)('etcd member loss', () => {
  it('losing one etcd member of three changes nothing visible', async () => {
    const c = clientOf(instances[0]!);
    // Brokers whose sessions lapsed while an instance was frozen in the previous test register again first.
    await waitFor(async () => (await clusterVia(instances[0]!)).brokers.length >= 3, { timeoutMs: 15_000, message: 'three live brokers' });
    etcd.killMember(0);
    const created = await c.createTopic({ name: 'quorum', partitions: 4, replicationFactor: 3, configs: {}, validateOnly: false });
    expect(created.topic!.partitions).toHaveLength(4);
    const b = new FakeBroker([c, clientOf(instances[1]!)], 40);
    await b.register();
    const seenElsewhere = async () => (await clusterVia(instances[1]!)).brokers.some((x) => x.brokerId === 40) &&
      (await clientOf(instances[1]!).describeTopic({ name: 'quorum' })).topic!.partitions.length === 4;
    await waitFor(seenElsewhere, { timeoutMs: 10_000, message: 'both instances see the writes' });
    b.crash();
  });
});
