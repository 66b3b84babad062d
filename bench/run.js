#!/usr/bin/env node
// Skein side by side with the machine's raw limits and NATS JetStream, in one run (issue 8):
//   npm run bench                 full run (10-15 minutes on 2 cores)
//   npm run bench -- --quick      shorter runs, fewer latency points (under 5 minutes)
// Options (node bench/run.js ...):
//   --only raw,skein1,skein3,nats1,nats3,partitions,scaling   a subset of the phases (writes partial.*)
//   --profile DIR                 brokers and load workers under node --cpu-prof; without --only,
//                                 the highest-load workloads on one broker, and DIR/summary.md with
//                                 self time per workload window (node bench/profile-summary.js DIR)
//   --broker-entry PATH           another broker build (e.g. a patched copy of services/broker/dist)
//   --linger-ms N                 Skein latency producer's linger (default 5, the client's default)
//   --out DIR                     where the report goes (default bench/results)
//   BENCH_CLIENT_WINDOW=BYTES     Skein load clients' HTTP/2 receive window (grpc-js default 64 KiB)
// Writes latest.md, latest.json and latency.svg. Every cluster runs on 127.0.0.1 in temp dirs and
// is stopped by pid at the end, on error and on Ctrl-C. Why the figures are what they are, and
// what would lift them: bench/PROFILE.md.
//
// The older per-area benchmarks still run on their own (after `npm run build`):
//   node bench/broker.js       one broker (child process, no metadata service), produce/consume
//   node bench/replicated.js   RF 1/3 produce and leader failover time
//   node bench/metadata.js     topic creation rate, watch propagation, controller failover
//   node bench/groups.js       offset commits and join-to-assignment time
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { execFileSync, spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { buildRecordBatch } from '@skein/common/records/record-batch.js';
import { Acks, CompressionCodec } from '@skein/proto/skein/broker/v1/broker.js';
import { startNats, startSkein } from './lib/clusters.js';
import { startPool } from './lib/pool.js';
import { cpuSeconds, machineBusySeconds, memory, selfAndReapedChildrenSeconds, startServerSampler, waitUntilIdle } from './lib/procstat.js';
import { cleanupAll, installSignalHandlers, isInterrupted, livePids, tempDir } from './lib/processes.js';
import { rawDisk, rawGrpc, rawTcp } from './lib/raw.js';
import { evaluateTargets, renderMarkdown, renderSvg } from './lib/report.js';
import { summarizeProfiles } from './lib/cpuprofile.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    profile: { type: 'string' },
    out: { type: 'string', default: new URL('./results', import.meta.url).pathname },
    'broker-entry': { type: 'string' },
    'linger-ms': { type: 'string', default: '5' },
  },
});
installSignalHandlers();

const QUICK = values.quick;
// Before each latency row the servers rest this long after the previous workload (same for every
// system): right after a throughput row or after creating 1,000 partitions, Skein RF3's p99 at
// 5 MB/s measured 30-35 ms, after 15 s of rest 13-25 ms (two paired runs each), so without the rest
// a row measures the previous workload's aftermath rather than the steady state it is about.
const LATENCY_REST_MS = Number(process.env.BENCH_LATENCY_REST_MS ?? 10_000);
const ALL_PHASES = ['raw', 'skein1', 'skein3', 'nats1', 'nats3', 'partitions', 'scaling'];
const phases = values.only ? values.only.split(',') : values.profile ? ['profile'] : ALL_PHASES;
for (const p of phases) if (![...ALL_PHASES, 'profile'].includes(p)) throw new Error(`unknown phase ${p}; phases: ${ALL_PHASES.join(', ')}, profile`);
const profileDir = values.profile ? resolve(values.profile) : undefined;
const brokerEntry = values['broker-entry'] ? resolve(values['broker-entry']) : undefined;
if (profileDir) {
  mkdirSync(profileDir, { recursive: true });
  rmSync(join(profileDir, 'windows.json'), { force: true });
}

