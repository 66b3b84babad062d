// @skein/streams against a real cluster (metadata, one broker, a group coordinator): stateless
// operators and a word count through a repartition topic, windows with late and out-of-order
// records, every join kind, restore after an instance is SIGKILLed and restarted (only the tail
// replayed when the local store survived, everything when it did not), and two instances sharing
// the tasks, one taking over the other's after SIGKILL. Expected outputs are computed in the test
// from the input, never by the library.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { GroupAdmin, OffsetSpec, SkeinClient } from '@skein/client';
import { JoinWindows, Serdes, SessionWindows, SkeinStreams, type StreamsEvent, StreamsBuilder, TimeWindows, windowedSerde } from '@skein/streams';
import { type StreamsCluster, startStreamsCluster } from './harness/streams-cluster.js';
import { stopAll, waitFor, type ServiceProcess } from './harness/services.js';
import { stopChild, track } from './harness/processes.js';

const APP_ENTRY = new URL('./dist/streams-app.js', import.meta.url).pathname;

let cluster: StreamsCluster;
let client: SkeinClient;
let metadata: ServiceProcess;
let coordinator: ServiceProcess;
const tempDirs: string[] = [];
const apps: SkeinStreams[] = [];

beforeAll(async () => {
  cluster = await startStreamsCluster('streams');
  ({ metadata, coordinator, client } = cluster);
}, 90_000);

afterAll(async () => {
  for (const a of apps) await a.close().catch(() => {});
  await stopAll();
  await cluster?.close();
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'skein-streams-test-'));
  tempDirs.push(d);
  return d;
};

async function createTopic(name: string, partitions: number): Promise<void> {
  await client.createTopic(name, { partitions, replicationFactor: 1 });
  await waitFor(async () => (await client.topic(name, true)).partitions.every((p) => p.leaderId > 0), { timeoutMs: 20_000, message: `${name} has leaders` });
}

/** Every record of a topic, per partition, in offset order (read_committed when asked). */
async function readAll(topic: string, isolationLevel: 'read_uncommitted' | 'read_committed' = 'read_uncommitted') {
  const t = await client.topic(topic, true);
  const out: Array<{ partition: number; key: string; keyBytes: Buffer; value: string | null; valueBytes: Buffer | null; timestamp: number }> = [];
  for (const p of t.partitions) {
    const end = await client.listOffset(topic, p.partition, OffsetSpec.OFFSET_SPEC_LATEST, 0n, isolationLevel);
    let at = 0n;
    while (at < end) {
      const res = await client.fetch(topic, p.partition, at, { isolationLevel });
      for (const r of res.records)
        if (r.offset < end)
          out.push({
            partition: p.partition,
            key: r.key.toString(),
            keyBytes: r.key,
            value: r.value?.toString() ?? null,
            valueBytes: r.value,
            timestamp: Number(r.timestampMs),
          });
      const next = res.nextOffset ?? (res.records.length ? res.records[res.records.length - 1]!.offset + 1n : at);
      if (next <= at) break;
      at = next;
    }
  }
  return out;
}

/** The last value per key of a topic. */
async function latest(topic: string, isolationLevel: 'read_uncommitted' | 'read_committed' = 'read_uncommitted'): Promise<Map<string, string | null>> {
  const m = new Map<string, string | null>();
  for (const r of await readAll(topic, isolationLevel)) m.set(r.key, r.value);
  return m;
}

function wordCounts(lines: readonly string[]): Map<string, string> {
  const m = new Map<string, number>();
  for (const l of lines) for (const w of l.split(' ').filter(Boolean)) m.set(w, (m.get(w) ?? 0) + 1);
  return new Map([...m].map(([k, v]) => [k, String(v)]));
}

const sameMap = (a: Map<string, unknown>, b: Map<string, unknown>) => a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);

function startApp(builder: StreamsBuilder, config: Partial<ConstructorParameters<typeof SkeinStreams>[2]> & { applicationId: string }): SkeinStreams {
  const app = new SkeinStreams(builder.build(), client, { coordinator: [coordinator.address], commitIntervalMs: 200, ...config });
  apps.push(app);
  return app;
}

const WORDS = ['apple', 'banana', 'cherry', 'date', 'elder', 'fig', 'grape'];
function makeLines(n: number, seed: number): string[] {
  let x = seed;
  const rnd = () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x / 2147483648;
  };
  return Array.from({ length: n }, () => Array.from({ length: 1 + Math.floor(rnd() * 4) }, () => WORDS[Math.floor(rnd() * WORDS.length)]!).join(' '));
}

