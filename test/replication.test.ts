// Replication across three broker processes with real etcd: followers pull from the leader, the
// high watermark follows the ISR, acks=all waits for the ISR and refuses below
// min.insync.replicas, the ISR shrinks and expands through the controller, replicas end
// byte-identical, and a SIGKILLed leader is replaced by an ISR member that has every acked record.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Acks, OffsetSpec } from '@skein/proto/skein/broker/v1/broker.js';
import { buildRecordBatch, decodeRecordBatch } from '@skein/common/records/record-batch.js';
import { startStores, type TestStores } from './harness/stores.js';
import { brokerClient, metadataClient } from './harness/clients.js';
import { startService, stopAll, waitFor, type ServiceProcess } from './harness/services.js';
import { BROKER_ENTRY, METADATA_ENTRY } from './harness/entries.js';
import { expectReplicasIdentical } from './harness/replica-logs.js';

const TOPIC = 'replicated';
let stores: TestStores;
let meta: ReturnType<typeof metadataClient>;
const brokers = new Map<number, ServiceProcess>();
const clients = new Map<number, ReturnType<typeof brokerClient>>();
const acked: string[] = [];
// Writes refused after they were appended (outcome unknown): they may become visible later.
const maybe = new Set<string>();
const OUTCOME_UNKNOWN = new Set(['NOT_ENOUGH_REPLICAS_AFTER_APPEND', 'NOT_LEADER_AFTER_APPEND', 'REQUEST_TIMED_OUT']);

