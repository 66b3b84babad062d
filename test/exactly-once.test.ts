// Exactly once under faults, Jepsen style (issue 16). A pipeline of three member processes reads
// topic IN, writes every record through unchanged to topic OUT and commits its input offsets in the
// same transaction (runExactlyOnce), while a feeder keeps producing to IN and a bounded nemesis
// SIGKILLs and restarts pipeline members, coordinator instances and partition leaders in turn.
// Afterwards a read_committed reader must find every record of IN in OUT exactly once, in input
// order per key (harness/eos-checker.ts). The checker is then shown to catch the bug it exists for:
// a pipeline that commits its offsets outside the transaction, crashed at the failpoint between
// its transaction commit and its offset commit, duplicates records and the checker fails.
//
// Bounded profile (npm test): 3 nemesis rounds. SKEIN_EOS_LONG=<rounds> runs longer (e.g. 30).
import { type ChildProcess, spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GroupAdmin, SkeinClient } from '@skein/client';
import { Acks, OffsetSpec } from '@skein/proto/skein/broker/v1/broker.js';
import { skipUnless } from './harness/requirements.js';
import { startEtcd, type EtcdCluster } from './harness/etcd.js';
import { metadataClient } from './harness/clients.js';
import { startService, stopAll, waitFor, type ServiceProcess } from './harness/services.js';
import { BROKER_ENTRY, COORDINATOR_ENTRY, METADATA_ENTRY } from './harness/entries.js';
import { stopChild, track } from './harness/processes.js';
import { checkExactlyOnce, type EosRecord } from './harness/eos-checker.js';

const skip = skipUnless(import.meta.url, 'etcd');
const ROUNDS = Number(process.env.SKEIN_EOS_LONG ?? 3);
const PIPELINE_ENTRY = new URL('./dist/eos-pipeline.js', import.meta.url).pathname;
const PARTITIONS = 4;
const KEYS = 16;

let etcd: EtcdCluster;
let metadata: ServiceProcess;
const brokers = new Map<number, ServiceProcess>();
const coordinators: ServiceProcess[] = [];
let client: SkeinClient;

beforeAll(async () => {
  if (skip) return;
  etcd = await startEtcd({ members: 1 });
  const prefix = `/eos-${process.pid}/`;
  metadata = await startService({ name: 'metadata', entry: METADATA_ENTRY, args: ['--store', `etcd://${etcd.endpoints.join(',')}`, '--prefix', prefix] });
  const meta = metadataClient(metadata.address);
  await Promise.all(
    [1, 2, 3].map(async (id) => {
      brokers.set(
        id,
        await startService({
          name: `broker-${id}`,
          entry: BROKER_ENTRY,
          dataDirFlag: '--data-dir',
          args: ['--broker-id', String(id), '--metadata-addresses', metadata.address, '--session-ttl-ms', '3000'],
        }),
      );
    }),
  );
  await waitFor(async () => (await meta.getClusterMetadata({ topics: [] })).metadata!.brokers.length === 3, {
    timeoutMs: 20_000,
    message: 'three brokers registered',
  });
  for (const name of ['coord-a', 'coord-b']) {
    coordinators.push(
      await startService({
        name,
        entry: COORDINATOR_ENTRY,
        args: [
          '--store',
          `etcd://${etcd.endpoints.join(',')}`,
          '--prefix',
          prefix,
          '--metadata-addresses',
          metadata.address,
          '--session-timeout-ms',
          '4000',
          '--heartbeat-interval-ms',
          '200',
          '--session-break-grace-ms',
          '500',
          '--txn-sweep-interval-ms',
          '200',
          '--txn-completion-grace-ms',
          '1000',
          '--txn-completion-wait-ms',
          '3000',
        ],
      }),
    );
  }
  for (const t of ['eos-in', 'eos-out', 'eos-in-broken', 'eos-out-broken'])
    await meta.createTopic({ name: t, partitions: PARTITIONS, replicationFactor: 3, configs: { 'min.insync.replicas': '2' }, validateOnly: false });
  meta.close();
  client = new SkeinClient({ metadata: [metadata.address] });
  await waitFor(
    async () => {
      for (const t of ['eos-in', 'eos-out', 'eos-in-broken', 'eos-out-broken'])
        for (let p = 0; p < PARTITIONS; p++) await client.listOffset(t, p, OffsetSpec.OFFSET_SPEC_LATEST);
      return true;
    },
    { timeoutMs: 30_000, message: 'partitions open on their leaders' },
  );
}, 120_000);

afterAll(async () => {
  client?.close();
  await stopAll();
  await etcd?.stop();
});

interface Member {
  name: string;
  child: ChildProcess;
  processed: number;
}