describe('streams on a cluster', () => {
  it('word count through a repartition topic (3 partitions), plus stateless operators, equals what the input says', async () => {
    await createTopic('wc-lines', 3);
    await createTopic('wc-counts', 3);
    await createTopic('wc-long', 3);
    const b = new StreamsBuilder();
    const lines = b.stream<string, string>('wc-lines');
    lines
      .flatMapValues((l) => l.split(' ').filter(Boolean))
      .groupBy((_k, w) => w)
      .count({ storeName: 'counts' })
      .toStream()
      .mapValues((n) => String(n))
      .to('wc-counts');
    lines
      .filter((_k, l) => l.split(' ').length >= 3)
      .map((k, l) => [l.toUpperCase(), k] as [string, string])
      .to('wc-long');
    const app = startApp(b, { applicationId: 'wc-app', stateDir: tempDir() });
    await app.start();
    const input = makeLines(300, 7);
    const producer = client.producer({ lingerMs: 2 });
    await producer.send(
      'wc-lines',
      input.map((l, i) => ({ key: `line-${i}`, value: l })),
    );
    await producer.close();
    const expected = wordCounts(input);
    await waitFor(async () => sameMap(await latest('wc-counts'), expected), { timeoutMs: 30_000, message: 'final counts equal the input word counts' });
    // Each word's updates arrive in increasing order, on the partition its key hashes to.
    const updates = await readAll('wc-counts');
    const perWord = new Map<string, number[]>();
    for (const u of updates) perWord.set(u.key, [...(perWord.get(u.key) ?? []), Number(u.value)]);
    for (const [w, seq] of perWord) expect(seq, w).toEqual(Array.from({ length: Number(expected.get(w)) }, (_, i) => i + 1));
    const long = await readAll('wc-long');
    expect(long.map((r) => r.key).sort()).toEqual(
      input
        .filter((l) => l.split(' ').length >= 3)
        .map((l) => l.toUpperCase())
        .sort(),
    );
    // The repartition topic and the changelog exist, named after the application.
    const topics = (await client.listTopics()).map((t) => t.name);
    expect(topics).toContain('wc-app-counts-changelog');
    expect(topics.some((t) => t.startsWith('wc-app-') && t.endsWith('-repartition'))).toBe(true);
    expect(app.query('counts', 'apple', Serdes.String(), Serdes.Long())).toBe(Number(expected.get('apple')));
    await app.close();
  });

  it('tumbling, hopping and session windows and suppression, with out-of-order and late records', async () => {
    await createTopic('win-clicks', 1);
    for (const t of ['win-tumbling', 'win-hopping', 'win-session', 'win-final']) await createTopic(t, 1);
    const W = windowedSerde(Serdes.String());
    const b = new StreamsBuilder();
    const grouped = b.stream<string, string>('win-clicks').groupByKey();
    grouped.windowedBy(TimeWindows.ofSizeAndGrace(10_000, 5_000)).count().toStream().to('win-tumbling', { keySerde: W, valueSerde: Serdes.Long() });
    grouped
      .windowedBy(TimeWindows.ofSizeAndGrace(10_000, 5_000).advanceBy(5_000))
      .count()
      .toStream()
      .to('win-hopping', { keySerde: W, valueSerde: Serdes.Long() });
    grouped.windowedBy(SessionWindows.ofInactivityGapAndGrace(3_000, 5_000)).count().toStream().to('win-session', { keySerde: W, valueSerde: Serdes.Long() });
    grouped
      .windowedBy(TimeWindows.ofSizeAndGrace(10_000, 5_000))
      .count()
      .suppressUntilWindowCloses()
      .toStream()
      .to('win-final', { keySerde: W, valueSerde: Serdes.Long() });
    const app = startApp(b, { applicationId: 'win-app', stateDir: tempDir() });
    await app.start();
    const base = 1_700_000_000_000; // a multiple of 10 s
    // Seconds after base: out of order (4 after 7), late for tumbling (2 after stream time 21 > 10 + 5), bridging sessions (5).
    const events: Array<[string, number]> = [
      ['u1', 1],
      ['u2', 3],
      ['u1', 7],
      ['u1', 4],
      ['u1', 11],
      ['u2', 12],
      ['u1', 21],
      ['u1', 2],
      ['u1', 14],
      ['u2', 40],
      ['u1', 9],
      ['u1', 38],
    ];
    const producer = client.producer({ lingerMs: 0 });
    for (const [k, s] of events) await producer.send('win-clicks', [{ key: k, value: 'click', timestampMs: base + s * 1000 }]);
    await producer.close();

    // Reference model, written from the definitions: stream time = max timestamp so far; a window is closed once end + grace <= stream time.
    const ref = (size: number, advance: number) => {
      let st = -1;
      const counts = new Map<string, number>();
      for (const [k, s] of events) {
        const t = base + s * 1000;
        st = Math.max(st, t);
        for (let start = t - (t % advance); start > t - size; start -= advance)
          if (start + size + 5_000 > st) counts.set(`${k}@${start}`, (counts.get(`${k}@${start}`) ?? 0) + 1);
      }
      return { counts, streamTime: st };
    };
    const lastPerWindow = async (topic: string) => {
      const m = new Map<string, number | null>();
      for (const r of await readAll(topic)) {
        const wk = W.deserialize(r.keyBytes)!;
        m.set(
          `${wk.key}@${wk.window.start}${topic === 'win-session' ? `-${wk.window.end}` : ''}`,
          r.valueBytes === null ? null : Number(r.valueBytes.readBigInt64BE(0)),
        );
      }
      return m;
    };
    const tumbling = ref(10_000, 10_000);
    const hopping = ref(10_000, 5_000);
    await waitFor(async () => sameMap(await lastPerWindow('win-tumbling'), tumbling.counts), {
      timeoutMs: 30_000,
      message: 'tumbling counts match the reference',
    });
    await waitFor(async () => sameMap(await lastPerWindow('win-hopping'), hopping.counts), {
      timeoutMs: 30_000,
      message: 'hopping counts match the reference',
    });
    // Sessions (gap 3 s, grace 5 s): a record joins every session of its key within the gap; the merged session is late if it ends before stream time - grace.
    const sessionsRef = new Map<string, { key: string; start: number; end: number; n: number }>();
    let st = -1;
    for (const [k, sec] of events) {
      const t = base + sec * 1000;
      st = Math.max(st, t);
      const hit = [...sessionsRef.values()].filter((x) => x.key === k && x.start - 3_000 <= t && t <= x.end + 3_000);
      const merged = {
        key: k,
        start: Math.min(t, ...hit.map((x) => x.start)),
        end: Math.max(t, ...hit.map((x) => x.end)),
        n: 1 + hit.reduce((a, x) => a + x.n, 0),
      };
      if (merged.end + 5_000 < st) continue;
      for (const x of hit) sessionsRef.delete(`${x.key}@${x.start}-${x.end}`);
      sessionsRef.set(`${k}@${merged.start}-${merged.end}`, merged);
    }
    const sessions = await lastPerWindow('win-session');
    const live = new Map([...sessions].filter(([, v]) => v !== null));
    expect(live).toEqual(new Map([...sessionsRef].map(([key, x]) => [key, x.n])));
    expect([...sessions.values()].some((v) => v === null)).toBe(true); // merged-away sessions were deleted downstream
    // Suppressed: exactly one record per closed window, with its final count.
    const finals = (await readAll('win-final')).map((r) => r.key);
    const closed = [...tumbling.counts].filter(([k]) => Number(k.split('@')[1]) + 10_000 + 5_000 <= tumbling.streamTime);
    expect(finals.length).toBe(closed.length);
    expect(await lastPerWindow('win-final')).toEqual(new Map(closed));
    const late = app.tasksStatus().reduce((n, t) => n + (t.metrics?.events['dropped-late'] ?? 0), 0);
    expect(late).toBeGreaterThan(0);
    await app.close();
  });
});

