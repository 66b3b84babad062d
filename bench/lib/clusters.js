// Clusters on 127.0.0.1 with temp dirs, registered for cleanup (bench/lib/processes.js):
// - Skein: a metadata service (embedded store, or etcd from the test harness) and N brokers, each
//   a separate process, started from the built dist/main.js;
// - NATS JetStream: one nats-server, or three in a cluster (-cluster / -routes), each with its own
//   store dir and server name.
// Each returns the pids that count as "the server" for RSS and CPU: brokers for Skein (metadata and
// etcd are off the data path), every nats-server for NATS.
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { connect, StorageType } from 'nats';
import { Acks, BrokerServiceClient, OffsetSpec } from '@skein/proto/skein/broker/v1/broker.js';
import { MetadataServiceClient } from '@skein/proto/skein/metadata/v1/metadata.js';
import { startEtcd } from '../../test/dist/etcd.js';
import { freePort } from '../../test/dist/ports.js';
import { healthCheck } from '../../test/dist/services.js';
import { waitFor } from '../../test/dist/wait.js';
import { onCleanup, removeDir, spawnLogged, stopChild, tail, tempDir } from './processes.js';

const root = new URL('../../', import.meta.url).pathname;
const unary = (c, method, req, ms = 30_000) =>
  new Promise((resolve, reject) => c[method](req, new grpc.Metadata(), { deadline: Date.now() + ms }, (e, v) => (e ? reject(e) : resolve(v))));

async function startNodeService({ name, entry, args, dir, execArgv = [] }) {
  const port = await freePort();
  const logFile = join(dir, `${name}.log`);
  const child = spawnLogged(name, process.execPath, [...execArgv, entry, '--port', String(port), ...args], { logFile });
  const exited = new Promise((_, reject) => child.once('exit', (c, s) => reject(new Error(`${name} exited during start-up (${s ?? c})`))));
  exited.catch(() => undefined);
  try {
    await Promise.race([
      waitFor(async () => (await healthCheck(`127.0.0.1:${port}`)) === 'SERVING', { timeoutMs: 30_000, intervalMs: 100, message: `${name} answers SERVING` }),
      exited,
    ]);
  } catch (e) {
    throw new Error(`${e.message}\n--- ${name} log ---\n${tail(logFile)}`);
  }
  return { name, child, pid: child.pid, port, address: `127.0.0.1:${port}`, logFile };
}

/**
 * Skein: `brokers` broker processes; the metadata store is etcd when `etcd` is true (always for
 * more than one broker, as in production), else the metadata service's embedded store.
 * `profileDir` runs every broker under `node --cpu-prof` (profiles are written at graceful exit).
 * `brokerEntry` swaps in another build of the broker (a patched copy, to try a fix side by side).
 */