// Durations: long enough to pass start-up transients, short enough for the time budget.
const S = {
  produceMs: QUICK ? 3000 : 10_000,
  consumeMaxMs: QUICK ? 6000 : 20_000,
  rawMb: QUICK ? 256 : 1024,
  latencyMs: QUICK ? 4000 : 15_000,
  warmupMs: QUICK ? 1000 : 3000,
  // MB/s of 1 KiB records; 5 MB/s is the target's rate. Quick runs give RF1/R1 one point.
  ratesReplicated: QUICK ? [2, 5, 10] : [2, 5, 10, 20],
  ratesSingle: QUICK ? [5] : [2, 5, 10, 20],
};
// Batching and windows, stated in the report notes.
const SETTINGS = {
  kib: { recordBytes: 1024, recordsPerBatch: 960 },
  b100: { recordBytes: 100, recordsPerBatch: 9600 },
  skeinInflight: 16,
  skeinLatencyInflight: 64,
  // The Skein client's default linger.ms (as Kafka's since 4.0): batches leave every 5 ms at low rates.
  skeinLingerMs: Number(values['linger-ms']),
  natsInflight: 8192,
  natsOfficialInflight: 1024,
  natsConsumeMaxMessages: 4096,
  severalProducers: 4,
};

const started = performance.now();
// Other people's processes on this shared machine skew every figure: measure how much CPU they took.
const machineBusyAtStart = machineBusySeconds();
const ownCpuAtStart = selfAndReapedChildrenSeconds();
const rows = [];
const raw = {};
const errors = [];
let partitionsResult;
const log = (...a) => console.log(`[bench ${((performance.now() - started) / 1000).toFixed(0).padStart(3)}s]`, ...a);

function row(r) {
  rows.push(r);
  const lat = r.p99Ms !== undefined ? ` p50 ${r.p50Ms.toFixed(2)} p99 ${r.p99Ms.toFixed(2)} p99.9 ${r.p999Ms.toFixed(2)} ms${r.fellBehind ? ` (fell behind: ${r.fellBehind.received} of ${r.fellBehind.expected} arrived)` : ''}` : '';
  log(`${r.system.padEnd(10)} ${r.label.padEnd(44)} ${Math.round(r.recordsPerS).toLocaleString('en-US').padStart(10)} rec/s ${r.MBps.toFixed(1).padStart(7)} MB/s${lat}  RSS ${(r.peakRssBytes / 2 ** 20).toFixed(0)} MiB  ${r.cpuSecondsPerGB.toFixed(1)} CPU s/GB`);
}

/**
 * Runs a load with the server processes sampled. Before it: the servers are idle and the page
 * cache is flushed (`sync`), so a workload does not pay for the previous one's replication or
 * writeback. After it: CPU is counted until the servers are idle again, so work a workload leaves
 * behind (followers catching up after acks=1) is charged to it. `fn` answers { records, bytes, seconds, ... }.
 */
async function measured(cluster, fn) {
  const pids = cluster.serverPids();
  await waitUntilIdle(pids);
  execFileSync('sync');
  const sampler = startServerSampler(pids);
  const r = await fn();
  const settleMs = await waitUntilIdle(pids);
  const s = sampler.stop();
  return { ...r, ...s, settleMs, cpuSecondsPerGB: r.bytes > 0 ? s.cpuSeconds / (r.bytes / 1e9) : 0 };
}

async function attempt(what, fn) {
  if (isInterrupted()) return undefined;
  try {
    return await fn();
  } catch (e) {
    if (isInterrupted()) return undefined;
    errors.push({ what, error: e.message });
    log(`FAILED ${what}: ${e.message.split('\n').slice(0, 6).join('\n')}`);
    return undefined;
  }
}

function throughputRow(system, key, label, r, extra = {}) {
  row({ system, key, label, records: r.records, recordsPerS: r.records / r.seconds, MBps: r.bytes / r.seconds / 1e6, seconds: r.seconds, peakRssBytes: r.peakRssBytes, hwmBytes: r.hwmBytes, cpuSecondsPerGB: r.cpuSecondsPerGB, clientCpuSeconds: r.clientCpuSeconds, ...extra });
}

function aggregate(results, wallSeconds) {
  return {
    records: results.reduce((a, r) => a + r.records, 0),
    bytes: results.reduce((a, r) => a + r.bytes, 0),
    seconds: wallSeconds,
    clientCpuSeconds: results.reduce((a, r) => a + r.clientCpuSeconds, 0),
  };
}

async function parallel(pool, n, job, paramsOf) {
  const t0 = performance.now();
  const results = await Promise.all(Array.from({ length: n }, (_, i) => pool.call(i, job, paramsOf(i))));
  return aggregate(results, (performance.now() - t0) / 1000);
}

