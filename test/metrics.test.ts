// Operator metrics on a running cluster (metadata, three brokers, a group coordinator, each with
// --metrics-port 0): (1) every metric the alert rules and the Grafana dashboard name exists on a
// live /metrics once a little was produced, fetched and committed; the PrometheusRule and the plain
// rule file agree, and the monitoring component renders; (2) killing a follower moves the leader's
// under-replicated gauge and ISR-shrink counter and the controller's offline-partition gauge, and
// restarting it moves them back.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { Acks } from '@skein/proto/skein/broker/v1/broker.js';
import { GroupCoordinatorServiceClient } from '@skein/proto/skein/group/v1/group.js';
import { buildRecordBatch } from '@skein/common/records/record-batch.js';
import { startStores, type TestStores } from './harness/stores.js';
import { brokerClient, metadataClient, promisify, rejection } from './harness/clients.js';
import { startService, stopAll, waitFor, type ServiceProcess } from './harness/services.js';
import { BROKER_ENTRY, COORDINATOR_ENTRY, METADATA_ENTRY } from './harness/entries.js';
import { metricsUrl, scrape, total, type Sample } from './harness/metrics.js';
import { skipUnless } from './harness/requirements.js';

const root = new URL('..', import.meta.url).pathname;
const MONITORING = join(root, 'deploy/k8s/components/monitoring');
const skipRender = skipUnless({ url: import.meta.url, part: 'rendering the monitoring component' }, 'kubectl');

const RF3 = 'metrics-rf3';
const RF1 = 'metrics-rf1';
let stores: TestStores;
let metadata: ServiceProcess;
let coordinator: ServiceProcess;
let meta: ReturnType<typeof metadataClient>;
let groups: ReturnType<typeof promisify<GroupCoordinatorServiceClient>>;
const brokers = new Map<number, ServiceProcess>();
const clients = new Map<number, ReturnType<typeof brokerClient>>();

beforeAll(async () => {
  stores = await startStores();
  const prefix = `/metrics-${process.pid}/`;
  metadata = await startService({ name: 'metadata', entry: METADATA_ENTRY, args: [...stores.args('metadata', prefix), '--metrics-port', '0'] });
  meta = metadataClient(metadata.address);
  for (const id of [1, 2, 3]) {
    const b = await startService({ name: `broker-${id}`, entry: BROKER_ENTRY, dataDirFlag: '--data-dir', args: ['--broker-id', String(id), '--metadata-addresses', metadata.address, '--session-ttl-ms', '2000', '--replica-lag-time-max-ms', '1500', '--metrics-port', '0'] });
    brokers.set(id, b);
    clients.set(id, brokerClient(b.address));
  }
  coordinator = await startService({ name: 'coordinator', entry: COORDINATOR_ENTRY, args: [...stores.args('coordinator', prefix), '--metadata-addresses', metadata.address, '--metrics-port', '0'] });
  groups = promisify(new GroupCoordinatorServiceClient(coordinator.address, grpc.credentials.createInsecure()));
  await waitFor(async () => (await meta.getClusterMetadata({ topics: [] })).metadata!.brokers.length === 3, { timeoutMs: 15_000, message: 'three brokers registered' });
  await meta.createTopic({ name: RF3, partitions: 1, replicationFactor: 3, configs: {}, validateOnly: false });
  await meta.createTopic({ name: RF1, partitions: 3, replicationFactor: 1, configs: {}, validateOnly: false });
  await waitFor(async () => (await partitions(RF3))[0]!.isr.length === 3 && (await partitions(RF1)).every((p) => p.leaderId >= 0), { timeoutMs: 20_000, message: 'topics created with leaders and a full ISR' });
}, 90_000);

afterAll(async () => {
  for (const c of clients.values()) c.close();
  groups?.close();
  meta?.close();
  await stopAll();
  await stores?.stop();
});

const partitions = async (topic: string) => (await meta.describeTopic({ name: topic })).topic!.partitions;