describe('joins on a cluster', () => {
  it('stream-table (after a key change: repartitioned), stream-stream windowed, table-table and stream-globalTable', async () => {
    for (const t of ['j-users', 'j-orders', 'j-views', 'j-clicks', 'j-profiles', 'j-scores']) await createTopic(t, 3);
    await createTopic('j-products', 2);
    for (const t of ['j-enriched', 'j-pairs', 'j-profile-scores', 'j-with-product']) await createTopic(t, 3);
    const producer = client.producer({ lingerMs: 0 });
    const products = new Map([
      ['p1', 'pen'],
      ['p2', 'book'],
    ]);
    for (const [k, v] of products) await producer.send('j-products', [{ key: k, value: v }]);
    const b = new StreamsBuilder();
    const users = b.table<string, string>('j-users', {}, { storeName: 'users' });
    const orders = b.stream<string, string>('j-orders');
    // Orders are keyed by order id; "user,product" in the value.
    orders
      .selectKey((_k, v) => v.split(',')[0]!)
      .join(users, (o, u) => `${o}|${u}`)
      .to('j-enriched');
    const productsTable = b.globalTable<string, string>('j-products');
    orders
      .joinGlobal(
        productsTable,
        (_k, v) => v.split(',')[1]!,
        (o, p) => `${o}|${p}`,
      )
      .to('j-with-product');
    b.stream<string, string>('j-views')
      .join(b.stream<string, string>('j-clicks'), (v, c) => `${v}+${c}`, JoinWindows.ofTimeDifferenceAndGrace(5_000, 60_000))
      .to('j-pairs');
    b.table<string, string>('j-profiles')
      .join(b.table<string, string>('j-scores'), (p, s) => `${p}:${s}`)
      .toStream()
      .to('j-profile-scores');
    const app = startApp(b, { applicationId: 'join-app', stateDir: tempDir() });
    await app.start();

    const userRows = Array.from({ length: 6 }, (_, i) => [`u${i}`, `User ${i}`] as const);
    await producer.send(
      'j-users',
      userRows.map(([k, v]) => ({ key: k, value: v })),
    );
    // The table must hold every user before orders arrive, or an inner join would rightly skip them.
    await waitFor(() => userRows.every(([k, v]) => app.query('users', k, Serdes.String(), Serdes.String()) === v), {
      timeoutMs: 20_000,
      message: 'users table loaded',
    });
    const orderRows = Array.from({ length: 20 }, (_, i) => [`o${i}`, `u${i % 8},p${1 + (i % 3)}`] as const); // u6, u7 and p3 unknown
    await producer.send(
      'j-orders',
      orderRows.map(([k, v]) => ({ key: k, value: v })),
    );
    const base = 1_700_000_000_000;
    const views: Array<[string, string, number]> = [
      ['a', 'v1', 0],
      ['a', 'v2', 20],
      ['b', 'v3', 0],
      ['c', 'v4', 50],
    ];
    const clicks: Array<[string, string, number]> = [
      ['a', 'c1', 3],
      ['a', 'c2', 9],
      ['b', 'c3', 6],
      ['a', 'c4', 17],
      ['c', 'c5', 45],
    ];
    for (const [k, v, s] of views) await producer.send('j-views', [{ key: k, value: v, timestampMs: base + s * 1000 }]);
    for (const [k, v, s] of clicks) await producer.send('j-clicks', [{ key: k, value: v, timestampMs: base + s * 1000 }]);
    const profiles = [
      ['x', 'X1'],
      ['y', 'Y1'],
      ['z', 'Z1'],
      ['x', 'X2'],
    ] as const;
    const scores = [
      ['x', '10'],
      ['z', '30'],
      ['w', '40'],
      ['z', null],
    ] as const;
    for (const [k, v] of profiles) await producer.send('j-profiles', [{ key: k, value: v }]);
    for (const [k, v] of scores) await producer.send('j-scores', [{ key: k, value: v }]);
    await producer.close();

    const expectedEnriched = orderRows
      .filter(([, v]) => Number(v.split(',')[0]!.slice(1)) < 6)
      .map(([, v]) => `${v}|User ${v.split(',')[0]!.slice(1)}`)
      .sort();
    await waitFor(async () => (await readAll('j-enriched')).length >= expectedEnriched.length, { timeoutMs: 20_000, message: 'stream-table join output' });
    expect((await readAll('j-enriched')).map((r) => r.value).sort()).toEqual(expectedEnriched);

    const expectedWithProduct = orderRows
      .filter(([, v]) => products.has(v.split(',')[1]!))
      .map(([, v]) => `${v}|${products.get(v.split(',')[1]!)}`)
      .sort();
    await waitFor(async () => (await readAll('j-with-product')).length >= expectedWithProduct.length, { timeoutMs: 20_000, message: 'global join output' });
    expect((await readAll('j-with-product')).map((r) => r.value).sort()).toEqual(expectedWithProduct);

    const expectedPairs = views.flatMap(([vk, v, vs]) => clicks.filter(([ck, , cs]) => ck === vk && Math.abs(cs - vs) <= 5).map(([, c]) => `${v}+${c}`)).sort();
    await waitFor(async () => (await readAll('j-pairs')).length >= expectedPairs.length, { timeoutMs: 20_000, message: 'stream-stream join output' });
    expect((await readAll('j-pairs')).map((r) => r.value).sort()).toEqual(expectedPairs);

    // Final table-table join: rows where both tables have a value now.
    const p = new Map<string, string>(profiles.map(([k, v]) => [k, v]));
    const s = new Map<string, string | null>(scores.map(([k, v]) => [k, v]));
    const expectedTT = new Map([...p].filter(([k]) => s.get(k)).map(([k, v]) => [k, `${v}:${s.get(k)}`]));
    await waitFor(async () => sameMap(new Map([...(await latest('j-profile-scores'))].filter(([, v]) => v !== null)), expectedTT), {
      timeoutMs: 20_000,
      message: 'table-table join output',
    });
    expect((await latest('j-profile-scores')).get('z')).toBeNull(); // z's score was deleted: its row too
    await app.close();
  });

  it('refuses to start when a source topic is missing or two joined topics are not co-partitioned', async () => {
    const b1 = new StreamsBuilder();
    b1.stream('no-such-topic').to('anything');
    await expect(startApp(b1, { applicationId: 'missing-app' }).start()).rejects.toThrow(/no-such-topic does not exist/);
    await createTopic('cp-a', 2);
    await createTopic('cp-b', 3);
    const b2 = new StreamsBuilder();
    b2.stream('cp-a')
      .join(b2.table('cp-b'), (a, b) => `${a}${b}`)
      .to('cp-a');
    await expect(startApp(b2, { applicationId: 'copart-app' }).start()).rejects.toThrow(/not co-partitioned/);
  });
});