// ---------------------------------------------------------------- raw limits
async function phaseRaw() {
  const dir = tempDir('raw');
  raw.tcp = await rawTcp(S.rawMb);
  log(`raw: loopback TCP, Node → Node, 1 MiB writes: ${raw.tcp.MBps.toFixed(0)} MB/s`);
  raw.grpc = await rawGrpc(S.rawMb);
  log(`raw: grpc-js bidi stream, 1 MiB messages, Node → Node: ${raw.grpc.MBps.toFixed(0)} MB/s`);
  raw.grpcWindow = await rawGrpc(S.rawMb, { window: true });
  log(`raw: the same with 8 MiB HTTP/2 receive windows (Node's default: 64 KiB): ${raw.grpcWindow.MBps.toFixed(0)} MB/s`);
  raw.disk = rawDisk(dir, S.rawMb);
  log(`raw: sequential 1 MiB writes + fdatasync: ${raw.disk.MBps.toFixed(0)} MB/s`);
}

// ---------------------------------------------------------------- Skein
async function skeinProduceRow(cluster, pool, system, rf, { size, acks, producers = 1, topic, compression }) {
  const { recordBytes, recordsPerBatch } = SETTINGS[size];
  await cluster.createTopic(topic, { partitions: producers, replicationFactor: rf, configs: rf > 1 ? { 'min.insync.replicas': '2' } : {} });
  const leaders = await cluster.leaders(topic);
  const r = await measured(cluster, () => parallel(pool, producers, 'skeinProduce', (i) => ({
    address: leaders[i], topic, partition: i, recordBytes, recordsPerBatch, acks: acks === 'all' ? Acks.ACKS_ALL : Acks.ACKS_LEADER,
    inflight: SETTINGS.skeinInflight, durationMs: S.produceMs, compression,
  })));
  if (compression) {
    // Its own kind: no peer row and no raw limit (MB/s counts uncompressed record bytes; the broker
    // decompresses each batch on the threadpool to check its records, then stores it compressed).
    const codec = CompressionCodec[compression].replace('COMPRESSION_CODEC_', '').toLowerCase();
    throughputRow(system, `produce-compressed:${size}:${producers}:${acks}:${codec}`, `produce ${size === 'kib' ? '1 KiB' : '100 B'} log-like text, ${codec}, acks=${acks}, ${producers} producer${producers > 1 ? 's' : ''}`, r, { kind: 'produce-compressed', size, acks, producers, codec });
    return r;
  }
  throughputRow(system, `produce:${size}:${producers}:${acks}`, `produce ${size === 'kib' ? '1 KiB' : '100 B'}, acks=${acks}, ${producers} producer${producers > 1 ? 's' : ''}`, r, { kind: 'produce', size, acks, producers });
  return r;
}

async function skeinConsumeRow(cluster, pool, system, { size, topic }) {
  const hw = await cluster.highWatermark(topic);
  const [address] = await cluster.leaders(topic);
  const r = await measured(cluster, () => pool.call(0, 'skeinConsume', { address, topic, untilOffset: hw, recordBytes: SETTINGS[size].recordBytes, maxDurationMs: S.consumeMaxMs }));
  throughputRow(system, `consume:${size}:1`, `catch-up read, ${size === 'kib' ? '1 KiB' : '100 B'}, backlog ${(hw * SETTINGS[size].recordBytes / 1e6).toFixed(0)} MB`, r, { kind: 'consume', size, producers: 1, timedOut: r.timedOut });
}

async function clientProduceRow(cluster, pool, system, { topic }) {
  await cluster.createTopic(topic, { partitions: 1, replicationFactor: 1 });
  const r = await measured(cluster, () => pool.call(0, 'clientProduce', { metadataAddress: cluster.metadataAddress, topic, recordBytes: 1024, acks: '1', durationMs: S.produceMs }));
  throughputRow(system, 'client-produce:kib:1:1', 'client library: produce 1 KiB, acks=1, 1 producer', r, { kind: 'client-produce', size: 'kib', acks: '1', producers: 1 });
}

async function clientConsumeRow(cluster, pool, system, { topic }) {
  const hw = await cluster.highWatermark(topic);
  const r = await measured(cluster, () => pool.call(0, 'clientConsume', { metadataAddress: cluster.metadataAddress, topic, untilOffset: hw, recordBytes: 1024, maxDurationMs: S.consumeMaxMs }));
  throughputRow(system, 'client-consume:kib:1', `client library: catch-up read, 1 KiB, backlog ${(hw * 1024 / 1e6).toFixed(0)} MB`, r, { kind: 'client-consume', size: 'kib', producers: 1, timedOut: r.timedOut });
}

