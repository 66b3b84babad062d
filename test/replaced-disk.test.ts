// A broker that comes back with an empty (wiped or replaced) data directory must never be elected
// from an ISR whose records it lost (the directory carries an id, cf. KIP-858): otherwise the other
// replicas follow it and truncate to nothing. Real processes: etcd, metadata, 3 brokers, an RF 3
// topic with min.insync.replicas 2 and acks=all writes.
//   1. The leader is SIGKILLed, its data directory wiped, and it is restarted: it must not lead
//      until it is back in the ISR by catching up; then every acknowledged record is readable.
//   2. A whole-cluster outage: the metadata service is down (no ISR shrink), all three brokers are
//      SIGKILLed, so the partition's ISR stays [1,2,3]. The first broker back has a wiped disk.
//      Without the directory id it is elected (live, in the ISR) and the others, on return,
//      truncate to its empty log. With it, the partition stays offline until an old broker returns,
//      that one leads, and no acknowledged record is lost.
import { readdirSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipUnless } from './harness/requirements.js';
import type * as grpc from '@grpc/grpc-js';
import { Acks } from '@skein/proto/skein/broker/v1/broker.js';
import type { PartitionState, WatchMetadataResponse } from '@skein/proto/skein/metadata/v1/metadata.js';
import { buildRecordBatch, decodeRecordBatch } from '@skein/common/records/record-batch.js';
import { startEtcd, type EtcdCluster } from './harness/etcd.js';
import { brokerClient, metadataClient } from './harness/clients.js';
import { startService, stopAll, waitFor, type ServiceProcess } from './harness/services.js';
import { BROKER_ENTRY, METADATA_ENTRY } from './harness/entries.js';

const skip = skipUnless(import.meta.url, 'etcd');

const TOPIC = 'replaced-disk';
const PREFIX = `/replaced-disk-${process.pid}/`;
let etcd: EtcdCluster;
let metadata: ServiceProcess;
let meta: ReturnType<typeof metadataClient>;
const brokers = new Map<number, ServiceProcess>();
const clients = new Map<number, ReturnType<typeof brokerClient>>();

beforeAll(async () => {
  etcd = await startEtcd({ members: 1 });
  metadata = await startService({ name: 'metadata', entry: METADATA_ENTRY, args: ['--store', `etcd://${etcd.endpoints.join(',')}`, '--prefix', PREFIX] });
  meta = metadataClient(metadata.address);
  for (const id of [1, 2, 3]) {
    const b = await startService({ name: `broker-${id}`, entry: BROKER_ENTRY, dataDirFlag: '--data-dir', args: ['--broker-id', String(id), '--metadata-addresses', metadata.address, '--session-ttl-ms', '2000', '--replica-lag-time-max-ms', '1500'] });
    brokers.set(id, b);
    clients.set(id, brokerClient(b.address));
  }
  await waitFor(async () => (await meta.getClusterMetadata({ topics: [] })).metadata!.brokers.length === 3, { timeoutMs: 15_000, message: 'three brokers registered' });
  await meta.createTopic({ name: TOPIC, partitions: 1, replicationFactor: 3, configs: { 'min.insync.replicas': '2' }, validateOnly: false });
}, 60_000);

afterAll(async () => {
  watcher?.stop();
  for (const c of clients.values()) c.close();
  meta?.close();
  await stopAll();
  await etcd?.stop();
});

const state = async () => (await meta.describeTopic({ name: TOPIC })).topic!.partitions[0]!;
const liveBrokerIds = async () => (await meta.getClusterMetadata({ topics: [] })).metadata!.brokers.map((b) => b.brokerId);

/** Every partition state of the topic the metadata service published, in order (WatchMetadata). */
function watchStates() {
  const states: PartitionState[] = [];
  let call: grpc.ClientReadableStream<WatchMetadataResponse> | undefined;
  let stopped = false;
  const open = () => {
    if (stopped) return;
    const c = meta.raw.watchMetadata({ fromRevision: 0n });
    call = c;
    c.on('data', (msg: WatchMetadataResponse) => {
      for (const t of msg.snapshot?.topics ?? []) if (t.name === TOPIC && t.partitions[0]) states.push(t.partitions[0]);
      for (const ch of msg.changes) {
        if (ch.change?.$case === 'partitionChanged' && ch.change.value.topic === TOPIC && ch.change.value.state) states.push(ch.change.value.state);
      }
    });
    // The metadata service is restarted in phase 2: follow it again (a new snapshot comes first).
    const again = () => { if (call === c && !stopped) setTimeout(open, 100); };
    c.on('error', again);
    c.on('end', again);
  };
  open();
  return { states, stop: () => { stopped = true; call?.cancel(); } };
}
let watcher: ReturnType<typeof watchStates> | undefined;

/**
 * The invariant: after its disk was wiped (states from index `from` on), broker `id` leads only
 * once it has been out of the ISR and come back into it (which only catching up as a follower
 * does). Returns the first state that breaks it.
 */
function leaderWhileEmpty(id: number, from: number): PartitionState | undefined {
  let left = false;
  let rejoined = false;
  for (const s of watcher!.states.slice(from)) {
    if (s.leaderId === id && !rejoined) return s;
    if (!s.isr.includes(id)) left = true;
    else if (left) rejoined = true;
  }
  return undefined;
}

