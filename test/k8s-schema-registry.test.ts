// deploy/k8s/components/schema-registry rendered on top of base (kubectl kustomize, offline): a
// Deployment, Service and PDB that validate as Kubernetes objects, run the registry's entry point
// with flags and SKEIN_* variables it knows, expose the ports it serves, and may reach etcd.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { Service } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { envName, flagName } from '@skein/common/config.js';
import { skipUnless } from './harness/requirements.js';

const root = new URL('..', import.meta.url).pathname;
const skip = skipUnless(import.meta.url, 'kubectl');
const dir = mkdtempSync(join(tmpdir(), 'skein-k8s-registry-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(skip)('the schema-registry component', async () => {
  const { registryConfigSchema } = (await import(join(root, 'services/schema-registry/dist/config.js'))) as { registryConfigSchema: Record<string, unknown> };
  writeFileSync(
    join(dir, 'kustomization.yaml'),
    `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ${relative(dir, join(root, 'deploy/k8s/base'))}\ncomponents:\n  - ${relative(dir, join(root, 'deploy/k8s/components/schema-registry'))}\n`,
  );
  const rendered = execFileSync('kubectl', ['kustomize', '--load-restrictor=LoadRestrictionsNone', dir], { encoding: 'utf8' });
  const objects = parseAllDocuments(rendered).map((d) => d.toJSON() as any);
  const find = (kind: string, name: string) => objects.find((o) => o.kind === kind && o.metadata.name === name);

  it('adds a valid Deployment, Service and PodDisruptionBudget', () => {
    const deployment = find('Deployment', 'skein-schema-registry');
    new Deployment(deployment).validate();
    new Service(find('Service', 'skein-schema-registry')).validate();
    new PodDisruptionBudget(find('PodDisruptionBudget', 'skein-schema-registry')).validate();
    expect(deployment.spec.replicas).toBeGreaterThanOrEqual(2);
    expect(find('PodDisruptionBudget', 'skein-schema-registry').spec.selector.matchLabels).toEqual(deployment.spec.selector.matchLabels);
  });

  it('runs the registry with flags and variables it reads, and serves the ports the Service names', () => {
    const c = find('Deployment', 'skein-schema-registry').spec.template.spec.containers[0];
    expect(c.command.join(' ')).toContain('services/schema-registry/dist/main.js');
    const flags = new Set(Object.keys(registryConfigSchema).map((k) => `--${flagName(k)}`));
    for (const a of c.args.filter((x: string) => x.startsWith('--'))) expect(flags.has(a), a).toBe(true);
    const vars = new Set(Object.keys(registryConfigSchema).map(envName));
    for (const e of c.env.filter((x: { name: string }) => x.name.startsWith('SKEIN_'))) expect(vars.has(e.name), e.name).toBe(true);
    const portOf = (flag: string) => Number(c.args[c.args.indexOf(flag) + 1]);
    const containerPorts = Object.fromEntries(c.ports.map((p: { name: string; containerPort: number }) => [p.name, p.containerPort]));
    expect(containerPorts.http).toBe(portOf('--rest-port'));
    expect(containerPorts.grpc).toBe(portOf('--port'));
    for (const p of find('Service', 'skein-schema-registry').spec.ports) expect(containerPorts[p.targetPort], p.name).toBe(p.port);
    // Probes use the plaintext health-only port, as every base workload (readiness keeps its meaning under mTLS).
    const healthPort = Number(c.env.find((e: { name: string }) => e.name === 'SKEIN_HEALTH_PORT').value);
    expect(containerPorts.health).toBe(healthPort);
    expect(c.readinessProbe.grpc.port).toBe(healthPort);
    expect(c.livenessProbe.grpc.port).toBe(healthPort);
  });

  it('lets the registry reach etcd, as the metadata service and coordinators do', () => {
    // The base names etcd's policy etcd-clients, or etcd where it denies by default.
    const policy = find('NetworkPolicy', 'etcd') ?? find('NetworkPolicy', 'etcd-clients');
    new NetworkPolicy(find('NetworkPolicy', 'skein-schema-registry')).validate();
    expect(find('NetworkPolicy', 'skein-schema-registry').spec.egress.flatMap((e: { ports: Array<{ port: number }> }) => e.ports.map((p) => p.port))).toEqual(
      expect.arrayContaining([9090, 2379, 53]),
    );
    new NetworkPolicy(policy).validate();
    const allowed = policy.spec.ingress[0].from.map(
      (f: { podSelector: { matchLabels: Record<string, string> } }) => f.podSelector.matchLabels['app.kubernetes.io/name'],
    );
    expect(allowed).toEqual(expect.arrayContaining(['skein-metadata', 'skein-group-coordinator', 'skein-schema-registry']));
  });
});