beforeAll(async () => {
  stores = await startStores();
  const metadata = await startService({ name: 'metadata', entry: METADATA_ENTRY, args: stores.args('metadata', `/repl-${process.pid}/`) });
  meta = metadataClient(metadata.address);
  for (const id of [1, 2, 3]) {
    const b = await startService({ name: `broker-${id}`, entry: BROKER_ENTRY, dataDirFlag: '--data-dir', args: ['--broker-id', String(id), '--metadata-addresses', metadata.address, '--session-ttl-ms', '2000', '--replica-lag-time-max-ms', '1500', '--replica-log-read-enabled'] });
    brokers.set(id, b);
    clients.set(id, brokerClient(b.address));
  }
  await waitFor(async () => (await meta.getClusterMetadata({ topics: [] })).metadata!.brokers.length === 3, { timeoutMs: 15_000, message: 'three brokers registered' });
  await meta.createTopic({ name: TOPIC, partitions: 1, replicationFactor: 3, configs: { 'min.insync.replicas': '2' }, validateOnly: false });
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

async function produceAll(tag: string, count = 1) {
  const p = await state();
  const records = Array.from({ length: count }, (_, i) => ({ key: `${tag}-${i}`, value: `${tag}-${i}`, timestampMs: Date.now() }));
  const res = await clients.get(p.leaderId)!.produce({ acks: Acks.ACKS_ALL, timeoutMs: 4000, topics: [{ topic: TOPIC, partitions: [{ partition: 0, batch: buildRecordBatch(records) }] }] }, { deadlineMs: 10_000 });
  const r = res.topics[0]!.partitions[0]!;
  if (!r.error) acked.push(...records.map((x) => x.key as string));
  else if (OUTCOME_UNKNOWN.has(r.error.reason)) for (const x of records) maybe.add(x.key as string);
  return r;
}

async function readAll(brokerId: number): Promise<string[]> {
  const out: string[] = [];
  let offset = 0n;
  for (;;) {
    const res = await clients.get(brokerId)!.fetch({ maxWaitMs: 0, minBytes: 0, maxBytes: 8 << 20, topics: [{ topic: TOPIC, partitions: [{ partition: 0, fetchOffset: offset, partitionMaxBytes: 8 << 20, currentLeaderEpoch: -1 }] }] });
    const pr = res.topics[0]!.partitions[0]!;
    if (pr.error) throw new Error(`${pr.error.reason}: ${pr.error.message}`);
    if (pr.batches.length === 0) return out;
    for (const b of pr.batches) {
      const recs = decodeRecordBatch(b.batch!, b.baseOffset);
      out.push(...recs.filter((r) => r.offset >= offset).map((r) => r.key.toString()));
      offset = b.baseOffset + BigInt(recs.length);
    }
  }
}

function segmentBytes(brokerId: number): Buffer {
  const dir = join(brokers.get(brokerId)!.dataDir, `${TOPIC}-0`);
  return Buffer.concat(readdirSync(dir).filter((f) => f.endsWith('.log')).sort().map((f) => readFileSync(join(dir, f))));
}

describe('replication', () => {
  it('acknowledges acks=all writes once the ISR has them, and replicas end byte-identical', async () => {
    await waitFor(async () => !(await produceAll('warmup')).error, { timeoutMs: 20_000, message: 'first acks=all write succeeds' });
    for (let i = 0; i < 50; i++) expect((await produceAll(`steady${i}`, 100)).error).toBeUndefined();
    const leader = (await state()).leaderId;
    expect(await readAll(leader)).toEqual(acked);
    await waitFor(() => [1, 2, 3].every((id) => segmentBytes(id).equals(segmentBytes(leader))), { timeoutMs: 10_000, message: 'all replicas byte-identical' });
    const hw = await clients.get(leader)!.listOffsets({ topics: [{ topic: TOPIC, partitions: [{ partition: 0, spec: OffsetSpec.OFFSET_SPEC_LATEST, timestampMs: 0n }] }] });
    expect(hw.topics[0]!.partitions[0]!.offset).toBe(BigInt(acked.length));
    // From outside, through each broker's ReadReplicaLog: same batches, epochs and bytes below the HW.
    const same = await expectReplicasIdentical(clients, TOPIC, 0, { minHighWatermark: BigInt(acked.length) });
    expect(same.limit).toBe(BigInt(acked.length));
  });

  it('shrinks the ISR when a follower dies, refuses acks=all below min.insync.replicas, and recovers when a replica returns', async () => {
    const p = await state();
    const [f1, f2] = p.replicas.filter((id) => id !== p.leaderId) as [number, number];
    brokers.get(f1)!.kill();
    await waitFor(async () => !(await state()).isr.includes(f1), { timeoutMs: 15_000, message: `follower ${f1} leaves the ISR` });
    expect((await produceAll('one-down', 10)).error).toBeUndefined();

    brokers.get(f2)!.kill();
    await waitFor(async () => (await produceAll('two-down')).error?.reason === 'NOT_ENOUGH_REPLICAS', { timeoutMs: 20_000, message: 'acks=all refused with NOT_ENOUGH_REPLICAS' });

    await brokers.get(f1)!.restart();
    await waitFor(async () => !(await produceAll('recovered')).error, { timeoutMs: 30_000, message: 'acks=all works again once a replica rejoins' });
    expect((await state()).isr).toContain(f1);
    await brokers.get(f2)!.restart();
    await waitFor(async () => (await state()).isr.length === 3, { timeoutMs: 30_000, message: 'all replicas back in the ISR' });
    const same = await expectReplicasIdentical(clients, TOPIC, 0);
    expect(same.limit).toBeGreaterThanOrEqual(BigInt(acked.length));
  });

  it('replaces a SIGKILLed leader with an ISR member that has every acknowledged record', async () => {
    for (let i = 0; i < 20; i++) expect((await produceAll(`before-kill${i}`, 50)).error).toBeUndefined();
    const before = await state();
    brokers.get(before.leaderId)!.kill();
    await waitFor(async () => { const s = await state(); return s.leaderId !== before.leaderId && s.leaderId >= 0; }, { timeoutMs: 20_000, message: 'a new leader is elected' });
    const after = await state();
    expect(after.leaderEpoch).toBeGreaterThan(before.leaderEpoch);
    await waitFor(async () => !(await produceAll('after-kill')).error, { timeoutMs: 20_000, message: 'the new leader acknowledges acks=all writes' });
    const seen = await readAll(after.leaderId);
    // Every acknowledged record, in order; anything else must be a write whose outcome was unknown.
    expect(seen.filter((k) => !maybe.has(k))).toEqual(acked);
    await brokers.get(before.leaderId)!.restart();
    await waitFor(async () => (await state()).isr.length === 3, { timeoutMs: 30_000, message: 'the old leader rejoins as a follower' });
    await waitFor(() => [1, 2, 3].every((id) => segmentBytes(id).equals(segmentBytes(after.leaderId))), { timeoutMs: 15_000, message: 'all replicas byte-identical after failover' });
    const same = await expectReplicasIdentical(clients, TOPIC, 0);
    expect(same.limit).toBeGreaterThanOrEqual(BigInt(acked.length));
  });
});
