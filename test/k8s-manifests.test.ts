// Renders the kustomize overlays (kubectl kustomize, offline) and checks every object against the
// Kubernetes schemas (kubernetes-models) and our own rules; cross-checks the flags and SKEIN_*
// variables the manifests set against the config keys the services actually read.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { ConfigMap, Namespace, Service, ServiceAccount } from 'kubernetes-models/v1';
import { ClusterRole, ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { envName, flagName } from '@skein/common/config.js';
import { brokerIdOf, DEFAULT_BROKER_PRINCIPAL_PATTERN } from '@skein/common/security/enforcement.js';
import { mapPrincipalName, parseMappingRules, parsePrincipalList, principalMatches } from '@skein/common/security/principal.js';
import { admits, type NetworkPolicy as Policy, type Peer, type Port } from './harness/network-policy.js';
import { skipUnless } from './harness/requirements.js';

const root = new URL('..', import.meta.url).pathname;
const skipRender = skipUnless({ url: import.meta.url, part: 'rendering the overlays' }, 'kubectl');
const skipRackScript = skipUnless({ url: import.meta.url, part: 'the rack init script against a TLS server' }, 'openssl');
const { metadataConfigSchema } = await import(join(root, 'services/metadata/dist/config.js')) as { metadataConfigSchema: Record<string, unknown> };
const { brokerConfigSchema } = await import(join(root, 'services/broker/dist/config.js')) as { brokerConfigSchema: Record<string, unknown> };
const { coordinatorConfigSchema } = await import(join(root, 'services/group-coordinator/dist/config.js')) as { coordinatorConfigSchema: Record<string, unknown> };

type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; spec?: any; data?: Record<string, string> };

function renderDir(dir: string): Obj[] {
  let out: string;
  try {
    out = execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8' });
  } catch (err) {
    throw new Error(`rendering needs kubectl (kubectl kustomize): ${(err as Error).message}`);
  }
  return parseAllDocuments(out).map((d) => d.toJSON() as Obj).filter(Boolean);
}
const render = (overlay: string) => renderDir(join(root, 'deploy/k8s/overlays', overlay));

