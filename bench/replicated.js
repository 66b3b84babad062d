#!/usr/bin/env node
// Replicated produce throughput and failover time (not run by the tests):
//   npm run build && node bench/replicated.js [--mb 64]
// Starts a real etcd, the metadata service and three brokers (loopback, temp dirs), then produces
// 1 KiB records in ~1 MiB batches with 8 requests in flight to: RF 1 acks=1, RF 3 acks=1, RF 3
// acks=all (min.insync.replicas=2). Then SIGKILLs the leader of an RF 3 partition and measures the
// time to the first acknowledged acks=all write on the new leader (broker session TTL 2 s).
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { Acks, BrokerServiceClient } from '@skein/proto/skein/broker/v1/broker.js';
import { MetadataServiceClient } from '@skein/proto/skein/metadata/v1/metadata.js';
import { buildRecordBatch } from '@skein/common/records/record-batch.js';
import { startEtcd } from '../test/dist/etcd.js';
import { startService, stopAll, waitFor } from '../test/dist/services.js';

const { values } = parseArgs({ options: { mb: { type: 'string', default: '64' } } });
const root = new URL('..', import.meta.url).pathname;
const call = (c, m, r, ms = 30000) => new Promise((res, rej) => c[m](r, new grpc.Metadata(), { deadline: Date.now() + ms }, (e, v) => (e ? rej(e) : res(v))));
const opts = { 'grpc.max_receive_message_length': 64 << 20, 'grpc.max_send_message_length': 64 << 20 };

const etcd = await startEtcd({ members: 1 });
try {
  const metadata = await startService({ name: 'metadata', entry: `${root}services/metadata/dist/main.js`, args: ['--store', `etcd://${etcd.endpoints.join(',')}`, '--prefix', `/bench-repl-${Date.now()}/`, '--log-level', 'warn'] });
  const meta = new MetadataServiceClient(metadata.address, grpc.credentials.createInsecure());
  const brokers = new Map();
  const clients = new Map();
  for (const id of [1, 2, 3]) {
    const b = await startService({ name: `broker-${id}`, entry: `${root}services/broker/dist/main.js`, dataDirFlag: '--data-dir', args: ['--broker-id', String(id), '--metadata-addresses', metadata.address, '--session-ttl-ms', '2000', '--log-level', 'warn'] });
    brokers.set(id, b);
    clients.set(id, new BrokerServiceClient(b.address, grpc.credentials.createInsecure(), opts));
  }
  await waitFor(async () => (await call(meta, 'getClusterMetadata', { topics: [] })).metadata.brokers.length === 3, { timeoutMs: 15000, message: 'brokers' });
  const value = Buffer.alloc(1024, 7);
  const batch = buildRecordBatch(Array.from({ length: 960 }, (_, i) => ({ key: null, value, timestampMs: i })));
  const batchBytes = 960 * 1024;
  const totalBatches = Math.ceil((Number(values.mb) * 1024 * 1024) / batchBytes);

  async function leaderOf(topic) {
    const t = (await call(meta, 'describeTopic', { name: topic })).topic;
    return t.partitions[0];
  }

  async function run(topic, rf, acks) {
    await call(meta, 'createTopic', { name: topic, partitions: 1, replicationFactor: rf, configs: { 'min.insync.replicas': rf === 3 ? '2' : '1' } });
    await waitFor(async () => { const p = await leaderOf(topic); const r = await call(clients.get(p.leaderId), 'produce', { acks: Acks.ACKS_ALL, timeoutMs: 2000, topics: [{ topic, partitions: [{ partition: 0, batch: buildRecordBatch([{ value: 'warm', timestampMs: 1 }]) }] }] }); return !r.topics[0].partitions[0].error; }, { timeoutMs: 20000, message: `${topic} ready` });
    const client = clients.get((await leaderOf(topic)).leaderId);
    let sent = 0;
    const start = performance.now();
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (sent < totalBatches) {
        sent++;
        const r = await call(client, 'produce', { acks, timeoutMs: 10000, topics: [{ topic, partitions: [{ partition: 0, batch }] }] });
        if (r.topics[0].partitions[0].error) throw new Error(r.topics[0].partitions[0].error.reason);
      }
    }));
    const s = (performance.now() - start) / 1000;
    return { what: `RF ${rf}, acks=${acks === Acks.ACKS_ALL ? 'all' : '1'}, 1 KiB records`, recordsPerS: Math.round((totalBatches * 960) / s), MBps: +((totalBatches * batchBytes) / s / 1e6).toFixed(1) };
  }

  const rows = [];
  rows.push(await run('rf1', 1, Acks.ACKS_LEADER));
  rows.push(await run('rf3-acks1', 3, Acks.ACKS_LEADER));
  rows.push(await run('rf3-acksall', 3, Acks.ACKS_ALL));
  for (const r of rows.slice(1)) r.vsRf1 = +(r.MBps / rows[0].MBps).toFixed(2);

  // Failover: SIGKILL the leader of an RF 3 partition; time to the first acked write on the new leader.
  const p = await leaderOf('rf3-acksall');
  const small = buildRecordBatch([{ value: 'after-failover', timestampMs: 1 }]);
  const killedAt = performance.now();
  brokers.get(p.leaderId).kill();
  let failoverMs;
  for (;;) {
    const now = await leaderOf('rf3-acksall');
    if (now.leaderId >= 0 && now.leaderId !== p.leaderId) {
      const r = await call(clients.get(now.leaderId), 'produce', { acks: Acks.ACKS_ALL, timeoutMs: 2000, topics: [{ topic: 'rf3-acksall', partitions: [{ partition: 0, batch: small }] }] }).catch(() => undefined);
      if (r && !r.topics[0].partitions[0].error) { failoverMs = performance.now() - killedAt; break; }
    }
    if (performance.now() - killedAt > 30000) throw new Error('no failover in 30 s');
    await new Promise((r) => setTimeout(r, 20));
  }
  console.table(rows);
  console.log(`failover (SIGKILL of the leader → first acked acks=all write on the new leader, broker session TTL 2 s): ${failoverMs.toFixed(0)} ms`);
  meta.close();
  for (const c of clients.values()) c.close();
} finally {
  await stopAll();
  await etcd.stop();
  process.exit(0);
}
