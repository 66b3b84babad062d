#!/usr/bin/env node
// @skein/streams throughput (issue 18), in one run on one cluster (metadata, one broker, one
// coordinator; etcd when the machine has it): N records (default 100,000, ~100 B, keys k0..k999 over
// 4 partitions) are written once, then read by
//   1. raw consume: a Fetcher over the 4 partitions (the ceiling: what the client reads per second),
//   2. a stateless map (mapValues -> to), at_least_once,
//   3. a stateful count (groupByKey().count() -> to, LMDB store + changelog), at_least_once,
//   4. the same count, exactly_once (one transaction per 100 ms commit interval).
// Each streams row is timed from start() until every input record is processed and close() has
// committed (so it includes joining the group, about a second). Ratios are against raw consume.
//
//   node bench/streams.js [--records N]          (after npm run build)
// Writes bench/results/streams.md.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Fetcher, SkeinClient } from '@skein/client';
import { Serdes, SkeinStreams, StreamsBuilder } from '@skein/streams';
import { startService, stopAll, waitFor } from '../test/dist/services.js';
import { startStores } from '../test/dist/stores.js';

const { values } = parseArgs({ options: { records: { type: 'string', default: '100000' } } });
const N = Number(values.records);
const root = new URL('..', import.meta.url).pathname;
const stores = await startStores();
const store = (service) => [...stores.args(service, `/bench-streams-${process.pid}/`), '--log-level', 'warn'];
const dirs = [];
try {
  const metadata = await startService({ name: 'metadata', entry: `${root}services/metadata/dist/main.js`, args: store('metadata') });
  await startService({
    name: 'broker-1',
    entry: `${root}services/broker/dist/main.js`,
    dataDirFlag: '--data-dir',
    args: ['--broker-id', '1', '--metadata-addresses', metadata.address, '--log-level', 'warn'],
  });
  const coordinator = await startService({
    name: 'coordinator',
    entry: `${root}services/group-coordinator/dist/main.js`,
    args: [...store('coordinator'), '--metadata-addresses', metadata.address],
  });
  const client = new SkeinClient({ metadata: [metadata.address] });
  await waitFor(async () => (await client.describeCluster()).brokers.length === 1, { timeoutMs: 20_000, message: 'broker registered' });
  const topic = async (name) => {
    await client.createTopic(name, { partitions: 4, replicationFactor: 1 });
    await waitFor(async () => (await client.topic(name, true)).partitions.every((p) => p.leaderId > 0), { timeoutMs: 20_000, message: `${name} has leaders` });
  };
  for (const t of ['bench-in', 'bench-map', 'bench-count-alos', 'bench-count-eos']) await topic(t);

  const producer = client.producer({ lingerMs: 5 });
  const value = 'x'.repeat(90);
  for (let i = 0; i < N; i += 5000) {
    await producer.send(
      'bench-in',
      Array.from({ length: Math.min(5000, N - i) }, (_, j) => ({ key: `k${(i + j) % 1000}`, value: `${value}${i + j}` })),
    );
  }
  await producer.close();

  const rows = [];
  // 1. Raw consume.
  {
    const t0 = performance.now();
    const fetcher = new Fetcher(client, { maxWaitMs: 100 });
    for (let p = 0; p < 4; p++) fetcher.assign('bench-in', p, 0n);
    let n = 0;
    while (n < N) {
      const chunk = await fetcher.next();
      if (chunk?.kind === 'records') n += chunk.records.length;
    }
    fetcher.close();
    rows.push({ name: 'raw consume (Fetcher, 4 partitions)', seconds: (performance.now() - t0) / 1000 });
  }

  const runApp = async (name, build, guarantee) => {
    const builder = new StreamsBuilder();
    build(builder);
    const stateDir = mkdtempSync(join(tmpdir(), 'bench-streams-'));
    dirs.push(stateDir);
    const app = new SkeinStreams(builder.build(), client, {
      applicationId: `bench-${name}`,
      stateDir,
      processingGuarantee: guarantee,
      coordinator: [coordinator.address],
      maxBytesPerPartition: 1 << 20,
    });
    const t0 = performance.now();
    await app.start();
    await waitFor(() => app.stats.processed >= N, { timeoutMs: 300_000, intervalMs: 20, message: `${name} processed every record` });
    await app.close();
    return { seconds: (performance.now() - t0) / 1000, stats: { ...app.stats } };
  };
  const map = await runApp(
    'map',
    (b) =>
      b
        .stream('bench-in')
        .mapValues((v) => v.toUpperCase())
        .to('bench-map'),
    'at_least_once',
  );
  rows.push({ name: 'stateless map, at_least_once', ...map });
  const countAlos = await runApp(
    'count-alos',
    (b) => b.stream('bench-in').groupByKey().count().toStream().to('bench-count-alos', { valueSerde: Serdes.Long() }),
    'at_least_once',
  );
  rows.push({ name: 'stateful count (LMDB + changelog), at_least_once', ...countAlos });
  const countEos = await runApp(
    'count-eos',
    (b) => b.stream('bench-in').groupByKey().count().toStream().to('bench-count-eos', { valueSerde: Serdes.Long() }),
    'exactly_once',
  );
  rows.push({ name: 'stateful count (LMDB + changelog), exactly_once', ...countEos });
  client.close();

  const raw = rows[0].seconds;
  const lines = [
    `# @skein/streams throughput (bench/streams.js)`,
    ``,
    `${N.toLocaleString('en-US')} records of ~100 B, 4 partitions, 1 broker (RF 1), ${stores.kind} store; ${cpus().length} cores, load average ${loadavg()[0].toFixed(1)} at the end; ${new Date().toISOString().slice(0, 10)}.`,
    `Streams rows include start-up (joining the group) and the final commit.`,
    ``,
    `| workload | records/s | vs raw consume | commits |`,
    `|---|---|---|---|`,
    ...rows.map(
      (r) =>
        `| ${r.name} | ${Math.round(N / r.seconds).toLocaleString('en-US')} | ${(raw / r.seconds).toFixed(2)} | ${r.stats ? `${r.stats.commits} (${r.stats.aborts} aborted)` : ''} |`,
    ),
  ];
  console.log(lines.join('\n'));
  writeFileSync(`${root}bench/results/streams.md`, `${lines.join('\n')}\n`);
} finally {
  await stopAll();
  await stores.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
