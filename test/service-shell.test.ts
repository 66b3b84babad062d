// The one service shell (libs/common/src/service-shell.ts) in real processes: every role serves TLS
// and /metrics when configured, and refuses configuration it does not honour.
//
// TLS: a throwaway CA signs one server certificate (localhost, 127.0.0.1) used by every service.
// Every service serves TLS, and so dials TLS (issue 14: a service serving TLS dials the others
// with TLS, verified against --tls-ca-file, presenting its own certificate): the broker and the
// coordinator register with the cluster's metadata service over TLS. A second, standalone
// metadata service (own embedded store) shows the same for a lone process. mTLS on every hop,
// etcd included, and rotation are test/secure-cluster.test.ts.
//
// No unhandled rejection: every process runs with --unhandled-rejections=strict, under which an
// unhandled rejection becomes an uncaught exception and the shell exits 1. After a workload that
// also breaks streams off mid-flight, each process must still stop gracefully with exit code 0.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRecordBatch } from '@skein/common/records/record-batch.js';
import { Acks, BrokerServiceClient, type ProduceStreamResponse } from '@skein/proto/skein/broker/v1/broker.js';
import { GroupCoordinatorServiceClient } from '@skein/proto/skein/group/v1/group.js';
import { MetadataServiceClient } from '@skein/proto/skein/metadata/v1/metadata.js';
import { promisify, rejection } from './harness/clients.js';
import { BROKER_ENTRY, COORDINATOR_ENTRY, METADATA_ENTRY } from './harness/entries.js';
import { stopChild, track } from './harness/processes.js';
import { skipUnless } from './harness/requirements.js';
import { healthCheck, startService, stopAll, waitFor, type ServiceProcess } from './harness/services.js';

