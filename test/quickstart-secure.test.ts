// `npm start -- --secure` as a user meets it: the script creates the development CA and
// certificates under <data-dir>/tls/, brings the cluster up with mTLS on every hop (its own
// start-up check produces and reads as admin), and prints the CLI environment; with that
// environment the CLI works as alice, without a client certificate it is refused, plaintext is
// refused; Ctrl-C stops everything.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = new URL('..', import.meta.url).pathname;
const dataDir = mkdtempSync(join(tmpdir(), 'skein-quickstart-secure-'));
const cli = join(root, 'libs/cli/dist/main.js');
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

afterAll(() => {
  if (cluster?.pid) {
    try {
      process.kill(-cluster.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  rmSync(dataDir, { recursive: true, force: true });
});

describe('npm start -- --secure', () => {
  it('creates the development PKI, runs mTLS on every hop, and prints a CLI environment that works', async () => {
    const basePort = await freeBlock();
    // Its own process group, so that cleanup can stop the script and every service it started.
    const child = spawn(process.execPath, [join(root, 'scripts/start-local.js'), '--secure', '--data-dir', dataDir, '--base-port', String(basePort)], {
      cwd: root,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    cluster = child;
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the cluster did not start in 60 s:\n${out.slice(-3000)}`)), 60_000);
      const check = setInterval(() => {
        if (out.includes('Skein is running.')) {
          clearInterval(check);
          clearTimeout(timer);
          resolve();
        }
      }, 100);
      child.once('exit', (code) => {
        clearInterval(check);
        clearTimeout(timer);
        reject(new Error(`start-local exited (${code}) before the cluster was up:\n${out.slice(-3000)}`));
      });
    });
    // The start-up check produced and read back over mTLS.
    expect(out).toMatch(/read back: 0:k0=hello/);
    for (const f of ['ca.crt', 'admin.crt', 'admin.key', 'alice.crt', 'alice.key', 'metadata.crt', 'broker-0.crt', 'coordinator.crt'])
      expect(existsSync(join(dataDir, 'tls', f)), f).toBe(true);

    // The printed environment, as a user would paste it; alice's certificate instead of admin's.
    const exported = Object.fromEntries([...out.matchAll(/export (SKEIN_TLS_\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!]));
    expect(Object.keys(exported).sort()).toEqual(['SKEIN_TLS_CA_FILE', 'SKEIN_TLS_CERT_FILE', 'SKEIN_TLS_KEY_FILE']);
    const metadata = `127.0.0.1:${basePort}`;
    const run = (env: Record<string, string>) =>
      spawnSync(process.execPath, [cli, '--metadata', metadata, 'topics', 'list'], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, ...env } });
    const asAlice = run({ ...exported, SKEIN_TLS_CERT_FILE: join(dataDir, 'tls', 'alice.crt'), SKEIN_TLS_KEY_FILE: join(dataDir, 'tls', 'alice.key') });
    expect(asAlice.status, asAlice.stderr).toBe(0);
    const noCertificate = run({ SKEIN_TLS_CA_FILE: exported.SKEIN_TLS_CA_FILE! });
    expect(noCertificate.status).not.toBe(0);
    expect(noCertificate.stderr).toMatch(/certificate required/);
    const plaintext = run({});
    expect(plaintext.status).not.toBe(0);

    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    process.kill(-child.pid!, 'SIGINT');
    expect(await exited).toBe(0);
    cluster = undefined;
  });
});
