#!/usr/bin/env node
// What idle replicated partitions cost (issue 15): three brokers, N RF 3 partitions, nobody
// producing; the brokers' CPU over a window, as a share of one core, and their RSS.
//   node bench/idle.js [--partitions 2000] [--window-s 30] [--broker-entry PATH] [--etcd]
// --broker-entry runs another broker build (e.g. one checked out with `git worktree` before the
// streaming replication), so two builds are compared on the same machine in one sitting. CPU is
// read from /proc per broker process, so other load on the machine does not count, though it can
// slow the brokers' own work. Every process is stopped by pid at the end, on error and on Ctrl-C.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startSkein } from './lib/clusters.js';
import { cpuSeconds, memory, waitUntilIdle } from './lib/procstat.js';
import { cleanupAll, installSignalHandlers } from './lib/processes.js';

const { values } = parseArgs({
  options: {
    partitions: { type: 'string', default: '2000' },
    'per-topic': { type: 'string', default: '100' },
    'window-s': { type: 'string', default: '30' },
    'broker-entry': { type: 'string' },
    etcd: { type: 'boolean', default: false },
  },
});
installSignalHandlers();
const total = Number(values.partitions);
const perTopic = Math.min(Number(values['per-topic']), total);
const windowS = Number(values['window-s']);

try {
  const cluster = await startSkein({
    brokers: 3,
    etcd: values.etcd,
    label: 'idle',
    ...(values['broker-entry'] ? { brokerEntry: resolve(values['broker-entry']) } : {}),
  });
  const t0 = performance.now();
  for (let t = 0; t * perTopic < total; t++) {
    await cluster.createTopic(`idle-${t}`, { partitions: Math.min(perTopic, total - t * perTopic), replicationFactor: 3, configs: { 'min.insync.replicas': '2' } });
  }
  const createS = (performance.now() - t0) / 1000;
  const pids = cluster.serverPids();
  await waitUntilIdle(pids, { timeoutMs: 60_000 });
  const before = pids.map(cpuSeconds);
  const start = performance.now();
  await new Promise((r) => setTimeout(r, windowS * 1000));
  const elapsed = (performance.now() - start) / 1000;
  const used = pids.map((p, i) => cpuSeconds(p) - before[i]);
  const totalCore = used.reduce((a, b) => a + b, 0) / elapsed;
  const rss = pids.map((p) => memory(p).rss / 2 ** 20);
  console.log(JSON.stringify({
    partitions: total,
    replicationFactor: 3,
    brokerEntry: values['broker-entry'] ?? 'services/broker/dist/main.js',
    createSeconds: Number(createS.toFixed(1)),
    windowSeconds: Number(elapsed.toFixed(1)),
    cpuShareOfOneCore: Number(totalCore.toFixed(4)),
    perBrokerCpuShare: used.map((u) => Number((u / elapsed).toFixed(4))),
    brokerRssMiB: rss.map((m) => Math.round(m)),
  }));
  await cluster.stop();
} finally {
  await cleanupAll();
}
