// @skein/streams' later DSL on a real cluster (metadata, one broker, a group coordinator, a schema
// registry): sliding windows with out-of-order and late records; left and outer stream-stream
// joins whose null results wait for the window to close and survive a restart of the application
// (restored from the outer-join store's changelog, emitted once); KTable.groupBy moving rows
// between groups and deleting them; Avro keys and values through registry serdes. Expected
// outputs are computed in the test from the input, never by the library.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OffsetSpec, SchemaDeserializer, SchemaRegistryClient, SchemaSerializer, SkeinClient } from '@skein/client';
import { JoinWindows, RegistrySerdes, Serdes, SkeinStreams, SlidingWindows, StreamsBuilder, windowedSerde } from '@skein/streams';
import { freePort } from './harness/ports.js';
import { startService, stopAll, waitFor, type ServiceProcess } from './harness/services.js';
import { type StreamsCluster, startStreamsCluster } from './harness/streams-cluster.js';

const REGISTRY_ENTRY = new URL('../services/schema-registry/dist/main.js', import.meta.url).pathname;

let cluster: StreamsCluster;
let client: SkeinClient;
let coordinator: ServiceProcess;
let registry: SchemaRegistryClient;
const apps: SkeinStreams[] = [];

beforeAll(async () => {
  cluster = await startStreamsCluster('streams-dsl');
  ({ coordinator, client } = cluster);
  const restPort = await freePort();
  await startService({
    name: 'schema-registry',
    entry: REGISTRY_ENTRY,
    args: [...cluster.storeArgs('schema-registry'), '--rest-port', String(restPort), '--log-level', 'warn'],
  });
  registry = new SchemaRegistryClient({ url: `http://127.0.0.1:${restPort}` });
}, 90_000);

afterAll(async () => {
  for (const a of apps) await a.close().catch(() => {});
  await stopAll();
  await cluster?.close();
});

async function createTopic(name: string, partitions: number): Promise<void> {
  await client.createTopic(name, { partitions, replicationFactor: 1 });
  await waitFor(async () => (await client.topic(name, true)).partitions.every((p) => p.leaderId > 0), { timeoutMs: 20_000, message: `${name} has leaders` });
}

/** Every record of a topic, partition by partition, in offset order. */
async function readAll(topic: string) {
  const t = await client.topic(topic, true);
  const out: Array<{ key: Buffer; value: Buffer | null; timestamp: number }> = [];
  for (const p of t.partitions) {
    const end = await client.listOffset(topic, p.partition, OffsetSpec.OFFSET_SPEC_LATEST);
    let at = 0n;
    while (at < end) {
      const res = await client.fetch(topic, p.partition, at);
      for (const r of res.records) if (r.offset < end) out.push({ key: r.key, value: r.value, timestamp: Number(r.timestampMs) });
      const next = res.nextOffset ?? (res.records.length ? res.records[res.records.length - 1]!.offset + 1n : at);
      if (next <= at) break;
      at = next;
    }
  }
  return out;
}

const strings = async (topic: string) => (await readAll(topic)).map((r) => `${r.key.toString()}:${r.value?.toString() ?? 'null'}`);

function startApp(builder: StreamsBuilder, applicationId: string): SkeinStreams {
  const app = new SkeinStreams(builder.build(), client, { applicationId, coordinator: [coordinator.address], commitIntervalMs: 200 });
  apps.push(app);
  return app;
}

function sameMap(a: Map<string, unknown>, b: Map<string, unknown>): boolean {
  return a.size === b.size && [...a].every(([k, v]) => b.has(k) && b.get(k) === v);
}

