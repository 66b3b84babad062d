#!/usr/bin/env node
// End-to-end latency of broker builds side by side (issue 15): the latency row of bench/run.js
// (1 KiB records at a fixed rate, acks=all, Subscribe consumer, same load jobs) on a fresh cluster
// per build and round, alternating builds so that they share the machine's state:
//   node bench/latency-ab.js --variants base=bench/.exp/base/main.js,new=services/broker/dist/main.js --reps 3 --rounds 2
// Options: --rate MB/s (5), --rf (3), --linger ms (5), --seconds (4, after 1 s warm-up), --profile DIR
// (--cpu-prof per build; DIR/<build>/windows.json cuts it to the runs: node bench/profile-summary.js).
// Each run prints one JSON line: percentiles, the load average, CPU seconds of each broker (/proc),
// and the leader's and followers' event-loop delay, utilisation and GC (bench/lib/loop-stats-wrap.js).
// KEEP_LOGS=1 and ELD_KEEP=DIR keep the broker logs (with TRACE_GC=1: the GC trace) in DIR.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
const windows = [];
import { loadavg } from 'node:os';
import { resolve, join } from 'node:path';
import { parseArgs } from 'node:util';
import { Acks } from '@skein/proto/skein/broker/v1/broker.js';
import { startSkein } from './lib/clusters.js';
import { startPool } from './lib/pool.js';
import { cpuSeconds } from './lib/procstat.js';
import { cleanupAll, installSignalHandlers } from './lib/processes.js';

const { values } = parseArgs({
  options: {
    variants: { type: 'string' },
    reps: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '4' },
    rate: { type: 'string', default: '5' },
    rf: { type: 'string', default: '3' },
    linger: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '1' },
    profile: { type: 'string' },
  },
});
installSignalHandlers();
const variants = values.variants.split(',').map((v) => {
  const [name, entry] = v.split('=');
  return { name, entry: resolve(entry) };
});
const rf = Number(values.rf);
const eldDir = process.env.ELD_KEEP ?? '/tmp/eld';
const results = [];
for (let round = 0; round < Number(values.rounds); round++)
  for (const v of variants) {
    rmSync(eldDir, { recursive: true, force: true });
    mkdirSync(eldDir, { recursive: true });
    process.env.ELD_DIR = eldDir;
    process.env.REAL_ENTRY = v.entry;
    const cluster = await startSkein({
      brokers: rf,
      brokerEntry: new URL('./lib/loop-stats-wrap.js', import.meta.url).pathname,
      profileDir: values.profile ? resolve(values.profile, v.name) : undefined,
    });
    const pool = await startPool(2);
    try {
      for (let rep = 0; rep < Number(values.reps); rep++) {
        const topic = `lat-${rep}`;
        await cluster.createTopic(topic, { partitions: 1, replicationFactor: rf, configs: rf > 1 ? { 'min.insync.replicas': '2' } : {} });
        const [address] = await cluster.leaders(topic);
        const ratePerS = (Number(values.rate) * 1e6) / 1024;
        const latencyMs = Number(values.seconds) * 1000,
          warmupMs = 1000;
        const expected = Math.round((ratePerS * (latencyMs + warmupMs)) / 1000);
        let ready;
        const sub = new Promise((r) => {
          ready = r;
        });
        const consumer = pool.call(
          0,
          'skeinLatencyConsume',
          { address, topic, expected, maxDurationMs: latencyMs + warmupMs + 30000 },
          (e) => e.ready && ready(),
        );
        await sub;
        const pids = cluster.serverPids();
        const la = loadavg()[0];
        const cpu0 = pids.map(cpuSeconds);
        for (const p of pids) process.kill(p, 'SIGUSR2');
        const prod = pool.call(1, 'skeinFixedRate', {
          address,
          topic,
          acks: Acks.ACKS_ALL,
          inflight: 64,
          lingerMs: Number(values.linger),
          recordBytes: 1024,
          ratePerS,
          durationMs: latencyMs,
          warmupMs,
        });
        const fromUs = Number(process.hrtime.bigint() / 1000n);
        await prod;
        const c = await consumer;
        windows.push({ name: `${v.name} rep ${rep}`, fromUs, toUs: Number(process.hrtime.bigint() / 1000n) });
        if (values.profile) mkdirSync(resolve(values.profile, v.name), { recursive: true });
        if (values.profile)
          writeFileSync(join(resolve(values.profile, v.name), 'windows.json'), JSON.stringify(windows.filter((w) => w.name.startsWith(v.name + ' '))));
        for (const p of pids) process.kill(p, 'SIGUSR2');
        const cpu = pids.map((p, i) => cpuSeconds(p) - cpu0[i]);
        await new Promise((r) => setTimeout(r, 200));
        const leaderPid = cluster.brokers.find((b) => b.address === address).pid;
        await new Promise((r) => setTimeout(r, 1000));
        const eld = Object.fromEntries(
          pids.map((p) => {
            try {
              const lines = readFileSync(join(eldDir, `${p}.jsonl`), 'utf8')
                .trim()
                .split('\n');
              return [p, JSON.parse(lines.at(-1))];
            } catch {
              return [p, null];
            }
          }),
        );
        const r = {
          variant: v.name,
          rep,
          la: +la.toFixed(2),
          p50: c.p50Ms,
          p99: c.p99Ms,
          p999: c.p999Ms,
          max: c.maxMs,
          got: c.received,
          expected,
          cpu: cpu.map((x) => +x.toFixed(2)),
          leaderEld: eld[leaderPid] && {
            p50: +eld[leaderPid].p50.toFixed(2),
            p99: +eld[leaderPid].p99.toFixed(2),
            max: +eld[leaderPid].max.toFixed(1),
            elu: +eld[leaderPid].elu.toFixed(2),
            gcMs: +eld[leaderPid].gcMs.toFixed(0),
            gcMax: +eld[leaderPid].gcMax.toFixed(1),
            cnt: eld[leaderPid].cnt,
          },
          followerEld: pids
            .filter((p) => p !== leaderPid)
            .map(
              (p) =>
                eld[p] && {
                  p99: +eld[p].p99.toFixed(2),
                  max: +eld[p].max.toFixed(1),
                  elu: +eld[p].elu.toFixed(2),
                  gcMs: +eld[p].gcMs.toFixed(0),
                  cnt: eld[p].cnt,
                },
            ),
        };
        results.push(r);
        console.log(JSON.stringify(r));
      }
    } finally {
      await pool.close();
      if (process.env.KEEP_LOGS) {
        const { copyFileSync } = await import('node:fs');
        for (const b of cluster.brokers) copyFileSync(b.logFile, join(eldDir, `${v.name}-broker-${b.id}-${b.pid}.log`));
      }
      await cluster.stop();
    }
  }
const med = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.floor((s.length - 1) / 2)];
};
for (const v of variants) {
  const rs = results.filter((r) => r.variant === v.name);
  console.log(
    `${v.name}: n=${rs.length} median p50 ${med(rs.map((r) => r.p50)).toFixed(2)} ms, p99 ${med(rs.map((r) => r.p99)).toFixed(2)} ms, p999 ${med(rs.map((r) => r.p999)).toFixed(2)}; broker CPU s ${med(rs.map((r) => r.cpu.reduce((a, b) => a + b, 0))).toFixed(2)}; load ${med(rs.map((r) => r.la))}`,
  );
}
await cleanupAll?.();
process.exit(0);