async function latencyRows(cluster, pool, system, rates, makeTarget) {
  for (const mbps of rates) {
    await attempt(`${system} latency at ${mbps} MB/s`, async () => {
      const ratePerS = (mbps * 1e6) / 1024;
      const expected = Math.round((ratePerS * (S.latencyMs + S.warmupMs)) / 1000);
      const t = await makeTarget(mbps);
      if (LATENCY_REST_MS > 0) await new Promise((r) => setTimeout(r, LATENCY_REST_MS));
      const maxDurationMs = S.latencyMs + S.warmupMs + 30_000;
      const r = await measured(cluster, async () => {
        let ready;
        const subscribed = new Promise((resolve) => { ready = resolve; });
        const consumer = pool.call(0, t.consumeJob, { ...t.consumeParams, expected, maxDurationMs }, (e) => e.ready && ready());
        await subscribed;
        const t0 = performance.now();
        const p = await pool.call(1, t.produceJob, { ...t.produceParams, recordBytes: 1024, ratePerS, durationMs: S.latencyMs, warmupMs: S.warmupMs });
        const seconds = (performance.now() - t0) / 1000;
        const c = await consumer;
        if (c.received === 0) throw new Error(`no record arrived within ${maxDurationMs} ms`);
        return { ...c, records: p.records, bytes: p.records * 1024, seconds, clientCpuSeconds: p.clientCpuSeconds };
      });
      row({
        system, key: `latency:${mbps}`, kind: 'latency', label: `e2e latency at ${mbps} MB/s (1 KiB, ${t.acksLabel})`, targetMBps: mbps,
        records: r.records, recordsPerS: ratePerS, MBps: mbps, p50Ms: r.p50Ms, p99Ms: r.p99Ms, p999Ms: r.p999Ms, maxMs: r.maxMs, latencySamples: r.count,
        histogram: r.histogram, peakRssBytes: r.peakRssBytes, hwmBytes: r.hwmBytes, cpuSecondsPerGB: r.cpuSecondsPerGB,
        // A system that cannot keep up delivers only part of the schedule before the cap; the
        // missing records' latency exceeds the cap, so the percentiles are lower bounds.
        fellBehind: r.received < expected ? { received: r.received, expected, capMs: maxDurationMs } : undefined,
      });
    });
  }
}

async function phaseSkein(rf) {
  const system = `Skein RF${rf}`;
  const cluster = await startSkein({ brokers: rf, profileDir, brokerEntry });
  log(`${system}: started ${rf} broker(s), metadata store ${cluster.store}`);
  const pool = await startPool(SETTINGS.severalProducers, { execArgv: profileArgs('skein-worker') });
  try {
    for (const acks of ['1', 'all']) {
      await attempt(`${system} produce 1 KiB acks=${acks}`, () => skeinProduceRow(cluster, pool, system, rf, { size: 'kib', acks, topic: `p1k-a${acks}` }));
    }
    // Compressed produce (issue 12): what checking a compressed batch's records costs the broker.
    for (const codec of [CompressionCodec.COMPRESSION_CODEC_LZ4, CompressionCodec.COMPRESSION_CODEC_GZIP]) {
      if (rf !== 1) break;
      const name = CompressionCodec[codec].replace('COMPRESSION_CODEC_', '').toLowerCase();
      await attempt(`${system} produce 1 KiB ${name}`, () => skeinProduceRow(cluster, pool, system, rf, { size: 'kib', acks: '1', topic: `p1k-${name}`, compression: codec }));
    }
    // Catch-up read of the acks=all backlog (on RF 3 it is the replicated one).
    await attempt(`${system} consume 1 KiB`, () => skeinConsumeRow(cluster, pool, system, { size: 'kib', topic: 'p1k-aall' }));
    if (rf === 1) {
      // The same two workloads through the client library (what an application gets), same broker.
      await attempt(`${system} client library produce 1 KiB`, () => clientProduceRow(cluster, pool, system, { topic: 'c1k' }));
      await attempt(`${system} client library consume 1 KiB`, () => clientConsumeRow(cluster, pool, system, { topic: 'p1k-aall' }));
    }
    const acks100 = rf === 1 ? '1' : 'all';
    await attempt(`${system} produce 100 B`, () => skeinProduceRow(cluster, pool, system, rf, { size: 'b100', acks: acks100, topic: 'p100' }));
    await attempt(`${system} consume 100 B`, () => skeinConsumeRow(cluster, pool, system, { size: 'b100', topic: 'p100' }));
    await attempt(`${system} produce 1 KiB x${SETTINGS.severalProducers}`, () => skeinProduceRow(cluster, pool, system, rf, { size: 'kib', acks: rf === 1 ? '1' : 'all', producers: SETTINGS.severalProducers, topic: 'p1k-multi' }));
    await latencyRows(cluster, pool, system, rf === 1 ? S.ratesSingle : S.ratesReplicated, async (mbps) => {
      const topic = `lat-${mbps}`;
      await cluster.createTopic(topic, { partitions: 1, replicationFactor: rf, configs: rf > 1 ? { 'min.insync.replicas': '2' } : {} });
      const [address] = await cluster.leaders(topic);
      return {
        acksLabel: 'acks=all',
        consumeJob: 'skeinLatencyConsume', consumeParams: { address, topic },
        produceJob: 'skeinFixedRate', produceParams: { address, topic, acks: Acks.ACKS_ALL, inflight: SETTINGS.skeinLatencyInflight, lingerMs: SETTINGS.skeinLingerMs },
      };
    });
  } finally {
    await pool.close();
    await cluster.stop();
  }
}