describe('sliding windows on a cluster', () => {
  it('counts per window, with out-of-order records within grace and late ones dropped (reference: windows from the definition)', async () => {
    await createTopic('sw-clicks', 1);
    await createTopic('sw-counts', 1);
    const size = 10_000;
    const grace = 5_000;
    const W = windowedSerde(Serdes.String());
    const b = new StreamsBuilder();
    b.stream<string, string>('sw-clicks')
      .groupByKey()
      .windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(size, grace))
      .count()
      .toStream()
      .to('sw-counts', { keySerde: W, valueSerde: Serdes.Long() });
    const app = startApp(b, 'sw-app');
    await app.start();
    const base = 1_700_000_000_000;
    // Seconds after base: 6 arrives after 12 (out of order, within grace), 3 after 25 (late: 3 + 10 + 5 < 25), 18 after 25 (in grace).
    const events: Array<[string, number]> = [
      ['u1', 1],
      ['u1', 4],
      ['u2', 5],
      ['u1', 12],
      ['u1', 6],
      ['u2', 14],
      ['u1', 25],
      ['u1', 3],
      ['u1', 18],
      ['u2', 26],
      ['u1', 40],
    ];
    const producer = client.producer({ lingerMs: 0 });
    for (const [k, s] of events) await producer.send('sw-clicks', [{ key: k, value: 'click', timestampMs: base + s * 1000 }]);
    await producer.close();

    // Reference, from the definition: a sliding window is [s, s + size] (both ends inclusive)
    // ending at a record ([t - size, t]) or starting just after one ([t + 1, t + 1 + size]). A
    // record is late once t + size + grace < stream time; an accepted record updates every window
    // of its key that contains it and is not closed (end + grace >= stream time) to the count of
    // accepted records inside it.
    let st = -1;
    const accepted = new Map<string, number[]>();
    const expected = new Map<string, number>();
    let late = 0;
    for (const [k, sec] of events) {
      const t = base + sec * 1000;
      st = Math.max(st, t);
      if (t + size + grace < st) {
        late++;
        continue;
      }
      const mine = [...(accepted.get(k) ?? []), t];
      accepted.set(k, mine);
      const starts = new Set(mine.flatMap((r) => [r - size, r + 1]));
      for (const s of starts) {
        if (!(s <= t && t <= s + size) || s + size + grace < st) continue;
        expected.set(`${k}@${s}-${s + size}`, mine.filter((r) => r >= s && r <= s + size).length);
      }
    }
    expect(late).toBe(1);
    const lastPerWindow = async () => {
      const m = new Map<string, number>();
      for (const r of await readAll('sw-counts')) {
        const wk = W.deserialize(r.key)!;
        m.set(`${wk.key}@${wk.window.start}-${wk.window.end}`, Number(r.value!.readBigInt64BE(0)));
      }
      return m;
    };
    await waitFor(async () => sameMap(await lastPerWindow(), expected), { timeoutMs: 30_000, message: 'sliding window counts match the reference' });
    expect(app.tasksStatus().reduce((n, t) => n + (t.metrics?.events['dropped-late'] ?? 0), 0)).toBe(1);
    await app.close();
  });
});

