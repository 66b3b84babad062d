// Scratch: event loop delay / utilisation of a broker, reset and dumped on SIGUSR2 (to ELD_DIR/<pid>.jsonl).
import v8 from 'node:v8';
if (process.env.TRACE_GC) v8.setFlagsFromString('--trace-gc');
// HEAP_PROF=1: sampling heap profile (allocations incl. collected ones) between the SIGUSR2s, to ELD_DIR/<pid>-<n>.heapprofile.
import { monitorEventLoopDelay, performance, PerformanceObserver } from 'node:perf_hooks';
import { appendFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
// 1 ms resolution: a 1 kHz timer in each broker (the same for every build compared).
const h = monitorEventLoopDelay({ resolution: 1 });
h.enable();
let elu = performance.eventLoopUtilization();
let gcMs = 0,
  gcN = 0,
  gcMax = 0,
  n = 0;
const kinds = {};
new PerformanceObserver((l) => {
  for (const e of l.getEntries()) {
    gcMs += e.duration;
    gcN++;
    if (e.duration > gcMax) gcMax = e.duration;
    const k = e.detail?.kind ?? e.kind;
    kinds[k] = (kinds[k] ?? 0) + e.duration;
  }
}).observe({ entryTypes: ['gc'] });
let session;
if (process.env.HEAP_PROF) {
  session = new Session();
  session.connect();
}
const post = (m, p) => new Promise((res, rej) => session.post(m, p, (e, r) => (e ? rej(e) : res(r))));
process.on('SIGUSR2', async () => {
  const u = performance.eventLoopUtilization(elu);
  const out = {
    pid: process.pid,
    p50: h.percentile(50) / 1e6,
    p99: h.percentile(99) / 1e6,
    max: h.max / 1e6,
    mean: h.mean / 1e6,
    elu: u.utilization,
    gcMs,
    gcN,
    gcMax,
    kinds,
    heapUsed: process.memoryUsage().heapUsed,
    cnt: { ...globalThis.__cnt },
  };
  globalThis.__cnt = {};
  if (process.env.ELD_DIR) appendFileSync(`${process.env.ELD_DIR}/${process.pid}.jsonl`, JSON.stringify(out) + '\n');
  h.reset();
  elu = performance.eventLoopUtilization();
  gcMs = 0;
  gcN = 0;
  gcMax = 0;
  for (const k in kinds) delete kinds[k];
  if (session) {
    if (n % 2 === 1) {
      const { profile } = await post('HeapProfiler.stopSampling');
      writeFileSync(`${process.env.ELD_DIR}/${process.pid}-${n}.heapprofile`, JSON.stringify(profile));
    } else
      await post('HeapProfiler.startSampling', { samplingInterval: 16384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  }
  n++;
});
await import(process.env.REAL_ENTRY);