export async function startSkein({ brokers = 1, etcd = brokers > 1, profileDir, label = `skein-${brokers}b`, brokerEntry = `${root}services/broker/dist/main.js` }) {
  const dir = tempDir(label);
  const started = [];
  let etcdCluster;
  const stop = async () => {
    // Brokers first (they unregister from the metadata service on SIGTERM), then metadata, etcd.
    await Promise.all(started.filter((s) => s.role === 'broker').map((s) => stopChild(s.child, 15_000)));
    await Promise.all(started.filter((s) => s.role !== 'broker').map((s) => stopChild(s.child, 5000)));
    await etcdCluster?.stop();
    removeDir(dir);
  };
  onCleanup(stop);
  let store = `embedded:${join(dir, 'metadata', 'store.db')}`;
  if (etcd) {
    etcdCluster = await startEtcd({ members: 1 });
    store = `etcd://${etcdCluster.endpoints.join(',')}`;
  }
  const metadata = await startNodeService({
    name: 'metadata', entry: `${root}services/metadata/dist/main.js`, dir,
    args: ['--store', store, '--prefix', `/bench-${process.pid}-${Date.now()}/`, '--log-level', 'warn'],
  });
  started.push({ role: 'metadata', ...metadata });
  const meta = new MetadataServiceClient(metadata.address, grpc.credentials.createInsecure());
  const brokerList = [];
  for (let id = 1; id <= brokers; id++) {
    const b = await startNodeService({
      name: `broker-${id}`, entry: brokerEntry, dir,
      execArgv: profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir, '--cpu-prof-name', `${label}-broker-${id}.cpuprofile`] : [],
      args: ['--broker-id', String(id), '--data-dir', join(dir, `broker-${id}`), '--metadata-addresses', metadata.address, '--log-level', 'warn'],
    });
    started.push({ role: 'broker', ...b });
    brokerList.push({ id, ...b, client: new BrokerServiceClient(b.address, grpc.credentials.createInsecure()) });
  }
  await waitFor(async () => (await unary(meta, 'getClusterMetadata', { topics: [] })).metadata.brokers.length === brokers, { timeoutMs: 20_000, message: `${brokers} broker(s) registered` });
  const byId = new Map(brokerList.map((b) => [b.id, b]));

  async function partitions(topic) {
    return (await unary(meta, 'describeTopic', { name: topic })).topic.partitions;
  }

  return {
    kind: 'skein',
    label,
    store: etcd ? 'etcd' : 'embedded',
    metadataAddress: metadata.address,
    brokers: brokerList,
    serverPids: () => brokerList.map((b) => b.pid),
    /** Creates a topic and waits until every partition's leader serves it (and, for RF > 1, the full ISR). */
    async createTopic(name, { partitions: count = 1, replicationFactor = 1, configs = {} } = {}) {
      await unary(meta, 'createTopic', { name, partitions: count, replicationFactor, configs, validateOnly: false });
      await waitFor(async () => {
        const ps = await partitions(name);
        if (ps.length !== count || ps.some((p) => p.leaderId < 0 || p.isr.length < replicationFactor)) return false;
        const byLeader = new Map();
        for (const p of ps) byLeader.set(p.leaderId, [...(byLeader.get(p.leaderId) ?? []), { partition: p.partition, spec: OffsetSpec.OFFSET_SPEC_LATEST, timestampMs: 0n }]);
        for (const [leaderId, parts] of byLeader) {
          const r = await unary(byId.get(leaderId).client, 'listOffsets', { topics: [{ topic: name, partitions: parts }] });
          if (r.topics[0].partitions.some((p) => p.error)) return false;
        }
        return true;
      }, { timeoutMs: 60_000, intervalMs: 50, message: `topic ${name} is served by its leaders` });
    },
    /** Leader address of each partition, in partition order. */
    async leaders(topic) {
      return (await partitions(topic)).sort((a, b) => a.partition - b.partition).map((p) => byId.get(p.leaderId).address);
    },
    async highWatermark(topic, partition = 0) {
      const [address] = (await this.leaders(topic)).slice(partition, partition + 1);
      const b = brokerList.find((x) => x.address === address);
      const r = await unary(b.client, 'listOffsets', { topics: [{ topic, partitions: [{ partition, spec: OffsetSpec.OFFSET_SPEC_LATEST, timestampMs: 0n }] }] });
      return Number(r.topics[0].partitions[0].offset);
    },
    /** Unary Produce of one prepared batch per partition of `topic` (used to touch many partitions). */
    async produceOnce(address, topic, partitionBatches) {
      const b = brokerList.find((x) => x.address === address);
      const r = await unary(b.client, 'produce', { acks: Acks.ACKS_LEADER, timeoutMs: 30_000, topics: [{ topic, partitions: partitionBatches }] });
      const bad = r.topics[0].partitions.find((p) => p.error);
      if (bad) throw new Error(`produce to ${topic}-${bad.partition}: ${bad.error.reason} ${bad.error.message}`);
    },
    async stop() {
      meta.close();
      for (const b of brokerList) b.client.close();
      await stop();
    },
  };
}

/** NATS JetStream with file storage: one server, or `replicas` servers clustered on loopback. */
export async function startNats({ replicas = 1, label = `nats-r${replicas}` }) {
  const dir = tempDir(label);
  const servers = [];
  const stop = async () => {
    await Promise.all(servers.map((s) => stopChild(s.child, 10_000)));
    removeDir(dir);
  };
  onCleanup(stop);
  const ports = [];
  for (let i = 0; i < replicas; i++) ports.push({ client: await freePort(), cluster: replicas > 1 ? await freePort() : 0 });
  for (let i = 0; i < replicas; i++) {
    const name = `n${i + 1}`;
    const args = ['-js', '-a', '127.0.0.1', '-p', String(ports[i].client), '-sd', join(dir, name), '--server_name', name];
    if (replicas > 1) {
      args.push('--cluster_name', 'bench', '--cluster', `nats://127.0.0.1:${ports[i].cluster}`,
        '--routes', ports.filter((_, j) => j !== i).map((p) => `nats://127.0.0.1:${p.cluster}`).join(','));
    }
    const logFile = join(dir, `${name}.log`);
    const child = spawnLogged(`nats-${name}`, 'nats-server', args, { logFile });
    servers.push({ name, child, pid: child.pid, url: `127.0.0.1:${ports[i].client}`, logFile });
  }
  const urls = servers.map((s) => s.url);
  const nc = await waitForValue(() => connect({ servers: urls, timeout: 1000 }), 20_000, 'nats-server accepts connections', servers[0].logFile);
  const jsm = await nc.jetstreamManager({ checkAPI: false });
  // A cluster answers JetStream API calls only once its meta group has a leader.
  await waitForValue(() => jsm.getAccountInfo(), 30_000, 'JetStream is ready', servers[0].logFile);
  return {
    kind: 'nats',
    label,
    urls,
    serverPids: () => servers.map((s) => s.pid),
    /** A file-storage stream with one subject of the same name. */
    async createStream(name, { replicas: r = replicas } = {}) {
      await waitForValue(() => jsm.streams.add({ name, subjects: [name], storage: StorageType.File, num_replicas: r }), 30_000, `stream ${name} created`, servers[0].logFile);
    },
    async streamMessages(name) {
      return (await jsm.streams.info(name)).state.messages;
    },
    async stop() {
      await nc.close();
      await stop();
    },
  };
}

async function waitForValue(fn, timeoutMs, message, logFile) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      return await fn();
    } catch (e) {
      last = e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`timed out waiting until ${message} (${last?.message})\n--- log ---\n${tail(logFile)}`);
}
