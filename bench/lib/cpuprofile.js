// Self time per function (and per package/file) from V8 .cpuprofile files, as written by
// `node --cpu-prof`: each sample names the node that was on top of the stack; the time a sample
// stands for is the delta to the next sample (Chrome DevTools counts it the same way). Sample
// times are CLOCK_MONOTONIC µs, the clock of process.hrtime, so a profile can be cut to the
// window in which one workload ran (windows.json, written by bench/run.js --profile).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';


function where(url) {
  if (!url) return '';
  const u = url.replace(/^file:\/\//, '');
  const nm = u.lastIndexOf('node_modules/');
  if (nm >= 0) return u.slice(nm + 'node_modules/'.length);
  const i = u.search(/\/(services|libs|bench|test)\//);
  return i >= 0 ? u.slice(i + 1) : u;
}

/** The package (npm name, `node:internal`, or the repo area) a frame belongs to. */
function area(url) {
  if (!url) return '(native / VM)';
  if (url.startsWith('node:')) return 'node: core';
  const w = where(url);
  if (w.startsWith('@')) return w.split('/').slice(0, 2).join('/');
  const m = /^(services\/[^/]+|libs\/[^/]+|bench|test)\//.exec(w);
  if (m) return m[1];
  return w.split('/')[0];
}

export function aggregate(profile, window) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const deltas = profile.timeDeltas;
  let total = 0;
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += deltas[i];
    const dt = i + 1 < deltas.length ? deltas[i + 1] : 0;
    if (dt <= 0) continue;
    if (window && (t < window.fromUs || t >= window.toUs)) continue;
    total += dt;
    self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + dt);
  }
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const isApp = (url) => /\/(services|libs)\/[^/]+\/(dist|src)\//.test(url) || /\/bench\/\.exp\//.test(url);
  /** The innermost Skein frame on the stack: which of our functions a sample's time is spent for. */
  const appFrame = (id) => {
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const f = byId.get(cur).callFrame;
      if (isApp(f.url)) return `${f.functionName || '(anonymous)'} ${where(f.url)}:${f.lineNumber + 1}`;
    }
    return '(no Skein frame on the stack: I/O callbacks, gRPC/HTTP2 internals, GC, timers)';
  };
  const fns = new Map();
  const areas = new Map();
  const owners = new Map();
  let idle = 0;
  for (const [id, us] of self) {
    const { callFrame: f } = byId.get(id);
    const name = f.functionName || '(anonymous)';
    if (name === '(idle)') {
      idle += us;
      continue;
    }
    const key = `${name} ${where(f.url)}${f.url ? `:${f.lineNumber + 1}` : ''}`;
    fns.set(key, (fns.get(key) ?? 0) + us);
    const owner = appFrame(id);
    owners.set(owner, (owners.get(owner) ?? 0) + us);
    const a = name === '(garbage collector)' ? '(garbage collector)' : name === '(program)' ? '(program: VM, native, unattributed)' : area(f.url);
    areas.set(a, (areas.get(a) ?? 0) + us);
  }
  return { totalUs: total, idleUs: idle, fns, areas, owners };
}

function table(map, busyUs, top) {
  return [...map].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, us]) => `| ${(us / 1000).toFixed(0)} | ${((100 * us) / busyUs).toFixed(1)} % | \`${k.replace(/\|/g, '\\|')}\` |`);
}

export function summarizeFile(file, top = 25, windows = []) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const section = (title, window, n) => {
    const a = aggregate(profile, window);
    const busy = a.totalUs - a.idleUs;
    if (a.totalUs === 0) return [];
    return [
      title, '',
      `${(a.totalUs / 1e6).toFixed(1)} s profiled, busy ${(busy / 1e6).toFixed(1)} s (${((100 * busy) / a.totalUs).toFixed(0)} % of one core); shares below are of busy time.`, '',
      '| self ms | share | package / area |', '|---:|---:|---|', ...table(a.areas, busy, 12), '',
      '| self ms | share | function |', '|---:|---:|---|', ...table(a.fns, busy, n), '',
      '| ms | share | innermost Skein function on the stack (time spent on its behalf) |', '|---:|---:|---|', ...table(a.owners, busy, 15), '',
    ];
  };
  const out = section(`### ${basename(file)}: whole run`, undefined, top);
  for (const w of windows) out.push(...section(`#### ${basename(file)}: ${w.name}`, w, 15));
  return out.join('\n');
}

function readWindows(dir) {
  try {
    return JSON.parse(readFileSync(join(dir, 'windows.json'), 'utf8'));
  } catch {
    return [];
  }
}

/** Every .cpuprofile in a directory (cut by its windows.json, if any), or the files given, as markdown. */
export function summarizeProfiles(...paths) {
  const out = ['## CPU profiles: self time', ''];
  for (const p of paths) {
    if (statSync(p).isDirectory()) {
      const windows = readWindows(p);
      for (const f of readdirSync(p).filter((x) => x.endsWith('.cpuprofile')).sort()) out.push(summarizeFile(join(p, f), 25, windows));
    } else out.push(summarizeFile(p));
  }
  return out.join('\n');
}
