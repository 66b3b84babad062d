// The grpcurl recipes in docs/operations.md, run as written against a real cluster (etcd, two
// metadata instances like the Deployment, brokers 0-2 and later 3, one group coordinator). grpcurl
// is not installed here, so test/harness/grpcurl.ts does what it does: reads the command line,
// asks the server's reflection service for descriptors, encodes -d with the proto3 JSON mapping
// (unknown fields refused) and prints proto3 JSON. The docs' host names map to the test's
// processes: a Service with several backends (skein-metadata, skein-bootstrap) must work on each of
// them, since the Service may pick any; skein-broker-N.skein-broker is broker N; $CONTROLLER is the
// controller's address. The test supplies what recipes need (the topic they read, a consumer
// group, a new broker to move a partition to, a broker restart) and checks real answers. Every
// recipe in the file must be run by some step here: a new recipe without a check fails the test.
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipUnless } from './harness/requirements.js';
import { parseAllDocuments } from 'yaml';
import { GroupConsumer, SkeinClient } from '@skein/client';
import { startEtcd, type EtcdCluster } from './harness/etcd.js';
import { startService, stopAll, waitFor, type ServiceProcess } from './harness/services.js';
import { metadataClient } from './harness/clients.js';
import { BROKER_ENTRY, COORDINATOR_ENTRY, METADATA_ENTRY } from './harness/entries.js';
import { askReflection, extractGrpcurlRecipes, GrpcurlError, runGrpcurl, type GrpcurlRecipe, type Linking } from './harness/grpcurl.js';

const skip = skipUnless(import.meta.url, 'etcd');

const ROOT = new URL('..', import.meta.url).pathname;
const DOC = 'docs/operations.md';
const BUF = join(ROOT, 'node_modules/.bin/buf');
/** What the recipes read and the test therefore creates. */
const TOPIC = 'orders';
const GROUP = 'billing';

/** What each role's reflection lists: its own services and health, nothing it does not serve. */
const LISTED: Record<string, string[]> = {
  metadata: ['grpc.health.v1.Health', 'skein.metadata.v1.ClientQuotaService', 'skein.metadata.v1.MetadataService'],
  broker: ['grpc.health.v1.Health', 'skein.broker.v1.BrokerService'],
  coordinator: ['grpc.health.v1.Health', 'skein.group.v1.GroupCoordinatorService', 'skein.txn.v1.TransactionCoordinatorService'],
};
const linking = (_symbol: string): Linking => 'grpcurl';

let etcd: EtcdCluster;
const metadata: ServiceProcess[] = [];
const brokers = new Map<number, ServiceProcess>();
let coordinator: ServiceProcess;
let meta: ReturnType<typeof metadataClient>;
let controllerAddress = '';
let recipes: GrpcurlRecipe[] = [];
/** Lines of the recipes run (a recipe with a variable known only later is extracted again then). */
const ran = new Set<number>();
/** `$LEADER` stays as written until the ListOffsets step knows the leader (see recipeWith). */
const LATER = { LEADER: '$LEADER' };
/** Steps later ones build on; a step whose prerequisite failed fails at once instead of timing out. */
const done = new Set<'topic'>();
const needs = (step: 'topic') => expect(done.has(step), `this step needs "${step}", which an earlier step did not achieve`).toBe(true);