interface AppProcess {
  child: ChildProcess;
  events: Array<StreamsEvent & { instance?: string }>;
  exited: Promise<void>;
}

function spawnApp(env: Record<string, string>): AppProcess {
  const child = spawn(process.execPath, [APP_ENTRY], {
    env: { ...process.env, SKEIN_METADATA: metadata.address, SKEIN_COORDINATORS: coordinator.address, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  track(child);
  const events: AppProcess['events'] = [];
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    const lines = buf.split('\n');
    buf = lines.pop()!;
    for (const line of lines) if (line.trim()) events.push(JSON.parse(line));
  });
  return { child, events, exited: new Promise((resolve) => child.once('exit', () => resolve())) };
}

async function sigkill(app: AppProcess): Promise<void> {
  app.child.kill('SIGKILL');
  await app.exited;
}

async function groupCaughtUp(groupId: string, partitions: number): Promise<boolean> {
  const admin = new GroupAdmin([coordinator.address]);
  try {
    const d = await admin.describeGroup(groupId);
    return d.lags.length >= partitions && d.lags.every((l) => l.lag === 0n);
  } finally {
    admin.close();
  }
}

const restoredRecords = (app: AppProcess) =>
  app.events.filter((e): e is Extract<StreamsEvent, { type: 'task-restored' }> => e.type === 'task-restored').reduce((n, e) => n + e.records, 0);

describe('state on a cluster', () => {
  it('restores after SIGKILL: only the missing tail from the surviving local store, everything into an empty one; counts stay exact', async () => {
    await createTopic('rs-lines', 2);
    await createTopic('rs-counts', 2);
    const stateDir = tempDir();
    const env = { APP_ID: 'rs-app', IN: 'rs-lines', OUT: 'rs-counts', STATE_DIR: stateDir, INSTANCE_ID: 'a' };
    const producer = client.producer({ lingerMs: 2 });
    const batch1 = makeLines(200, 11);
    let a = spawnApp(env);
    await waitFor(() => a.events.some((e) => (e as { type: string }).type === 'started'), { timeoutMs: 30_000, message: 'app started' });
    await producer.send(
      'rs-lines',
      batch1.map((value) => ({ value })),
    );
    await waitFor(async () => sameMap(await latest('rs-counts'), wordCounts(batch1)), { timeoutMs: 60_000, message: 'counts of batch 1' });
    await waitFor(() => groupCaughtUp('rs-app', 4), { timeoutMs: 20_000, message: 'offsets committed' });
    // A commit after that: the local stores are checkpointed at the changelog's end.
    const commitsBefore = a.events.filter((e) => e.type === 'commit').length;
    await waitFor(() => a.events.filter((e) => e.type === 'commit').length > commitsBefore + 1, { timeoutMs: 10_000, message: 'a store commit' });
    await sigkill(a);
    const changelogSize = (await readAll('rs-app-counts-changelog')).length;
    expect(changelogSize).toBeGreaterThan(0);

    // Restart on the same state directory: nothing to replay (the store survived, at its checkpoint).
    a = spawnApp(env);
    await waitFor(() => a.events.filter((e) => e.type === 'task-running').length >= 4, { timeoutMs: 60_000, message: 'tasks running again' });
    expect(restoredRecords(a)).toBeLessThan(changelogSize);
    expect(restoredRecords(a)).toBe(0);
    const batch2 = makeLines(100, 12);
    await producer.send(
      'rs-lines',
      batch2.map((value) => ({ value })),
    );
    await waitFor(async () => sameMap(await latest('rs-counts'), wordCounts([...batch1, ...batch2])), {
      timeoutMs: 30_000,
      message: 'counts of batches 1 and 2',
    });
    await waitFor(() => groupCaughtUp('rs-app', 4), { timeoutMs: 20_000, message: 'offsets committed' });
    const commits = a.events.filter((e) => e.type === 'commit').length;
    await waitFor(() => a.events.filter((e) => e.type === 'commit').length > commits + 1, { timeoutMs: 10_000, message: 'a store commit' });
    await sigkill(a);

    // The local state lost: everything is restored from the changelog, and the counts go on exactly.
    rmSync(stateDir, { recursive: true, force: true });
    a = spawnApp(env);
    await waitFor(() => a.events.filter((e) => e.type === 'task-running').length >= 4, { timeoutMs: 60_000, message: 'tasks running on an empty state dir' });
    expect(restoredRecords(a)).toBeGreaterThanOrEqual(WORDS.length);
    const batch3 = makeLines(50, 13);
    await producer.send(
      'rs-lines',
      batch3.map((value) => ({ value })),
    );
    await waitFor(async () => sameMap(await latest('rs-counts'), wordCounts([...batch1, ...batch2, ...batch3])), {
      timeoutMs: 30_000,
      message: 'counts of batches 1-3',
    });
    await producer.close();
    await stopChild(a.child, 10_000);
  });

  it('two instances share the tasks; when one is SIGKILLed the other takes its tasks over and the counts stay exact', async () => {
    await createTopic('tw-lines', 4);
    await createTopic('tw-counts', 4);
    const env = (id: string) => ({ APP_ID: 'tw-app', IN: 'tw-lines', OUT: 'tw-counts', STATE_DIR: tempDir(), INSTANCE_ID: id });
    const x = spawnApp(env('x'));
    await waitFor(() => x.events.some((e) => (e as { type: string }).type === 'started'), { timeoutMs: 30_000, message: 'x started' });
    const y = spawnApp(env('y'));
    const running = (app: AppProcess) => {
      const s = new Set<string>();
      for (const e of app.events) {
        if (e.type === 'task-running') s.add(e.taskId);
        if (e.type === 'task-revoked') s.delete(e.taskId);
      }
      return s;
    };
    await waitFor(() => running(y).size > 0 && running(x).size > 0 && running(x).size + running(y).size === 8, {
      timeoutMs: 30_000,
      message: 'both instances run tasks, 8 in all',
    });
    const yTasks = [...running(y)];
    expect(yTasks.every((t) => !running(x).has(t))).toBe(true);
    const producer = client.producer({ lingerMs: 2 });
    const batch1 = makeLines(200, 21);
    await producer.send(
      'tw-lines',
      batch1.map((value) => ({ value })),
    );
    await waitFor(async () => sameMap(await latest('tw-counts'), wordCounts(batch1)), { timeoutMs: 60_000, message: 'counts of batch 1' });
    await waitFor(() => groupCaughtUp('tw-app', 8), { timeoutMs: 20_000, message: 'offsets committed' });
    await sigkill(y);
    await waitFor(() => running(x).size === 8, { timeoutMs: 30_000, message: 'x took over every task' });
    // x restored y's tasks from their changelogs (x's state dir never had them).
    const restoredByX = x.events.filter((e) => e.type === 'task-restored' && yTasks.includes(e.taskId) && e.records > 0);
    expect(restoredByX.length).toBeGreaterThan(0);
    const batch2 = makeLines(100, 22);
    await producer.send(
      'tw-lines',
      batch2.map((value) => ({ value })),
    );
    await waitFor(async () => sameMap(await latest('tw-counts'), wordCounts([...batch1, ...batch2])), {
      timeoutMs: 30_000,
      message: 'counts of batches 1 and 2',
    });
    await producer.close();
    await stopChild(x.child, 10_000);
  });
});

describe('task assignment on a cluster (streams assignor: standbys, stickiness to local state)', () => {
  /** Task ids of `events` that are running now, standing by now. */
  const running = (app: AppProcess) => {
    const s = new Set<string>();
    for (const e of app.events) {
      if (e.type === 'task-running') s.add(e.taskId);
      if (e.type === 'task-revoked') s.delete(e.taskId);
    }
    return s;
  };
  const standing = (app: AppProcess) => {
    const s = new Set<string>();
    for (const e of app.events) {
      if (e.type === 'standby-assigned') s.add(e.taskId);
      if (e.type === 'standby-revoked') s.delete(e.taskId);
    }
    return s;
  };
  // Subtopology 1 is the count (stateful); subtopology 0 splits lines (stateless).
  const stateful = (tasks: Iterable<string>) => [...tasks].filter((t) => t.startsWith('1_')).sort();
  const restoredFor = (app: AppProcess, tasks: readonly string[]) =>
    app.events
      .filter((e): e is Extract<StreamsEvent, { type: 'task-restored' }> => e.type === 'task-restored' && tasks.includes(e.taskId))
      .reduce((n, e) => n + e.records, 0);
  /** Records in the changelog partitions of the given count tasks (what a restore from scratch replays). */
  const changelogRecords = async (app: string, tasks: readonly string[]) =>
    (await readAll(`${app}-counts-changelog`)).filter((r) => tasks.includes(`1_${r.partition}`)).length;
  /** Lines over 300 distinct words, so the changelogs hold hundreds of records (the store cache keeps one per key and commit). */
  const manyWordLines = (n: number, seed: number) =>
    makeLines(n, seed).map((l, i) =>
      l
        .split(' ')
        .map((w, j) => `${w}${(i * 31 + j * 17 + seed) % 43}`)
        .join(' '),
    );
  const lastCommit = async (app: AppProcess) => {
    const commits = app.events.filter((e) => e.type === 'commit').length;
    await waitFor(() => app.events.filter((e) => e.type === 'commit').length > commits + 1, { timeoutMs: 10_000, message: 'a store commit' });
  };

  it('with numStandbyReplicas 1, the survivor of a SIGKILL restores only the tail of the tasks it kept as standbys; counts stay exact', async () => {
    await createTopic('sb-lines', 4);
    await createTopic('sb-counts', 4);
    const env = (id: string) => ({ APP_ID: 'sb-app', IN: 'sb-lines', OUT: 'sb-counts', STATE_DIR: tempDir(), INSTANCE_ID: id, NUM_STANDBY_REPLICAS: '1' });
    const x = spawnApp(env('x'));
    await waitFor(() => x.events.some((e) => (e as { type: string }).type === 'started'), { timeoutMs: 30_000, message: 'x started' });
    const y = spawnApp(env('y'));
    onTestFailed(() =>
      console.log(
        'DEBUG x',
        JSON.stringify(x.events.filter((e) => e.type !== 'commit')),
        '\nDEBUG y',
        JSON.stringify(y.events.filter((e) => e.type !== 'commit')),
      ),
    );
    // Balanced per kind: each instance runs two count tasks and stands by for the other's two.
    await waitFor(
      () =>
        running(x).size + running(y).size === 8 &&
        stateful(running(y)).length === 2 &&
        stateful(standing(x)).join() === stateful(running(y)).join() &&
        stateful(standing(y)).join() === stateful(running(x)).join(),
      { timeoutMs: 30_000, message: 'two count tasks each, each standing by for the other' },
    );
    const yStateful = stateful(running(y));
    const producer = client.producer({ lingerMs: 2 });
    const batch1 = manyWordLines(400, 31);
    await producer.send(
      'sb-lines',
      batch1.map((value) => ({ value })),
    );
    await waitFor(async () => sameMap(await latest('sb-counts'), wordCounts(batch1)), { timeoutMs: 60_000, message: 'counts of batch 1' });
    await waitFor(() => groupCaughtUp('sb-app', 8), { timeoutMs: 20_000, message: 'offsets committed' });
    await lastCommit(y);
    const changelog = await changelogRecords('sb-app', yStateful);
    expect(changelog).toBeGreaterThan(100);
    await sigkill(y);
    await waitFor(() => running(x).size === 8, { timeoutMs: 30_000, message: 'x took over every task' });
    // x's standbys became the active tasks (their stores handed over) and replayed at most the tail.
    expect(
      x.events
        .filter((e) => e.type === 'standby-revoked' && e.promoted)
        .map((e) => (e as { taskId: string }).taskId)
        .sort(),
    ).toEqual(yStateful);
    const restored = restoredFor(x, yStateful);
    expect(restored).toBeLessThan(changelog / 4);
    const batch2 = manyWordLines(100, 32);
    await producer.send(
      'sb-lines',
      batch2.map((value) => ({ value })),
    );
    await waitFor(async () => sameMap(await latest('sb-counts'), wordCounts([...batch1, ...batch2])), {
      timeoutMs: 30_000,
      message: 'counts of batches 1 and 2',
    });
    await producer.close();
    await stopChild(x.child, 10_000);
  }, 180_000);

  it('an instance restarted on its state directory gets its old count tasks back and replays only their tail', async () => {
    await createTopic('st-lines', 4);
    await createTopic('st-counts', 4);
    const dirs = { x: tempDir(), y: tempDir() };
    const env = (id: 'x' | 'y') => ({ APP_ID: 'st-app', IN: 'st-lines', OUT: 'st-counts', STATE_DIR: dirs[id], INSTANCE_ID: id });
    // y starts first and keeps the tasks x's join does not take: a restarted y that had no state to
    // report would be handed what a joiner gets (x's), not its own.
    let y = spawnApp(env('y'));
    await waitFor(() => y.events.some((e) => (e as { type: string }).type === 'started'), { timeoutMs: 30_000, message: 'y started' });
    const x = spawnApp(env('x'));
    await waitFor(() => running(x).size + running(y).size === 8 && stateful(running(y)).length === 2, {
      timeoutMs: 30_000,
      message: 'both run two count tasks',
    });
    const yStateful = stateful(running(y));
    const producer = client.producer({ lingerMs: 2 });
    const batch1 = manyWordLines(300, 41);
    await producer.send(
      'st-lines',
      batch1.map((value) => ({ value })),
    );
    await waitFor(async () => sameMap(await latest('st-counts'), wordCounts(batch1)), { timeoutMs: 60_000, message: 'counts of batch 1' });
    await waitFor(() => groupCaughtUp('st-app', 8), { timeoutMs: 20_000, message: 'offsets committed' });
    await lastCommit(y);
    await sigkill(y);
    await waitFor(() => running(x).size === 8, { timeoutMs: 30_000, message: 'x took over every task' });
    // x now runs y's count tasks too (restored from their changelogs, so x holds their state as well).
    const batch2 = manyWordLines(20, 42);
    await producer.send(
      'st-lines',
      batch2.map((value) => ({ value })),
    );
    await waitFor(async () => sameMap(await latest('st-counts'), wordCounts([...batch1, ...batch2])), {
      timeoutMs: 30_000,
      message: 'counts of batches 1 and 2',
    });
    const changelog = await changelogRecords('st-app', yStateful);

    y = spawnApp(env('y'));
    await waitFor(() => running(x).size + running(y).size === 8 && running(y).size === 4, { timeoutMs: 30_000, message: 'y runs four tasks again' });
    expect(stateful(running(y))).toEqual(yStateful);
    // Only what x added while y was down is replayed: y's stores survived at their checkpoints.
    expect(restoredFor(y, yStateful)).toBeLessThan(changelog / 4);
    const batch3 = manyWordLines(50, 43);
    await producer.send(
      'st-lines',
      batch3.map((value) => ({ value })),
    );
    await waitFor(async () => sameMap(await latest('st-counts'), wordCounts([...batch1, ...batch2, ...batch3])), {
      timeoutMs: 30_000,
      message: 'counts of batches 1-3',
    });
    await producer.close();
    await stopChild(y.child, 10_000);
    await stopChild(x.child, 10_000);
  }, 180_000);
});
