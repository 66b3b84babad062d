// Renders the kustomize overlays (kubectl kustomize, offline) and checks every object against the
// Kubernetes schemas (kubernetes-models) and our own rules; cross-checks the flags and SKEIN_*
// variables the manifests set against the config keys the services actually read.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { ConfigMap, Service, ServiceAccount } from 'kubernetes-models/v1';
import { ClusterRole, ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { envName, flagName } from '@skein/common/config.js';
import { skipUnless } from './harness/requirements.js';

const root = new URL('..', import.meta.url).pathname;
const skipRender = skipUnless({ url: import.meta.url, part: 'rendering the overlays' }, 'kubectl');
const skipRackScript = skipUnless({ url: import.meta.url, part: 'the rack init script against a TLS server' }, 'openssl');
const { metadataConfigSchema } = await import(join(root, 'services/metadata/dist/config.js')) as { metadataConfigSchema: Record<string, unknown> };
const { brokerConfigSchema } = await import(join(root, 'services/broker/dist/config.js')) as { brokerConfigSchema: Record<string, unknown> };
const { coordinatorConfigSchema } = await import(join(root, 'services/group-coordinator/dist/config.js')) as { coordinatorConfigSchema: Record<string, unknown> };

type Obj = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string> }; spec?: any; data?: Record<string, string> };

function render(overlay: string): Obj[] {
  let out: string;
  try {
    out = execFileSync('kubectl', ['kustomize', join(root, 'deploy/k8s/overlays', overlay)], { encoding: 'utf8' });
  } catch (err) {
    throw new Error(`rendering needs kubectl (kubectl kustomize): ${(err as Error).message}`);
  }
  return parseAllDocuments(out).map((d) => d.toJSON() as Obj).filter(Boolean);
}

const MODELS: Record<string, new (o: any) => { validate(): void }> = { ConfigMap, Service, ServiceAccount, ClusterRole, ClusterRoleBinding, Deployment, StatefulSet, PodDisruptionBudget, NetworkPolicy };
const ALLOWED_FIELDS: Record<string, string[]> = {
  ConfigMap: ['apiVersion', 'kind', 'metadata', 'data'],
  Service: ['apiVersion', 'kind', 'metadata', 'spec'],
  Deployment: ['apiVersion', 'kind', 'metadata', 'spec'],
  StatefulSet: ['apiVersion', 'kind', 'metadata', 'spec'],
  PodDisruptionBudget: ['apiVersion', 'kind', 'metadata', 'spec'],
  NetworkPolicy: ['apiVersion', 'kind', 'metadata', 'spec'],
  ServiceAccount: ['apiVersion', 'kind', 'metadata'],
  ClusterRole: ['apiVersion', 'kind', 'metadata', 'rules'],
  ClusterRoleBinding: ['apiVersion', 'kind', 'metadata', 'roleRef', 'subjects'],
};

// kubernetes-models 4.x (5.x needs Node 22): its schemas still refuse what the overlay check
// relies on them to refuse, so the validation above keeps its teeth on Node 20.
describe('kubernetes-models on this Node', () => {
  it('refuses wrong types and enum values', () => {
    const deployment = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x' }, spec: { selector: { matchLabels: { a: 'b' } }, template: { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'c', image: 'i' }] } } } };
    expect(() => new Deployment(deployment).validate()).not.toThrow();
    expect(() => new Deployment({ ...deployment, spec: { ...deployment.spec, replicas: 'three' } } as never).validate()).toThrow();
    expect(() => new Service({ metadata: { name: 's' }, spec: { type: 'Bogus', ports: [{ port: 80 }] } } as never).validate()).toThrow();
    expect(() => new Service({ metadata: { name: 's' }, spec: { ports: [{ port: 'eighty' }] } } as never).validate()).toThrow();
  });
});

const matches = (selector: Record<string, string>, labels: Record<string, string> = {}) => Object.entries(selector).every(([k, v]) => labels[k] === v);