beforeAll(async () => {
  etcd = await startEtcd({ members: 1 });
  const store = ['--store', `etcd://${etcd.endpoints.join(',')}`, '--prefix', `/grpcurl-${process.pid}/`];
  for (const name of ['metadata-a', 'metadata-b']) {
    metadata.push(await startService({ name, entry: METADATA_ENTRY, args: [...store, '--instance-id', name] }));
  }
  const metadataAddresses = metadata.map((m) => m.address).join(',');
  for (const id of [0, 1, 2]) await startBroker(id, metadataAddresses);
  meta = metadataClient(metadata[0]!.address);
  await waitFor(async () => {
    const m = (await meta.getClusterMetadata({ topics: [] })).metadata!;
    return m.brokers.length === 3 && m.controller !== undefined;
  }, { timeoutMs: 20_000, message: 'three brokers registered and a controller elected' });
  coordinator = await startService({ name: 'coordinator', entry: COORDINATOR_ENTRY, args: [...store, '--metadata-addresses', metadataAddresses] });
  const ep = (await meta.getClusterMetadata({ topics: [] })).metadata!.controller!.endpoint!;
  controllerAddress = `${ep.host}:${ep.port}`;
  recipes = extractGrpcurlRecipes(readFileSync(join(ROOT, DOC), 'utf8'), { CONTROLLER: controllerAddress, ...LATER });
  // Topics before orders, as on any cluster in use (npm start makes one): placement then no longer
  // makes broker 0 lead orders-0, which the ListOffsets recipe once took for granted.
  for (const name of ['warm-up-a', 'warm-up-b']) await meta.createTopic({ name, partitions: 1, replicationFactor: 1, configs: {}, validateOnly: false });
}, 120_000);

afterAll(async () => {
  meta?.close();
  await stopAll();
  await etcd?.stop();
});

async function startBroker(id: number, metadataAddresses: string): Promise<void> {
  brokers.set(id, await startService({ name: `broker-${id}`, entry: BROKER_ENTRY, dataDirFlag: '--data-dir', args: ['--broker-id', String(id), '--metadata-addresses', metadataAddresses, '--replica-log-read-enabled'] }));
}

// ---------------------------------------------------------------------------------------------
// Running recipes
// ---------------------------------------------------------------------------------------------

/** What a recipe does: "list", "describe <symbol>" or "<service>/<method>"; "[proto]" when it uses -proto. */
function targetOf(r: GrpcurlRecipe): string {
  const v = r.command.verb;
  const base = v.kind === 'invoke' ? `${v.service}/${v.method}` : v.symbol ? `${v.kind} ${v.symbol}` : v.kind;
  return r.command.protoFiles.length ? `${base} [proto]` : base;
}

/** The one recipe for `target` (the test fails if the docs have none or several). */
function recipe(target: string): GrpcurlRecipe {
  const found = recipes.filter((r) => targetOf(r) === target);
  expect(found.map((r) => `${DOC}:${r.line}`), `exactly one recipe in ${DOC} for ${target}`).toHaveLength(1);
  return found[0]!;
}

const where = (r: GrpcurlRecipe, backend?: string) => `${DOC}:${r.line}: ${r.text}${backend ? ` (on ${backend})` : ''}`;

/** The processes an address in the docs stands for. */
function backends(address: string): ServiceProcess[] {
  const [host, port] = address.split(':') as [string, string];
  const started = [...metadata, ...brokers.values(), coordinator].filter((p) => p.address === address);
  if (started.length) return started; // a variable ($CONTROLLER) expanded to a real address
  if (host === 'skein-metadata' && port === '9090') return metadata;
  if (host === 'skein-group-coordinator' && port === '9095') return [coordinator];
  if (host === 'skein-bootstrap' && port === '9092') return [...brokers.values()];
  const m = /^skein-broker-(\d+)\.skein-broker$/.exec(host);
  if (m && port === '9092') {
    const b = brokers.get(Number(m[1]));
    if (!b) throw new Error(`${address}: the test runs no broker ${m[1]} at this point`);
    return [b];
  }
  throw new Error(`the docs use ${address}, which this test does not map to a process`);
}

/** The recipe at `r`'s line, with variables only known now expanded. */
function recipeWith(r: GrpcurlRecipe, vars: Record<string, string>): GrpcurlRecipe {
  const again = extractGrpcurlRecipes(readFileSync(join(ROOT, DOC), 'utf8'), { CONTROLLER: controllerAddress, ...vars }).find((x) => x.line === r.line);
  expect(again, `${where(r)} is still there`).toBeDefined();
  return again!;
}