/** Produces batches of 20 records with acks=all to the current leader; returns the acknowledged keys. */
async function produceAcked(tag: string, batches: number): Promise<string[]> {
  const acked: string[] = [];
  for (let i = 0; i < batches; i++) {
    const keys = Array.from({ length: 20 }, (_, j) => `${tag}-${i}-${j}`);
    const batch = buildRecordBatch(keys.map((k) => ({ key: k, value: k, timestampMs: Date.now() })));
    await waitFor(async () => {
      const c = clients.get((await state()).leaderId);
      if (!c) return false;
      const res = await c.produce({ acks: Acks.ACKS_ALL, timeoutMs: 3000, topics: [{ topic: TOPIC, partitions: [{ partition: 0, batch }] }] }, { deadlineMs: 5000 });
      return !res.topics[0]!.partitions[0]!.error;
    }, { timeoutMs: 20_000, message: `batch ${tag}-${i} acknowledged` });
    acked.push(...keys);
  }
  return acked;
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

/** Every acknowledged key is in the leader's log, in acknowledged order (first occurrences). */
async function expectAllAckedReadable(acked: string[]) {
  const leader = (await state()).leaderId;
  expect(leader).toBeGreaterThanOrEqual(0);
  const log = await readAll(leader);
  const ackedSet = new Set(acked);
  expect([...new Set(log.filter((k) => ackedSet.has(k)))]).toEqual(acked);
}

/** Wipes a (stopped) broker's data directory, keeping only the harness's own process log file. */
function wipe(b: ServiceProcess) {
  for (const f of readdirSync(b.dataDir)) if (f !== basename(b.logFile)) rmSync(join(b.dataDir, f), { recursive: true, force: true });
}

/** Counts broker session keys in etcd (etcd's JSON gateway), to know every old session has expired. */
async function brokerKeysInEtcd(): Promise<number> {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const from = `${PREFIX}brokers/`;
  const end = `${PREFIX}brokers0`; // '0' follows '/': the end of the prefix range
  const res = await fetch(`${etcd.members[0]!.clientUrl}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: b64(from), range_end: b64(end), count_only: true }) });
  const body = (await res.json()) as { count?: string };
  return Number(body.count ?? 0);
}

describe.skipIf(skip)('a broker with a replaced data directory', () => {
  it('is never elected while it holds nothing, and no acknowledged record is lost', async () => {
    watcher = watchStates();
    await waitFor(async () => (await state()).isr.length === 3, { timeoutMs: 20_000, message: 'all three replicas in the ISR' });
    const acked = await produceAcked('before', 10);

    // Phase 1: the leader loses its disk while the others stay up.
    const a = (await state()).leaderId;
    const [b, c] = [1, 2, 3].filter((id) => id !== a) as [number, number];
    brokers.get(a)!.kill();
    await waitFor(async () => { const s = await state(); return s.leaderId >= 0 && s.leaderId !== a && !s.isr.includes(a); }, { timeoutMs: 20_000, message: `leadership moved away from broker ${a}` });
    wipe(brokers.get(a)!);
    let wipedAt = watcher.states.length;
    acked.push(...await produceAcked('a-down', 5));
    await brokers.get(a)!.restart();
    await waitFor(async () => (await state()).isr.includes(a), { timeoutMs: 30_000, message: `broker ${a} back in the ISR by catching up` });
    expect(leaderWhileEmpty(a, wipedAt)).toBeUndefined();
    acked.push(...await produceAcked('a-back', 5));
    await expectAllAckedReadable(acked);

    // Phase 2: a whole-cluster outage. With the controller down nothing shrinks the ISR, so it
    // stays [1,2,3] and the first of them to return would be elected.
    await metadata.stop();
    for (const id of [b, c, a]) brokers.get(id)!.kill();
    await waitFor(async () => (await brokerKeysInEtcd()) === 0, { timeoutMs: 20_000, message: 'every broker session expired' });
    await metadata.restart();
    await waitFor(async () => { const s = await state(); return s.leaderId === -1 && s.isr.length === 3; }, { timeoutMs: 20_000, message: 'the partition offline with its ISR kept' });

    wipe(brokers.get(a)!);
    wipedAt = watcher.states.length;
    await brokers.get(a)!.restart();
    await waitFor(async () => (await liveBrokerIds()).includes(a), { timeoutMs: 20_000, message: `broker ${a} registered` });
    // Settled: either it was elected (the bug) or it was taken out of the ISR before registering.
    await waitFor(async () => { const s = await state(); return s.leaderId === a || !s.isr.includes(a); }, { timeoutMs: 20_000, message: 'the controller acted on the returning broker' });
    const whileAlone = await state();
    expect(whileAlone.leaderId, `broker ${a} came back with an empty disk and was elected leader`).toBe(-1);
    expect([...whileAlone.isr].sort()).toEqual([b, c].sort());
    // Unavailable rather than truncated: nobody accepts writes.
    const refused = await clients.get(a)!.produce({ acks: Acks.ACKS_ALL, timeoutMs: 1000, topics: [{ topic: TOPIC, partitions: [{ partition: 0, batch: buildRecordBatch([{ key: 'x', value: 'x', timestampMs: Date.now() }]) }] }] });
    expect(refused.topics[0]!.partitions[0]!.error).toBeDefined();

    // The old brokers return: one of them leads, the wiped one catches up from it.
    await brokers.get(b)!.restart();
    await brokers.get(c)!.restart();
    await waitFor(async () => { const s = await state(); return [b, c].includes(s.leaderId) && s.isr.length === 3; }, { timeoutMs: 30_000, message: 'an old broker leads and all three are in the ISR' });
    expect(leaderWhileEmpty(a, wipedAt)).toBeUndefined();
    await expectAllAckedReadable(acked);
    acked.push(...await produceAcked('after', 3));
    await expectAllAckedReadable(acked);
  }, 180_000);
});
