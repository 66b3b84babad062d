#!/usr/bin/env node
// What TLS costs (issue 14), plaintext and mTLS in the same run (not run by the tests):
//   npm run build && node bench/tls.js [--mb 32] [--inflight 8] [--rounds 2]
// For each mode it starts a metadata service (embedded store) and three brokers on loopback; in
// mTLS mode every service serves mTLS with its own certificate from the development CA
// (scripts/dev-ca.js) and dials the others with it (followers fetch from leaders over mTLS), and
// the load generator presents a client certificate. Rows: produce of --mb MiB as ~1 MiB batches of
// 1 KiB records with --inflight requests in flight, to RF 1 (acks=1) and RF 3 (acks=all,
// min.insync.replicas 2); then a catch-up read of each topic from offset 0 with 8 MiB fetches.
// Beside MB/s (noisy on a shared machine), the brokers' CPU seconds per GB moved (from /proc: all
// three brokers, so RF 3 includes replication) says what TLS costs whatever else the machine runs.
// The authorizer stays off: the rows measure the transport only. Modes alternate for --rounds
// rounds (plaintext, mTLS, plaintext, ...) so a machine getting busier mid-run skews both alike;
// the summary is the median per mode and its ratio.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { Acks, BrokerServiceClient } from '@skein/proto/skein/broker/v1/broker.js';
import { MetadataServiceClient } from '@skein/proto/skein/metadata/v1/metadata.js';
import { buildRecordBatch } from '@skein/common/records/record-batch.js';
import { channelCredentials } from '@skein/common/tls.js';
import { ensureDevCertificates } from '../scripts/dev-ca.js';
import { startService, stopAll, waitFor } from '../test/dist/services.js';
import { cpuSeconds } from './lib/procstat.js';

const { values } = parseArgs({
  options: { mb: { type: 'string', default: '32' }, inflight: { type: 'string', default: '8' }, rounds: { type: 'string', default: '2' } },
});
const root = new URL('..', import.meta.url).pathname;
const call = (c, m, r, ms = 30000) => new Promise((res, rej) => c[m](r, new grpc.Metadata(), { deadline: Date.now() + ms }, (e, v) => (e ? rej(e) : res(v))));
const opts = { 'grpc.max_receive_message_length': 64 << 20, 'grpc.max_send_message_length': 64 << 20, 'grpc-node.flow_control_window': 16 << 20 };
const dir = mkdtempSync(join(tmpdir(), 'skein-bench-tls-'));
const pki = ensureDevCertificates(join(dir, 'tls'), [
  ...['metadata', 'broker-1', 'broker-2', 'broker-3'].map((name) => ({
    name,
    organizationalUnit: 'services',
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  })),
  { name: 'bench' },
]);
const value = Buffer.alloc(1024, 7);
const batch = buildRecordBatch(Array.from({ length: 960 }, (_, i) => ({ key: null, value, timestampMs: i })));
const totalBatches = Math.ceil((Number(values.mb) * 1024 * 1024) / (960 * 1024));

async function cluster(mode, tag) {
  const tls = (name) =>
    mode === 'mtls'
      ? ['--tls-cert-file', pki.files[name].certFile, '--tls-key-file', pki.files[name].keyFile, '--tls-ca-file', pki.caFile, '--tls-require-client-cert']
      : [];
  const creds =
    mode === 'mtls'
      ? channelCredentials({ caFile: pki.caFile, certFile: pki.files.bench.certFile, keyFile: pki.files.bench.keyFile })
      : grpc.credentials.createInsecure();
  const metadata = await startService({
    name: `metadata-${tag}`,
    entry: `${root}services/metadata/dist/main.js`,
    credentials: creds,
    args: ['--store', `embedded:${join(dir, `${tag}.db`)}`, '--log-level', 'warn', ...tls('metadata')],
  });
  const meta = new MetadataServiceClient(metadata.address, creds);
  const clients = new Map();
  const pids = [];
  for (const id of [1, 2, 3]) {
    const b = await startService({
      name: `broker-${id}-${tag}`,
      entry: `${root}services/broker/dist/main.js`,
      dataDirFlag: '--data-dir',
      credentials: creds,
      args: ['--broker-id', String(id), '--metadata-addresses', metadata.address, '--log-level', 'warn', ...tls(`broker-${id}`)],
    });
    clients.set(id, new BrokerServiceClient(b.address, creds, opts));
    pids.push(b.pid);
  }
  await waitFor(async () => (await call(meta, 'getClusterMetadata', { topics: [] })).metadata.brokers.length === 3, { timeoutMs: 20000, message: 'brokers' });
  return { meta, clients, pids };
}

async function leaderOf(meta, topic) {
  return (await call(meta, 'describeTopic', { name: topic })).topic.partitions[0];
}

const brokerCpu = (pids) => pids.reduce((s, p) => s + cpuSeconds(p), 0);