async function runOn(r: GrpcurlRecipe, backend: ServiceProcess) {
  ran.add(r.line);
  try {
    return await runGrpcurl(r.argv, { resolveAddress: () => backend.address, linking, cwd: ROOT, bufBinary: BUF, deadlineMs: 15_000 });
  } catch (err) {
    throw new Error(`${where(r, backend.name)} failed:\n${(err as Error).message}`);
  }
}

/** Runs a recipe on every backend of its address (a Service may route to any); returns each answer. */
async function runEach(r: GrpcurlRecipe): Promise<Array<{ backend: ServiceProcess; stdout: string; json: any }>> {
  const out = [];
  for (const backend of backends(r.command.address)) {
    const res = await runOn(r, backend);
    out.push({ backend, stdout: res.stdout, json: res.json as any });
  }
  return out;
}

const nonControllerFirst = (list: ServiceProcess[]) => [...list].sort((a, b) => Number(a.address === controllerAddress) - Number(b.address === controllerAddress));
const brokerIdOf = (b: { brokerId?: number }) => b.brokerId ?? 0; // proto3 JSON leaves out zeros
const partitionOf = (p: { partition?: number }) => p.partition ?? 0;

// ---------------------------------------------------------------------------------------------

describe.skipIf(skip)(`grpcurl recipes in ${DOC}`, () => {
  it('finds them all in code blocks, each on a host:port that deploy/k8s/base defines', () => {
    expect(recipes.length).toBeGreaterThanOrEqual(12);
    // A grpcurl command outside a code block would not be run here.
    const lines = readFileSync(join(ROOT, DOC), 'utf8').split('\n');
    const mentions = lines.map((l, i) => ({ l, n: i + 1 })).filter(({ l }) => /\bgrpcurl\s+-/.test(l)).map(({ n }) => n);
    expect(mentions).toEqual(recipes.map((r) => r.line));
    for (const r of recipes) expect(r.command.plaintext, `${where(r)}: the servers speak plaintext; without -plaintext grpcurl tries TLS`).toBe(true);

    const services = new Map<string, number[]>();
    for (const file of ['metadata.yaml', 'broker.yaml', 'coordinator.yaml']) {
      for (const doc of parseAllDocuments(readFileSync(join(ROOT, 'deploy/k8s/base', file), 'utf8'))) {
        const o = doc.toJS() as { kind?: string; metadata?: { name?: string }; spec?: { ports?: Array<{ port: number }> } };
        if (o.kind === 'Service') services.set(o.metadata!.name!, (o.spec?.ports ?? []).map((p) => p.port));
      }
    }
    for (const r of recipes) {
      if (r.text.includes('$')) continue; // an address from a variable, explained in the text
      const [host, port] = r.command.address.split(':') as [string, string];
      const service = /^skein-broker-\d+\.skein-broker$/.test(host) ? 'skein-broker' : host;
      expect(services.get(service), `${where(r)}: no Service ${service} in deploy/k8s/base`).toBeDefined();
      expect(services.get(service), `${where(r)}: Service ${service} has no port ${port}`).toContain(Number(port));
    }
  });

  it('list and describe: the metadata service shows its services, and the methods the recipes call', async () => {
    for (const { backend, stdout } of await runEach(recipe('list'))) {
      expect(stdout.trim().split('\n'), backend.name).toEqual(['grpc.health.v1.Health', 'skein.metadata.v1.ClientQuotaService', 'skein.metadata.v1.MetadataService']);
    }
    const called = recipes.map((r) => r.command.verb).flatMap((v) => (v.kind === 'invoke' && v.service === 'skein.metadata.v1.MetadataService' ? [v.method] : []));
    expect(called.length).toBeGreaterThan(0);
    for (const { backend, stdout } of await runEach(recipe('describe skein.metadata.v1.MetadataService'))) {
      expect(stdout, backend.name).toContain('skein.metadata.v1.MetadataService is a service:');
      for (const m of called) expect(stdout, `${backend.name}: ${m}`).toMatch(new RegExp(`rpc ${m} \\( \\.skein\\.metadata\\.v1\\.${m}Request \\) returns \\( \\.skein\\.metadata\\.v1\\.${m}Response \\);`));
    }
  });

  it('health checks: SERVING (a whole server, and a broker’s partitions entry while no partition log is offline)', async () => {
    const checks = recipes.filter((r) => targetOf(r) === 'grpc.health.v1.Health/Check');
    expect(checks.map((r) => r.command.address)).toContain('skein-metadata:9090');
    for (const r of checks) {
      for (const { backend, json } of await runEach(r)) expect(json, where(r, backend.name)).toEqual({ status: 'SERVING' });
    }
  });

  it('GetClusterMetadata lists the three brokers and names the controller', async () => {
    for (const { backend, json } of await runEach(recipe('skein.metadata.v1.MetadataService/GetClusterMetadata'))) {
      const m = json.metadata;
      expect(m.brokers.map(brokerIdOf), backend.name).toEqual([0, 1, 2]);
      for (const b of m.brokers) expect(`${b.endpoint.host}:${b.endpoint.port}`).toBe(brokers.get(brokerIdOf(b))!.address);
      expect(`${m.controller.endpoint.host}:${m.controller.endpoint.port}`, backend.name).toBe(controllerAddress);
      expect(metadata.map((p) => p.name)).toContain(m.controller.controllerId);
    }
  });

  it('CreateTopic creates orders: 6 partitions, 3 replicas each, the retention override (through either metadata instance)', async () => {
    const r = recipe('skein.metadata.v1.MetadataService/CreateTopic');
    // Any instance creates topics; run it on the one that is not the controller, the case that would break.
    const topic = ((await runOn(r, nonControllerFirst(backends(r.command.address))[0]!)).json as any).topic;
    expect(topic.name).toBe(TOPIC);
    expect(topic.replicationFactor).toBe(3);
    expect(topic.configs).toEqual({ 'retention.ms': '86400000' });
    expect(topic.partitions.map(partitionOf)).toEqual([0, 1, 2, 3, 4, 5]);
    for (const p of topic.partitions) expect([...p.replicas].sort()).toEqual([0, 1, 2]);
    done.add('topic');
  });

  it('DescribeTopic shows it, with the override among the effective configs', async () => {
    needs('topic');
    for (const { backend, json } of await runEach(recipe('skein.metadata.v1.MetadataService/DescribeTopic'))) {
      expect(json.topic.name, backend.name).toBe(TOPIC);
      expect(json.topic.partitions, backend.name).toHaveLength(6);
      expect(json.topic.configs).toEqual({ 'retention.ms': '86400000' });
      expect(json.configs).toContainEqual({ name: 'retention.ms', value: '86400000' }); // isDefault false: left out
    }
  });

  it('ListOffsets on the partition leader (LEADER from DescribeTopic) gives the high watermark; the other brokers refuse, naming the leader and its address', async () => {
    needs('topic');
    // What the docs say: LEADER is the leaderId DescribeTopic shows for the partition.
    const leader = (await meta.describeTopic({ name: TOPIC })).topic!.partitions[0]!.leaderId;
    expect(leader, 'on this cluster broker 0 does not lead orders-0 (the case the recipe once got wrong)').not.toBe(0);
    const r = recipeWith(recipe('skein.broker.v1.BrokerService/ListOffsets'), { LEADER: String(leader) });
    const client = new SkeinClient({ metadata: metadata.map((m) => m.address) });
    try {
      await waitFor(async () => {
        await client.produceBatch(TOPIC, 0, Array.from({ length: 5 }, (_, i) => ({ key: `k${i}`, value: `v${i}`, timestampMs: 1000 + i })));
        return true;
      }, { timeoutMs: 20_000, message: 'partition 0 of orders takes records' });
    } finally {
      client.close();
    }
    for (const { backend, json } of await runEach(r)) {
      const answer = json.topics[0].partitions[0];
      expect(answer.error, `${where(r, backend.name)} answered an error`).toBeUndefined();
      expect(answer.offset, backend.name).toBe('5');
    }
    expect(backends(r.command.address).map((b) => b.name)).toEqual([`broker-${leader}`]);
    // The others refuse, and their LeaderHint carries the leader's address (LeaderHint.leader_endpoint).
    const [host, port] = brokers.get(leader)!.address.split(':');
    for (const other of [...brokers.values()].filter((b) => b.name !== `broker-${leader}`)) {
      const refusedBy = ((await runOn(r, other)).json as any).topics[0].partitions[0];
      expect(refusedBy.error?.reason, other.name).toBe('NOT_LEADER_OR_FOLLOWER');
      expect(refusedBy.error?.leaderHint, other.name).toMatchObject({ leaderId: leader, leaderEndpoint: { host, port: Number(port) } });
    }
  });

  it("ReadReplicaLog on a follower gives its copy of the partition, byte for byte the leader's", async () => {
    needs('topic');
    const r = recipe('skein.broker.v1.BrokerService/ReadReplicaLog');
    const [follower] = backends(r.command.address);
    const leaderId = (await meta.describeTopic({ name: TOPIC })).topic!.partitions[0]!.leaderId;
    const leader = brokers.get(leaderId)!;
    expect(follower!.name, 'the recipe reads a follower').not.toBe(leader.name);
    // The follower has caught up (and learnt the high watermark) once its answer shows all 5 records.
    let copy: any;
    await waitFor(async () => {
      copy = (await runOn(r, follower!)).json;
      return copy.logEndOffset === '5' && copy.highWatermark === '5';
    }, { timeoutMs: 20_000, message: `${follower!.name} holds the 5 records of ${TOPIC}-0` });
    expect(copy.isLeader, 'proto3 JSON leaves out false').toBeUndefined();
    expect(brokerIdOf(copy)).toBe(Number(follower!.name.replace('broker-', '')));
    const original = (await runOn(r, leader)).json as any;
    expect(original.isLeader).toBe(true);
    expect(copy.batches).toEqual(original.batches);
    expect(copy.batches.map((b: any) => b.batch.length > 0)).toEqual(original.batches.map(() => true));
  });

  it(`ListGroups and DescribeGroup show a live consumer group (${GROUP}, made first with the TypeScript client)`, async () => {
    needs('topic');
    const client = new SkeinClient({ metadata: metadata.map((m) => m.address) });
    const consumer = new GroupConsumer(client, { groupId: GROUP, coordinator: [coordinator.address], topics: [TOPIC], clientId: 'grpcurl-recipes' });
    try {
      await consumer.run(() => {});
      await waitFor(() => consumer.assignment.length === 6, { timeoutMs: 20_000, message: 'the consumer owns all six partitions' });
      for (const { backend, json } of await runEach(recipe('skein.group.v1.GroupCoordinatorService/ListGroups'))) {
        expect(json.groups, backend.name).toContainEqual(expect.objectContaining({ groupId: GROUP, memberCount: 1 }));
      }
      for (const { backend, json } of await runEach(recipe('skein.group.v1.GroupCoordinatorService/DescribeGroup'))) {
        expect(json.groupId, backend.name).toBe(GROUP);
        expect(json.members).toHaveLength(1);
        const member = json.members[0];
        expect(member.clientId).toBe('grpcurl-recipes');
        expect(member.subscribedTopics).toEqual([TOPIC]);
        expect(member.assignment.flatMap((t: { topic: string; partitions: number[] }) => t.partitions.map((p) => `${t.topic}-${p}`)).sort()).toEqual([0, 1, 2, 3, 4, 5].map((p) => `${TOPIC}-${p}`));
      }
    } finally {
      await consumer.close();
      client.close();
    }
  });

  it('scale out: ReassignPartitions on the controller moves orders-0 onto the new broker 3; DescribeTopic shows when it is done', async () => {
    needs('topic');
    await startBroker(3, metadata.map((m) => m.address).join(','));
    await waitFor(async () => (await meta.getClusterMetadata({ topics: [] })).metadata!.brokers.length === 4, { timeoutMs: 20_000, message: 'broker 3 registered' });
    const r = recipe('skein.metadata.v1.MetadataService/ReassignPartitions');
    // A Service may route a call to any instance: try the one that is not the controller first.
    const started = ((await runOn(r, nonControllerFirst(backends(r.command.address))[0]!)).json as any).started;
    expect(started).toHaveLength(1);
    expect(started[0].topic).toBe(TOPIC);
    expect(started[0].state.targetReplicas).toEqual([3, 1, 2]);
    // "wait until DescribeTopic shows no targetReplicas", with the DescribeTopic recipe.
    const describeTopic = recipe('skein.metadata.v1.MetadataService/DescribeTopic');
    // What the docs say about the other instance: it refuses and names the controller.
    const other = metadata.find((m) => m.address !== controllerAddress)!;
    const refusal = await runOn(r, other).then(() => 'accepted', (err: Error) => err.message);
    expect(refusal, 'the instance that is not the controller refuses').toMatch(/FAILED_PRECONDITION[\s\S]*not the controller/);
    await waitFor(async () => {
      const p0 = ((await runOn(describeTopic, metadata[0]!)).json as any).topic.partitions.find((p: { partition?: number }) => partitionOf(p) === 0);
      return p0.targetReplicas === undefined && JSON.stringify(p0.replicas) === '[3,1,2]';
    }, { timeoutMs: 60_000, intervalMs: 250, message: 'the reassignment of orders-0 to [3,1,2] completes' });
  }, 90_000);

  it('rolling restart: after a broker restarts, ElectPreferredLeaders on the controller moves leadership back', async () => {
    needs('topic');
    await brokers.get(1)!.restart(); // SIGTERM: controlled shutdown moves its leadership away
    const partitions = async () => (await meta.describeTopic({ name: TOPIC })).topic!.partitions;
    await waitFor(async () => (await partitions()).every((p) => p.isr.length === p.replicas.length), { timeoutMs: 60_000, intervalMs: 250, message: 'broker 1 is back in every ISR' });
    const notPreferred = (await partitions()).filter((p) => p.leaderId !== p.replicas[0]).map((p) => p.partition);
    expect(notPreferred.length, 'after the restart some partitions are led by a replica that is not the preferred one').toBeGreaterThan(0);
    const r = recipe('skein.metadata.v1.MetadataService/ElectPreferredLeaders');
    const elected = ((await runOn(r, nonControllerFirst(backends(r.command.address))[0]!)).json as any).elected as Array<{ topic: string; state: { partition?: number } }>;
    expect(elected.map((e) => `${e.topic}-${partitionOf(e.state)}`).sort()).toEqual(notPreferred.map((p) => `${TOPIC}-${p}`).sort());
    await waitFor(async () => (await partitions()).every((p) => p.leaderId === p.replicas[0]), { timeoutMs: 10_000, message: 'every partition is led by its preferred replica' });
  }, 120_000);

  it('the workaround: calls with -import-path/-proto (types from the files, not from reflection), the health check included', async () => {
    const live = (await meta.getClusterMetadata({ topics: [] })).metadata!.brokers.map((b) => b.brokerId);
    for (const { backend, json } of await runEach(recipe('skein.metadata.v1.MetadataService/GetClusterMetadata [proto]'))) {
      expect(json.metadata.brokers.map(brokerIdOf), backend.name).toEqual(live);
      expect(json.metadata.topics.map((t: { name: string }) => t.name), backend.name).toContain(TOPIC);
    }
    for (const { backend, json } of await runEach(recipe('grpc.health.v1.Health/Check [proto]'))) expect(json, backend.name).toEqual({ status: 'SERVING' });
    // grpcurl asks the server for nothing with -proto: a service outside the files is not found.
    const outside = recipes.find((r) => targetOf(r) === 'grpc.health.v1.Health/Check' && r.command.address === 'skein-metadata:9090')!;
    const argv = ['grpcurl', '-import-path', 'proto', '-proto', 'skein/metadata/v1/metadata.proto', ...outside.argv.slice(1)];
    const refused = await runGrpcurl(argv, { resolveAddress: () => metadata[0]!.address, cwd: ROOT, bufBinary: BUF }).then(() => 'answered', (e: GrpcurlError) => e.message);
    expect(refused).toContain('target server does not expose service "grpc.health.v1.Health"');
  });

  it('reflection lists each role’s own services, and grpcurl links every one of their descriptors', async () => {
    const servers = { metadata: metadata[0]!, broker: brokers.get(0)!, coordinator };
    for (const [role, server] of Object.entries(servers)) {
      const listed = (await runGrpcurl(['grpcurl', '-plaintext', server.address, 'list'], { resolveAddress: (a) => a })).stdout.trim().split('\n');
      expect(listed.sort(), role).toEqual(LISTED[role]);
      for (const symbol of listed) {
        const described = await runGrpcurl(['grpcurl', '-plaintext', server.address, 'describe', symbol], { resolveAddress: (a) => a, linking: 'grpcurl' });
        expect(described.stdout, `${role} ${symbol}`).toContain(`service ${symbol.split('.').pop()} {`);
      }
    }
  });

  it('reflection answers extension-number queries of messages without extensions with an empty list (grpcurl < 1.8.8 otherwise prints error details as base64)', async () => {
    const servers = { metadata: metadata[0]!, broker: brokers.get(0)!, coordinator };
    // What grpcurl decodes when a call fails: google.rpc.Status and its details, then the answers.
    const messages = ['google.rpc.Status', 'google.rpc.ErrorInfo', 'skein.common.v1.LeaderHint', 'skein.common.v1.OffsetRangeHint', 'skein.metadata.v1.ClusterMetadata', 'skein.group.v1.DescribeGroupResponse', 'grpc.health.v1.HealthCheckResponse'];
    for (const [role, server] of Object.entries(servers)) {
      for (const version of ['v1', 'v1alpha'] as const) {
        for (const type of messages) {
          expect(await askReflection(server.address, { allExtensionNumbersOfType: type }, version), `${role} ${version} ${type}`).toEqual({ kind: 'extensionNumbers', baseTypeName: type, numbers: [] });
        }
        // Names that are not messages stay NOT_FOUND, as from Go's reflection.
        for (const name of ['skein.no.such.Message', 'skein.metadata.v1.MetadataService']) {
          expect(await askReflection(server.address, { allExtensionNumbersOfType: name }, version), `${role} ${version} ${name}`).toMatchObject({ kind: 'error', code: grpc.status.NOT_FOUND });
        }
      }
    }
  });

  it('internal messages (skein.broker.internal.v1) are not resolvable by reflection on any role', async () => {
    const servers = { metadata: metadata[0]!, broker: brokers.get(0)!, coordinator };
    for (const [role, server] of Object.entries(servers)) {
      for (const version of ['v1', 'v1alpha'] as const) {
        for (const symbol of ['skein.broker.internal.v1.ProduceRequestWire', 'skein.broker.internal.v1.FetchedBatchWire', 'skein.broker.internal.v1']) {
          expect(await askReflection(server.address, { fileContainingSymbol: symbol }, version), `${role} ${version} ${symbol}`).toMatchObject({ kind: 'error', code: grpc.status.NOT_FOUND });
        }
        expect(await askReflection(server.address, { fileByFilename: 'skein/broker/internal/v1/wire.proto' }, version), `${role} ${version}`).toMatchObject({ kind: 'error', code: grpc.status.NOT_FOUND });
        // Their public twins resolve.
        expect((await askReflection(server.address, { fileContainingSymbol: 'skein.broker.v1.ProduceRequest' }, version)).kind, `${role} ${version}`).toBe('files');
      }
    }
  });

  it(`every grpcurl recipe in ${DOC} was run`, () => {
    expect(recipes.filter((r) => !ran.has(r.line)).map((r) => where(r))).toEqual([]);
  });
});