async function scrapeAll(): Promise<Sample[]> {
  const procs = [metadata, coordinator, ...brokers.values()];
  return (await Promise.all(procs.map(async (p) => scrape(await metricsUrl(p))))).flat();
}

/** Produces to every partition of `topic` through its leader, waiting out leader moves. */
async function produce(topic: string, count: number): Promise<void> {
  for (const p of await partitions(topic)) {
    const batch = buildRecordBatch(Array.from({ length: count }, (_, i) => ({ key: `k${i}`, value: `v${i}`, timestampMs: Date.now() })));
    const res = await clients.get(p.leaderId)!.produce({ acks: Acks.ACKS_ALL, timeoutMs: 5000, topics: [{ topic, partitions: [{ partition: p.partition, batch }] }] });
    expect(res.topics[0]!.partitions[0]!.error).toBeUndefined();
  }
}

/** Metric names a PromQL expression refers to (recording rules, `skein:...`, are not on /metrics). */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\b((?:skein|process|nodejs)_[a-zA-Z0-9_]+)\b/g)].map((m) => m[1]!);
}

function ruleExpressions(groupsDoc: { groups: Array<{ rules: Array<{ expr: string }> }> }): string[] {
  return groupsDoc.groups.flatMap((g) => g.rules.map((r) => r.expr));
}

function dashboardExpressions(dashboard: { panels: Array<{ targets?: Array<{ expr: string }> }> }): string[] {
  return dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
}

