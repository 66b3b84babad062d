/**
 * etcd for tests, from (in order): ETCD_ENDPOINTS; the `etcd` binary on this machine (Debian's
 * etcd-server); testcontainers with the official image where a container engine is reachable.
 * Says which it used. Members run on free loopback ports with temporary data directories. Files
 * that need etcd guard their suites with `skipUnless(import.meta.url, 'etcd')` (requirements.ts), so
 * this is reached only where one of the three is there; SKEIN_TEST_WITHOUT=etcd hides the binary.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { stopChild, track } from './processes.js';
import { waitFor } from './wait.js';
import { hasEtcdBinary } from './requirements.js';

export interface EtcdMember {
  name: string;
  clientUrl: string;
  process?: ChildProcess;
}

export interface EtcdCluster {
  endpoints: string[];
  source: 'env' | 'binary' | 'testcontainers';
  members: EtcdMember[];
  /** SIGKILLs one member (binary source only). */
  killMember(index: number): void;
  stop(): Promise<void>;
}

/** TLS for etcd's client port (binary source only): its certificate, and with clientCertAuth, client certificates required from this CA. */
export interface EtcdTlsOptions {
  certFile: string;
  keyFile: string;
  caFile: string;
  clientCertAuth?: boolean;
  /** The client certificate the harness's health check presents (with clientCertAuth). */
  clientCertFile?: string;
  clientKeyFile?: string;
}

/** GET /health over TLS with the harness's client certificate (fetch cannot take a CA or a client certificate). */
function healthyTls(clientUrl: string, tls: EtcdTlsOptions): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(`${clientUrl}/health`, {
      ca: readFileSync(tls.caFile),
      ...(tls.clientCertFile && tls.clientKeyFile ? { cert: readFileSync(tls.clientCertFile), key: readFileSync(tls.clientKeyFile) } : {}),
      timeout: 2000,
    }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => resolve(/"health":\s*"true"/.test(body)));
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

async function healthy(clientUrl: string, tls?: EtcdTlsOptions): Promise<boolean> {
  if (tls) return healthyTls(clientUrl, tls);
  try {
    const res = await fetch(`${clientUrl}/health`);
    const body = (await res.json()) as { health?: string };
    return body.health === 'true';
  } catch {
    return false;
  }
}

export async function startEtcd(options: { members: 1 | 3; tls?: EtcdTlsOptions } = { members: 1 }): Promise<EtcdCluster> {
  const fromEnv = process.env.ETCD_ENDPOINTS?.trim();
  if (options.tls) {
    // Only the binary is started with our certificates; guard such suites with skipUnless 'etcd-binary'.
    if (!hasEtcdBinary()) throw new Error('etcd with TLS needs the etcd binary (apt-get install -y etcd-server)');
    return startBinary(options.members, options.tls);
  }
  if (fromEnv) {
    const endpoints = fromEnv.split(',').map((e) => e.replace(/^https?:\/\//, '').trim());
    console.log(`[harness] etcd: using ETCD_ENDPOINTS=${fromEnv}`);
    return {
      endpoints, source: 'env', members: endpoints.map((e, i) => ({ name: `env${i}`, clientUrl: `http://${e}` })),
      killMember: () => { throw new Error('cannot kill members of an external etcd (ETCD_ENDPOINTS)'); },
      stop: async () => {},
    };
  }
  if (hasEtcdBinary()) return startBinary(options.members);
  return startContainer(options.members);
}

async function startBinary(count: number, tls?: EtcdTlsOptions): Promise<EtcdCluster> {
  const scheme = tls ? 'https' : 'http';
  const dir = mkdtempSync(join(tmpdir(), 'skein-etcd-'));
  const ports = [] as Array<{ client: number; peer: number }>;
  for (let i = 0; i < count; i++) ports.push({ client: await freePort(), peer: await freePort() });
  const initialCluster = ports.map((p, i) => `n${i}=http://127.0.0.1:${p.peer}`).join(',');
  const members: EtcdMember[] = ports.map((p, i) => {
    const child = spawn('etcd', [
      '--name', `n${i}`, '--data-dir', join(dir, `n${i}`),
      '--listen-client-urls', `${scheme}://127.0.0.1:${p.client}`, '--advertise-client-urls', `${scheme}://127.0.0.1:${p.client}`,
      ...(tls ? ['--cert-file', tls.certFile, '--key-file', tls.keyFile, '--trusted-ca-file', tls.caFile, ...(tls.clientCertAuth ? ['--client-cert-auth'] : [])] : []),
      '--listen-peer-urls', `http://127.0.0.1:${p.peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${p.peer}`,
      '--initial-cluster', initialCluster, '--initial-cluster-state', 'new', '--initial-cluster-token', `skein-test-${process.pid}`,
      '--log-level', 'error', '--logger', 'zap',
    ], { stdio: 'ignore' });
    track(child);
    return { name: `n${i}`, clientUrl: `${scheme}://127.0.0.1:${p.client}`, process: child };
  });
  await waitFor(async () => (await Promise.all(members.map((m) => healthy(m.clientUrl, tls)))).every(Boolean), { timeoutMs: 30_000, intervalMs: 100, message: `etcd (${count} member${count > 1 ? 's' : ''}) is healthy` });
  console.log(`[harness] etcd: started ${count} member(s) from the etcd binary on this machine: ${members.map((m) => m.clientUrl).join(', ')}`);
  return {
    endpoints: ports.map((p) => `127.0.0.1:${p.client}`),
    source: 'binary',
    members,
    killMember(index) {
      const m = members[index];
      if (!m?.process?.pid) throw new Error(`no etcd member ${index}`);
      process.kill(m.process.pid, 'SIGKILL');
    },
    async stop() {
      await Promise.all(members.map((m) => (m.process ? stopChild(m.process, 3000) : undefined)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function startContainer(count: number): Promise<EtcdCluster> {
  if (count !== 1) throw new Error('the testcontainers path runs a single etcd member; install etcd (apt-get install -y etcd-server) for multi-member tests');
  let GenericContainer: typeof import('testcontainers').GenericContainer;
  try {
    ({ GenericContainer } = await import('testcontainers'));
  } catch (err) {
    throw new Error(`no etcd: set ETCD_ENDPOINTS, install etcd (apt-get install -y etcd-server), or provide a container engine (${(err as Error).message})`);
  }
  const container = await new GenericContainer('quay.io/coreos/etcd:v3.5.17')
    .withCommand(['etcd', '--listen-client-urls', 'http://0.0.0.0:2379', '--advertise-client-urls', 'http://127.0.0.1:2379'])
    .withExposedPorts(2379)
    .start();
  const endpoint = `127.0.0.1:${container.getMappedPort(2379)}`;
  console.log(`[harness] etcd: started a container through testcontainers at ${endpoint}`);
  return {
    endpoints: [endpoint], source: 'testcontainers', members: [{ name: 'container', clientUrl: `http://${endpoint}` }],
    killMember: () => { throw new Error('killMember is not supported for the container path'); },
    stop: async () => { await container.stop(); },
  };
}