// ---------------------------------------------------------------- NATS
async function natsProduceRow(cluster, pool, system, { size, producers = 1, stream, official = false }) {
  const { recordBytes } = SETTINGS[size];
  for (let i = 0; i < producers; i++) await cluster.createStream(producers > 1 ? `${stream}-${i}` : stream);
  const r = await measured(cluster, () => parallel(pool, producers, official ? 'natsProduceOfficial' : 'natsProduce', (i) => ({
    servers: cluster.urls, subject: producers > 1 ? `${stream}-${i}` : stream, recordBytes,
    inflight: official ? SETTINGS.natsOfficialInflight : SETTINGS.natsInflight, durationMs: S.produceMs,
  })));
  const label = official
    ? `produce 1 KiB via js.publish() (${SETTINGS.natsOfficialInflight} outstanding), 1 producer`
    : `produce ${size === 'kib' ? '1 KiB' : '100 B'}, PubAck, ${producers} producer${producers > 1 ? 's' : ''}`;
  throughputRow(system, official ? `produce-official:${size}:1` : `produce:${size}:${producers}`, label, r, { kind: official ? 'produce-official' : 'produce', size, acks: 'PubAck', producers });
}

async function natsConsumeRow(cluster, pool, system, { size, stream }) {
  const expected = await cluster.streamMessages(stream);
  const r = await measured(cluster, () => pool.call(0, 'natsConsume', {
    servers: cluster.urls, stream, expected, recordBytes: SETTINGS[size].recordBytes, maxMessages: SETTINGS.natsConsumeMaxMessages, maxDurationMs: S.consumeMaxMs,
  }));
  throughputRow(system, `consume:${size}:1`, `catch-up read, ${size === 'kib' ? '1 KiB' : '100 B'}, backlog ${(expected * SETTINGS[size].recordBytes / 1e6).toFixed(0)} MB`, r, { kind: 'consume', size, producers: 1, timedOut: r.timedOut });
}

async function phaseNats(replicas) {
  const system = `NATS R${replicas}`;
  // Without the peer the report still has Skein's rows; its "vs peer" cells and peer targets stay empty.
  if (spawnSync('nats-server', ['--version']).error) throw new Error('nats-server is not installed (apt-get install -y nats-server): NATS rows skipped');
  const cluster = await startNats({ replicas });
  log(`${system}: started ${replicas} nats-server(s)`);
  const pool = await startPool(SETTINGS.severalProducers, { execArgv: profileArgs('nats-worker') });
  try {
    await attempt(`${system} produce 1 KiB`, () => natsProduceRow(cluster, pool, system, { size: 'kib', stream: 'p1k' }));
    await attempt(`${system} consume 1 KiB`, () => natsConsumeRow(cluster, pool, system, { size: 'kib', stream: 'p1k' }));
    if (replicas === 1) await attempt(`${system} produce 1 KiB js.publish`, () => natsProduceRow(cluster, pool, system, { size: 'kib', stream: 'p1k-official', official: true }));
    await attempt(`${system} produce 100 B`, () => natsProduceRow(cluster, pool, system, { size: 'b100', stream: 'p100' }));
    await attempt(`${system} consume 100 B`, () => natsConsumeRow(cluster, pool, system, { size: 'b100', stream: 'p100' }));
    await attempt(`${system} produce 1 KiB x${SETTINGS.severalProducers}`, () => natsProduceRow(cluster, pool, system, { size: 'kib', producers: SETTINGS.severalProducers, stream: 'p1k-multi' }));
    await latencyRows(cluster, pool, system, replicas === 1 ? S.ratesSingle : S.ratesReplicated, async (mbps) => {
      const stream = `lat-${mbps}`;
      await cluster.createStream(stream);
      return {
        acksLabel: replicas === 1 ? 'PubAck' : 'PubAck after quorum',
        consumeJob: 'natsLatencyConsume', consumeParams: { servers: cluster.urls, stream },
        produceJob: 'natsFixedRate', produceParams: { servers: cluster.urls, subject: stream, inflight: SETTINGS.natsInflight },
      };
    });
  } finally {
    await pool.close();
    await cluster.stop();
  }
}

