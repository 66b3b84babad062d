// @skein/streams' Processor API, interactive queries and per-task metrics against a real cluster
// (metadata, one broker, a group coordinator): a wall-clock punctuator keeps emitting per-key
// summaries of its store while no input arrives; interactive queries answer the counts a word count
// computed (expected counts and partitions computed here from the input); GET /metrics shows each
// task's processed count equal to the records fed to its partition.
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OffsetSpec, partitionForKey, SkeinClient } from '@skein/client';
import { Serdes, SkeinStreams, StreamsBuilder, type TypedKeyValueStore } from '@skein/streams';
import { type StreamsCluster, startStreamsCluster } from './harness/streams-cluster.js';
import { stopAll, waitFor, type ServiceProcess } from './harness/services.js';

let cluster: StreamsCluster;
let client: SkeinClient;
let coordinator: ServiceProcess;
const apps: SkeinStreams[] = [];
const S = Serdes.String();

beforeAll(async () => {
  cluster = await startStreamsCluster('streams-papi');
  ({ coordinator, client } = cluster);
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

/** Every record of a one-partition topic, in offset order. */
async function readAll(topic: string): Promise<Array<{ key: string; value: string }>> {
  const end = await client.listOffset(topic, 0, OffsetSpec.OFFSET_SPEC_LATEST);
  const out: Array<{ key: string; value: string }> = [];
  let at = 0n;
  while (at < end) {
    const res = await client.fetch(topic, 0, at);
    for (const r of res.records) if (r.offset < end) out.push({ key: r.key.toString(), value: r.value?.toString() ?? '' });
    const next = res.nextOffset ?? (res.records.length ? res.records[res.records.length - 1]!.offset + 1n : at);
    if (next <= at) break;
    at = next;
  }
  return out;
}

function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

/** The value of one series in Prometheus text (labels given must all match), or undefined. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

describe('Processor API, interactive queries and metrics on a cluster', () => {
  it('a wall-clock punctuator emits per-key summaries of its store while no input arrives; /metrics counts each task’s records', async () => {
    await createTopic('papi-in', 2);
    await createTopic('papi-summaries', 1);
    const b = new StreamsBuilder();
    b.addStateStore({ name: 'papi-seen', keySerde: S, valueSerde: Serdes.Long() });
    b.stream<string, string>('papi-in')
      .process<string, string>(() => {
        let store!: TypedKeyValueStore<string, number>;
        return {
          init(ctx) {
            store = ctx.getStateStore('papi-seen');
            ctx.schedule(300, 'wall-clock', () => {
              for (const [k, n] of store.all()) ctx.forward(k, String(n));
            });
          },
          process(r) {
            store.put(r.key, (store.get(r.key) ?? 0) + 1);
          },
        };
      }, 'papi-seen')
      .to('papi-summaries', { keySerde: S, valueSerde: S });
    const app = new SkeinStreams(b.build(), client, { applicationId: 'papi-app', coordinator: [coordinator.address], commitIntervalMs: 200, metricsPort: 0 });
    apps.push(app);
    await app.start();
    const port = app.metricsPort()!;
    expect(port).toBeGreaterThan(0);

    // Records to explicit partitions, so the expected count of each task is known here.
    const fed = [0, 0];
    const expected = new Map<string, number>();
    const producer = client.producer({ lingerMs: 2 });
    // A key always goes to the same partition, so each task's store counts whole keys.
    const records = Array.from({ length: 90 }, (_, i) => ({ key: `k${i % 7}`, value: `v${i}`, partition: (i % 7) % 2 }));
    for (const r of records) {
      fed[r.partition]!++;
      expected.set(r.key, (expected.get(r.key) ?? 0) + 1);
    }
    await producer.send('papi-in', records);
    await producer.close();

    const latest = async () => {
      const m = new Map<string, number>();
      for (const r of await readAll('papi-summaries')) m.set(r.key, Number(r.value));
      return m;
    };
    await waitFor(
      async () => {
        const m = await latest();
        return m.size === expected.size && [...expected].every(([k, n]) => m.get(k) === n);
      },
      { timeoutMs: 30_000, message: 'summaries show every key with its count' },
    );

    // No more input: the punctuator keeps emitting the same counts.
    const before = (await readAll('papi-summaries')).length;
    await waitFor(async () => (await readAll('papi-summaries')).length >= before + 2 * expected.size, {
      timeoutMs: 20_000,
      message: 'more summaries while no input arrives',
    });
    const after = (await readAll('papi-summaries')).slice(before);
    for (const r of after) expect(Number(r.value)).toBe(expected.get(r.key));

    // Metrics: per-task processed counts equal what each partition was fed.
    let text = '';
    await waitFor(
      async () => {
        const res = await httpGet(port, '/metrics');
        text = res.body;
        return (
          res.status === 200 &&
          sample(text, 'skein_streams_task_records_processed_total', { task: '0_0' }) === fed[0] &&
          sample(text, 'skein_streams_task_records_processed_total', { task: '0_1' }) === fed[1]
        );
      },
      { timeoutMs: 20_000, message: `processed counts ${fed.join(', ')} on /metrics` },
    );
    expect(sample(text, 'skein_streams_task_records_processed_total', { task: '0_0', application_id: 'papi-app' })).toBe(fed[0]);
    expect(sample(text, 'skein_streams_task_punctuations_total', { task: '0_0', type: 'wall-clock' })).toBeGreaterThan(0);
    expect(sample(text, 'skein_streams_task_consumer_lag', { task: '0_1', topic: 'papi-in', partition: '1' })).toBe(0);
    expect(sample(text, 'skein_streams_commit_latency_seconds_count', {})).toBeGreaterThan(0);
    expect(await app.metrics()).toContain('skein_streams_task_restore_progress_ratio');
    expect((await httpGet(port, '/other')).status).toBe(404);

    await app.close();
    await expect(httpGet(port, '/metrics')).rejects.toThrow(); // closed with the instance
  }, 120_000);

  it('interactive queries answer the counts a word count computed, from the task that holds each key', async () => {
    await createTopic('iq-lines', 3);
    const b = new StreamsBuilder();
    b.stream<string, string>('iq-lines')
      .flatMapValues((l) => l.split(' ').filter(Boolean))
      .groupBy((_k, w) => w)
      .count({ storeName: 'iq-counts' });
    const app = new SkeinStreams(b.build(), client, { applicationId: 'iq-app', coordinator: [coordinator.address], commitIntervalMs: 200 });
    apps.push(app);
    await app.start();
    const words = ['apple', 'banana', 'cherry', 'date', 'elder', 'fig', 'grape'];
    const lines = Array.from({ length: 120 }, (_, i) => [words[i % 7], words[(i * 3) % 7], i % 4 === 0 ? words[(i * 5) % 7] : ''].join(' ').trim());
    const expected = new Map<string, number>();
    for (const l of lines) for (const w of l.split(' ')) expected.set(w, (expected.get(w) ?? 0) + 1);
    const producer = client.producer({ lingerMs: 2 });
    await producer.send(
      'iq-lines',
      lines.map((l, i) => ({ key: `line-${i}`, value: l })),
    );
    await producer.close();

    const store = app.store<string, number>('iq-counts');
    await waitFor(
      () => {
        try {
          return [...expected].every(([w, n]) => store.get(w) === n);
        } catch {
          return false; // a task still restoring: retriable
        }
      },
      { timeoutMs: 30_000, message: 'every word count queryable and equal to the input' },
    );
    expect(store.all()).toEqual([...expected].sort(([a], [b]) => (a < b ? -1 : 1)));
    expect(store.range('banana', 'date')).toEqual([...expected].filter(([w]) => w >= 'banana' && w <= 'date').sort(([a], [b]) => (a < b ? -1 : 1)));
    expect(store.approximateNumEntries()).toBe(expected.size);
    expect(store.get('kiwi')).toBeUndefined();
    // The repartition topic (3 partitions) is keyed by the word: the task of partitionForKey(word).
    const sub = b.build().subtopologies.find((s) => s.stores.includes('iq-counts'))!.id;
    for (const w of words) {
      const p = partitionForKey(Buffer.from(w), 3);
      expect(app.queryMetadataForKey('iq-counts', w)).toEqual({ store: 'iq-counts', partition: p, taskId: `${sub}_${p}`, activeHere: true, state: 'RUNNING' });
    }
    expect(() => app.store('no-such-store')).toThrow(/no store no-such-store/);
  }, 120_000);
});