describe('left and outer stream-stream joins on a cluster', () => {
  it('null results only after window + grace, kept across a restart (restored from the changelog) and emitted once', async () => {
    for (const t of ['oj-l', 'oj-r', 'oj-left', 'oj-outer']) await createTopic(t, 1);
    const build = () => {
      const b = new StreamsBuilder();
      const l = b.stream<string, string>('oj-l');
      const r = b.stream<string, string>('oj-r');
      const w = JoinWindows.ofTimeDifferenceAndGrace(5_000, 2_000);
      l.leftJoin(r, (a, c) => `${a}+${c ?? 'null'}`, w).to('oj-left');
      l.outerJoin(r, (a, c) => `${a ?? 'null'}+${c ?? 'null'}`, w).to('oj-outer');
      return b;
    };
    const base = 1_700_000_000_000;
    const producer = client.producer({ lingerMs: 0 });
    const send = (topic: string, key: string, value: string, sec: number) => producer.send(topic, [{ key, value, timestampMs: base + sec * 1000 }]);
    // State kept in memory: the second instance restores everything from the changelogs.
    let app = startApp(build(), 'oj-app');
    await app.start();
    // Phase 1 (stream time 3 s): b pairs; a (left) and x (right) have no partner, but their windows are open.
    await send('oj-l', 'a', 'A1', 0);
    await send('oj-l', 'b', 'B1', 0);
    await send('oj-r', 'x', 'X1', 1);
    await send('oj-r', 'b', 'C1', 3);
    await waitFor(async () => (await strings('oj-outer')).length >= 1 && (await strings('oj-left')).length >= 1, {
      timeoutMs: 20_000,
      message: 'the pair b',
    });
    await waitFor(() => app.tasksStatus().reduce((n, t) => n + (t.metrics?.processed ?? 0), 0) === 4, { timeoutMs: 20_000, message: 'phase 1 processed' });
    await app.close();
    // No null result yet: a's window closes at 0 + 5 + 2 = 7 s, x's at 1 + 5 + 2 = 8 s.
    expect(await strings('oj-left')).toEqual(['b:B1+C1']);
    expect(await strings('oj-outer')).toEqual(['b:B1+C1']);

    // Phase 2, a new instance: stream time 20 s closes a's and x's windows; d waits.
    app = startApp(build(), 'oj-app');
    await app.start();
    await send('oj-l', 'd', 'D1', 20);
    await waitFor(async () => (await strings('oj-outer')).length >= 3, { timeoutMs: 30_000, message: 'a and x emitted with null after the restart' });
    // Phase 3: stream time 40 s closes d's window.
    await send('oj-l', 'z', 'Z1', 40);
    await waitFor(async () => (await strings('oj-outer')).length >= 4 && (await strings('oj-left')).length >= 3, { timeoutMs: 20_000, message: 'd emitted' });
    await producer.close();
    await waitFor(() => app.tasksStatus().reduce((n, t) => n + (t.metrics?.processed ?? 0), 0) === 2, { timeoutMs: 20_000, message: 'phases 2-3 processed' });
    await app.close();
    expect(await strings('oj-left')).toEqual(['b:B1+C1', 'a:A1+null', 'd:D1+null']);
    expect((await strings('oj-outer')).sort()).toEqual(['a:A1+null', 'b:B1+C1', 'd:D1+null', 'x:null+X1']);
    // The null results carry the unmatched record's own timestamp.
    expect((await readAll('oj-left')).map((r) => r.timestamp - base)).toEqual([3_000, 0, 20_000]);
  });
});

describe('KTable.groupBy on a cluster', () => {
  it('count and reduce per region follow rows moving between regions and deleted (reference: recomputed from the final table)', async () => {
    await createTopic('gb-users', 2);
    for (const t of ['gb-counts', 'gb-sums']) await createTopic(t, 2);
    const b = new StreamsBuilder();
    const byRegion = b
      .table<string, string>('gb-users')
      .groupBy((_user, v) => [v.split(',')[0]!, v.split(',')[1]!] as [string, string], { name: 'gb-by-region' });
    byRegion
      .count({ storeName: 'gb-count' })
      .toStream()
      .mapValues((n) => String(n))
      .to('gb-counts');
    byRegion
      .reduce(
        (a, v) => String(Number(a) + Number(v)),
        (a, v) => String(Number(a) - Number(v)),
      )
      .toStream()
      .to('gb-sums');
    const app = startApp(b, 'gb-app');
    await app.start();
    let x = 17;
    const rnd = () => {
      x = (x * 1103515245 + 12345) % 2147483648;
      return x / 2147483648;
    };
    const table = new Map<string, string>();
    const regions = new Set<string>();
    const producer = client.producer({ lingerMs: 2 });
    const changes: Array<{ key: string; value: string | null }> = [];
    for (let i = 0; i < 150; i++) {
      const user = `u${Math.floor(rnd() * 12)}`;
      const value = rnd() < 0.2 ? null : `${['north', 'south', 'east', 'west'][Math.floor(rnd() * 4)]},${1 + Math.floor(rnd() * 9)}`;
      changes.push({ key: user, value });
      if (value === null) table.delete(user);
      else {
        table.set(user, value);
        regions.add(value.split(',')[0]!);
      }
    }
    await producer.send('gb-users', changes);
    await producer.close();
    const expectedCounts = new Map([...regions].map((r) => [r, String([...table.values()].filter((v) => v.startsWith(`${r},`)).length)]));
    const expectedSums = new Map(
      [...regions].map((r) => [r, String([...table.values()].filter((v) => v.startsWith(`${r},`)).reduce((n, v) => n + Number(v.split(',')[1]), 0))]),
    );
    const latest = async (topic: string) => new Map((await readAll(topic)).map((r) => [r.key.toString(), r.value?.toString() ?? null]));
    await waitFor(async () => sameMap(await latest('gb-counts'), expectedCounts), { timeoutMs: 30_000, message: 'counts per region equal the table' });
    await waitFor(async () => sameMap(await latest('gb-sums'), expectedSums), { timeoutMs: 30_000, message: 'sums per region equal the table' });
    // The repartition topic carries changes; the groups' stores answer queries.
    expect((await client.listTopics()).map((t) => t.name)).toContain('gb-app-gb-by-region-repartition');
    await app.close();
  });
});

