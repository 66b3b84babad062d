/**
 * What a test file needs beyond Node and npm, checked once per file at load:
 *
 *   const skip = skipUnless(import.meta.url, 'etcd');
 *   describe.skipIf(skip)('…', () => { … });
 *
 * When something is missing the file prints one line (`skipped test/x.test.ts: needs etcd (how to
 * get it)`) and its suites skip, so `npm test` passes on a machine with only Node and npm. Under
 * CI=true it throws instead and the file fails: CI (.ci/run) installs everything, so a missing
 * tool there is a broken install, never a green run.
 *
 * SKEIN_TEST_WITHOUT=etcd,kubectl,… makes the named requirements count as missing (to check the
 * bare-machine behaviour without uninstalling anything); `startEtcd` honours it too.
 */

import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export type Requirement = 'etcd' | 'etcd-binary' | 'kubectl' | 'openssl' | 'python-grpc' | 'python-schema-registry' | 'postgres';

/** How to get each requirement, as printed in the skip line and the README. */
export const HOW_TO_GET: Readonly<Record<Requirement, string>> = {
  etcd: 'apt-get install -y etcd-server, or ETCD_ENDPOINTS=host:port',
  'etcd-binary': 'the etcd binary, to run and kill several members: apt-get install -y etcd-server',
  kubectl: 'kubectl 1.21 or later, for kustomize components: apt-get install -y kubectl from the Kubernetes apt repository; Debian\'s kubernetes-client 1.20 is too old',
  openssl: 'apt-get install -y openssl',
  'python-grpc': '/usr/bin/python3 with grpcio: apt-get install -y python3-grpcio',
  postgres: 'PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql: apt-get install -y postgresql',
  'python-schema-registry': "/usr/bin/python3 with Confluent's client and its schema-registry extras: apt-get install -y python3-confluent-kafka python3-requests python3-jsonschema",
};

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function hidden(): Set<string> {
  return new Set((process.env.SKEIN_TEST_WITHOUT ?? '').split(',').map((s) => s.trim()).filter(Boolean));
}

function runs(file: string, args: string[]): string | undefined {
  try {
    return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 });
  } catch {
    return undefined;
  }
}

/** Whether `etcd` on PATH runs (Debian's etcd-server); false when SKEIN_TEST_WITHOUT names etcd. */
export function hasEtcdBinary(): boolean {
  const without = hidden();
  if (without.has('etcd') || without.has('etcd-binary')) return false;
  return runs('etcd', ['--version']) !== undefined;
}

/**
 * Whether a container engine is reachable for the testcontainers fallback. Only a cheap local check
 * (DOCKER_HOST or the default socket): probing the way testcontainers does takes seconds per file.
 */
function hasContainerEngine(): boolean {
  return Boolean(process.env.DOCKER_HOST) || existsSync('/var/run/docker.sock');
}

const cache = new Map<Requirement, boolean>();

export function available(requirement: Requirement): boolean {
  if (hidden().has(requirement)) return false;
  let ok = cache.get(requirement);
  if (ok !== undefined) return ok;
  switch (requirement) {
    case 'etcd':
      ok = Boolean(process.env.ETCD_ENDPOINTS?.trim()) || hasEtcdBinary() || hasContainerEngine();
      break;
    case 'etcd-binary':
      ok = hasEtcdBinary();
      break;
    case 'kubectl': {
      // Components (deploy/k8s/components) need the kustomize that kubectl embeds from 1.21 on.
      const out = runs('kubectl', ['version', '--client', '-o', 'json']);
      const minor = out ? Number.parseInt((JSON.parse(out) as { clientVersion?: { minor?: string } }).clientVersion?.minor ?? '', 10) : NaN;
      ok = Number.isFinite(minor) && minor >= 21;
      break;
    }
    case 'openssl':
      ok = runs('openssl', ['version']) !== undefined;
      break;
    case 'python-schema-registry':
      ok = runs('/usr/bin/python3', ['-c', 'import confluent_kafka.schema_registry.json_schema, requests']) !== undefined;
      break;
    case 'python-grpc':
      ok = runs('/usr/bin/python3', ['-c', 'import grpc, google.protobuf']) !== undefined;
      break;
    case 'postgres':
      ok = ['/usr/lib/postgresql'].some((root) => existsSync(root) && readdirSync(root).some((v) => existsSync(`${root}/${v}/bin/initdb`) && existsSync(`${root}/${v}/bin/pg_ctl`)));
      break;
  }
  cache.set(requirement, ok);
  return ok;
}

export class MissingRequirementError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MissingRequirementError';
  }
}

/**
 * Returns true (skip) when any requirement is missing, after printing one line naming the file (and
 * the part of it, when only some suites need the requirement), what it needs and how to get it. Under CI=true it throws that line instead, failing the file.
 */
export function skipUnless(where: string | { url: string; part: string }, ...requirements: Requirement[]): boolean {
  const missing = requirements.filter((r) => !available(r));
  if (missing.length === 0) return false;
  const { url, part } = typeof where === 'string' ? { url: where, part: undefined } : where;
  const file = relative(ROOT, fileURLToPath(url));
  const line = `skipped ${file}${part ? ` (${part})` : ''}: needs ${missing.map((r) => `${r} (${HOW_TO_GET[r]})`).join(', ')}`;
  if (isCi()) throw new MissingRequirementError(`CI=true: ${line.replace(/^skipped/, 'cannot skip')}`);
  // Straight to the worker's stderr, not console: vitest would frame a console line with a header.
  process.stderr.write(`${line}\n`);
  return true;
}

export function isCi(): boolean {
  const ci = process.env.CI?.trim().toLowerCase();
  return ci !== undefined && ci !== '' && ci !== '0' && ci !== 'false';
}