describe.skipIf(skipRender).each(['dev', 'prod', 'prod-tls'])('deploy/k8s overlay %s', (overlay) => {
  const objects = render(overlay);
  const workloads = objects.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet');

  it('has the expected workloads', () => {
    expect(workloads.map((w) => `${w.kind}/${w.metadata.name}`).sort()).toEqual(['Deployment/skein-group-coordinator', 'Deployment/skein-metadata', 'StatefulSet/etcd', 'StatefulSet/skein-broker']);
  });

  it('validates every object against the Kubernetes schemas, with no unknown top-level fields', () => {
    for (const o of objects) {
      const Model = MODELS[o.kind];
      expect(Model, `no validator for ${o.kind}`).toBeDefined();
      expect(() => new Model!(o).validate(), `${o.kind}/${o.metadata.name}`).not.toThrow();
      for (const key of Object.keys(o)) expect(ALLOWED_FIELDS[o.kind], `${o.kind}/${o.metadata.name}.${key}`).toContain(key);
    }
  });

  it('gives every container probes, requests and limits, and runs it as non-root', () => {
    for (const w of workloads) {
      const pod = w.spec.template.spec;
      for (const c of pod.containers) {
        const where = `${w.metadata.name}/${c.name}`;
        expect(c.readinessProbe, `${where} readiness`).toBeDefined();
        expect(c.livenessProbe, `${where} liveness`).toBeDefined();
        expect(c.resources?.requests?.cpu && c.resources?.requests?.memory, `${where} requests`).toBeTruthy();
        expect(c.resources?.limits?.cpu && c.resources?.limits?.memory, `${where} limits`).toBeTruthy();
        expect(pod.securityContext?.runAsNonRoot ?? c.securityContext?.runAsNonRoot, `${where} non-root`).toBe(true);
      }
    }
  });

  it('gives every StatefulSet volume claims and every workload a PodDisruptionBudget; selectors match labels', () => {
    const pdbs = objects.filter((o) => o.kind === 'PodDisruptionBudget');
    for (const w of workloads) {
      expect(matches(w.spec.selector.matchLabels, w.spec.template.metadata.labels), `${w.metadata.name} selector`).toBe(true);
      if (w.kind === 'StatefulSet') expect(w.spec.volumeClaimTemplates?.length, `${w.metadata.name} claims`).toBeGreaterThan(0);
      expect(pdbs.some((p) => matches(p.spec.selector.matchLabels, w.spec.template.metadata.labels)), `${w.metadata.name} PDB`).toBe(true);
    }
  });

  it('points every Service at pods that expose the target port', () => {
    for (const s of objects.filter((o) => o.kind === 'Service')) {
      const targets = workloads.filter((w) => matches(s.spec.selector, w.spec.template.metadata.labels));
      expect(targets.length, `${s.metadata.name} selects nothing`).toBeGreaterThan(0);
      for (const port of s.spec.ports) {
        for (const w of targets) {
          const ports = w.spec.template.spec.containers.flatMap((c: any) => c.ports ?? []);
          expect(ports.some((p: any) => p.name === port.targetPort || p.containerPort === port.targetPort), `${s.metadata.name}:${port.targetPort} on ${w.metadata.name}`).toBe(true);
        }
      }
    }
  });

  it('lets brokers read their node’s zone as their rack, through a service account bound in the same namespace', () => {
    const broker = workloads.find((w) => w.metadata.name === 'skein-broker')!;
    const pod = broker.spec.template.spec;
    const binding = objects.find((o) => o.kind === 'ClusterRoleBinding') as any;
    const account = objects.find((o) => o.kind === 'ServiceAccount') as any;
    expect(pod.serviceAccountName).toBe(account.metadata.name);
    expect(binding.subjects[0]).toMatchObject({ name: account.metadata.name, namespace: account.metadata.namespace });
    expect(pod.containers[0].command.join(' ')).toContain('--rack');
    // The init step runs the script from the generated ConfigMap with the Skein image's own node.
    const init = pod.initContainers[0];
    expect(init.image).toBe(pod.containers[0].image);
    const scriptMount = init.volumeMounts.find((m: any) => init.command.at(-1).startsWith(`${m.mountPath}/`));
    const scriptVolume = pod.volumes.find((v: any) => v.name === scriptMount.name);
    const scriptMap = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === scriptVolume.configMap.name)!;
    expect(scriptMap.data!['rack-from-node.cjs']).toBe(readFileSync(join(root, 'deploy/k8s/base/files/rack-from-node.cjs'), 'utf8'));
  });

  it('mounts only volumes the pod declares, from ConfigMaps that exist', () => {
    for (const w of workloads) {
      const pod = w.spec.template.spec;
      const declared = new Set([...(pod.volumes ?? []).map((v: any) => v.name), ...(w.spec.volumeClaimTemplates ?? []).map((t: any) => t.metadata.name)]);
      for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
        for (const m of c.volumeMounts ?? []) expect(declared.has(m.name), `${w.metadata.name}/${c.name} mounts undeclared volume ${m.name}`).toBe(true);
      }
      for (const v of pod.volumes ?? []) {
        if (v.configMap) expect(objects.some((o) => o.kind === 'ConfigMap' && o.metadata.name === v.configMap.name), `${w.metadata.name}: ConfigMap ${v.configMap.name}`).toBe(true);
      }
    }
  });

  it('runs only the Skein image and the pinned etcd image (no third-party helper images)', () => {
    for (const w of workloads) {
      const pod = w.spec.template.spec;
      for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
        const expected = w.metadata.name === 'etcd' ? /^quay\.io\/coreos\/etcd:v\d+\.\d+\.\d+$/ : overlay === 'dev' ? /^skein:/ : /^registry\.example\.com\/skein:/;
        expect(c.image, `${w.metadata.name}/${c.name}`).toMatch(expected);
      }
    }
  });

  it('mounts TLS material for every service when the TLS component is used', () => {
    if (overlay !== 'prod-tls') return;
    for (const w of workloads.filter((x) => x.metadata.name.startsWith('skein-'))) {
      const c = w.spec.template.spec.containers[0];
      expect(c.env.map((e: any) => e.name)).toEqual(expect.arrayContaining(['SKEIN_TLS_CERT_FILE', 'SKEIN_TLS_KEY_FILE', 'SKEIN_TLS_CA_FILE']));
      expect(c.volumeMounts.some((m: any) => m.name === 'tls')).toBe(true);
    }
  });

  it('sets only flags and SKEIN_* variables the services read, and runs entry points that exist', () => {
    const schemas: Record<string, Record<string, unknown>> = { 'services/metadata/dist/main.js': metadataConfigSchema, 'services/broker/dist/main.js': brokerConfigSchema, 'services/group-coordinator/dist/main.js': coordinatorConfigSchema };
    const configMap = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'skein-config')!;
    for (const w of workloads.filter((x) => x.metadata.name.startsWith('skein-'))) {
      for (const c of w.spec.template.spec.containers) {
        const commandLine = [...(c.command ?? []), ...(c.args ?? [])].join(' ');
        const entry = Object.keys(schemas).find((e) => commandLine.includes(e));
        expect(entry, `${w.metadata.name} runs a known entry point`).toBeDefined();
        expect(existsSync(join(root, entry!.replace('dist/main.js', 'src/main.ts')))).toBe(true);
        const keys = Object.keys(schemas[entry!]!);
        const flags = [...commandLine.matchAll(/--([a-z][a-z0-9-]*)/g)].map((m) => m[1]!);
        for (const f of flags) expect(keys.map(flagName), `${w.metadata.name}: --${f}`).toContain(f);
        const envs = (c.env ?? []).map((e: any) => e.name as string).filter((n: string) => n.startsWith('SKEIN_'));
        for (const e of envs) expect(keys.map(envName), `${w.metadata.name}: ${e}`).toContain(e);
        for (const e of c.env ?? []) {
          if (e.valueFrom?.configMapKeyRef) expect(configMap.data, `${e.valueFrom.configMapKeyRef.key} in skein-config`).toHaveProperty(e.valueFrom.configMapKeyRef.key);
        }
      }
    }
    const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
    for (const entry of Object.keys(schemas)) expect(dockerfile).toContain(entry.replace('/main.js', ''));
  });
});

