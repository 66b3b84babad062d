// A new user's first hour, as written: `npm start`'s script brings up a local cluster (embedded
// stores, no etcd), the README's quick-start block runs unchanged against it (topic with 6
// partitions, 100,000 keyed records, two groups, lag), Ctrl-C stops every process, and a second
// start finds the topic, the records and the committed offsets again.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = new URL('..', import.meta.url).pathname;
const dataDir = mkdtempSync(join(tmpdir(), 'skein-quickstart-'));
let cluster: ChildProcess | undefined;

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A base port with the eight ports `npm start` uses (base .. base+7) free on 127.0.0.1. */
async function freeBlock(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    const free = await Promise.all(Array.from({ length: 8 }, (_, i) => portFree(base + i)));
    if (free.every(Boolean)) return base;
  }
  throw new Error('no block of 8 free ports found');
}

/** Starts scripts/start-local.js (what `npm start` runs after building) and waits for its banner. */
async function startCluster(basePort: number): Promise<{ output: () => string }> {
  // Its own process group, so that cleanup can stop the script and every service it started.
  const child = spawn(process.execPath, [join(root, 'scripts/start-local.js'), '--data-dir', dataDir, '--base-port', String(basePort)], { cwd: root, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  cluster = child;
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the cluster did not start in 60 s:\n${out.slice(-3000)}`)), 60_000);
    const check = setInterval(() => {
      if (out.includes('Skein is running.')) { clearInterval(check); clearTimeout(timer); resolve(); }
    }, 100);
    child.once('exit', (code) => { clearInterval(check); clearTimeout(timer); reject(new Error(`start-local exited (${code}) before the cluster was up:\n${out.slice(-3000)}`)); });
  });
  return { output: () => out };
}

/** Ctrl-C, as a user would: resolves with the script's exit code once every service has stopped. */
async function interrupt(): Promise<number | null> {
  const child = cluster!;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  process.kill(-child.pid!, 'SIGINT');
  const code = await exited;
  cluster = undefined;
  return code;
}

function sh(script: string, env: Record<string, string>, timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-eo', 'pipefail', '-c', script], { cwd: root, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

afterAll(async () => {
  if (cluster?.pid) {
    try { process.kill(-cluster.pid, 'SIGKILL'); } catch { /* already gone */ }
  }
  rmSync(dataDir, { recursive: true, force: true });
});

type Lag = { topic: string; partition: number; committedOffset: string; logEndOffset: string; lag: string };
const sum = (lags: Lag[], field: 'committedOffset' | 'lag' | 'logEndOffset') => lags.reduce((n, l) => n + Number(l[field]), 0);

describe('the README quick start', () => {
  it('runs as written against npm start, and a second start keeps topics, records and offsets', async () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const block = /<!-- quickstart:begin -->\s*```sh\n([\s\S]*?)```\s*<!-- quickstart:end -->/.exec(readme);
    expect(block, 'README has a quick-start block between the markers').not.toBeNull();
    const script = block![1]!;
    expect(script).toContain('produce orders');

    const base = await freeBlock();
    // Only the metadata address, as the start banner says: the CLI finds the coordinator from it.
    const env = { SKEIN_METADATA: `127.0.0.1:${base}` };
    const first = await startCluster(base);
    expect(first.output()).toContain('read back: ');
    // The banner lists each service's /metrics URL, and each serves that service's metrics.
    const banner = first.output().slice(first.output().indexOf('Skein is running.'));
    const urls = [...banner.matchAll(/^\s*(?:\/metrics)?\s+(metadata|broker-\d|coordinator|schema-registry)\s+(http:\/\/\S+\/metrics)$/gm)].map((m) => ({ name: m[1]!, url: m[2]! }));
    expect(urls.map((u) => u.name).sort()).toEqual(['broker-0', 'broker-1', 'broker-2', 'coordinator', 'metadata', 'schema-registry']);
    for (const { name, url } of urls) {
      const prefix = name === 'coordinator' ? 'skein_coordinator_' : name === 'metadata' ? 'skein_metadata_' : name === 'schema-registry' ? 'skein_schema_registry_' : 'skein_broker_';
      expect(await (await fetch(url, { signal: AbortSignal.timeout(5000) })).text(), name).toContain(prefix);
    }

    const run = await sh(script, env, 240_000);
    expect(run.code, `quick start failed:\n${run.stderr.slice(-3000)}`).toBe(0);
    const lines = run.stdout.split('\n').map((l) => l.trim());
    expect(lines).toContain('100000'); // billing read every record
    expect(lines).toContain('40000'); // audit stopped after 40,000
    expect(run.stderr).toContain('produced 100000 records to orders');

    const describe = async (group: string) => {
      const r = await sh(`npx skein groups describe ${group} --output json`, env, 30_000);
      expect(r.code, r.stderr).toBe(0);
      return (JSON.parse(r.stdout) as { lags: Lag[] }).lags;
    };
    const billing = await describe('billing');
    expect(billing).toHaveLength(6);
    expect(sum(billing, 'logEndOffset')).toBe(100_000);
    expect(sum(billing, 'committedOffset')).toBe(100_000);
    expect(sum(billing, 'lag')).toBe(0);
    const audit = await describe('audit');
    expect(sum(audit, 'committedOffset')).toBe(40_000);
    expect(sum(audit, 'lag')).toBe(60_000);

    expect(await interrupt()).toBe(0);
    const stillBound = await Promise.all(Array.from({ length: 8 }, (_, i) => portFree(base + i)));
    expect(stillBound.every(Boolean), 'every service stopped and released its port').toBe(true);

    await startCluster(base);
    const again = await describe('audit');
    expect(sum(again, 'committedOffset')).toBe(40_000);
    expect(sum(again, 'logEndOffset')).toBe(100_000);
    // The group resumes where it stopped: the remaining 60,000 records, not all of them.
    const rest = await sh('npx skein consume orders --group audit --from-beginning | wc -l', env, 120_000);
    expect(rest.code, rest.stderr).toBe(0);
    expect(rest.stdout.trim()).toBe('60000');
    expect(await interrupt()).toBe(0);
  }, 420_000);
});
