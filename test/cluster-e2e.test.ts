// The whole data path across processes: real etcd, the metadata service, two brokers. Brokers
// register, follow WatchMetadata, open the partitions they are assigned, and serve produce/fetch;
// a million keyed records with headers across several topics come back exactly, in order.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Acks, CompressionCodec, OffsetSpec } from '@skein/proto/skein/broker/v1/broker.js';
import { buildRecordBatch, decodeRecordBatch, type RecordInput } from '@skein/common/records/record-batch.js';
import { startStores, type TestStores } from './harness/stores.js';
import { brokerClient, metadataClient } from './harness/clients.js';
import { startService, stopAll, waitFor, type ServiceProcess } from './harness/services.js';
import { BROKER_ENTRY, METADATA_ENTRY } from './harness/entries.js';

let stores: TestStores;
let metadata: ServiceProcess;
const brokers: ServiceProcess[] = [];
let meta: ReturnType<typeof metadataClient>;
const clients = new Map<number, ReturnType<typeof brokerClient>>();

beforeAll(async () => {
  stores = await startStores();
  metadata = await startService({ name: 'metadata', entry: METADATA_ENTRY, args: stores.args('metadata', `/e2e-${process.pid}/`) });
  meta = metadataClient(metadata.address);
  for (const id of [1, 2]) {
    const b = await startService({ name: `broker-${id}`, entry: BROKER_ENTRY, dataDirFlag: '--data-dir', args: ['--broker-id', String(id), '--metadata-addresses', metadata.address, '--session-ttl-ms', '3000'] });
    brokers.push(b);
    clients.set(id, brokerClient(b.address));
  }
  await waitFor(async () => (await meta.getClusterMetadata({ topics: [] })).metadata!.brokers.length === 2, { timeoutMs: 15_000, message: 'both brokers registered' });
}, 60_000);

afterAll(async () => {
  for (const c of clients.values()) c.close();
  meta?.close();
  await stopAll();
  await stores?.stop();
});

async function leaderClient(topic: string, partition: number) {
  // Any broker is a bootstrap address: ask broker 1 who leads.
  const md = await clients.get(1)!.getMetadata({ topics: [topic] });
  const p = md.metadata!.topics[0]!.partitions.find((x) => x.partition === partition)!;
  return { client: clients.get(p.leaderId)!, leaderId: p.leaderId };
}

async function waitForTopicOnBrokers(topic: string, partitions: number) {
  await waitFor(async () => {
    for (let p = 0; p < partitions; p++) {
      const { client } = await leaderClient(topic, p);
      const res = await client.listOffsets({ topics: [{ topic, partitions: [{ partition: p, spec: OffsetSpec.OFFSET_SPEC_LATEST, timestampMs: 0n }] }] });
      if (res.topics[0]!.partitions[0]!.error) return false;
    }
    return true;
  }, { timeoutMs: 15_000, message: `${topic} is open on its leaders` });
}

async function fetchAll(topic: string, partition: number, until: bigint) {
  const { client } = await leaderClient(topic, partition);
  const out: ReturnType<typeof decodeRecordBatch> = [];
  let offset = 0n;
  while (offset < until) {
    const res = await client.fetch({ maxWaitMs: 500, minBytes: 1, maxBytes: 8 * 1024 * 1024, topics: [{ topic, partitions: [{ partition, fetchOffset: offset, partitionMaxBytes: 8 * 1024 * 1024, currentLeaderEpoch: -1 }] }] });
    const pr = res.topics[0]!.partitions[0]!;
    expect(pr.error).toBeUndefined();
    for (const fb of pr.batches) {
      const records = decodeRecordBatch(fb.batch!, fb.baseOffset);
      out.push(...records);
      offset = fb.baseOffset + BigInt(records.length);
    }
  }
  return out;
}