describe.skipIf(skipRender)('deploy/k8s across overlays', () => {
  it('names cluster-scoped objects per overlay, so dev and prod can share a cluster', () => {
    const clusterScoped = (overlay: string) => render(overlay).filter((o) => o.kind === 'ClusterRole' || o.kind === 'ClusterRoleBinding').map((o) => `${o.kind}/${o.metadata.name}`);
    const dev = clusterScoped('dev');
    const prod = clusterScoped('prod');
    expect(dev.length).toBeGreaterThan(0);
    for (const name of dev) expect(prod, name).not.toContain(name);
  });
});

describe.skipIf(skipRackScript)('the brokers’ rack init script (deploy/k8s/base/files/rack-from-node.cjs)', () => {
  // Runs the script as the init container would, against a fake API server with a self-signed cert.
  const script = join(root, 'deploy/k8s/base/files/rack-from-node.cjs');
  async function runAgainst(respond: (path: string, auth: string | undefined) => [number, unknown]) {
    const dir = mkdtempSync(join(tmpdir(), 'skein-rack-'));
    try {
      try {
        execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
          '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'ca.crt')], { stdio: 'pipe' });
      } catch (err) {
        throw new Error(`this test needs openssl to make a throwaway certificate: ${(err as Error).message}`);
      }
      writeFileSync(join(dir, 'token'), 'test-token\n');
      const seen: string[] = [];
      const server = createServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'ca.crt')) }, (req, res) => {
        seen.push(`${req.url} ${req.headers.authorization}`);
        const [status, body] = respond(req.url!, req.headers.authorization);
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      try {
        const env = { ...process.env, KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String((server.address() as AddressInfo).port), SA_DIR: dir, RACK_FILE: join(dir, 'zone'), NODE_NAME: 'node-a' };
        await promisify(execFile)(process.execPath, [script], { env, timeout: 15_000 });
        return { zone: readFileSync(join(dir, 'zone'), 'utf8'), seen };
      } finally {
        server.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('writes the node’s zone label, asking with the service account token', async () => {
    const { zone, seen } = await runAgainst(() => [200, { metadata: { name: 'node-a', labels: { 'topology.kubernetes.io/zone': 'eu-west-1b' } } }]);
    expect(zone).toBe('eu-west-1b');
    expect(seen).toEqual(['/api/v1/nodes/node-a Bearer test-token']);
  });

  it('writes an empty rack, and still exits 0, when the node has no zone or access is denied', async () => {
    expect((await runAgainst(() => [200, { metadata: { name: 'node-a', labels: {} } }])).zone).toBe('');
    expect((await runAgainst(() => [403, { kind: 'Status', reason: 'Forbidden' }])).zone).toBe('');
  });
});

describe('the image build', () => {
  it('keeps nested build state out of the Docker context (stale tsbuildinfo without dist makes tsc -b skip projects)', () => {
    const ignore = readFileSync(join(root, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
    expect(ignore).toEqual(expect.arrayContaining(['**/node_modules', '**/dist', '**/*.tsbuildinfo']));
  });
});

describe('start-local and the image use the same entry points', () => {
  it('npm start launches services/*/dist/main.js, as the manifests do', () => {
    const script = readFileSync(join(root, 'scripts/start-local.js'), 'utf8');
    expect(script).toContain('services/metadata/dist/main.js');
    expect(script).toContain('services/broker/dist/main.js');
    expect(script).toContain('services/group-coordinator/dist/main.js');
  });
});