const ENTRIES = { metadata: METADATA_ENTRY, broker: BROKER_ENTRY, 'group-coordinator': COORDINATOR_ENTRY } as const;
const dir = mkdtempSync(join(tmpdir(), 'skein-shell-'));

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Creates a CA and a server certificate for localhost and 127.0.0.1 signed by it; returns the paths. */
function makeCertificates(): { caFile: string; certFile: string; keyFile: string } {
  const p = (name: string) => join(dir, name);
  const openssl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', p('ca.key'), '-out', p('ca.crt'), '-days', '1', '-subj', '/CN=skein test CA']);
  openssl(['req', ...ec, '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', '/CN=localhost']);
  writeFileSync(p('server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  openssl(['x509', '-req', '-in', p('server.csr'), '-CA', p('ca.crt'), '-CAkey', p('ca.key'), '-set_serial', '1', '-days', '1', '-extfile', p('server.ext'), '-out', p('server.crt')]);
  return { caFile: p('ca.crt'), certFile: p('server.crt'), keyFile: p('server.key') };
}

/** The /metrics port a service logged at start ("metrics on /metrics", --metrics-port 0). */
async function metricsPort(service: ServiceProcess): Promise<number> {
  let port: number | undefined;
  await waitFor(() => {
    for (const line of readFileSync(service.logFile, 'utf8').split('\n')) {
      if (!line.includes('metrics on /metrics')) continue;
      port = (JSON.parse(line) as { port: number }).port;
      return true;
    }
    return false;
  }, { timeoutMs: 10_000, message: `${service.name} logs its /metrics port` });
  return port!;
}

/** Asserts that /metrics counts at least one completed call of `method` (with the status code label). */
async function expectHandled(service: ServiceProcess, method: string): Promise<void> {
  const port = await metricsPort(service);
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('skein_grpc_server_handled_total{') && l.includes(`method="${method}"`) && l.includes('code="OK"'));
  expect(line, `${service.name} /metrics:\n${text.slice(0, 2000)}`).toBeDefined();
  expect(Number(line!.split(' ').pop())).toBeGreaterThanOrEqual(1);
}

const noOpenssl = skipUnless({ url: import.meta.url, part: 'TLS and /metrics' }, 'openssl');

describe.skipIf(noOpenssl)('TLS and /metrics on every service', () => {
  let tls: ReturnType<typeof makeCertificates>;
  let creds: grpc.ChannelCredentials;
  const plain = grpc.credentials.createInsecure();
  let metadata: ServiceProcess;
  let tlsMetadata: ServiceProcess;
  let broker: ServiceProcess;
  let coordinator: ServiceProcess;

  beforeAll(async () => {
    tls = makeCertificates();
    creds = grpc.credentials.createSsl(readFileSync(tls.caFile));
    const tlsArgs = ['--tls-cert-file', tls.certFile, '--tls-key-file', tls.keyFile, '--tls-ca-file', tls.caFile, '--metrics-port', '0'];
    const store = (name: string) => ['--store', `embedded:${join(dir, `${name}.db`)}`];
    const env = { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --unhandled-rejections=strict`.trim() };
    metadata = await startService({ name: 'metadata', entry: METADATA_ENTRY, env, args: [...store('metadata'), ...tlsArgs], credentials: creds });
    [tlsMetadata, broker, coordinator] = await Promise.all([
      startService({ name: 'metadata-tls', entry: METADATA_ENTRY, env, args: [...store('metadata-tls'), ...tlsArgs], credentials: creds }),
      startService({
        name: 'broker-1', entry: BROKER_ENTRY, dataDirFlag: '--data-dir', credentials: creds, env,
        args: ['--broker-id', '1', '--metadata-addresses', metadata.address, ...tlsArgs],
      }),
      startService({
        name: 'coordinator', entry: COORDINATOR_ENTRY, credentials: creds, env,
        args: [...store('coordinator'), '--metadata-addresses', metadata.address, ...tlsArgs],
      }),
    ]);
  }, 90_000);

  afterAll(async () => {
    await stopAll();
  });

  it('the metadata service answers a TLS client, refuses plaintext, and counts the call on /metrics', async () => {
    expect(await healthCheck(tlsMetadata.address, '', 5000, creds)).toBe('SERVING');
    const client = promisify(new MetadataServiceClient(tlsMetadata.address, creds));
    const plainClient = promisify(new MetadataServiceClient(tlsMetadata.address, plain));
    try {
      expect((await client.getClusterMetadata({ topics: [] })).metadata).toBeDefined();
      expect((await rejection(plainClient.getClusterMetadata({ topics: [] }, { deadlineMs: 3000 }))).code).toBe(grpc.status.UNAVAILABLE);
    } finally {
      client.close();
      plainClient.close();
    }
    await expect(healthCheck(tlsMetadata.address, '', 3000, plain)).rejects.toThrow();
    await expectHandled(tlsMetadata, 'GetClusterMetadata');
  });

  it('the broker answers a TLS client, refuses plaintext, and counts the call on /metrics', async () => {
    expect(await healthCheck(broker.address, '', 5000, creds)).toBe('SERVING');
    const client = promisify(new BrokerServiceClient(broker.address, creds));
    const plainClient = promisify(new BrokerServiceClient(broker.address, plain));
    try {
      const res = await client.getMetadata({ topics: [] });
      expect(res.metadata!.brokers.map((b) => b.brokerId)).toContain(1);
      expect((await rejection(plainClient.getMetadata({ topics: [] }, { deadlineMs: 3000 }))).code).toBe(grpc.status.UNAVAILABLE);
    } finally {
      client.close();
      plainClient.close();
    }
    await expect(healthCheck(broker.address, '', 3000, plain)).rejects.toThrow();
    await expectHandled(broker, 'GetMetadata');
  });

  it('the group coordinator answers a TLS client, refuses plaintext, and counts the call on /metrics', async () => {
    expect(await healthCheck(coordinator.address, '', 5000, creds)).toBe('SERVING');
    const client = promisify(new GroupCoordinatorServiceClient(coordinator.address, creds));
    const plainClient = promisify(new GroupCoordinatorServiceClient(coordinator.address, plain));
    try {
      expect((await client.listGroups({})).groups).toEqual([]);
      expect((await rejection(plainClient.listGroups({}, { deadlineMs: 3000 }))).code).toBe(grpc.status.UNAVAILABLE);
    } finally {
      client.close();
      plainClient.close();
    }
    await expect(healthCheck(coordinator.address, '', 3000, plain)).rejects.toThrow();
    await expectHandled(coordinator, 'ListGroups');
  });

  it("the cluster's metadata service counts the broker's RegisterBroker, made over TLS, on /metrics", async () => {
    await expectHandled(metadata, 'RegisterBroker');
  });

  it('after produce, fetch, groups and streams broken off mid-flight, every process stops gracefully (exit 0): no unhandled rejection', async () => {
    const topic = `shell-${process.pid}`;
    const meta = promisify(new MetadataServiceClient(metadata.address, creds));
    const brokerRaw = new BrokerServiceClient(broker.address, creds);
    const brokerApi = promisify(brokerRaw);
    const groupsRaw = new GroupCoordinatorServiceClient(coordinator.address, creds);
    const groupsApi = promisify(groupsRaw);
    const batch = (value: string) => buildRecordBatch([{ key: 'k', value, timestampMs: Date.now() }]);
    try {
      await meta.createTopic({ name: topic, partitions: 1, replicationFactor: 1, configs: {}, validateOnly: false });
      await waitFor(async () => {
        const res = await brokerApi.produce({ acks: Acks.ACKS_LEADER, timeoutMs: 5000, topics: [{ topic, partitions: [{ partition: 0, batch: batch('first') }] }] });
        return res.topics[0]!.partitions[0]!.error === undefined;
      }, { timeoutMs: 20_000, message: `broker 1 leads ${topic}-0` });

      // A ProduceStream the client cancels while answers are still due, then one it ends properly.
      const cancelled = brokerRaw.produceStream();
      cancelled.on('error', () => undefined);
      const firstAnswer = new Promise<void>((resolve) => cancelled.once('data', () => resolve()));
      for (let i = 0; i < 20; i++) cancelled.write({ correlationId: BigInt(i), acks: Acks.ACKS_ALL, timeoutMs: 5000, topics: [{ topic, partitions: [{ partition: 0, batch: batch(`c${i}`) }] }] });
      await firstAnswer;
      cancelled.cancel();
      const ended = brokerRaw.produceStream();
      const answers: bigint[] = [];
      ended.on('data', (r: ProduceStreamResponse) => answers.push(r.correlationId));
      const done = new Promise<void>((resolve, reject) => { ended.on('end', resolve); ended.on('error', reject); });
      for (let i = 0; i < 5; i++) ended.write({ correlationId: BigInt(i), acks: Acks.ACKS_LEADER, timeoutMs: 5000, topics: [{ topic, partitions: [{ partition: 0, batch: batch(`e${i}`) }] }] });
      ended.end();
      await done;
      expect(answers).toEqual([0n, 1n, 2n, 3n, 4n]);
      const fetched = await brokerApi.fetch({ maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20, topics: [{ topic, partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1 << 20, currentLeaderEpoch: -1 }] }] });
      expect(fetched.topics[0]!.partitions[0]!.error).toBeUndefined();

      // Groups: a commit on the empty group, a member joining, and a session stream broken off.
      const group = `shell-group-${process.pid}`;
      await groupsApi.commitOffsets({ groupId: group, memberId: '', memberEpoch: -1, offsets: [{ topic, partition: 0, offset: 1n, metadata: '' }] });
      const joined = await groupsApi.heartbeat({ groupId: group, memberId: '', memberEpoch: 0, clientId: 'shell-test', subscribedTopics: [topic], subscribedTopicRegex: '', serverAssignor: '', ownedPartitions: [] });
      expect(joined.memberEpoch).toBeGreaterThan(0);
      const session = groupsRaw.session();
      session.on('error', () => undefined);
      const sessionAnswer = new Promise<void>((resolve) => session.once('data', () => resolve()));
      session.write({ heartbeat: { groupId: group, memberId: joined.memberId, memberEpoch: joined.memberEpoch, clientId: 'shell-test', subscribedTopics: [topic], subscribedTopicRegex: '', serverAssignor: '', ownedPartitions: [] } });
      await sessionAnswer;
      session.cancel();
    } finally {
      meta.close();
      brokerApi.close();
      groupsApi.close();
    }

    for (const service of [coordinator, broker, tlsMetadata, metadata]) {
      await service.stop();
      const { code, signal } = await service.exited();
      const log = readFileSync(service.logFile, 'utf8');
      expect({ service: service.name, code, signal }).toEqual({ service: service.name, code: 0, signal: null });
      expect(log).not.toMatch(/unhandled rejection|uncaught exception|UnhandledPromiseRejection/i);
    }
  });
});

describe('configuration a service does not honour', () => {
  for (const [name, entry] of Object.entries(ENTRIES)) {
    it(`${name}: an unknown flag stops start-up with exit 2 naming it`, () => {
      const run = spawnSync(process.execPath, [entry, '--no-such-key', '1'], { encoding: 'utf8', timeout: 20_000 });
      expect(run.status, run.stderr).toBe(2);
      expect(run.stderr).toContain(`skein-${name}`);
      expect(run.stderr).toContain('--no-such-key');
    });

    it(`${name}: a certificate without a key stops start-up with exit 2 naming the missing key`, () => {
      const run = spawnSync(process.execPath, [entry, '--tls-cert-file', join(dir, 'server.crt')], { encoding: 'utf8', timeout: 20_000 });
      expect(run.status, run.stderr).toBe(2);
      expect(run.stderr).toContain('--tls-key-file');
    });

    it(`${name}: an unknown SKEIN_* environment variable is reported in the log at start`, async () => {
      const data = mkdtempSync(join(dir, `${name}-`));
      // Enough to get past configuration; nothing listens on the metadata address, which start-up tolerates.
      const args = {
        metadata: ['--store', `embedded:${join(data, 'store.db')}`],
        broker: ['--broker-id', '1', '--data-dir', data, '--metadata-addresses', '127.0.0.1:1'],
        'group-coordinator': ['--store', `embedded:${join(data, 'store.db')}`, '--metadata-addresses', '127.0.0.1:1'],
      }[name]!;
      const child = spawn(process.execPath, [entry, '--port', '0', ...args], {
        env: { ...process.env, SKEIN_NO_SUCH_KEY: '1', SKEIN_LOG_LEVEL: 'info' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      track(child);
      let out = '';
      child.stdout!.on('data', (b: Buffer) => { out += b.toString(); });
      child.stderr!.on('data', (b: Buffer) => { out += b.toString(); });
      try {
        await waitFor(() => out.includes('does not know'), { timeoutMs: 20_000, message: `${name} reports the unknown variable` });
        const line = JSON.parse(out.split('\n').find((l) => l.includes('does not know'))!) as { level: number; variables: string[] };
        expect(line.variables).toEqual(['SKEIN_NO_SUCH_KEY']);
        expect(line.level).toBe(40); // warn
      } finally {
        await stopChild(child, 10_000);
      }
    });
  }
});
