// Server-side cost from /proc: resident memory (VmRSS now, VmHWM = the kernel's own peak) and CPU
// time (utime + stime). Read from outside the measured process, so the figures include everything
// the server does (GC, I/O threads), not only what its own instrumentation sees.
import { readFileSync } from 'node:fs';

const CLK_TCK = 100; // sysconf(_SC_CLK_TCK) on Linux x86-64/arm64; /proc/PID/stat counts in these ticks

export function memory(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? 0) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return { rss: 0, hwm: 0 };
  }
}

/** User + system CPU seconds the process has used so far (children excluded). */
export function cpuSeconds(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return 0;
  }
}

/**
 * Samples VmRSS of `pids` every `intervalMs` while a workload runs. `stop()` returns CPU seconds
 * used by all pids together and the peak VmRSS of the largest single process.
 */
export function startServerSampler(pids, intervalMs = 100) {
  const cpu0 = pids.map(cpuSeconds);
  const peak = new Map(pids.map((p) => [p, memory(p).rss]));
  const timer = setInterval(() => {
    for (const p of pids) peak.set(p, Math.max(peak.get(p), memory(p).rss));
  }, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      for (const p of pids) peak.set(p, Math.max(peak.get(p), memory(p).rss));
      const cpu = pids.reduce((a, p, i) => a + cpuSeconds(p) - cpu0[i], 0);
      return { cpuSeconds: cpu, peakRssBytes: Math.max(...peak.values()), hwmBytes: Math.max(...pids.map((p) => memory(p).hwm)) };
    },
  };
}

/**
 * Resolves once `pids` together use less than `busyShare` of one core over two consecutive
 * `stepMs` windows (replication or log flushing caused by the last workload has finished), or
 * after `timeoutMs`. Answers how long it waited.
 */
export async function waitUntilIdle(pids, { stepMs = 200, busyShare = 0.1, timeoutMs = 30_000 } = {}) {
  const t0 = performance.now();
  let quiet = 0;
  let last = pids.reduce((a, p) => a + cpuSeconds(p), 0);
  while (quiet < 2 && performance.now() - t0 < timeoutMs) {
    await new Promise((r) => setTimeout(r, stepMs));
    const now = pids.reduce((a, p) => a + cpuSeconds(p), 0);
    quiet = now - last < (busyShare * stepMs) / 1000 ? quiet + 1 : 0;
    last = now;
  }
  return performance.now() - t0;
}

/** Busy CPU seconds of the whole machine (all cores) since boot, from /proc/stat. */
export function machineBusySeconds() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = f; // idle and iowait are not busy time
  return (user + nice + system + irq + softirq + (steal ?? 0)) / CLK_TCK;
}

/** CPU seconds of this process plus its exited, reaped children (utime+stime+cutime+cstime). */
export function selfAndReapedChildrenSeconds() {
  const s = readFileSync('/proc/self/stat', 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / CLK_TCK;
}

/** CPU seconds (user + system) this process used since `process.cpuUsage()` returned `u0`. */
export function cpuSince(u0) {
  const u = process.cpuUsage(u0);
  return (u.user + u.system) / 1e6;
}