describe('metrics on a live cluster', () => {
  it('has every metric the alert rules and the dashboard name, with labelled series', async () => {
    // Traffic so that the labelled series exist: produce, fetch, a produce and a fetch refused,
    // a group member that joins and commits, and a commit refused.
    await produce(RF3, 5);
    await produce(RF1, 5);
    const p0 = (await partitions(RF1))[0]!;
    const leader = clients.get(p0.leaderId)!;
    const fetched = await leader.fetch({ maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20, topics: [{ topic: RF1, partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1 << 20, currentLeaderEpoch: -1 }] }] });
    expect(fetched.topics[0]!.partitions[0]!.batches.length).toBeGreaterThan(0);
    const notLeader = [...clients.entries()].find(([id]) => id !== p0.leaderId)![1];
    const refused = await notLeader.produce({ acks: Acks.ACKS_ALL, timeoutMs: 1000, topics: [{ topic: RF1, partitions: [{ partition: 0, batch: buildRecordBatch([{ key: 'x', value: 'x', timestampMs: Date.now() }]) }] }] });
    expect(refused.topics[0]!.partitions[0]!.error?.reason).toBeDefined();
    const outOfRange = await leader.fetch({ maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20, topics: [{ topic: RF1, partitions: [{ partition: 0, fetchOffset: 1_000_000n, partitionMaxBytes: 1 << 20, currentLeaderEpoch: -1 }] }] });
    expect(outOfRange.topics[0]!.partitions[0]!.error?.reason).toBe('OFFSET_OUT_OF_RANGE');

    const group = `metrics-group-${process.pid}`;
    let member = await groups.heartbeat({ groupId: group, memberId: '', memberEpoch: 0, clientId: 'metrics-test', subscribedTopics: [RF1], subscribedTopicRegex: '', serverAssignor: '', ownedPartitions: [] });
    await waitFor(async () => {
      member = await groups.heartbeat({ groupId: group, memberId: member.memberId, memberEpoch: member.memberEpoch, clientId: 'metrics-test', subscribedTopics: [RF1], subscribedTopicRegex: '', serverAssignor: '', ownedPartitions: member.assignment });
      return member.assignment.flatMap((t) => t.partitions).length === 3;
    }, { timeoutMs: 10_000, message: 'the member owns all three partitions' });
    await groups.commitOffsets({ groupId: group, memberId: member.memberId, memberEpoch: member.memberEpoch, offsets: [0, 1, 2].map((partition) => ({ topic: RF1, partition, offset: 2n, metadata: '' })) });
    expect((await rejection(groups.commitOffsets({ groupId: group, memberId: member.memberId, memberEpoch: member.memberEpoch + 7, offsets: [{ topic: RF1, partition: 0, offset: 3n, metadata: '' }] }))).reason).toBe('STALE_MEMBER_EPOCH');

    const rules = parse(readFileSync(join(MONITORING, 'skein-alerts.rules.yaml'), 'utf8'));
    const dashboard = JSON.parse(readFileSync(join(MONITORING, 'skein-dashboard.json'), 'utf8'));
    const expressions = [...ruleExpressions(rules), ...dashboardExpressions(dashboard)];
    const referenced = new Set(expressions.flatMap(metricNames));
    // Sanity of the extraction itself: the alerts this issue asks for are there.
    for (const name of ['skein_broker_under_replicated_partitions', 'skein_metadata_offline_partitions', 'skein_metadata_controller_active', 'skein_coordinator_committed_offset_sum']) expect(referenced).toContain(name);

    let missing: string[] = [];
    await waitFor(async () => {
      const live = new Set((await scrapeAll()).map((s) => s.name));
      missing = [...referenced].filter((n) => !live.has(n));
      return missing.length === 0;
    }, { timeoutMs: 15_000, message: 'every referenced metric on a live /metrics' }).catch(() => undefined);
    expect(missing, 'metrics named by the rules or the dashboard but absent from every live /metrics').toEqual([]);

    // And the values reflect the traffic above.
    const samples = await scrapeAll();
    expect(total(samples, 'skein_broker_records_in_total', { topic: RF1 })).toBe(15);
    expect(total(samples, 'skein_broker_bytes_out_total', { topic: RF1 })).toBeGreaterThan(0);
    expect(total(samples, 'skein_broker_fetch_errors_total', { reason: 'OFFSET_OUT_OF_RANGE' })).toBe(1);
    expect(total(samples, 'skein_coordinator_offset_commits_total')).toBe(1);
    expect(total(samples, 'skein_coordinator_offset_commit_errors_total', { reason: 'STALE_MEMBER_EPOCH' })).toBe(1);
    expect(total(samples, 'skein_coordinator_committed_offset_sum', { group, topic: RF1 })).toBe(6);
    expect(total(samples, 'skein_metadata_controller_active')).toBe(1);
    expect(total(samples, 'skein_metadata_brokers_live')).toBe(3);
    expect(total(samples, 'skein_store_request_duration_seconds_count', { service: 'metadata' })).toBeGreaterThan(0);
  }, 60_000);

  it('ships the same alert rules as a plain rule file and as a PrometheusRule', () => {
    const plain = parse(readFileSync(join(MONITORING, 'skein-alerts.rules.yaml'), 'utf8'));
    const operator = parse(readFileSync(join(MONITORING, 'prometheus-rule.yaml'), 'utf8'));
    expect(operator.kind).toBe('PrometheusRule');
    expect(operator.spec).toEqual(plain);
  });

  it.skipIf(skipRender)('renders the monitoring component on the prod overlay: ServiceMonitor, rules and dashboard, metrics Services on pods that expose the port', () => {
    const dir = mkdtempSync(join(tmpdir(), 'skein-monitoring-'));
    try {
      // kustomize accepts only relative paths to other kustomizations.
      writeFileSync(join(dir, 'kustomization.yaml'), [
        'apiVersion: kustomize.config.k8s.io/v1beta1', 'kind: Kustomization',
        'resources:', `  - ${relative(dir, join(root, 'deploy/k8s/overlays/prod'))}`,
        'components:', `  - ${relative(dir, MONITORING)}`, '',
      ].join('\n'));
      const objects = parseAllDocuments(execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8' })).map((d) => d.toJSON());
      const monitor = objects.find((o) => o.kind === 'ServiceMonitor');
      const services = objects.filter((o) => o.kind === 'Service' && Object.entries(monitor.spec.selector.matchLabels).every(([k, v]) => o.metadata.labels?.[k] === v));
      expect(services.map((s) => s.metadata.name).sort()).toEqual(['skein-broker-metrics', 'skein-group-coordinator-metrics', 'skein-metadata-metrics']);
      const workloads = objects.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet');
      for (const s of services) {
        const pods = workloads.filter((w) => Object.entries(s.spec.selector).every(([k, v]) => w.spec.template.metadata.labels[k] === v));
        expect(pods).toHaveLength(1);
        const container = pods[0].spec.template.spec.containers[0];
        const port = container.ports.find((p: { name: string }) => p.name === 'metrics');
        expect(port, `${pods[0].metadata.name} exposes metrics`).toBeDefined();
        // The process serves /metrics on the port the pod declares and its annotations name.
        expect(container.env.find((e: { name: string }) => e.name === 'SKEIN_METRICS_PORT')?.value).toBe(String(port.containerPort));
        expect(pods[0].spec.template.metadata.annotations['prometheus.io/port']).toBe(String(port.containerPort));
      }
      expect(objects.find((o) => o.kind === 'PrometheusRule').spec).toEqual(parse(readFileSync(join(MONITORING, 'skein-alerts.rules.yaml'), 'utf8')));
      const dashboard = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.labels?.grafana_dashboard === '1');
      expect(JSON.parse(dashboard.data['skein-dashboard.json']).uid).toBe('skein-overview');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('replication metrics under a broker failure', () => {
  it('moves the under-replicated and offline gauges and the ISR counters when a follower is killed and restarted', async () => {
    const rf3 = (await partitions(RF3))[0]!;
    const leaderId = rf3.leaderId;
    // A follower of the RF3 partition that alone holds an RF1 partition: killing it makes that one offline.
    const rf1 = await partitions(RF1);
    const followerId = rf3.replicas.find((id) => id !== leaderId && rf1.some((p) => p.leaderId === id))!;
    expect(followerId, 'a follower that leads an RF1 partition').toBeDefined();
    const leader = brokers.get(leaderId)!;
    const follower = brokers.get(followerId)!;
    const leaderMetrics = async () => scrape(await metricsUrl(leader));
    const metadataMetrics = async () => scrape(await metricsUrl(metadata));

    const before = await leaderMetrics();
    expect(total(before, 'skein_broker_under_replicated_partitions')).toBe(0);
    expect(total(await metadataMetrics(), 'skein_metadata_offline_partitions')).toBe(0);
    const shrinksBefore = total(before, 'skein_broker_isr_shrinks_total');
    const expandsBefore = total(before, 'skein_broker_isr_expands_total');

    follower.kill(); // SIGKILL
    await follower.exited();
    await waitFor(async () => {
      const m = await leaderMetrics();
      return total(m, 'skein_broker_under_replicated_partitions') >= 1 && total(m, 'skein_broker_isr_shrinks_total') > shrinksBefore;
    }, { timeoutMs: 20_000, message: 'the leader reports the partition under-replicated and counts the ISR shrink' });
    await waitFor(async () => total(await metadataMetrics(), 'skein_metadata_offline_partitions') >= 1, { timeoutMs: 20_000, message: 'the controller reports the killed broker\'s RF1 partition offline' });
    const lag = total(await leaderMetrics(), 'skein_broker_replica_lag_seconds', { follower: String(followerId) });
    expect(lag).toBeGreaterThan(0);

    await follower.restart();
    await waitFor(async () => {
      const m = await leaderMetrics();
      return total(m, 'skein_broker_under_replicated_partitions') === 0 && total(m, 'skein_broker_isr_expands_total') > expandsBefore;
    }, { timeoutMs: 30_000, message: 'the follower back in the ISR: no under-replicated partition, the expand counted' });
    await waitFor(async () => total(await metadataMetrics(), 'skein_metadata_offline_partitions') === 0, { timeoutMs: 20_000, message: 'no offline partition once the broker is back' });
  }, 90_000);
});
