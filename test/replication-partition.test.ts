// A partition leader cut off from the metadata service (and so from the controller and etcd) but
// still reachable by clients: once it is replaced it cannot acknowledge acks=all writes, and after
// the partition heals it truncates anything it wrote alone and follows the new leader.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Acks } from '@skein/proto/skein/broker/v1/broker.js';
import { buildRecordBatch, decodeRecordBatch } from '@skein/common/records/record-batch.js';
import { startStores, type TestStores } from './harness/stores.js';
import { brokerClient, metadataClient } from './harness/clients.js';
import { startService, stopAll, waitFor, type ServiceProcess } from './harness/services.js';
import { TcpProxy } from './harness/tcp-proxy.js';
import { BROKER_ENTRY, METADATA_ENTRY } from './harness/entries.js';
import { expectReplicasIdentical } from './harness/replica-logs.js';

const TOPIC = 'partitioned';
let stores: TestStores;
let meta: ReturnType<typeof metadataClient>;
const clients = new Map<number, ReturnType<typeof brokerClient>>();
const proxies = new Map<number, TcpProxy>();
const brokers = new Map<number, ServiceProcess>();

beforeAll(async () => {
  stores = await startStores();
  const metadata = await startService({ name: 'metadata', entry: METADATA_ENTRY, args: stores.args('metadata', `/part-${process.pid}/`) });
  meta = metadataClient(metadata.address);
  for (const id of [1, 2, 3]) {
    // Each broker reaches the metadata service through its own proxy, so one can be cut off alone.
    const proxy = await TcpProxy.start(metadata.address);
    proxies.set(id, proxy);
    const b = await startService({ name: `broker-${id}`, entry: BROKER_ENTRY, dataDirFlag: '--data-dir', args: ['--broker-id', String(id), '--metadata-addresses', proxy.address, '--session-ttl-ms', '2000', '--replica-lag-time-max-ms', '1500', '--replica-log-read-enabled'] });
    brokers.set(id, b);
    clients.set(id, brokerClient(b.address));
  }
  await waitFor(async () => (await meta.getClusterMetadata({ topics: [] })).metadata!.brokers.length === 3, { timeoutMs: 15_000, message: 'three brokers registered' });
  await meta.createTopic({ name: TOPIC, partitions: 1, replicationFactor: 3, configs: { 'min.insync.replicas': '2' }, validateOnly: false });
}, 60_000);

afterAll(async () => {
  for (const c of clients.values()) c.close();
  for (const p of proxies.values()) await p.close();
  meta?.close();
  await stopAll();
  await stores?.stop();
});

const state = async () => (await meta.describeTopic({ name: TOPIC })).topic!.partitions[0]!;
const produce = async (brokerId: number, key: string, acks = Acks.ACKS_ALL) => {
  const res = await clients.get(brokerId)!.produce({ acks, timeoutMs: 2000, topics: [{ topic: TOPIC, partitions: [{ partition: 0, batch: buildRecordBatch([{ key, value: key, timestampMs: Date.now() }]) }] }] }, { deadlineMs: 5000 });
  return res.topics[0]!.partitions[0]!;
};

async function readKeys(brokerId: number): Promise<string[]> {
  const res = await clients.get(brokerId)!.fetch({ maxWaitMs: 0, minBytes: 0, maxBytes: 8 << 20, topics: [{ topic: TOPIC, partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 8 << 20, currentLeaderEpoch: -1 }] }] });
  const pr = res.topics[0]!.partitions[0]!;
  if (pr.error) throw new Error(pr.error.reason);
  return pr.batches.flatMap((b) => decodeRecordBatch(b.batch!, b.baseOffset).map((r) => r.key.toString()));
}

describe('network partition of a leader', () => {
  it('a deposed leader cannot acknowledge acks=all writes, and after healing truncates and follows', async () => {
    await waitFor(async () => !(await produce((await state()).leaderId, 'before')).error, { timeoutMs: 20_000, message: 'first write' });
    await waitFor(async () => (await state()).isr.length === 3, { timeoutMs: 20_000, message: 'ISR complete' });
    const old = (await state()).leaderId;
    proxies.get(old)!.cut();
    await waitFor(async () => { const s = await state(); return s.leaderId !== old && s.leaderId >= 0; }, { timeoutMs: 20_000, message: 'the controller replaces the cut-off leader' });
    const fresh = (await state()).leaderId;

    // The old leader still answers clients, but its followers have moved on: acks=all cannot succeed.
    const stale = await produce(old, 'stale-all');
    expect(stale.error).toBeDefined();
    expect(['REQUEST_TIMED_OUT', 'NOT_ENOUGH_REPLICAS', 'NOT_LEADER_OR_FOLLOWER']).toContain(stale.error!.reason);
    // acks=1 to the old leader may be appended there alone: it must not survive healing.
    await produce(old, 'stale-one', Acks.ACKS_LEADER);

    await waitFor(async () => !(await produce(fresh, 'after')).error, { timeoutMs: 20_000, message: 'the new leader acknowledges writes' });
    proxies.get(old)!.heal();
    await waitFor(async () => (await state()).isr.includes(old), { timeoutMs: 30_000, message: 'the old leader rejoins as a follower' });
    const keys = await readKeys(fresh);
    expect(keys).toContain('before');
    expect(keys).toContain('after');
    expect(keys).not.toContain('stale-all');
    expect(keys).not.toContain('stale-one');
    // And the old leader's log now matches the new leader's: what it wrote alone was truncated.
    const bytes = (id: number) => {
      const dir = join(brokers.get(id)!.dataDir, `${TOPIC}-0`);
      return Buffer.concat(readdirSync(dir).filter((f) => f.endsWith('.log')).sort().map((f) => readFileSync(join(dir, f))));
    };
    await waitFor(() => bytes(old).equals(bytes(fresh)), { timeoutMs: 15_000, message: 'the old leader truncated and now matches the new leader byte for byte' });
    // From outside, through each broker's ReadReplicaLog: same batches, epochs and bytes below the HW.
    const same = await expectReplicasIdentical(clients, TOPIC, 0);
    expect(same.limit).toBeGreaterThanOrEqual(BigInt(keys.length));
  }, 120_000);
});