describe('schema-registry serdes on a cluster', () => {
  it('a topology reads Avro keys and values and writes Avro that the registry-aware consumer reads', async () => {
    await createTopic('reg-payments', 2);
    await createTopic('reg-receipts', 2);
    const payment = {
      type: 'record',
      name: 'Payment',
      namespace: 'shop',
      fields: [
        { name: 'id', type: 'string' },
        { name: 'cents', type: 'long' },
      ],
    };
    const receipt = {
      type: 'record',
      name: 'Receipt',
      namespace: 'shop',
      fields: [
        { name: 'payment', type: 'string' },
        { name: 'euros', type: 'double' },
        { name: 'large', type: 'boolean' },
      ],
    };
    // A plain registry-aware producer writes the input.
    const keyWriter = new SchemaSerializer('AVRO', { registry, schema: '"string"', isKey: true });
    const valueWriter = new SchemaSerializer('AVRO', { registry, schema: JSON.stringify(payment) });
    const payments = Array.from({ length: 12 }, (_, i) => ({ customer: `c${i % 4}`, value: { id: `p${i}`, cents: 150 * i } }));
    const producer = client.producer({ lingerMs: 2 });
    await producer.send(
      'reg-payments',
      await Promise.all(
        payments.map(async (p) => ({
          key: await keyWriter.serialize('reg-payments', p.customer),
          value: await valueWriter.serialize('reg-payments', p.value),
        })),
      ),
    );
    await producer.close();

    const b = new StreamsBuilder();
    b.stream<string, { id: string; cents: number }>('reg-payments', {
      keySerde: RegistrySerdes.Avro<string>({ registry }),
      valueSerde: RegistrySerdes.Avro<{ id: string; cents: number }>({ registry }),
    })
      .filter((_k, p) => p.cents > 0)
      .mapValues((p) => ({ payment: p.id, euros: p.cents / 100, large: p.cents >= 1000 }))
      .to('reg-receipts', {
        keySerde: RegistrySerdes.Avro<string>({ registry, schema: '"string"', topic: 'reg-receipts', isKey: true }),
        valueSerde: RegistrySerdes.Avro({ registry, schema: JSON.stringify(receipt), topic: 'reg-receipts' }),
      });
    const app = startApp(b, 'reg-app');
    await app.start();
    const expected = payments
      .filter((p) => p.value.cents > 0)
      .map((p) => JSON.stringify([p.customer, { payment: p.value.id, euros: p.value.cents / 100, large: p.value.cents >= 1000 }]))
      .sort();
    await waitFor(async () => (await readAll('reg-receipts')).length >= expected.length, { timeoutMs: 30_000, message: 'receipts written' });
    const records = await readAll('reg-receipts');
    // What an ordinary registry-aware consumer reads: framed records naming the subjects' registered ids.
    const reader = new SchemaDeserializer({ registry });
    const got = await Promise.all(records.map(async (r) => JSON.stringify([await reader.deserialize(r.key), await reader.deserialize(r.value!)])));
    expect(got.sort()).toEqual(expected);
    const valueId = (await registry.latestVersion('reg-receipts-value')).id;
    const keyId = (await registry.latestVersion('reg-receipts-key')).id;
    for (const r of records) {
      expect(r.value!.readUInt32BE(1)).toBe(valueId);
      expect(r.key.readUInt32BE(1)).toBe(keyId);
    }
    await app.close();
  });
});