function startMember(name: string, options: { group: string; input: string; output: string; mode: 'txn' | 'broken'; failpoints?: string }): Member {
  const member: Member = { name, processed: 0, child: undefined as unknown as ChildProcess };
  member.child = spawn(process.execPath, [PIPELINE_ENTRY], {
    env: {
      ...process.env,
      SKEIN_METADATA: metadata.address,
      SKEIN_COORDINATORS: coordinators.map((c) => c.address).join(','),
      GROUP: options.group,
      IN: options.input,
      OUT: options.output,
      TXN_ID: `${options.group}-${name}`,
      MODE: options.mode,
      SKEIN_FAILPOINTS: options.failpoints ?? '',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  track(member.child);
  let buf = '';
  member.child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    const lines = buf.split('\n');
    buf = lines.pop()!;
    for (const line of lines) if (line.startsWith('{')) member.processed += (JSON.parse(line) as { n: number }).n;
  });
  member.child.stderr!.on('data', () => {});
  return member;
}

const exited = (m: Member) =>
  new Promise<void>((resolve) => (m.child.exitCode !== null || m.child.signalCode !== null ? resolve() : m.child.once('exit', () => resolve())));

/** Every record of a topic, per partition in log order, as a reader with `isolationLevel` sees it. */
async function readTopic(topic: string, isolationLevel: 'read_committed' | 'read_uncommitted'): Promise<EosRecord[][]> {
  const out: EosRecord[][] = [];
  for (let p = 0; p < PARTITIONS; p++) {
    const records: EosRecord[] = [];
    let offset = 0n;
    for (;;) {
      const res = await client.fetch(topic, p, offset, { isolationLevel, maxBytes: 1 << 20 });
      records.push(...res.records.map((r) => ({ key: r.key.toString(), value: r.value!.toString() })));
      const next = res.records.length > 0 ? res.records[res.records.length - 1]!.offset + 1n : (res.nextOffset ?? offset);
      const end = isolationLevel === 'read_committed' ? res.lastStableOffset : res.highWatermark;
      if (next <= offset && next < end) throw new Error(`${topic}-${p}: no progress at ${offset}`);
      offset = next;
      if (offset >= end) break;
    }
    out.push(records);
  }
  return out;
}

async function endOffsets(topic: string): Promise<bigint[]> {
  return Promise.all(Array.from({ length: PARTITIONS }, (_, p) => client.listOffset(topic, p, OffsetSpec.OFFSET_SPEC_LATEST)));
}

/** Until the group has committed IN's end offsets on every partition and OUT has no open transaction. */
async function drained(group: string, input: string, output: string): Promise<boolean> {
  const ends = await endOffsets(input);
  const admin = new GroupAdmin(coordinators.map((c) => c.address));
  try {
    const committed = new Map((await admin.fetchOffsets(group)).map((o) => [o.partition, o.offset]));
    if (!ends.every((end, p) => end === 0n || committed.get(p) === end)) return false;
  } finally {
    admin.close();
  }
  for (let p = 0; p < PARTITIONS; p++) {
    const res = await client.fetch(output, p, 0n, { isolationLevel: 'read_committed', maxBytes: 1 });
    if (res.lastStableOffset !== res.highWatermark) return false;
  }
  return true;
}

/** Produces `count` more records per key round, key k0..k15, value `key:seq` with seq increasing per key. */
function feeder(topic: string) {
  const producer = client.producer({ acks: Acks.ACKS_ALL, lingerMs: 2 });
  const seq = new Map<string, number>();
  let stopped = false;
  let produced = 0;
  const loop = (async () => {
    while (!stopped) {
      const sends = Array.from({ length: KEYS }, (_, k) => {
        const key = `k${k}`;
        const n = seq.get(key) ?? 0;
        seq.set(key, n + 1);
        return producer.send(topic, [{ key, value: `${key}:${n}` }]).then(
          () => produced++,
          () => {},
        );
      });
      await Promise.all(sends);
    }
  })();
  return {
    get produced() {
      return produced;
    },
    async stop() {
      stopped = true;
      await loop;
      await producer.close();
    },
  };
}

const progressed = async (members: Member[], from: number) =>
  waitFor(() => members.reduce((n, m) => n + m.processed, 0) > from, { timeoutMs: 30_000, message: 'the pipeline makes progress' });
const total = (members: Member[]) => members.reduce((n, m) => n + m.processed, 0);

describe.skipIf(skip)('exactly once under faults', () => {
  it(`every input record reaches the output exactly once, in order per key, while a nemesis SIGKILLs pipeline members, coordinators and partition leaders (${ROUNDS} rounds)`, async () => {
    const group = 'eos';
    const feed = feeder('eos-in');
    const members = ['m1', 'm2', 'm3'].map((name) => startMember(name, { group, input: 'eos-in', output: 'eos-out', mode: 'txn' }));
    const kills: string[] = [];
    try {
      await progressed(members, 0);
      for (let round = 0; round < ROUNDS; round++) {
        // One of each kind per round, in turn: a pipeline member, a coordinator, a partition leader.
        const i = round % 3;
        const victim = members[i]!;
        victim.child.kill('SIGKILL');
        await exited(victim);
        kills.push(`member ${victim.name}`);
        members[i] = startMember(victim.name, { group, input: 'eos-in', output: 'eos-out', mode: 'txn' });
        members[i]!.processed = 0;
        await progressed(members, total(members));

        const coordinator = coordinators[round % coordinators.length]!;
        coordinator.kill();
        await coordinator.exited();
        kills.push(`coordinator ${coordinator.name}`);
        await coordinator.restart();
        await progressed(members, total(members));

        await client.describeCluster();
        const leaderId = client.cachedLeaderId('eos-out', round % PARTITIONS);
        const broker = brokers.get(leaderId ?? 1)!;
        broker.kill();
        await broker.exited();
        kills.push(`broker ${broker.name} (leader of eos-out-${round % PARTITIONS})`);
        await broker.restart();
        await client.describeCluster();
        await progressed(members, total(members));
      }
    } finally {
      await feed.stop();
    }
    await waitFor(() => drained(group, 'eos-in', 'eos-out'), {
      timeoutMs: 60_000,
      intervalMs: 250,
      message: 'the pipeline has committed every input offset and the output has no open transaction',
    });
    await Promise.all(members.map((m) => stopChild(m.child, 10_000)));

    const inputs = (await readTopic('eos-in', 'read_uncommitted')).flat();
    const outputs = await readTopic('eos-out', 'read_committed');
    const report = checkExactlyOnce(inputs, outputs);
    console.log(
      `[eos] ${ROUNDS} rounds (${kills.length} kills: ${kills.join(', ')}); ${feed.produced} acknowledged input records, ${report.inputs} in the input topic, ${report.outputs} outputs read_committed; missing ${report.missing.length}, duplicated ${report.duplicated.length}, unexpected ${report.unexpected.length}, reordered keys ${report.reordered.length}`,
    );
    expect(report.inputs).toBeGreaterThanOrEqual(feed.produced);
    expect(report.missing).toEqual([]);
    expect(report.duplicated).toEqual([]);
    expect(report.unexpected).toEqual([]);
    expect(report.reordered).toEqual([]);
    expect(report.ok).toBe(true);
  }, 240_000);

  it('the checker fails a pipeline that commits its offsets outside the transaction, crashed between the two commits', async () => {
    const group = 'eos-broken';
    // After the nemesis of the test before, a restarted broker may still be rejoining the ISR;
    // acks=all with min.insync.replicas 2 refuses writes until then (NOT_ENOUGH_REPLICAS failed one
    // CI run): start from every partition of both topics fully replicated again.
    await waitFor(
      async () => {
        const short: string[] = [];
        for (const t of ['eos-in-broken', 'eos-out-broken']) {
          for (const p of (await client.topic(t, true)).partitions) {
            if (p.leaderId < 0 || p.isr.length < 3) short.push(`${t}-${p.partition} leader ${p.leaderId} isr [${p.isr.join(',')}]`);
          }
        }
        // Thrown, so a timeout names the partitions still short of their ISR.
        if (short.length > 0) throw new Error(short.join('; '));
        return true;
      },
      { timeoutMs: 60_000, intervalMs: 250, message: 'eos-in-broken and eos-out-broken have their full ISR back' },
    );
    const producer = client.producer({ acks: Acks.ACKS_ALL });
    for (let k = 0; k < KEYS; k++)
      await producer.send(
        'eos-in-broken',
        Array.from({ length: 20 }, (_, n) => ({ key: `k${k}`, value: `k${k}:${n}` })),
      );
    await producer.close();
    // The first incarnation dies right after its first transaction committed, before its offsets.
    const first = startMember('b1', { group, input: 'eos-in-broken', output: 'eos-out-broken', mode: 'broken', failpoints: 'eos.afterTxnCommit=exit' });
    await exited(first);
    expect(first.child.signalCode).toBe('SIGKILL');
    const second = startMember('b1', { group, input: 'eos-in-broken', output: 'eos-out-broken', mode: 'broken' });
    await waitFor(() => drained(group, 'eos-in-broken', 'eos-out-broken'), {
      timeoutMs: 60_000,
      intervalMs: 250,
      message: 'the broken pipeline has committed every input offset',
    });
    await stopChild(second.child, 10_000);
    const report = checkExactlyOnce((await readTopic('eos-in-broken', 'read_uncommitted')).flat(), await readTopic('eos-out-broken', 'read_committed'));
    expect(report.missing).toEqual([]);
    expect(report.duplicated.length).toBeGreaterThan(0);
    expect(report.ok).toBe(false);
  }, 120_000);
});