/** An overlay plus components, rendered from a temporary kustomization (as a user would add them). */
function renderWith(overlay: string, components: string[]): Obj[] {
  const dir = mkdtempSync(join(tmpdir(), 'skein-kustomize-'));
  try {
    writeFileSync(join(dir, 'kustomization.yaml'), [
      'apiVersion: kustomize.config.k8s.io/v1beta1', 'kind: Kustomization',
      'resources:', `  - ${relative(dir, join(root, 'deploy/k8s/overlays', overlay))}`,
      'components:', ...components.map((c) => `  - ${relative(dir, join(root, 'deploy/k8s/components', c))}`), '',
    ].join('\n'));
    return renderDir(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * What the "restricted" Pod Security Standard (and our own read-only root rule) refuses in a pod
 * template: one line per problem, empty when it passes. Restricted: runAsNonRoot, a non-zero
 * runAsUser, no privilege escalation, every capability dropped (NET_BIND_SERVICE alone may be
 * added), seccomp RuntimeDefault or Localhost (pod or container), only the allowed volume types,
 * no host namespaces, ports or paths, no privileged container.
 */
export function restrictedViolations(pod: any): string[] {
  const out: string[] = [];
  const podSc = pod.securityContext ?? {};
  if (pod.hostNetwork || pod.hostPID || pod.hostIPC) out.push('host namespaces');
  const allowedVolumes = ['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret'];
  for (const v of pod.volumes ?? []) {
    const type = Object.keys(v).find((k) => k !== 'name');
    if (!type || !allowedVolumes.includes(type)) out.push(`volume ${v.name}: ${type} is not allowed`);
  }
  for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
    const sc = c.securityContext ?? {};
    const where = c.name;
    if ((sc.runAsNonRoot ?? podSc.runAsNonRoot) !== true) out.push(`${where}: runAsNonRoot`);
    const uid = sc.runAsUser ?? podSc.runAsUser;
    if (uid === undefined || uid === 0) out.push(`${where}: runAsUser (set, non-zero)`);
    if (sc.allowPrivilegeEscalation !== false) out.push(`${where}: allowPrivilegeEscalation false`);
    if (sc.privileged) out.push(`${where}: privileged`);
    if (!(sc.capabilities?.drop ?? []).includes('ALL')) out.push(`${where}: capabilities drop ALL`);
    for (const cap of sc.capabilities?.add ?? []) if (cap !== 'NET_BIND_SERVICE') out.push(`${where}: adds capability ${cap}`);
    const seccomp = sc.seccompProfile?.type ?? podSc.seccompProfile?.type;
    if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') out.push(`${where}: seccompProfile RuntimeDefault`);
    if (sc.readOnlyRootFilesystem !== true) out.push(`${where}: readOnlyRootFilesystem`);
    for (const p of c.ports ?? []) if (p.hostPort) out.push(`${where}: hostPort ${p.hostPort}`);
  }
  return out;
}

const MODELS: Record<string, new (o: any) => { validate(): void }> = { Namespace, ConfigMap, Service, ServiceAccount, ClusterRole, ClusterRoleBinding, Deployment, StatefulSet, PodDisruptionBudget, NetworkPolicy };
const ALLOWED_FIELDS: Record<string, string[]> = {
  Namespace: ['apiVersion', 'kind', 'metadata'],
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

/** A container's environment as the kubelet gives it: env values (ConfigMap keys resolved) over envFrom ConfigMaps. */
function containerEnv(objects: Obj[], c: any): Map<string, string | undefined> {
  const configMap = (name: string) => objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === name);
  const env = new Map<string, string | undefined>();
  for (const from of c.envFrom ?? []) {
    const map = configMap(from.configMapRef?.name);
    expect(map, `envFrom ConfigMap ${from.configMapRef?.name}`).toBeDefined();
    for (const [k, v] of Object.entries(map!.data ?? {})) env.set(k, v);
  }
  for (const e of c.env ?? []) {
    const ref = e.valueFrom?.configMapKeyRef;
    env.set(e.name, ref ? configMap(ref.name)?.data?.[ref.key] : e.valueFrom ? undefined : e.value);
  }
  return env;
}

const skeinWorkloads = (objects: Obj[]) => objects.filter((o) => (o.kind === 'Deployment' || o.kind === 'StatefulSet') && o.metadata.name.startsWith('skein-'));
const CLIENT_PORTS: Record<string, number> = { 'skein-metadata': 9090, 'skein-broker': 9092, 'skein-group-coordinator': 9095 };

describe('the restricted Pod Security check', () => {
  it('passes a hardened pod and names what a default pod lacks', () => {
    const hardened = {
      securityContext: { runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } },
      volumes: [{ name: 'tmp', emptyDir: {} }],
      containers: [{ name: 'c', securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } } }],
    };
    expect(restrictedViolations(hardened)).toEqual([]);
    expect(restrictedViolations({ containers: [{ name: 'c' }] })).toEqual([
      'c: runAsNonRoot', 'c: runAsUser (set, non-zero)', 'c: allowPrivilegeEscalation false', 'c: capabilities drop ALL', 'c: seccompProfile RuntimeDefault', 'c: readOnlyRootFilesystem',
    ]);
    expect(restrictedViolations({ ...hardened, volumes: [{ name: 'h', hostPath: { path: '/' } }] })).toEqual(['volume h: hostPath is not allowed']);
    expect(restrictedViolations({ ...hardened, initContainers: [{ name: 'i', securityContext: { ...hardened.containers[0]!.securityContext, capabilities: { drop: ['ALL'], add: ['NET_ADMIN'] } } }] })).toEqual(['i: adds capability NET_ADMIN']);
  });
});

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

  it('gives every container probes, requests and limits', () => {
    for (const w of workloads) {
      const pod = w.spec.template.spec;
      for (const c of pod.containers) {
        const where = `${w.metadata.name}/${c.name}`;
        expect(c.readinessProbe, `${where} readiness`).toBeDefined();
        expect(c.livenessProbe, `${where} liveness`).toBeDefined();
        expect(c.resources?.requests?.cpu && c.resources?.requests?.memory, `${where} requests`).toBeTruthy();
        expect(c.resources?.limits?.cpu && c.resources?.limits?.memory, `${where} limits`).toBeTruthy();
      }
    }
  });

  it('creates its namespace, labelled to enforce the restricted Pod Security Standard, and puts everything in it', () => {
    const namespaces = objects.filter((o) => o.kind === 'Namespace');
    expect(namespaces).toHaveLength(1);
    const ns = namespaces[0]!;
    expect(ns.metadata.name).toBe(overlay === 'dev' ? 'skein-dev' : 'skein');
    expect(ns.metadata.labels?.['pod-security.kubernetes.io/enforce']).toBe('restricted');
    // kustomize sorts the Namespace first, so one `kubectl apply -k` creates it before its contents.
    expect(objects[0]).toBe(ns);
    for (const o of objects.filter((x) => !['Namespace', 'ClusterRole', 'ClusterRoleBinding'].includes(x.kind))) expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe(ns.metadata.name);
  });

  it('passes the restricted Pod Security Standard in every pod, with a read-only root and writable mounts only for data and tmp', () => {
    for (const w of workloads) {
      const pod = w.spec.template.spec;
      expect(restrictedViolations(pod), w.metadata.name).toEqual([]);
      for (const c of pod.containers) {
        const writable = (c.volumeMounts ?? []).filter((m: any) => !m.readOnly).map((m: any) => m.mountPath);
        expect(writable, `${w.metadata.name}/${c.name}`).toContain('/tmp');
      }
    }
    const brokerMounts = workloads.find((w) => w.metadata.name === 'skein-broker')!.spec.template.spec.containers[0].volumeMounts.map((m: any) => m.mountPath);
    expect(brokerMounts).toContain('/var/lib/skein');
  });

  it('pins every image (no :latest, no untagged image) and lets a locally loaded one be used', () => {
    for (const w of workloads) {
      for (const c of [...(w.spec.template.spec.initContainers ?? []), ...w.spec.template.spec.containers]) {
        expect(c.image, `${w.metadata.name}/${c.name}`).toMatch(/:[\w][\w.-]*$/);
        expect(c.image, `${w.metadata.name}/${c.name}`).not.toMatch(/:latest$/);
        expect(c.imagePullPolicy, `${w.metadata.name}/${c.name}`).toBe('IfNotPresent');
      }
    }
  });

  it('probes every Skein service on its plaintext health-only port, and etcd on /livez and /readyz', () => {
    for (const w of skeinWorkloads(objects)) {
      const c = w.spec.template.spec.containers[0];
      const healthPort = Number(containerEnv(objects, c).get('SKEIN_HEALTH_PORT'));
      expect(c.ports.find((p: any) => p.name === 'health')?.containerPort, w.metadata.name).toBe(healthPort);
      expect(healthPort).not.toBe(CLIENT_PORTS[w.metadata.name]);
      for (const probe of [c.readinessProbe, c.livenessProbe, c.startupProbe].filter(Boolean)) expect(probe.grpc?.port, w.metadata.name).toBe(healthPort);
    }
    const etcd = workloads.find((w) => w.metadata.name === 'etcd')!.spec.template.spec.containers[0];
    // /livez and /readyz exist from etcd 3.5.11 (and 3.4.29); /health fails on quorum loss and
    // would restart healthy members.
    const [major, minor, patch] = etcd.image.split(':v')[1].split('.').map(Number);
    expect(major > 3 || (major === 3 && (minor > 5 || (minor === 5 && patch >= 11)))).toBe(true);
    const metricsUrl = etcd.args.find((a: string) => a.startsWith('--listen-metrics-urls='));
    expect(metricsUrl).toBe('--listen-metrics-urls=http://0.0.0.0:2381');
    expect(etcd.ports.find((p: any) => p.name === 'metrics').containerPort).toBe(2381);
    expect(etcd.livenessProbe.httpGet).toMatchObject({ path: '/livez', port: 'metrics' });
    expect(etcd.readinessProbe.httpGet).toMatchObject({ path: '/readyz', port: 'metrics' });
  });

  it('spreads etcd (required), metadata and coordinators across zones and nodes', () => {
    const spread = (name: string) => workloads.find((w) => w.metadata.name === name)!.spec.template.spec.topologySpreadConstraints as any[];
    for (const name of ['etcd', 'skein-metadata', 'skein-group-coordinator']) {
      const c = spread(name);
      expect(c.map((x) => x.topologyKey).sort(), name).toEqual(['kubernetes.io/hostname', 'topology.kubernetes.io/zone']);
      for (const x of c) expect(x.labelSelector.matchLabels['app.kubernetes.io/name'], name).toBe(name);
    }
    const etcd = Object.fromEntries(spread('etcd').map((x) => [x.topologyKey, x.whenUnsatisfiable]));
    expect(etcd['kubernetes.io/hostname']).toBe('DoNotSchedule');
    // Laptop clusters have no zone labels: only dev relaxes etcd's zone rule.
    expect(etcd['topology.kubernetes.io/zone']).toBe(overlay === 'dev' ? 'ScheduleAnyway' : 'DoNotSchedule');
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
        const envs = [...containerEnv(objects, c).keys()].filter((n: string) => n.startsWith('SKEIN_'));
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

describe.skipIf(skipRender).each(['dev', 'prod', 'prod-tls'])('deploy/k8s network policies in %s', (overlay) => {
  const objects = render(overlay);
  const namespace = objects.find((o) => o.kind === 'Namespace')!;
  const ns = namespace.metadata.name;
  const policies = objects.filter((o) => o.kind === 'NetworkPolicy') as unknown as Policy[];
  const pod = (name: string, labels: Record<string, string>, podNamespace = ns, namespaceLabels: Record<string, string> = podNamespace === ns ? namespace.metadata.labels ?? {} : {}): Peer =>
    ({ kind: 'pod', name, namespace: podNamespace, namespaceLabels: { 'kubernetes.io/metadata.name': podNamespace, ...namespaceLabels }, labels });
  // Every pod the overlay runs, with the container ports they expose.
  const workloads = objects.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet');
  const pods = workloads.map((w) => ({ peer: pod(w.metadata.name, w.spec.template.metadata.labels), ports: w.spec.template.spec.containers.flatMap((c: any) => c.ports ?? []).map((p: any) => ({ number: p.containerPort, name: p.name, protocol: p.protocol ?? 'TCP' })) as Port[] }));
  const byName = (name: string) => pods.find((p) => p.peer.name === name)!;
  const portOf = (name: string, number: number) => byName(name).ports.find((p) => p.number === number)!;
  const cliInNamespace = pod('skein-cli', { 'skein.io/client': 'true' });
  const clientElsewhere = pod('app', { app: 'orders' }, 'apps');
  const prometheus = pod('prometheus', { 'app.kubernetes.io/name': 'prometheus' }, 'monitoring');
  const dns = pod('coredns', { 'k8s-app': 'kube-dns' }, 'kube-system');
  const apiServer: Peer = { kind: 'address', name: 'kube-apiserver' };
  const dnsPorts: Port[] = [{ number: 53, protocol: 'UDP' }, { number: 53, protocol: 'TCP' }];

  /** The flows Skein needs inside the namespace: source pod -> destination pod:port. */
  const needed: Array<[string, string, number]> = [
    ['skein-broker', 'skein-metadata', 9090],
    ['skein-broker', 'skein-broker', 9092],
    ['skein-group-coordinator', 'skein-metadata', 9090],
    ['skein-group-coordinator', 'skein-broker', 9092],
    ['skein-group-coordinator', 'etcd', 2379],
    ['skein-metadata', 'etcd', 2379],
    ['etcd', 'etcd', 2380],
    ['skein-cli', 'skein-metadata', 9090],
    ['skein-cli', 'skein-broker', 9092],
    ['skein-cli', 'skein-group-coordinator', 9095],
  ];

  it('denies by default, ingress and egress, for every pod of the namespace', () => {
    const deny = policies.find((p) => Object.keys(p.spec.podSelector).length === 0 && !p.spec.ingress && !p.spec.egress);
    expect(deny?.spec.policyTypes?.sort()).toEqual(['Egress', 'Ingress']);
  });

  it('admits every needed flow', () => {
    for (const [from, to, port] of needed) {
      const src = from === 'skein-cli' ? cliInNamespace : byName(from).peer;
      expect(admits(policies, src, byName(to).peer, portOf(to, port)), `${from} -> ${to}:${port}`).toBe(true);
    }
    for (const [name, port] of Object.entries(CLIENT_PORTS)) expect(admits(policies, clientElsewhere, byName(name).peer, portOf(name, port)), `clients -> ${name}:${port}`).toBe(true);
    for (const p of [...pods.map((x) => x.peer), cliInNamespace]) for (const port of dnsPorts) expect(admits(policies, p, dns, port), `${p.name} -> DNS ${port.protocol}`).toBe(true);
    for (const p of pods) {
      const metrics = p.ports.find((x) => x.name === 'metrics');
      expect(metrics, `${p.peer.name} has a metrics port`).toBeDefined();
      expect(admits(policies, prometheus, p.peer, metrics!), `Prometheus -> ${p.peer.name}:${metrics!.number}`).toBe(true);
    }
    // The brokers' rack init container reads its node from the API server.
    expect(admits(policies, byName('skein-broker').peer, apiServer, { number: 443 })).toBe(true);
  });

  it('admits nothing else inside the namespace', () => {
    const sources = [...pods.map((p) => p.peer), cliInNamespace];
    for (const src of sources) {
      for (const dst of pods) {
        for (const port of dst.ports) {
          const isNeeded = needed.some(([f, t, n]) => f === src.name && t === dst.peer.name && n === port.number);
          expect(admits(policies, src, dst.peer, port), `${src.name} -> ${dst.peer.name}:${port.number}`).toBe(isNeeded);
        }
      }
    }
  });

  it('admits from outside the namespace only clients on the client ports and Prometheus on the metrics port', () => {
    for (const src of [clientElsewhere, prometheus, dns, pod('other', {}, 'other'), pod('lookalike', { 'app.kubernetes.io/name': 'skein-metadata' }, 'other')]) {
      for (const dst of pods) {
        for (const port of dst.ports) {
          const expected = CLIENT_PORTS[dst.peer.name] === port.number || (src === prometheus && port.name === 'metrics');
          expect(admits(policies, src, dst.peer, port), `${src.name} -> ${dst.peer.name}:${port.number}`).toBe(expected);
        }
      }
    }
    // Addresses outside the pod network (load balancers, nodes of other clusters) likewise.
    expect(admits(policies, apiServer, byName('etcd').peer, portOf('etcd', 2379))).toBe(false);
    expect(admits(policies, apiServer, byName('skein-broker').peer, portOf('skein-broker', 9092))).toBe(true);
  });

  it('lets pods out of the namespace only to DNS, and brokers to the API server ports', () => {
    const outside: Array<[Peer, Port]> = [[clientElsewhere, { number: 8080 }], [prometheus, { number: 9090 }], [dns, { number: 443 }], [apiServer, { number: 443 }], [apiServer, { number: 6443 }], [apiServer, { number: 22 }]];
    for (const src of [...pods.map((p) => p.peer), cliInNamespace]) {
      for (const [dst, port] of outside) {
        const expected = src.name === 'skein-broker' && dst === apiServer && (port.number === 443 || port.number === 6443);
        expect(admits(policies, src, dst, port), `${src.name} -> ${dst.name}:${port.number}`).toBe(expected);
      }
    }
  });
});

/**
 * The TLS keys of the services' config schemas, each either provided by prod-tls or left at its
 * default for a stated reason. A key added to a schema fails here until it is placed in one list.
 */
const TLS_KEY = /^(tls|etcd(?!Endpoints)|sslPrincipal|internalPrincipals|superUsers|authenticationRequired|authorizerEnabled)/;
const PROVIDED = ['tlsCertFile', 'tlsKeyFile', 'tlsCaFile', 'tlsRequireClientCert', 'etcdCaFile', 'etcdCertFile', 'etcdKeyFile', 'sslPrincipalMappingRules', 'internalPrincipals', 'superUsers', 'authenticationRequired', 'authorizerEnabled'];
const DEFAULTED: Record<string, string> = {
  tlsClientCaFile: 'the service dials with --tls-ca-file (one CA for every Skein hop)',
  tlsClientCertFile: 'the service presents its server certificate when it dials (one identity both ways)',
  tlsClientKeyFile: 'as tlsClientCertFile',
  tlsServerName: 'every dialled address is a DNS name its certificate carries',
  tlsRefreshIntervalMs: 'the default 10 s is well within a Secret volume update',
  etcdTls: 'implied by --etcd-ca-file',
  etcdUsername: 'etcd authenticates by client certificate (--client-cert-auth), not by user',
  etcdPasswordFile: 'as etcdUsername',
};

describe.skipIf(skipRender)('deploy/k8s overlay prod-tls: TLS on every hop', () => {
  const objects = render('prod-tls');
  const base = render('prod');
  const workload = (name: string) => objects.find((o) => (o.kind === 'Deployment' || o.kind === 'StatefulSet') && o.metadata.name === name)!;
  const schemas: Record<string, Record<string, unknown>> = { 'skein-metadata': metadataConfigSchema, 'skein-broker': brokerConfigSchema, 'skein-group-coordinator': coordinatorConfigSchema };

  /** The Secret key a file path in the container reads, through its mounts ($(POD_NAME) as broker 0). */
  function secretKeyOf(w: Obj, c: any, path: string): { secret: string; key: string } | undefined {
    const resolved = path.replace('$(POD_NAME)', `${w.metadata.name}-0`);
    const mount = (c.volumeMounts ?? []).find((m: any) => resolved.startsWith(`${m.mountPath}/`));
    if (!mount) return undefined;
    const rest = resolved.slice(mount.mountPath.length + 1);
    const volume = w.spec.template.spec.volumes.find((v: any) => v.name === mount.name);
    if (volume?.secret) return { secret: volume.secret.secretName, key: rest };
    for (const source of volume?.projected?.sources ?? []) {
      const item = (source.secret?.items ?? []).find((i: any) => i.path === rest);
      if (item) return { secret: source.secret.name, key: item.key };
    }
    return undefined;
  }

  it('classifies every TLS and security key the services read', () => {
    for (const [name, schema] of Object.entries(schemas)) {
      for (const key of Object.keys(schema).filter((k) => TLS_KEY.test(k))) expect(PROVIDED.includes(key) || key in DEFAULTED, `${name}: ${key} is neither provided by prod-tls nor defaulted for a reason`).toBe(true);
    }
  });

  it('gives every Skein service each TLS setting it reads, from files in mounted Secrets', () => {
    for (const [name, schema] of Object.entries(schemas)) {
      const w = workload(name);
      const c = w.spec.template.spec.containers[0];
      const env = containerEnv(objects, c);
      for (const key of PROVIDED.filter((k) => k in schema)) {
        const value = env.get(envName(key));
        expect(value, `${name}: ${envName(key)}`).toBeTruthy();
        if (key.endsWith('File')) {
          const source = secretKeyOf(w, c, value!);
          expect(source, `${name}: ${value} is in a mounted Secret`).toBeDefined();
          expect(['tls.crt', 'tls.key', 'ca.crt']).toContain(source!.key);
        }
      }
      expect(env.get('SKEIN_TLS_REQUIRE_CLIENT_CERT'), name).toBe('true');
      expect(env.get('SKEIN_AUTHORIZER_ENABLED'), name).toBe('true');
      // etcd is dialled with its own CA's client certificate, never the service's own.
      if ('etcdCaFile' in schema) {
        expect(secretKeyOf(w, c, env.get('SKEIN_ETCD_CERT_FILE')!)!.secret).toBe('etcd-client-tls');
        expect(secretKeyOf(w, c, env.get('SKEIN_TLS_CERT_FILE')!)!.secret).toBe(`${name}-tls`);
      }
    }
    // Each broker its own certificate: broker N reads skein-broker-N-tls, defined after POD_NAME.
    const broker = workload('skein-broker');
    const c = broker.spec.template.spec.containers[0];
    expect(secretKeyOf(broker, c, containerEnv(objects, c).get('SKEIN_TLS_CERT_FILE')!)).toEqual({ secret: 'skein-broker-0-tls', key: 'tls.crt' });
    const names = c.env.map((e: any) => e.name);
    expect(names.indexOf('SKEIN_TLS_CERT_FILE')).toBeGreaterThan(names.indexOf('POD_NAME'));
  });

  it('advertises DNS names, never pod IPs, so certificates need no IP addresses', () => {
    for (const name of Object.keys(schemas)) {
      const c = workload(name).spec.template.spec.containers[0];
      const line = [...(c.command ?? []), ...(c.args ?? [])].join(' ');
      expect(line, name).toMatch(/--advertised-host (?:(?! --).)*?\.(svc|pod)\.cluster\.local/);
      expect(line, name).not.toContain('$(POD_IP)');
    }
  });

  it('runs etcd with client and peer TLS, both requiring certificates, keeping the store-health flags', () => {
    const w = workload('etcd');
    const c = w.spec.template.spec.containers[0];
    const env = containerEnv(objects, c);
    expect(env.get('URL_SCHEME')).toBe('https');
    expect(c.args.filter((a: string) => a.includes('://')).filter((a: string) => !a.startsWith('--listen-metrics-urls')).every((a: string) => a.includes('$(URL_SCHEME)://'))).toBe(true);
    expect(env.get('ETCD_CLIENT_CERT_AUTH')).toBe('true');
    expect(env.get('ETCD_PEER_CLIENT_CERT_AUTH')).toBe('true');
    for (const key of ['ETCD_CERT_FILE', 'ETCD_KEY_FILE', 'ETCD_TRUSTED_CA_FILE', 'ETCD_PEER_CERT_FILE', 'ETCD_PEER_KEY_FILE', 'ETCD_PEER_TRUSTED_CA_FILE']) {
      expect(secretKeyOf(w, c, env.get(key)!)?.secret, key).toBe('etcd-server-tls');
    }
    const plainArgs = base.find((o) => o.kind === 'StatefulSet' && o.metadata.name === 'etcd')!.spec.template.spec.containers[0].args;
    expect(c.args).toEqual(plainArgs);
    expect(c.args).toEqual(expect.arrayContaining(['--auto-compaction-mode=periodic', '--quota-backend-bytes=4294967296']));
  });

  it('maps each service certificate to an internal principal, and each broker’s to its own id', () => {
    const env = containerEnv(objects, workload('skein-metadata').spec.template.spec.containers[0]);
    const rules = parseMappingRules(env.get('SKEIN_SSL_PRINCIPAL_MAPPING_RULES')!);
    const internal = parsePrincipalList(env.get('SKEIN_INTERNAL_PRINCIPALS')!);
    const principal = (cn: string) => ({ type: 'User', name: mapPrincipalName({ subject: `CN=${cn}`, subjectAltNames: [] }, rules)! });
    for (const cn of ['skein-metadata', 'skein-group-coordinator', 'skein-broker-0', 'skein-broker-2']) expect(principalMatches(principal(cn), internal), cn).toBe(true);
    for (const cn of ['alice', 'skein-admin']) expect(principalMatches(principal(cn), internal), cn).toBe(false);
    expect(brokerIdOf(principal('skein-broker-2'), new RegExp(DEFAULT_BROKER_PRINCIPAL_PATTERN))).toBe(2);
    expect(principalMatches(principal('skein-admin'), parsePrincipalList(env.get('SKEIN_SUPER_USERS')!))).toBe(true);
  });
});

describe.skipIf(skipRender)('deploy/k8s component cert-manager on prod-tls', () => {
  const objects = renderWith('prod-tls', ['cert-manager']);
  const certificates = objects.filter((o) => o.kind === 'Certificate');
  const issuers = objects.filter((o) => o.kind === 'Issuer');
  const bySecret = (secret: string) => certificates.find((c) => c.spec.secretName === secret);
  const matchesName = (pattern: string, host: string) => pattern === host || (pattern.startsWith('*.') && host.slice(host.indexOf('.') + 1) === pattern.slice(2) && !host.slice(0, host.indexOf('.')).includes('*'));
  const covers = (cert: Obj, host: string) => (cert.spec.dnsNames ?? []).some((d: string) => matchesName(d, host));

  it('issues every Secret the workloads mount, from an Issuer in the overlay, with valid fields', () => {
    const workloads = objects.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet');
    const secrets = workloads.flatMap((w) => (w.spec.template.spec.volumes ?? []).flatMap((v: any) => [v.secret?.secretName, ...(v.projected?.sources ?? []).map((s: any) => s.secret?.name)]).filter(Boolean));
    expect(secrets.length).toBeGreaterThan(5);
    for (const s of secrets) expect(bySecret(s), `Certificate for Secret ${s}`).toBeDefined();
    const usages = ['signing', 'digital signature', 'content commitment', 'key encipherment', 'key agreement', 'data encipherment', 'cert sign', 'crl sign', 'encipher only', 'decipher only', 'any', 'server auth', 'client auth', 'code signing', 'email protection', 's/mime', 'ipsec end system', 'ipsec tunnel', 'ipsec user', 'timestamping', 'ocsp signing', 'microsoft sgc', 'netscape sgc'];
    for (const c of certificates) {
      expect(c.apiVersion).toBe('cert-manager.io/v1');
      expect(Object.keys(c).sort()).toEqual(['apiVersion', 'kind', 'metadata', 'spec']);
      expect(c.spec.secretName, c.metadata.name).toBeTruthy();
      expect(issuers.some((i) => i.metadata.name === c.spec.issuerRef.name && c.spec.issuerRef.kind === 'Issuer'), `${c.metadata.name} issuer`).toBe(true);
      for (const u of c.spec.usages ?? []) expect(usages, `${c.metadata.name} usage`).toContain(u);
    }
    for (const i of issuers) expect(i.spec.selfSigned ?? (i.spec.ca && bySecret(i.spec.ca.secretName)), i.metadata.name).toBeTruthy();
  });

  it('names each service as its principal and covers every address it is dialled at', () => {
    const ns = objects.find((o) => o.kind === 'Namespace')!.metadata.name;
    for (const n of [0, 1, 2]) {
      const cert = bySecret(`skein-broker-${n}-tls`)!;
      expect(cert.spec.commonName).toBe(`skein-broker-${n}`);
      expect(covers(cert, `skein-broker-${n}.skein-broker.${ns}.svc.cluster.local`), `broker ${n}`).toBe(true);
      expect(covers(cert, 'skein-bootstrap')).toBe(true);
      expect(cert.spec.usages).toEqual(expect.arrayContaining(['server auth', 'client auth']));
    }
    for (const name of ['skein-metadata', 'skein-group-coordinator']) {
      const cert = bySecret(`${name}-tls`)!;
      expect(cert.spec.commonName).toBe(name);
      expect(covers(cert, name), name).toBe(true);
      expect(covers(cert, `10-1-2-3.${ns}.pod.cluster.local`), `${name} pod DNS name`).toBe(true);
    }
    const config = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'skein-config')!;
    for (const endpoint of config.data!.SKEIN_ETCD_ENDPOINTS!.split(',')) expect(covers(bySecret('etcd-server-tls')!, endpoint.split(':')[0]!), endpoint).toBe(true);
    expect(covers(bySecret('etcd-server-tls')!, `etcd-0.etcd.${ns}.svc.cluster.local`)).toBe(true);
    // etcd trusts only its own CA: no Skein or user certificate opens it.
    expect(bySecret('etcd-server-tls')!.spec.issuerRef.name).not.toBe(bySecret('skein-metadata-tls')!.spec.issuerRef.name);
    expect(bySecret('etcd-client-tls')!.spec.issuerRef.name).toBe(bySecret('etcd-server-tls')!.spec.issuerRef.name);
    expect(bySecret('skein-admin-tls')!.spec.commonName).toBe('skein-admin');
  });
});

// Every optional component renders on prod, and any workload it adds runs in the restricted
// namespace (a pod that fails the standard is refused by the API server, not just warned about).
const COMPONENTS = readdirSync(join(root, 'deploy/k8s/components'), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
describe.skipIf(skipRender).each(COMPONENTS)('deploy/k8s component %s on prod', (component) => {
  it('renders, and every pod it adds passes the restricted Pod Security Standard with pinned images', () => {
    const objects = renderWith('prod', component === 'cert-manager' ? ['tls', component] : [component]);
    for (const w of objects.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet')) {
      expect(restrictedViolations(w.spec.template.spec), `${component}: ${w.metadata.name}`).toEqual([]);
      for (const c of w.spec.template.spec.containers) expect(c.image, `${component}: ${w.metadata.name}`).not.toMatch(/:latest$/);
    }
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
