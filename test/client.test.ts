// The TypeScript client against a real multi-process cluster (etcd, metadata, two brokers, a
// group coordinator): Kafka's key-to-partition mapping, batching by batch.size and linger.ms, the
// sticky and custom partitioners; a group consumer that keeps going through a broker restart and
// a coordinator restart; at-least-once across a consumer crash (committed offsets never ahead of
// processing); and idempotent retries that leave no duplicates.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GroupAdmin, GroupConsumer, SkeinClient, type RecordMetadata } from '@skein/client';
import { KAFKA_MURMUR2_VECTORS } from '../libs/client/src/murmur2-vectors.js';
import { startStores, type TestStores } from './harness/stores.js';
import { brokerClient, metadataClient } from './harness/clients.js';
import { startService, stopAll, waitFor, type ServiceProcess } from './harness/services.js';
import { stopChild } from './harness/processes.js';
import { spawnMember } from './harness/member-process.js';
import { BROKER_ENTRY, COORDINATOR_ENTRY, METADATA_ENTRY } from './harness/entries.js';
import type { MemberEvent } from './harness/group-member.js';


let stores: TestStores;
let metadataAddress = '';
let coordinator: ServiceProcess;
const brokers = new Map<number, ServiceProcess>();
let meta: ReturnType<typeof metadataClient>;

beforeAll(async () => {
  stores = await startStores();
  const store = (service: string) => stores.args(service, `/client-${process.pid}/`);
  const metadata = await startService({ name: 'metadata', entry: METADATA_ENTRY, args: store('metadata') });
  metadataAddress = metadata.address;
  for (const id of [1, 2]) {
    brokers.set(id, await startService({ name: `broker-${id}`, entry: BROKER_ENTRY, dataDirFlag: '--data-dir', args: ['--broker-id', String(id), '--metadata-addresses', metadata.address, '--session-ttl-ms', '2000', '--replica-lag-time-max-ms', '3000'] }));
  }
  meta = metadataClient(metadata.address);
  await waitFor(async () => (await meta.getClusterMetadata({ topics: [] })).metadata!.brokers.length === 2, { timeoutMs: 15_000, message: 'brokers registered' });
  coordinator = await startService({ name: 'coordinator', entry: COORDINATOR_ENTRY, args: [...store('coordinator'), '--metadata-addresses', metadata.address, '--session-timeout-ms', '3000', '--heartbeat-interval-ms', '200'] });
}, 60_000);

afterAll(async () => {
  meta?.close();
  await stopAll();
  await stores?.stop();
});

async function createTopic(name: string, partitions: number, replicationFactor: number, configs: Record<string, string> = {}): Promise<void> {
  await meta.createTopic({ name, partitions, replicationFactor, configs, validateOnly: false });
  const client = new SkeinClient({ metadata: [metadataAddress] });
  try {
    await waitFor(async () => {
      const t = await client.topic(name, true);
      return t.partitions.every((p) => p.leaderId > 0 && p.isr.length === replicationFactor);
    }, { timeoutMs: 15_000, message: `${name} has leaders and a full ISR` });
  } finally {
    client.close();
  }
}

/** The record batches stored in a partition, as the broker returns them. */
async function storedBatches(client: SkeinClient, topic: string, partition: number): Promise<Array<{ baseOffset: bigint; recordCount: number }>> {
  const t = await client.topic(topic, true);
  const cluster = await client.refreshMetadata();
  const leader = cluster.brokers.find((b) => b.brokerId === t.partitions[partition]!.leaderId)!;
  const broker = brokerClient(`${leader.endpoint!.host}:${leader.endpoint!.port}`);
  try {
    const res = await broker.fetch({ maxWaitMs: 0, minBytes: 1, maxBytes: 8 << 20, topics: [{ topic, partitions: [{ partition, fetchOffset: 0n, partitionMaxBytes: 8 << 20, currentLeaderEpoch: -1 }] }] });
    return res.topics[0]!.partitions[0]!.batches.map((b) => ({ baseOffset: b.baseOffset, recordCount: b.batch!.recordCount }));
  } finally {
    broker.close();
  }
}

