#!/usr/bin/env node
// Connect throughput (issue 19) on one worker, one broker, one coordinator (loopback, this machine):
//   lines/s  FileSource -> topic -> FileSink, a generated file copied end to end (exactly-once source);
//   rows/s   PostgresSink alone (rows produced to a topic beforehand, then the sink started), and
//            PostgresSource (CDC, exactly once) -> topic -> PostgresSink end to end, from one INSERT of
//            --rows rows to the last row in the second table.
// Needs `npm run build`; the rows/s part needs PostgreSQL (apt-get install -y postgresql) and is
// skipped without it. Options: --mb (file size, 30), --rows (50000).
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { startConnectCluster } from '../test/dist/connect-cluster.js';
import { postgresBinDir, startPostgres } from '../test/dist/postgres.js';

const { values: opts } = parseArgs({ options: { mb: { type: 'string', default: '30' }, rows: { type: 'string', default: '50000' } } });
const MB = Number(opts.mb);
const ROWS = Number(opts.rows);

async function until(cond, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const dir = mkdtempSync(join(tmpdir(), 'skein-bench-connect-'));
const cluster = await startConnectCluster({ workers: 1 });
const results = [];
let pgServer;
try {
  // lines/s: ~100-byte lines.
  const input = join(dir, 'in.txt');
  const output = join(dir, 'out.txt');
  const lines = [];
  let bytes = 0;
  for (let i = 0; bytes < MB * 1024 * 1024; i++) {
    const line = `line ${i} ${'x'.repeat(80 + (i % 20))}\n`;
    lines.push(line);
    bytes += line.length;
  }
  writeFileSync(input, lines.join(''));
  await cluster.client.createTopic('bench-lines', { partitions: 1, replicationFactor: 1 });
  const connect = cluster.connect('w1');
  const t0 = performance.now();
  await connect.createConnector({
    name: 'bench-in',
    config: { 'connector.class': 'FileSource', file: input, topic: 'bench-lines', 'value.converter': 'bytes' },
  });
  await connect.createConnector({
    name: 'bench-out',
    config: { 'connector.class': 'FileSink', file: output, topics: 'bench-lines', 'value.converter': 'bytes', 'offset.flush.interval.ms': '200' },
  });
  await until(() => existsSync(output) && statSync(output).size >= bytes, 300_000, 'the file copy');
  const fileS = (performance.now() - t0) / 1000;
  const same = createHash('sha256').update(readFileSync(input)).digest('hex') === createHash('sha256').update(readFileSync(output)).digest('hex');
  results.push({
    what: 'FileSource -> topic -> FileSink',
    items: lines.length,
    seconds: fileS,
    perSecond: lines.length / fileS,
    unit: 'lines/s',
    mbPerSecond: bytes / 1024 / 1024 / fileS,
    exact: same,
  });

  if (postgresBinDir()) {
    pgServer = await startPostgres();
    const db = new pg.Client({ connectionString: pgServer.url });
    await db.connect();
    await db.query('CREATE TABLE src (id int PRIMARY KEY, name text, qty int)');
    await db.query('CREATE TABLE sink_only (id int PRIMARY KEY, name text, qty int)');
    await db.query('CREATE TABLE dst (id int PRIMARY KEY, name text, qty int)');
    // Sink alone: rows already in a topic.
    await cluster.client.createTopic('bench-rows', { partitions: 1, replicationFactor: 1 });
    const producer = cluster.client.producer({ lingerMs: 5 });
    for (let i = 0; i < ROWS; i += 5000) {
      await producer.send(
        'bench-rows',
        Array.from({ length: Math.min(5000, ROWS - i) }, (_, j) => ({
          key: JSON.stringify({ id: i + j }),
          value: JSON.stringify({ id: i + j, name: `row ${i + j}`, qty: j }),
        })),
      );
    }
    await producer.close();
    const count = async (t) => Number((await db.query(`SELECT count(*) AS n FROM ${t}`)).rows[0].n);
    const t1 = performance.now();
    await connect.createConnector({
      name: 'bench-sink',
      config: {
        'connector.class': 'PostgresSink',
        'connection.url': pgServer.url,
        topics: 'bench-rows',
        'table.name.format': 'sink_only',
        'pk.fields': 'id',
        'key.converter': 'json',
      },
    });
    await until(async () => (await count('sink_only')) >= ROWS, 300_000, 'the sink');
    const sinkS = (performance.now() - t1) / 1000;
    results.push({ what: 'PostgresSink (topic -> table, upsert)', items: ROWS, seconds: sinkS, perSecond: ROWS / sinkS, unit: 'rows/s' });
    // Source -> sink end to end.
    await cluster.client.createTopic('bench.public.src', { partitions: 1, replicationFactor: 1 });
    await connect.createConnector({
      name: 'bench-cdc',
      config: {
        'connector.class': 'PostgresSource',
        'connection.url': pgServer.url,
        'table.include.list': 'public.src',
        'topic.prefix': 'bench',
        'key.converter': 'json',
        'offset.flush.interval.ms': '200',
      },
    });
    await connect.createConnector({
      name: 'bench-dst',
      config: {
        'connector.class': 'PostgresSink',
        'connection.url': pgServer.url,
        topics: 'bench.public.src',
        'table.name.format': 'dst',
        'pk.fields': 'id',
        'key.converter': 'json',
      },
    });
    await until(async () => (await connect.getConnectorStatus({ name: 'bench-cdc' })).tasks[0]?.state === 2, 60_000, 'the CDC source running');
    const t2 = performance.now();
    await db.query(`INSERT INTO src SELECT g, 'row ' || g, g % 100 FROM generate_series(1, ${ROWS}) g`);
    await until(async () => (await count('dst')) >= ROWS, 300_000, 'CDC end to end');
    const cdcS = (performance.now() - t2) / 1000;
    results.push({ what: 'PostgresSource (CDC) -> topic -> PostgresSink', items: ROWS, seconds: cdcS, perSecond: ROWS / cdcS, unit: 'rows/s' });
    await connect.deleteConnector({ name: 'bench-cdc' });
    await db.end();
  } else {
    console.log('rows/s skipped: no PostgreSQL (apt-get install -y postgresql)');
  }
} finally {
  await cluster.stop();
  await pgServer?.stop();
  rmSync(dir, { recursive: true, force: true });
}
console.log('\nConnect throughput (one worker, one broker, loopback)');
for (const r of results) {
  console.log(
    `  ${r.what.padEnd(48)} ${String(r.items).padStart(9)} in ${r.seconds.toFixed(1).padStart(5)} s  ${Math.round(r.perSecond).toLocaleString('en-US').padStart(9)} ${r.unit}${r.mbPerSecond ? `  (${r.mbPerSecond.toFixed(1)} MB/s, exact copy: ${r.exact})` : ''}`,
  );
}