// ---------------------------------------------------------------- 1,000 partitions
async function phasePartitions() {
  const topics = 20;
  const perTopic = 50;
  const cluster = await startSkein({ brokers: 1, label: 'skein-1000p', brokerEntry });
  try {
    const [pid] = cluster.serverPids();
    const idle = memory(pid);
    const t0 = performance.now();
    for (let t = 0; t < topics; t++) await cluster.createTopic(`many-${t}`, { partitions: perTopic });
    const createSeconds = (performance.now() - t0) / 1000;
    const batch = buildRecordBatch(Array.from({ length: 10 }, (_, i) => ({ key: null, value: Buffer.alloc(100, 97 + i), timestampMs: Date.now() })));
    for (let t = 0; t < topics; t++) {
      const [address] = await cluster.leaders(`many-${t}`);
      await cluster.produceOnce(address, `many-${t}`, Array.from({ length: perTopic }, (_, p) => ({ partition: p, batch })));
    }
    await new Promise((r) => setTimeout(r, 1000));
    const after = memory(pid);
    partitionsResult = { partitions: topics * perTopic, topics, idleRssBytes: idle.rss, rssBytes: after.rss, hwmBytes: after.hwm, createSeconds };
    log(`Skein RF1: ${topics * perTopic} partitions (${topics} topics × ${perTopic}), 10 × 100 B written to each: broker RSS ${(after.rss / 2 ** 20).toFixed(0)} MiB (idle before: ${(idle.rss / 2 ** 20).toFixed(0)} MiB, peak ${(after.hwm / 2 ** 20).toFixed(0)} MiB); topics created in ${createSeconds.toFixed(1)} s`);
  } finally {
    await cluster.stop();
  }
}

// ---------------------------------------------------------------- scaling (issue 15)
// How cost grows: RF 3 acks=all produce with 1, 4 and 16 producers (each on its own partition),
// and the 5 MB/s end-to-end latency row with 0, 100, 1,000 and 2,000 idle RF 3 partitions present
// on the same three brokers (idle partitions must cost nothing: the row may not get worse).
const scaling = { producers: [], idlePartitions: [] };
async function phaseScaling() {
  const system = 'Skein RF3';
  const cluster = await startSkein({ brokers: 3, brokerEntry, label: 'skein-scaling' });
  const pool = await startPool(SETTINGS.severalProducers, { execArgv: profileArgs('scaling-worker') });
  try {
    for (const producers of QUICK ? [1, 4, 16] : [1, 4, 16]) {
      await attempt(`scaling: ${producers} producers`, async () => {
        const topic = `scale-p${producers}`;
        await cluster.createTopic(topic, { partitions: producers, replicationFactor: 3, configs: { 'min.insync.replicas': '2' } });
        const leaders = await cluster.leaders(topic);
        const { recordBytes, recordsPerBatch } = SETTINGS.kib;
        const r = await measured(cluster, () => parallel({ call: (i, job, params) => pool.call(i % pool.size, job, params) }, producers, 'skeinProduce', (i) => ({
          // The same bytes in flight whatever the number of producers: 16 × 16 requests of 1 MB would
          // queue ~256 MB of unreplicated data, which measures the ISR's lag limit, not throughput.
          address: leaders[i], topic, partition: i, recordBytes, recordsPerBatch, acks: Acks.ACKS_ALL, inflight: Math.max(1, Math.floor(SETTINGS.skeinInflight / producers) * 4), durationMs: S.produceMs,
        })));
        scaling.producers.push({ producers, MBps: r.bytes / r.seconds / 1e6, cpuSecondsPerGB: r.cpuSecondsPerGB });
        throughputRow(system, `scaling-produce:${producers}`, `produce 1 KiB, acks=all, ${producers} producer${producers > 1 ? 's' : ''} (scaling)`, r, { kind: 'scaling-produce', producers });
      });
    }
    let idle = 0;
    for (const target of QUICK ? [0, 1000, 2000] : [0, 100, 1000, 2000]) {
      await attempt(`scaling: latency with ${target} idle partitions`, async () => {
        for (; idle < target; idle += 100) await cluster.createTopic(`idle-${idle}`, { partitions: 100, replicationFactor: 3, configs: { 'min.insync.replicas': '2' } });
        const before = rows.length;
        await latencyRows(cluster, pool, system, [5], async () => {
          const topic = `scale-lat-${target}`;
          await cluster.createTopic(topic, { partitions: 1, replicationFactor: 3, configs: { 'min.insync.replicas': '2' } });
          const [address] = await cluster.leaders(topic);
          return {
            acksLabel: `acks=all, ${target} idle partitions`,
            consumeJob: 'skeinLatencyConsume', consumeParams: { address, topic },
            produceJob: 'skeinFixedRate', produceParams: { address, topic, acks: Acks.ACKS_ALL, inflight: SETTINGS.skeinLatencyInflight, lingerMs: SETTINGS.skeinLingerMs },
          };
        });
        const r = rows[rows.length - 1];
        if (rows.length > before && r) {
          r.key = `scaling-latency:${target}`;
          r.kind = 'scaling-latency';
          r.label = `e2e latency at 5 MB/s (1 KiB, acks=all) with ${target} idle RF 3 partitions`;
          scaling.idlePartitions.push({ idlePartitions: target, p50Ms: r.p50Ms, p99Ms: r.p99Ms });
        }
      });
    }
  } finally {
    await pool.close();
    await cluster.stop();
  }
}

