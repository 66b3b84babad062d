// Fault tests for replication: while an idempotent producer writes with acks=all, the partition
// leader is SIGKILLed and restarted repeatedly, then every broker is restarted in turn (SIGTERM,
// controlled shutdown). Checked afterwards: every acknowledged record is present exactly once, in
// acknowledged order, on every replica, and replicas are byte-identical.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Acks } from '@skein/proto/skein/broker/v1/broker.js';
import { buildRecordBatch, decodeRecordBatch } from '@skein/common/records/record-batch.js';
import { startStores, type TestStores } from './harness/stores.js';
import { brokerClient, metadataClient } from './harness/clients.js';
import { startService, stopAll, waitFor, type ServiceProcess } from './harness/services.js';
import { BROKER_ENTRY, METADATA_ENTRY } from './harness/entries.js';
import { expectReplicasIdentical } from './harness/replica-logs.js';

const TOPIC = 'faults';
let stores: TestStores;
let meta: ReturnType<typeof metadataClient>;
const brokers = new Map<number, ServiceProcess>();
const clients = new Map<number, ReturnType<typeof brokerClient>>();

beforeAll(async () => {
  stores = await startStores();
  const metadata = await startService({ name: 'metadata', entry: METADATA_ENTRY, args: stores.args('metadata', `/faults-${process.pid}/`) });
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

const state = async () => (await meta.describeTopic({ name: TOPIC })).topic!.partitions[0]!;

/** An idempotent producer that retries each batch (same sequence) until it is acknowledged. */
function startProducer() {
  const acked: string[] = [];
  let stop = false;
  let errors = 0;
  const done = (async () => {
    let producerId = 0n;
    await waitFor(async () => { producerId = (await clients.get((await state()).leaderId)!.initProducerId({ clientId: 'faults' })).producerId; return producerId > 0n; }, { timeoutMs: 20_000, message: 'a producer id' });
    for (let seq = 0; !stop; seq += 10) {
      const keys = Array.from({ length: 10 }, (_, i) => `r${seq + i}`);
      const batch = buildRecordBatch(keys.map((k) => ({ key: k, value: k, timestampMs: Date.now() })), { producerId, producerEpoch: 0, baseSequence: seq });
      for (;;) {
        try {
          const leader = (await state()).leaderId;
          const c = clients.get(leader);
          if (c) {
            const res = await c.produce({ acks: Acks.ACKS_ALL, timeoutMs: 3000, topics: [{ topic: TOPIC, partitions: [{ partition: 0, batch }] }] }, { deadlineMs: 5000 });
            const r = res.topics[0]!.partitions[0]!;
            if (!r.error) break;
            if (!r.error.retriable && r.error.reason !== 'NOT_LEADER_OR_FOLLOWER') throw new Error(`non-retriable ${r.error.reason}: ${r.error.message}`);
          }
        } catch (err) {
          if ((err as Error).message.startsWith('non-retriable')) throw err;
        }
        errors++;
        await new Promise((r) => setTimeout(r, 100));
      }
      acked.push(...keys);
    }
  })();
  return { acked, stop: async () => { stop = true; await done; }, errors: () => errors };
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

async function allInSync() {
  await waitFor(async () => (await state()).isr.length === 3, { timeoutMs: 30_000, message: 'all three replicas in the ISR' });
}

describe('replication under faults', () => {
  it('keeps every acknowledged record exactly once through leader SIGKILLs and a rolling restart', async () => {
    const producer = startProducer();
    await waitFor(() => producer.acked.length >= 200, { timeoutMs: 30_000, message: 'producer running' });
    for (let round = 0; round < 3; round++) {
      const before = await state();
      const ackedBefore = producer.acked.length;
      brokers.get(before.leaderId)!.kill();
      await waitFor(async () => { const s = await state(); return s.leaderId >= 0 && s.leaderId !== before.leaderId; }, { timeoutMs: 20_000, message: `round ${round}: new leader` });
      await waitFor(() => producer.acked.length > ackedBefore + 50, { timeoutMs: 30_000, message: `round ${round}: writes continue on the new leader` });
      await brokers.get(before.leaderId)!.restart();
      await allInSync();
    }
    for (const id of [1, 2, 3]) {
      const ackedBefore = producer.acked.length;
      await brokers.get(id)!.restart(); // SIGTERM: unregisters first, so leadership moves away cleanly
      await allInSync();
      await waitFor(() => producer.acked.length > ackedBefore + 50, { timeoutMs: 30_000, message: `writes continue after restarting broker ${id}` });
    }
    await producer.stop();

    const leader = (await state()).leaderId;
    const log = await readAll(leader);
    expect(new Set(log).size).toBe(log.length); // idempotence: no duplicates despite retries
    const ackedSet = new Set(producer.acked);
    expect(log.filter((k) => ackedSet.has(k))).toEqual(producer.acked); // every acked record, in order
    console.log(`faults: ${producer.acked.length} records acknowledged, ${producer.errors()} retried attempts, ${log.length} in the log`);
    await waitFor(() => [1, 2, 3].every((id) => segmentBytes(id).equals(segmentBytes(leader))), { timeoutMs: 15_000, message: 'replicas byte-identical' });
    // From outside, through each broker's ReadReplicaLog: same batches, epochs and bytes below the HW.
    const same = await expectReplicasIdentical(clients, TOPIC, 0);
    expect(same.limit).toBeGreaterThanOrEqual(BigInt(log.length));
  }, 240_000);
});