describe('multi-process cluster', () => {
  it('produces a million keyed records with headers across topics and partitions and fetches them back exactly', async () => {
    const topics = ['e2e-a', 'e2e-b', 'e2e-c'];
    for (const t of topics) await meta.createTopic({ name: t, partitions: 4, replicationFactor: 1, configs: { 'segment.bytes': String(4 * 1024 * 1024) }, validateOnly: false });
    for (const t of topics) await waitForTopicOnBrokers(t, 4);
    // Partitions spread over both brokers.
    const leaders = new Set<number>();
    for (const t of topics) for (let p = 0; p < 4; p++) leaders.add((await leaderClient(t, p)).leaderId);
    expect(leaders).toEqual(new Set([1, 2]));

    const perBatch = 5000;
    const batchesPerPartition = 1_000_000 / perBatch / (topics.length * 4);
    const expectedCount = new Map<string, bigint>();
    const t0 = 1_790_000_000_000;
    const jobs: Array<Promise<void>> = [];
    for (const topic of topics) {
      for (let partition = 0; partition < 4; partition++) {
        jobs.push((async () => {
          const { client } = await leaderClient(topic, partition);
          let next = 0;
          for (let b = 0; b < Math.ceil(batchesPerPartition); b++) {
            const records: RecordInput[] = Array.from({ length: perBatch }, () => {
              const i = next++;
              return { key: `${topic}/${partition}/k${i}`, value: `v${i}`, headers: [{ key: 'seq', value: String(i) }], timestampMs: t0 + i };
            });
            const res = await client.produce({ acks: Acks.ACKS_LEADER, timeoutMs: 5000, topics: [{ topic, partitions: [{ partition, batch: buildRecordBatch(records, { compression: CompressionCodec.COMPRESSION_CODEC_NONE }) }] }] }, { deadlineMs: 30_000 });
            const pr = res.topics[0]!.partitions[0]!;
            expect(pr.error).toBeUndefined();
            expect(pr.baseOffset).toBe(BigInt(b * perBatch));
          }
          expectedCount.set(`${topic}/${partition}`, BigInt(next));
        })());
      }
    }
    await Promise.all(jobs);
    let total = 0n;
    for (const v of expectedCount.values()) total += v;
    expect(total).toBeGreaterThanOrEqual(1_000_000n);

    for (const topic of topics) {
      for (let partition = 0; partition < 4; partition++) {
        const n = expectedCount.get(`${topic}/${partition}`)!;
        const records = await fetchAll(topic, partition, n);
        expect(BigInt(records.length)).toBe(n);
        records.forEach((r, i) => {
          if (r.offset !== BigInt(i) || r.key.toString() !== `${topic}/${partition}/k${i}` || r.value?.toString() !== `v${i}` || r.timestampMs !== BigInt(t0 + i) || r.headers[0]?.value.toString() !== String(i)) {
            throw new Error(`record ${i} of ${topic}/${partition} differs: ${JSON.stringify({ offset: r.offset.toString(), key: r.key.toString() })}`);
          }
        });
      }
    }
  }, 240_000);

  it('round-trips every codec and finds records by timestamp', async () => {
    await meta.createTopic({ name: 'e2e-codecs', partitions: 1, replicationFactor: 1, configs: {}, validateOnly: false });
    await waitForTopicOnBrokers('e2e-codecs', 1);
    const { client } = await leaderClient('e2e-codecs', 0);
    const codecs = [CompressionCodec.COMPRESSION_CODEC_NONE, CompressionCodec.COMPRESSION_CODEC_GZIP, CompressionCodec.COMPRESSION_CODEC_LZ4];
    let ts = 1_800_000_000_000;
    for (const compression of codecs) {
      const records: RecordInput[] = Array.from({ length: 100 }, (_, i) => ({ key: `c${compression}-${i}`, value: i % 10 === 0 ? null : `value-${i}`.repeat(5), timestampMs: ts++ }));
      const res = await client.produce({ acks: Acks.ACKS_ALL, timeoutMs: 5000, topics: [{ topic: 'e2e-codecs', partitions: [{ partition: 0, batch: buildRecordBatch(records, { compression }) }] }] });
      expect(res.topics[0]!.partitions[0]!.error).toBeUndefined();
    }
    const all = await fetchAll('e2e-codecs', 0, 300n);
    expect(all.map((r) => r.key.toString())).toEqual(codecs.flatMap((c) => Array.from({ length: 100 }, (_, i) => `c${c}-${i}`)));
    expect(all.filter((r) => r.value === null)).toHaveLength(30);
    const byTime = await client.listOffsets({ topics: [{ topic: 'e2e-codecs', partitions: [{ partition: 0, spec: OffsetSpec.OFFSET_SPEC_TIMESTAMP, timestampMs: 1_800_000_000_150n }] }] });
    expect(byTime.topics[0]!.partitions[0]!.offset).toBe(150n);
  });

  it('refuses a produce to a broker that does not lead the partition, naming the leader', async () => {
    await meta.createTopic({ name: 'e2e-hint', partitions: 2, replicationFactor: 1, configs: {}, validateOnly: false });
    await waitForTopicOnBrokers('e2e-hint', 2);
    const { leaderId } = await leaderClient('e2e-hint', 0);
    const wrong = clients.get(leaderId === 1 ? 2 : 1)!;
    const res = await wrong.produce({ acks: Acks.ACKS_LEADER, timeoutMs: 1000, topics: [{ topic: 'e2e-hint', partitions: [{ partition: 0, batch: buildRecordBatch([{ value: 'x', timestampMs: 1 }]) }] }] });
    const err = res.topics[0]!.partitions[0]!.error!;
    expect(err.reason).toMatch(/NOT_LEADER/);
    expect(err.leaderHint?.leaderId).toBe(leaderId);
  });

  it('deletes a topic’s data on its brokers when the topic is deleted, and a re-created topic starts empty', async () => {
    await meta.createTopic({ name: 'e2e-del', partitions: 1, replicationFactor: 1, configs: {}, validateOnly: false });
    await waitForTopicOnBrokers('e2e-del', 1);
    const first = await leaderClient('e2e-del', 0);
    await first.client.produce({ acks: Acks.ACKS_LEADER, timeoutMs: 1000, topics: [{ topic: 'e2e-del', partitions: [{ partition: 0, batch: buildRecordBatch([{ value: 'old', timestampMs: 1 }]) }] }] });
    await meta.deleteTopic({ name: 'e2e-del' });
    await meta.createTopic({ name: 'e2e-del', partitions: 1, replicationFactor: 1, configs: {}, validateOnly: false });
    await waitFor(async () => {
      const { client } = await leaderClient('e2e-del', 0);
      const res = await client.listOffsets({ topics: [{ topic: 'e2e-del', partitions: [{ partition: 0, spec: OffsetSpec.OFFSET_SPEC_LATEST, timestampMs: 0n }] }] });
      const p = res.topics[0]!.partitions[0]!;
      return !p.error && p.offset === 0n;
    }, { timeoutMs: 15_000, message: 're-created topic is empty' });
  });

  it('hands out producer ids from the cluster: unique across brokers', async () => {
    const ids = new Set<bigint>();
    for (let i = 0; i < 5; i++) {
      for (const c of clients.values()) {
        const res = await c.initProducerId({ clientId: `e2e-${i}` });
        expect(res.producerId).toBeGreaterThan(0n);
        ids.add(res.producerId);
      }
    }
    expect(ids.size).toBe(10);
  });

  it('moves a partition to another broker by reassignment (drain), keeping every record', async () => {
    await meta.createTopic({ name: 'e2e-move', partitions: 1, replicationFactor: 1, configs: {}, validateOnly: false });
    await waitForTopicOnBrokers('e2e-move', 1);
    const from = await leaderClient('e2e-move', 0);
    const to = from.leaderId === 1 ? 2 : 1;
    for (let b = 0; b < 10; b++) {
      const records = Array.from({ length: 100 }, (_, i) => ({ key: `m${b * 100 + i}`, value: 'v', timestampMs: 1 }));
      const res = await from.client.produce({ acks: Acks.ACKS_ALL, timeoutMs: 5000, topics: [{ topic: 'e2e-move', partitions: [{ partition: 0, batch: buildRecordBatch(records) }] }] });
      expect(res.topics[0]!.partitions[0]!.error).toBeUndefined();
    }
    const controller = (await meta.getClusterMetadata({ topics: [] })).metadata!.controller!;
    const ctl = metadataClient(`${controller.endpoint!.host}:${controller.endpoint!.port}`);
    const started = await ctl.reassignPartitions({ reassignments: [{ topic: 'e2e-move', partition: 0, targetReplicas: [to] }] });
    ctl.close();
    expect(started.started[0]!.state!.targetReplicas).toEqual([to]);
    await waitFor(async () => {
      const p = (await meta.describeTopic({ name: 'e2e-move' })).topic!.partitions[0]!;
      return p.replicas.length === 1 && p.replicas[0] === to && p.leaderId === to && p.targetReplicas.length === 0;
    }, { timeoutMs: 30_000, message: 'the reassignment completes' });
    const moved = await fetchAll('e2e-move', 0, 1000n);
    expect(moved.map((r) => r.key.toString())).toEqual(Array.from({ length: 1000 }, (_, i) => `m${i}`));
  });
});
