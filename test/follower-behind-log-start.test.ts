// A follower whose log ends below the leader's log start (it was down while retention deleted the
// segments it would need) truncates fully, starts at the leader's log start and catches up, on the
// replication stream (issue 12: this path was an unhandled rejection that stalled the follower).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Acks, OffsetSpec } from '@skein/proto/skein/broker/v1/broker.js';
import { buildRecordBatch } from '@skein/common/records/record-batch.js';
import { startStores, type TestStores } from './harness/stores.js';
import { brokerClient, metadataClient } from './harness/clients.js';
import { startService, stopAll, waitFor, type ServiceProcess } from './harness/services.js';
import { BROKER_ENTRY, METADATA_ENTRY } from './harness/entries.js';
import { expectReplicasIdentical } from './harness/replica-logs.js';

const TOPIC = 'retained';
let stores: TestStores;
let meta: ReturnType<typeof metadataClient>;
const brokers = new Map<number, ServiceProcess>();
const clients = new Map<number, ReturnType<typeof brokerClient>>();

beforeAll(async () => {
  stores = await startStores();
  const metadata = await startService({ name: 'metadata', entry: METADATA_ENTRY, args: stores.args('metadata', `/retained-${process.pid}/`) });
  meta = metadataClient(metadata.address);
  for (const id of [1, 2, 3]) {
    const b = await startService({
      name: `broker-${id}`,
      entry: BROKER_ENTRY,
      dataDirFlag: '--data-dir',
      // Retention runs every 200 ms so the leader's log start moves while a follower is away.
      args: [
        '--broker-id',
        String(id),
        '--metadata-addresses',
        metadata.address,
        '--session-ttl-ms',
        '2000',
        '--replica-lag-time-max-ms',
        '1500',
        '--background-interval-ms',
        '200',
        '--replica-log-read-enabled',
      ],
    });
    brokers.set(id, b);
    clients.set(id, brokerClient(b.address));
  }
  await waitFor(async () => (await meta.getClusterMetadata({ topics: [] })).metadata!.brokers.length === 3, {
    timeoutMs: 15_000,
    message: 'three brokers registered',
  });
  await meta.createTopic({
    name: TOPIC,
    partitions: 1,
    replicationFactor: 3,
    configs: { 'min.insync.replicas': '2', 'segment.bytes': '4096', 'retention.bytes': '16384' },
    validateOnly: false,
  });
}, 60_000);

afterAll(async () => {
  for (const c of clients.values()) c.close();
  meta?.close();
  await stopAll();
  await stores?.stop();
});

async function state() {
  return (await meta.describeTopic({ name: TOPIC })).topic!.partitions[0]!;
}

async function produce(tag: string) {
  const p = await state();
  const records = Array.from({ length: 10 }, (_, i) => ({ key: `${tag}-${i}`, value: Buffer.alloc(100, 97 + (i % 26)), timestampMs: Date.now() }));
  const res = await clients
    .get(p.leaderId)!
    .produce(
      { acks: Acks.ACKS_ALL, timeoutMs: 4000, topics: [{ topic: TOPIC, partitions: [{ partition: 0, batch: buildRecordBatch(records) }] }] },
      { deadlineMs: 10_000 },
    );
  return res.topics[0]!.partitions[0]!;
}

describe("a follower behind the leader's log start", () => {
  it("truncates fully, starts at the leader's log start, catches up and ends identical", async () => {
    await waitFor(async () => (await produce('warm')).error === undefined, { timeoutMs: 15_000, message: 'a first acks=all write succeeds' });
    const leaderId = (await state()).leaderId;
    const followerId = [1, 2, 3].find((id) => id !== leaderId)!;
    const follower = brokers.get(followerId)!;
    // Away: the follower holds only the first records; the other two keep the ISR at 2.
    follower.kill();
    await waitFor(async () => !(await state()).isr.includes(followerId), { timeoutMs: 15_000, message: 'the stopped follower leaves the ISR' });
    for (let i = 0; i < 60; i++) {
      const r = await produce(`away-${i}`);
      expect(r.error).toBeUndefined();
    }
    // Retention moved the leader's log start past everything the stopped follower has.
    const leader = clients.get(leaderId)!;
    await waitFor(
      async () => {
        const res = await leader.listOffsets({
          topics: [{ topic: TOPIC, partitions: [{ partition: 0, spec: OffsetSpec.OFFSET_SPEC_EARLIEST, timestampMs: 0n }] }],
        });
        return res.topics[0]!.partitions[0]!.offset > 20n;
      },
      { timeoutMs: 15_000, message: "retention moved the leader's log start" },
    );
    await follower.restart();
    await waitFor(async () => (await state()).isr.includes(followerId), { timeoutMs: 30_000, message: 'the follower rejoins the ISR' });
    expect(follower.logs(400)).toMatch(/truncating fully/);
    await expectReplicasIdentical(clients, TOPIC, 0, { timeoutMs: 20_000 });
  }, 90_000);
});
