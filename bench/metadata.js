#!/usr/bin/env node
// Metadata service figures (not run by the tests): topic creation rate, WatchMetadata propagation
// latency, and controller failover time after SIGKILL, against a real etcd from the test harness.
//   npm run build && node bench/metadata.js [--topics 200] [--watch-ops 200] [--controller-ttl-ms 2000]
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { MetadataServiceClient } from '@skein/proto/skein/metadata/v1/metadata.js';
import { startEtcd } from '../test/dist/etcd.js';
import { startService, stopAll, waitFor } from '../test/dist/services.js';

const { values } = parseArgs({ options: { topics: { type: 'string', default: '200' }, 'watch-ops': { type: 'string', default: '200' }, 'controller-ttl-ms': { type: 'string', default: '2000' } } });
const entry = new URL('../services/metadata/dist/main.js', import.meta.url).pathname;
const call = (c, m, r) => new Promise((res, rej) => c[m](r, (e, v) => (e ? rej(e) : res(v))));
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };

const etcd = await startEtcd({ members: 3 });
try {
  const args = ['--store', `etcd://${etcd.endpoints.join(',')}`, '--prefix', `/bench-${Date.now()}/`, '--controller-session-ttl-ms', values['controller-ttl-ms']];
  const a = await startService({ name: 'meta-a', entry, args: [...args, '--instance-id', 'meta-a'] });
  const b = await startService({ name: 'meta-b', entry, args: [...args, '--instance-id', 'meta-b'] });
  const ca = new MetadataServiceClient(a.address, grpc.credentials.createInsecure());
  const cb = new MetadataServiceClient(b.address, grpc.credentials.createInsecure());
  for (const id of [1, 2, 3]) {
    const r = await call(ca, 'registerBroker', { brokerId: id, endpoint: { host: '127.0.0.1', port: 1 }, rack: '', sessionTtlMs: 60000 });
    setInterval(() => call(ca, 'brokerHeartbeat', { brokerId: id, sessionId: r.sessionId }).catch(() => call(cb, 'brokerHeartbeat', { brokerId: id, sessionId: r.sessionId }).catch(() => {})), 5000).unref();
  }
  await waitFor(async () => (await call(cb, 'getClusterMetadata', { topics: [] })).metadata.controller !== undefined, { timeoutMs: 15000, message: 'controller' });

  // Topic creation: sequential, then 8 concurrent clients; 6 partitions, RF 3 each.
  const n = Number(values.topics);
  let t = performance.now();
  for (let i = 0; i < n; i++) await call(ca, 'createTopic', { name: `seq-${i}`, partitions: 6, replicationFactor: 3, configs: {} });
  const seqRate = n / ((performance.now() - t) / 1000);
  t = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: 8 }, async () => { while (next < n) { const i = next++; await call(i % 2 ? ca : cb, 'createTopic', { name: `par-${i}`, partitions: 6, replicationFactor: 3, configs: {} }); } }));
  const parRate = n / ((performance.now() - t) / 1000);

  // Watch propagation: a config change made through instance A, seen on a watch of instance B.
  const watch = cb.watchMetadata({ fromRevision: 0n });
  const seen = new Map();
  watch.on('data', (m) => { for (const c of m.changes) if (c.change?.$case === 'topicChanged') seen.get(c.change.value.configs['retention.ms'])?.(); });
  watch.on('error', () => {});
  const lat = [];
  for (let i = 0; i < Number(values['watch-ops']); i++) {
    const v = String(1000 + i);
    const arrived = new Promise((r) => seen.set(v, r));
    const s = performance.now();
    await call(ca, 'alterTopicConfigs', { name: 'seq-0', set: { 'retention.ms': v }, remove: [] });
    await arrived;
    lat.push(performance.now() - s);
  }
  watch.cancel();

  // Controller failover: SIGKILL the controller, time until the other instance reports itself.
  const ctl = (await call(cb, 'getClusterMetadata', { topics: [] })).metadata.controller.controllerId;
  const victim = ctl === 'meta-a' ? a : b;
  const survivor = victim === a ? cb : ca;
  const k = performance.now();
  victim.kill();
  await waitFor(async () => (await call(survivor, 'getClusterMetadata', { topics: [] })).metadata.controller?.controllerId !== ctl, { timeoutMs: 30000, intervalMs: 20, message: 'failover' });
  const failoverMs = performance.now() - k;

  console.log(`\nmetadata service on a 3-member etcd (loopback, ${new Date().toISOString()})`);
  console.log(`| figure | value |\n|---|---|`);
  console.log(`| topic creation, sequential (6 partitions, RF 3) | ${seqRate.toFixed(0)} topics/s |`);
  console.log(`| topic creation, 8 concurrent clients over 2 instances | ${parRate.toFixed(0)} topics/s |`);
  console.log(`| watch propagation (write via A → WatchMetadata on B), p50 / p99 | ${pct(lat, 0.5).toFixed(1)} ms / ${pct(lat, 0.99).toFixed(1)} ms |`);
  console.log(`| controller failover after SIGKILL (session TTL ${values['controller-ttl-ms']} ms) | ${failoverMs.toFixed(0)} ms |`);
  ca.close(); cb.close();
} finally {
  await stopAll();
  await etcd.stop();
  process.exit(0);
}