/** Two small charts side by side: produce MB/s by producers, and p99 by idle partitions. */
function renderScalingSvg() {
  const w = 720;
  const h = 260;
  const panel = (x0, title, points, xs, yOf, yLabel) => {
    const maxY = Math.max(1, ...points.map(yOf)) * 1.15;
    const px = (i) => x0 + 50 + (i * 260) / Math.max(1, xs.length - 1);
    const py = (v) => 210 - (v / maxY) * 170;
    const path = points.map((p, i) => `${i === 0 ? 'M' : 'L'}${px(i).toFixed(1)},${py(yOf(p)).toFixed(1)}`).join(' ');
    return `<text x="${x0 + 50}" y="22" font-size="13">${title}</text>`
      + `<line x1="${x0 + 50}" y1="210" x2="${x0 + 320}" y2="210" stroke="#888"/><line x1="${x0 + 50}" y1="40" x2="${x0 + 50}" y2="210" stroke="#888"/>`
      + `<text x="${x0 + 8}" y="45" font-size="11">${maxY.toFixed(0)}</text><text x="${x0 + 8}" y="125" font-size="11" transform="rotate(-90 ${x0 + 18} 125)">${yLabel}</text>`
      + xs.map((x, i) => `<text x="${px(i) - 8}" y="228" font-size="11">${x}</text>`).join('')
      + `<path d="${path}" fill="none" stroke="#3366cc" stroke-width="2"/>`
      + points.map((p, i) => `<circle cx="${px(i).toFixed(1)}" cy="${py(yOf(p)).toFixed(1)}" r="3.5" fill="#3366cc"/><text x="${px(i) + 5}" y="${py(yOf(p)) - 6}" font-size="10">${yOf(p).toFixed(1)}</text>`).join('');
  };
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="sans-serif">`
    + panel(0, 'RF 3 acks=all produce, MB/s by producers', scaling.producers, scaling.producers.map((p) => p.producers), (p) => p.MBps, 'MB/s')
    + panel(360, 'p99 ms at 5 MB/s by idle RF 3 partitions', scaling.idlePartitions, scaling.idlePartitions.map((p) => p.idlePartitions), (p) => p.p99Ms, 'p99 ms')
    + '</svg>\n';
}

// ---------------------------------------------------------------- profile
function profileArgs(name) {
  return profileDir ? (i) => ['--cpu-prof', '--cpu-prof-dir', profileDir, '--cpu-prof-name', `${name}-${i}.cpuprofile`] : undefined;
}

async function phaseProfile() {
  const system = 'Skein RF1 (profiled)';
  const cluster = await startSkein({ brokers: 1, profileDir, label: 'profile', brokerEntry });
  const pool = await startPool(1, { execArgv: profileArgs('client') });
  // Profiles are cut to these windows afterwards (CLOCK_MONOTONIC µs, the profiles' own clock).
  const windows = [];
  const windowed = async (name, fn) => {
    const fromUs = Number(process.hrtime.bigint() / 1000n);
    await attempt(name, fn);
    windows.push({ name, fromUs, toUs: Number(process.hrtime.bigint() / 1000n) });
  };
  try {
    await windowed('produce 1 KiB, acks=1', () => skeinProduceRow(cluster, pool, system, 1, { size: 'kib', acks: '1', topic: 'hot1k' }));
    await windowed('catch-up read 1 KiB', () => skeinConsumeRow(cluster, pool, system, { size: 'kib', topic: 'hot1k' }));
    await windowed('produce 100 B, acks=1', () => skeinProduceRow(cluster, pool, system, 1, { size: 'b100', acks: '1', topic: 'hot100' }));
  } finally {
    writeFileSync(join(profileDir, 'windows.json'), JSON.stringify(windows, null, 2));
    await pool.close();
    await cluster.stop();
  }
}

// ---------------------------------------------------------------- main
function versions() {
  const v = (cmd, args) => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8' }).split('\n')[0].trim();
    } catch {
      return 'not found';
    }
  };
  const natsClient = JSON.parse(readFileSync(new URL('../node_modules/nats/package.json', import.meta.url), 'utf8')).version;
  return { node: process.version, natsServer: v('nats-server', ['--version']), natsClient, etcd: v('etcd', ['--version']), cpus: `${cpus().length} × ${cpus()[0]?.model ?? '?'}`, memoryGiB: +(totalmem() / 2 ** 30).toFixed(1) };
}

let exitCode = 0;
try {
  log(`phases: ${phases.join(', ')}${QUICK ? ' (quick)' : ''}${profileDir ? `; CPU profiles to ${profileDir}` : ''}`);
  for (const phase of phases) {
    if (phase === 'raw') await attempt('raw limits', phaseRaw);
    if (phase === 'skein1') await attempt('Skein RF1', () => phaseSkein(1));
    if (phase === 'skein3') await attempt('Skein RF3', () => phaseSkein(3));
    if (phase === 'nats1') await attempt('NATS R1', () => phaseNats(1));
    if (phase === 'nats3') await attempt('NATS R3', () => phaseNats(3));
    if (phase === 'partitions') await attempt('1,000 partitions', phasePartitions);
    if (phase === 'scaling') await attempt('scaling', phaseScaling);
    if (phase === 'profile') await attempt('profile', phaseProfile);
  }
  const durationSeconds = (performance.now() - started) / 1000;
  const ownCpu = selfAndReapedChildrenSeconds() - ownCpuAtStart + livePids().reduce((a, p) => a + cpuSeconds(p), 0);
  const otherCpuCores = Math.max(0, machineBusySeconds() - machineBusyAtStart - ownCpu) / durationSeconds;
  log(`other processes on this machine used ${otherCpuCores.toFixed(2)} cores on average during the run`);
  const report = {
    generatedAt: new Date().toISOString(), mode: QUICK ? 'quick' : 'full', phases, durationSeconds, machine: { ...versions(), otherCpuCores },
    settings: { ...S, ...SETTINGS, latencyRestMs: LATENCY_REST_MS }, raw, rows: rows.map(({ histogram, ...r }) => r), partitions: partitionsResult, scaling, errors,
  };
  report.targets = evaluateTargets(report);
  const base = values.only || profileDir || brokerEntry ? 'partial' : 'latest';
  mkdirSync(values.out, { recursive: true });
  const md = renderMarkdown(report);
  writeFileSync(join(values.out, `${base}.md`), md);
  writeFileSync(join(values.out, `${base}.json`), JSON.stringify({ ...report, histograms: Object.fromEntries(rows.filter((r) => r.histogram).map((r) => [`${r.system} ${r.key}`, r.histogram])) }, null, 2) + '\n');
  writeFileSync(join(values.out, base === 'latest' ? 'latency.svg' : 'partial-latency.svg'), renderSvg(report));
  if (scaling.producers.length + scaling.idlePartitions.length > 0) writeFileSync(join(values.out, base === 'latest' ? 'scaling.svg' : 'partial-scaling.svg'), renderScalingSvg());
  console.log(`\n${md}`);
  if (profileDir) {
    writeFileSync(join(profileDir, 'summary.md'), summarizeProfiles(profileDir));
    log(`CPU profile summary (self time per package and function, per workload): ${join(profileDir, 'summary.md')}`);
  }
  log(`done in ${durationSeconds.toFixed(0)} s; wrote ${join(values.out, base)}.{md,json}`);
  if (errors.length > 0) exitCode = 1;
} catch (e) {
  console.error(e);
  exitCode = 1;
} finally {
  await cleanupAll();
}
process.exit(exitCode);
