// acks=all below min.insync.replicas, reproduced deterministically with real processes (issue 12).
//
// RF 3, min.insync.replicas 2, and replica.lag.time.max.ms far below the broker session TTL, so the
// leader drops a stalled follower from the ISR while the follower's session (and so its place in
// the controller's view) is still alive. Followers are paused with SIGSTOP in turn while an acks=all
// produce waits on the leader:
//   1. follower A paused: the produce waits for A until the leader drops it; then the leader and B
//      hold the batch, two replicas, so acknowledging it is right (checked: B holds it, from outside).
//   2. follower B paused too: only the leader can hold a new batch. The produce passes the ISR-size
//      check before append (ISR {leader, B}), then the leader drops B and the ISR is {leader}. It must
//      NOT be acknowledged: NOT_ENOUGH_REPLICAS (refused before append) or
//      NOT_ENOUGH_REPLICAS_AFTER_APPEND / REQUEST_TIMED_OUT (appended, outcome unknown). Nor may the
//      high watermark pass what two replicas hold. The old rule (min ISR checked only before append,
//      high watermark = min over the shrunk ISR) acknowledged it as soon as the ISR shrank.
//   3. Both resumed: the ISR recovers, a fresh acks=all produce succeeds, every acknowledged record
//      is readable, and the replicas are identical byte for byte below the high watermark.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Acks, type PartitionProduceResponse } from '@skein/proto/skein/broker/v1/broker.js';
import { buildRecordBatch, decodeRecordBatch, encodeRecordBatch } from '@skein/common/records/record-batch.js';
import { startStores, type TestStores } from './harness/stores.js';
import { brokerClient, metadataClient } from './harness/clients.js';
import { startService, stopAll, waitFor, type ServiceProcess } from './harness/services.js';
import { BROKER_ENTRY, METADATA_ENTRY } from './harness/entries.js';
import { isPaused, pauseProcess, resumeAll, resumeProcess } from './harness/pause.js';
import { expectReplicasIdentical, readReplicaLogSnapshot } from './harness/replica-logs.js';

const TOPIC = 'min-isr';
// The leader drops a follower that has not caught up for 400 ms; sessions live 30 s, so no paused
// broker is declared dead during the test (the pauses below last seconds, not tens of seconds).
const LAG_MS = 400;
const SESSION_TTL_MS = 30_000;
const REFUSALS = ['NOT_ENOUGH_REPLICAS', 'NOT_ENOUGH_REPLICAS_AFTER_APPEND', 'REQUEST_TIMED_OUT'];

let stores: TestStores;
let meta: ReturnType<typeof metadataClient>;
const brokers = new Map<number, ServiceProcess>();
const clients = new Map<number, ReturnType<typeof brokerClient>>();

beforeAll(async () => {
  stores = await startStores();
  const metadata = await startService({ name: 'metadata', entry: METADATA_ENTRY, args: stores.args('metadata', `/min-isr-${process.pid}/`) });
  meta = metadataClient(metadata.address);
  for (const id of [1, 2, 3]) {
    const b = await startService({
      name: `broker-${id}`,
      entry: BROKER_ENTRY,
      dataDirFlag: '--data-dir',
      args: ['--broker-id', String(id), '--metadata-addresses', metadata.address, '--session-ttl-ms', String(SESSION_TTL_MS), '--replica-lag-time-max-ms', String(LAG_MS), '--replica-log-read-enabled'],
    });
    brokers.set(id, b);
    clients.set(id, brokerClient(b.address));
  }
  await waitFor(async () => (await meta.getClusterMetadata({ topics: [] })).metadata!.brokers.length === 3, { timeoutMs: 15_000, message: 'three brokers registered' });
  await meta.createTopic({ name: TOPIC, partitions: 1, replicationFactor: 3, configs: { 'min.insync.replicas': '2' }, validateOnly: false });
}, 60_000);

afterAll(async () => {
  // A broker still paused (the test failed midway) is killed by pid; then nothing stays stopped.
  for (const b of brokers.values()) if (isPaused(b)) b.kill();
  resumeAll();
  for (const c of clients.values()) c.close();
  meta?.close();
  await stopAll();
  await stores?.stop();
});

const state = async () => (await meta.describeTopic({ name: TOPIC })).topic!.partitions[0]!;

async function produce(brokerId: number, key: string, timeoutMs: number): Promise<{ key: string; bytes: Buffer; r: PartitionProduceResponse }> {
  const batch = buildRecordBatch([{ key, value: key, timestampMs: Date.now() }]);
  const res = await clients.get(brokerId)!.produce({ acks: Acks.ACKS_ALL, timeoutMs, topics: [{ topic: TOPIC, partitions: [{ partition: 0, batch }] }] }, { deadlineMs: timeoutMs + 10_000 });
  return { key, bytes: encodeRecordBatch(batch), r: res.topics[0]!.partitions[0]! };
}