describe('client', () => {
  it('maps keys as Kafka does, batches by batch.size and linger.ms, and partitions keyless records stickily or by a custom function', async () => {
    await createTopic('kp', 6, 1);
    const client = new SkeinClient({ metadata: [metadataAddress] });
    try {
      const producer = client.producer();
      for (const [key, hash] of Object.entries(KAFKA_MURMUR2_VECTORS)) {
        const md = await producer.sendRecord('kp', { key, value: `v-${key}`, timestampMs: 1 });
        expect(md.partition, `key ${key}`).toBe((hash & 0x7fffffff) % 6);
        const { records } = await client.fetch('kp', md.partition, md.offset);
        expect(records[0]!.key.toString()).toBe(key);
      }

      await createTopic('batching', 3, 1);
      // batch.size: 40 records of ~220 bytes with a 2 KiB limit leave in several batches at once, not after the linger.
      const small = client.producer({ batchSize: 2048, lingerMs: 60_000 });
      const sizeSends = small.send('batching', Array.from({ length: 40 }, (_, i) => ({ key: 'same', value: Buffer.alloc(200, 97 + (i % 26)), timestampMs: 1 })));
      await small.flush(); // the last, partial batch would otherwise wait out the linger
      const bySize = await sizeSends;
      const partition = bySize[0]!.partition;
      const sized = await storedBatches(client, 'batching', partition);
      expect(sized.length).toBeGreaterThanOrEqual(4);
      expect(Math.max(...sized.map((b) => b.recordCount))).toBeLessThanOrEqual(10);
      expect(sized.reduce((n, b) => n + b.recordCount, 0)).toBe(40);
      // linger.ms: records sent one by one within the linger share one batch.
      const lingering = client.producer({ lingerMs: 300 });
      const one = await Promise.all(Array.from({ length: 20 }, (_, i) => lingering.sendRecord('batching', { key: 'same', value: `l${i}`, timestampMs: 1 })));
      expect(new Set(one.map((m) => m.partition))).toEqual(new Set([partition]));
      const after = (await storedBatches(client, 'batching', partition)).filter((b) => b.baseOffset >= one[0]!.offset);
      expect(after).toEqual([{ baseOffset: one[0]!.offset, recordCount: 20 }]);
      expect(one.map((m) => m.offset)).toEqual(one.map((_, i) => one[0]!.offset + BigInt(i)));

      // Keyless records stick to one partition for the batch.
      const sticky = await client.producer({ lingerMs: 50 }).send('batching', Array.from({ length: 100 }, (_, i) => ({ value: `s${i}`, timestampMs: 1 })));
      expect(new Set(sticky.map((m) => m.partition)).size).toBe(1);
      // A custom partitioner decides, and one that answers out of range is refused.
      const custom = await client.producer({ partitioner: () => 2 }).send('batching', [{ key: 'x', value: 'c', timestampMs: 1 }]);
      expect(custom[0]!.partition).toBe(2);
      await expect(client.producer({ partitioner: () => 9 }).send('batching', [{ value: 'bad', timestampMs: 1 }])).rejects.toMatchObject({ reason: 'INVALID_REQUEST' });
      await Promise.all([small.close(), lingering.close()]);
    } finally {
      client.close();
    }
  });

  it('a group consumer keeps consuming through a broker restart and a coordinator restart', async () => {
    await createTopic('steady', 4, 2, { 'min.insync.replicas': '1' });
    const client = new SkeinClient({ metadata: [metadataAddress] });
    const producer = client.producer({ lingerMs: 2 });
    const acked = new Set<string>();
    const seen = new Set<string>();
    let producing = true;
    const producerLoop = (async () => {
      for (let i = 0; producing; i++) {
        const values = Array.from({ length: 20 }, (_, j) => `r${i}-${j}`);
        // Sends failing while a broker restarts are simply not counted as acknowledged.
        await producer.send('steady', values.map((v) => ({ key: v, value: v, timestampMs: Date.now() }))).then(() => values.forEach((v) => acked.add(v)), () => {});
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const consumer = new GroupConsumer(client, { groupId: 'steady-group', coordinator: [coordinator.address], topics: ['steady'] });
    try {
      await consumer.run((m) => { seen.add(m.value!.toString()); });
      const caughtUp = async (message: string) => {
        const target = new Set(acked);
        await waitFor(() => [...target].every((v) => seen.has(v)), { timeoutMs: 45_000, message });
      };
      await caughtUp('consuming before the restarts');
      brokers.get(1)!.kill();
      await new Promise((r) => setTimeout(r, 500));
      await brokers.get(1)!.restart();
      await caughtUp('consuming after broker 1 was killed and restarted');
      coordinator.kill();
      await new Promise((r) => setTimeout(r, 500));
      await coordinator.restart();
      await caughtUp('consuming after the coordinator was killed and restarted');
      producing = false;
      await producerLoop;
      await caughtUp('every acknowledged record consumed');
      expect(acked.size).toBeGreaterThan(100);
    } finally {
      producing = false;
      await producerLoop;
      await consumer.close();
      await producer.close();
      client.close();
    }
  }, 120_000);

  it('at-least-once across a consumer crash: committed offsets never pass what was processed, and the next member resumes there', async () => {
    await createTopic('alo', 3, 1);
    const client = new SkeinClient({ metadata: [metadataAddress] });
    const admin = new GroupAdmin([coordinator.address]);
    const producer = client.producer({ lingerMs: 2 });
    const events: MemberEvent[] = [];
    const startMember = (name: string) => spawnMember({ name, group: 'alo-group', topics: ['alo'], metadata: metadataAddress, coordinators: [coordinator.address] }, events);
    let producing = true;
    const producerLoop = (async () => {
      for (let i = 0; producing; i++) {
        await producer.send('alo', Array.from({ length: 10 }, (_, j) => ({ key: `k${i}-${j}`, value: `v${i}-${j}`, timestampMs: Date.now() })));
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const first = startMember('first');
    const second = { child: undefined as ReturnType<typeof startMember> | undefined };
    try {
      const processedBy = (member: string) => events.filter((e): e is Extract<MemberEvent, { e: 'record' }> => e.e === 'record' && e.member === member);
      await waitFor(async () => processedBy('first').length > 300 && (await admin.fetchOffsets('alo-group')).length === 3, { timeoutMs: 30_000, message: 'the first member processed and committed' });
      first.kill('SIGKILL');
      await new Promise<void>((r) => (first.exitCode !== null || first.signalCode !== null ? r() : first.once('exit', () => r())));
      const committedAtCrash = new Map((await admin.fetchOffsets('alo-group')).map((o) => [`${o.topic}:${o.partition}`, o.offset]));
      for (const [partition, offset] of committedAtCrash) {
        const processed = processedBy('first').filter((e) => e.partition === partition).map((e) => BigInt(e.offset));
        const next = processed.length ? processed.reduce((a, b) => (a > b ? a : b)) + 1n : 0n;
        expect(offset <= next, `${partition}: committed ${offset} but processed only up to ${next - 1n}`).toBe(true);
      }
      second.child = startMember('second');
      await waitFor(() => processedBy('second').length > 0, { timeoutMs: 30_000, message: 'the second member takes over' });
      producing = false;
      await producerLoop;
      await waitFor(async () => (await admin.describeGroup('alo-group')).lags.every((l) => l.lag === 0n), { timeoutMs: 30_000, message: 'the group caught up' });
      const ends = (await admin.describeGroup('alo-group')).lags;
      for (const l of ends) {
        const partition = `${l.topic}:${l.partition}`;
        const resumed = processedBy('second').filter((e) => e.partition === partition);
        // The new member starts exactly at the committed offset: nothing skipped, redelivery bounded by the commit interval.
        if (resumed.length > 0) expect(BigInt(resumed[0]!.offset)).toBe(committedAtCrash.get(partition));
        const all = new Set(events.filter((e) => e.e === 'record' && e.partition === partition).map((e) => BigInt((e as { offset: string }).offset)));
        for (let o = 0n; o < l.logEndOffset; o++) expect(all.has(o), `${partition} offset ${o} processed`).toBe(true);
      }
    } finally {
      producing = false;
      await producerLoop.catch(() => {});
      if (second.child) await stopChild(second.child, 5000);
      await producer.close();
      admin.close();
      client.close();
    }
  }, 120_000);

  it('idempotent retries after acks=all timeouts leave every record exactly once, in order', async () => {
    await createTopic('idem', 1, 2, { 'min.insync.replicas': '1' });
    // A short request timeout turns the follower's death into acks=all timeouts (retriable) until the ISR shrinks.
    const client = new SkeinClient({ metadata: [metadataAddress], requestTimeoutMs: 800 });
    const producer = client.producer({ lingerMs: 1 });
    try {
      const t = await client.topic('idem', true);
      const follower = t.partitions[0]!.replicas.find((id) => id !== t.partitions[0]!.leaderId)!;
      const sent: string[] = [];
      const results: RecordMetadata[] = [];
      for (let i = 0; i < 60; i++) {
        if (i === 15) brokers.get(follower)!.kill();
        const values = Array.from({ length: 25 }, (_, j) => `i${i}-${j}`);
        results.push(...(await producer.send('idem', values.map((v) => ({ value: v, timestampMs: Date.now() })))));
        sent.push(...values);
      }
      expect(client.stats.retries).toBeGreaterThan(0);
      const stored: string[] = [];
      for (let offset = 0n; ;) {
        const { records, highWatermark } = await client.fetch('idem', 0, offset);
        stored.push(...records.map((r) => r.value!.toString()));
        if (records.length === 0 || records[records.length - 1]!.offset + 1n >= highWatermark) break;
        offset = records[records.length - 1]!.offset + 1n;
      }
      expect(stored).toEqual(sent);
      expect(results.map((r) => r.offset)).toEqual(sent.map((_, i) => BigInt(i)));
      await brokers.get(follower)!.restart();
    } finally {
      await producer.close();
      client.close();
    }
  }, 120_000);
});