/** MB/s and broker CPU s per GB of `fn`, which returns the bytes it moved. */
async function measure(pids, fn) {
  const cpu0 = brokerCpu(pids);
  const start = performance.now();
  const bytes = await fn();
  const s = (performance.now() - start) / 1000;
  return { MBps: bytes / s / 1e6, cpuPerGB: (brokerCpu(pids) - cpu0) / (bytes / 1e9) };
}

/** Creates a one-partition topic and waits until its whole ISR takes an acks=all write. */
async function createReady({ meta, clients }, topic, rf) {
  await call(meta, 'createTopic', { name: topic, partitions: 1, replicationFactor: rf, configs: { 'min.insync.replicas': rf === 3 ? '2' : '1' } });
  await waitFor(
    async () => {
      const p = await leaderOf(meta, topic);
      if (p.isr.length < rf) return false;
      const r = await call(clients.get(p.leaderId), 'produce', {
        acks: Acks.ACKS_ALL,
        timeoutMs: 2000,
        topics: [{ topic, partitions: [{ partition: 0, batch: buildRecordBatch([{ value: 'warm', timestampMs: 1 }]) }] }],
      });
      return !r.topics[0].partitions[0].error;
    },
    { timeoutMs: 20000, message: `${topic} ready` },
  );
}

async function produce({ meta, clients }, topic, rf) {
  const acks = rf === 3 ? Acks.ACKS_ALL : Acks.ACKS_LEADER;
  const client = clients.get((await leaderOf(meta, topic)).leaderId);
  let sent = 0;
  await Promise.all(
    Array.from({ length: Number(values.inflight) }, async () => {
      while (sent < totalBatches) {
        sent++;
        const r = await call(client, 'produce', { acks, timeoutMs: 10000, topics: [{ topic, partitions: [{ partition: 0, batch }] }] });
        if (r.topics[0].partitions[0].error) throw new Error(r.topics[0].partitions[0].error.reason);
      }
    }),
  );
  return totalBatches * 960 * 1024;
}

async function catchUp({ meta, clients }, topic) {
  const client = clients.get((await leaderOf(meta, topic)).leaderId);
  let offset = 0n;
  let bytes = 0;
  for (;;) {
    const r = await call(client, 'fetch', {
      maxWaitMs: 0,
      minBytes: 1,
      maxBytes: 8 << 20,
      topics: [{ topic, partitions: [{ partition: 0, fetchOffset: offset, partitionMaxBytes: 8 << 20, currentLeaderEpoch: -1 }] }],
    });
    const p = r.topics[0].partitions[0];
    if (p.error) throw new Error(p.error.reason);
    if (p.batches.length === 0) break;
    for (const b of p.batches) bytes += b.batch.records?.length ?? 0;
    const last = p.batches[p.batches.length - 1];
    offset = last.baseOffset + BigInt(last.batch.recordCount);
    if (offset >= p.highWatermark) break;
  }
  return bytes;
}

const rows = [];
try {
  for (let round = 1; round <= Number(values.rounds); round++)
    for (const mode of ['plaintext', 'mtls']) {
      const c = await cluster(mode, `${mode}-${round}`);
      const row = { mode, round };
      const put = (name, m) => {
        row[`${name} MB/s`] = +m.MBps.toFixed(1);
        row[`${name} cpu s/GB`] = +m.cpuPerGB.toFixed(1);
      };
      await createReady(c, 'rf1', 1);
      await createReady(c, 'rf3', 3);
      put('RF1 prod', await measure(c.pids, () => produce(c, 'rf1', 1)));
      put('RF3 prod', await measure(c.pids, () => produce(c, 'rf3', 3)));
      put('RF1 read', await measure(c.pids, () => catchUp(c, 'rf1')));
      put('RF3 read', await measure(c.pids, () => catchUp(c, 'rf3')));
      rows.push(row);
      c.meta.close();
      for (const b of c.clients.values()) b.close();
      await stopAll();
    }
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  const keys = Object.keys(rows[0]).filter((k) => k !== 'mode' && k !== 'round');
  const med = (mode) =>
    Object.fromEntries([['mode', `${mode} (median)`], ...keys.map((k) => [k, +median(rows.filter((r) => r.mode === mode).map((r) => r[k])).toFixed(1)])]);
  const plain = med('plaintext');
  const mtls = med('mtls');
  rows.push(plain, mtls, Object.fromEntries([['mode', 'mtls / plaintext'], ...keys.map((k) => [k, +(mtls[k] / plain[k]).toFixed(2)])]));
  console.log(`${values.mb} MiB per produce row, 1 KiB records in ~1 MiB batches, ${values.inflight} in flight; catch-up with 8 MiB fetches`);
  console.table(rows.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !k.endsWith('cpu s/GB')))));
  console.table(rows.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !k.endsWith('MB/s')))));
} finally {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}