/** A produce that must not have been acknowledged, with what happened if it was. */
function expectRefused(p: { key: string; r: PartitionProduceResponse }, why: string): void {
  const seen = p.r.error ? `${p.r.error.reason}: ${p.r.error.message}` : `ACKNOWLEDGED at offset ${p.r.baseOffset}`;
  expect(p.r.error?.reason, `${p.key} (${why}) must not be acknowledged; got ${seen}`).toBeDefined();
  expect(REFUSALS, `${p.key}: ${seen}`).toContain(p.r.error!.reason);
}

async function readKeys(brokerId: number): Promise<string[]> {
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

describe('acks=all under min.insync.replicas', () => {
  it('is never acknowledged while fewer than min.insync.replicas replicas hold the batch', async () => {
    const acked: string[] = [];
    await waitFor(async () => !(await produce((await state()).leaderId, 'warmup', 5000)).r.error, { timeoutMs: 20_000, message: 'a first acks=all write succeeds' });
    acked.push('warmup');
    await waitFor(async () => (await state()).isr.length === 3, { timeoutMs: 20_000, message: 'all three replicas in the ISR' });
    await expectReplicasIdentical(clients, TOPIC, 0, { minHighWatermark: 1n });
    const start = await state();
    const leader = start.leaderId;
    const [a, b] = start.replicas.filter((id) => id !== leader) as [number, number];

    // 1. A paused: acknowledged once the leader drops A, with the leader and B holding the batch.
    pauseProcess(brokers.get(a)!);
    const p1 = await produce(leader, 'p1', 10_000);
    expect(p1.r.error, `p1 with one follower paused: ${p1.r.error?.reason} ${p1.r.error?.message}`).toBeUndefined();
    acked.push('p1');
    const onB = await readReplicaLogSnapshot(clients.get(b)!, TOPIC, 0, p1.r.baseOffset + 1n);
    const copy = onB.batches.find((x) => x.baseOffset === p1.r.baseOffset);
    expect(copy && Buffer.from(copy.batch).equals(p1.bytes), `follower ${b} holds p1 byte for byte`).toBe(true);
    await waitFor(async () => { const s = await state(); return !s.isr.includes(a) && s.leaderId === leader; }, { timeoutMs: 10_000, message: `paused follower ${a} out of the ISR` });
    // What two replicas (leader and B) hold: everything up to here.
    const heldByTwo = (await clients.get(leader)!.readReplicaLog({ topic: TOPIC, partition: 0, startOffset: 0n, maxBytes: 1 })).logEndOffset;
    expect(onB.logEndOffset).toBeGreaterThanOrEqual(heldByTwo);

    // 2. B paused too: only the leader can hold what comes now.
    pauseProcess(brokers.get(b)!);
    const p2 = await produce(leader, 'p2', 10_000);
    expectRefused(p2, `ISR {${leader},${b}} at append, ${b} paused since`);
    const p3 = await produce(leader, 'p3', 3000);
    expectRefused(p3, 'both followers paused');
    const after = await clients.get(leader)!.readReplicaLog({ topic: TOPIC, partition: 0, startOffset: 0n, maxBytes: 1 });
    expect(after.highWatermark, 'the high watermark stays within what two replicas hold').toBeLessThanOrEqual(heldByTwo);
    expect((await state()).leaderId).toBe(leader);
    console.log(`min-isr: p1 acknowledged at ${p1.r.baseOffset} (leader ${leader} + follower ${b}); with ${a} and ${b} paused p2 → ${p2.r.error!.reason}, p3 → ${p3.r.error!.reason}; leader HW ${after.highWatermark} <= ${heldByTwo}, LEO ${after.logEndOffset}`);

    // 3. Both back: the ISR recovers, acks=all works again, nothing acknowledged is missing.
    resumeProcess(brokers.get(a)!);
    resumeProcess(brokers.get(b)!);
    await waitFor(async () => (await state()).isr.length === 3, { timeoutMs: 20_000, message: 'the ISR recovers once the followers resume' });
    await waitFor(async () => !(await produce(leader, 'p4', 5000)).r.error, { timeoutMs: 20_000, message: 'a fresh acks=all write succeeds' });
    acked.push('p4');
    const keys = await readKeys(leader);
    for (const k of acked) expect(keys.filter((x) => x === k).length, `acknowledged ${k} readable once`).toBeGreaterThanOrEqual(1);
    const same = await expectReplicasIdentical(clients, TOPIC, 0);
    expect(same.limit).toBe(BigInt(keys.length));
  }, 60_000);
});
