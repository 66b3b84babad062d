// Client quotas (issue 14), in real processes: a metadata service (embedded store) and a broker,
// mTLS with dev-CA certificates, the authorizer on (principals: admin a super-user, alice and bob
// allowed to write and read one topic). The operator sets alice's produce and fetch byte rates with
// `skein quotas alter`; the broker measures rates over 11 windows of 100 ms (--quota-window-ms, so
// the test settles in seconds instead of Kafka's 11 s).
//
// Checked: a produce over the quota is answered at once with throttle_time_ms > 0 (KIP-219); alice's
// client, which waits out what it is told, is held near her produce rate, and near her fetch rate,
// over a measured window (generous bounds: 0.5x to 1.6x); bob, with no quota, producing and
// fetching at the same time, is not held to it (more than 4x her rate). Removing the quota lets
// alice through again.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SkeinClient } from '@skein/client';
import { buildRecordBatch } from '@skein/common/records/record-batch.js';
import { aclToProto } from '@skein/common/security/acl-codec.js';
import { channelCredentials } from '@skein/common/tls.js';
import { Acks, BrokerServiceClient } from '@skein/proto/skein/broker/v1/broker.js';
import { ensureDevCertificates } from '../scripts/dev-ca.js';
import { promisify } from './harness/clients.js';
import { BROKER_ENTRY, CLI_ENTRY, METADATA_ENTRY } from './harness/entries.js';
import { startService, stopAll, waitFor, type ServiceProcess } from './harness/services.js';

const dir = mkdtempSync(join(tmpdir(), 'skein-quotas-'));
const PRODUCE_RATE = 64 * 1024;
const FETCH_RATE = 128 * 1024;
const BATCH = 'x'.repeat(8 * 1024);

describe('client byte-rate quotas', () => {
  const pki = ensureDevCertificates(join(dir, 'tls'), [
    ...['metadata', 'broker-1'].map((name) => ({ name, organizationalUnit: 'services', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] })),
    { name: 'admin' },
    { name: 'alice' },
    { name: 'bob' },
  ]);
  const tlsOf = (name: string) => ({ caFile: pki.caFile, certFile: pki.files[name]!.certFile, keyFile: pki.files[name]!.keyFile });
  const tlsArgs = (name: string) => [
    '--tls-cert-file',
    pki.files[name]!.certFile,
    '--tls-key-file',
    pki.files[name]!.keyFile,
    '--tls-ca-file',
    pki.caFile,
    '--ssl-principal-mapping-rules',
    'RULE:^CN=([^,]+),OU=services,.*$/$1/, RULE:^CN=([^,]+),.*$/$1/',
    '--internal-principals',
    'User:metadata;User:broker-*',
    '--super-users',
    'User:admin',
    '--authentication-required',
    '--authorizer-enabled',
  ];
  let metadata: ServiceProcess;
  let broker: ServiceProcess;
  let admin: SkeinClient;
  const topic = `quota-${process.pid}`;

  /** Runs the CLI as admin over mTLS. */
  const cli = (args: string[]) =>
    new Promise<{ code: number | null; out: string; stdout: string }>((resolve) => {
      const admin = tlsOf('admin');
      const child = spawn(process.execPath, [CLI_ENTRY, '--metadata', metadata.address, '--output', 'json', ...args], {
        env: { ...process.env, SKEIN_TLS_CA_FILE: admin.caFile, SKEIN_TLS_CERT_FILE: admin.certFile, SKEIN_TLS_KEY_FILE: admin.keyFile },
      });
      let out = '';
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        stdout += d.toString();
      });
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      child.on('close', (code) => resolve({ code, out, stdout }));
    });

  beforeAll(async () => {
    const adminCreds = channelCredentials(tlsOf('admin'));
    metadata = await startService({
      name: 'metadata',
      entry: METADATA_ENTRY,
      credentials: adminCreds,
      args: ['--store', `embedded:${join(dir, 'metadata.db')}`, ...tlsArgs('metadata')],
    });
    broker = await startService({
      name: 'broker-1',
      entry: BROKER_ENTRY,
      dataDirFlag: '--data-dir',
      credentials: adminCreds,
      args: ['--broker-id', '1', '--metadata-addresses', metadata.address, '--quota-window-ms', '100', ...tlsArgs('broker-1')],
    });
    admin = new SkeinClient({ metadata: [metadata.address], tls: tlsOf('admin') });
    await waitFor(async () => (await admin.describeCluster()).brokers.length === 1, { timeoutMs: 30_000, message: 'the broker registered' });
    await admin.createTopic(topic, { partitions: 1, replicationFactor: 1 });
    const acls = ['alice', 'bob'].flatMap((u) =>
      (['write', 'read'] as const).map((operation) => ({
        principal: `User:${u}`,
        resourceType: 'topic' as const,
        resourceName: topic,
        patternType: 'literal' as const,
        operation,
        permission: 'allow' as const,
      })),
    );
    await admin.meta((m) => m.createAcls.bind(m), { acls: acls.map(aclToProto) });
  }, 60_000);

  afterAll(async () => {
    admin?.close();
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('holds alice near her produce and fetch rates while bob is not slowed', async () => {
    const set = await cli(['quotas', 'alter', '--user', 'alice', '--producer-byte-rate', String(PRODUCE_RATE), '--consumer-byte-rate', String(FETCH_RATE)]);
    expect(set.code, set.out).toBe(0);
    const described = await cli(['quotas', 'describe', '--user', 'alice']);
    expect(JSON.parse(described.stdout)).toEqual([{ entity: { user: 'alice' }, producerByteRate: PRODUCE_RATE, consumerByteRate: FETCH_RATE }]);

    // The answer comes at once and says how long to wait (KIP-219).
    const raw = promisify(new BrokerServiceClient(broker.address, channelCredentials(tlsOf('alice'))));
    let throttleTimeMs = 0;
    await waitFor(
      async () => {
        const res = await raw.produce({
          acks: Acks.ACKS_LEADER,
          timeoutMs: 5000,
          topics: [{ topic, partitions: [{ partition: 0, batch: buildRecordBatch([{ value: 'y'.repeat(64 * 1024), timestampMs: Date.now() }]) }] }],
        });
        expect(res.topics[0]!.partitions[0]!.error).toBeUndefined();
        throttleTimeMs = res.throttleTimeMs;
        return throttleTimeMs > 0;
      },
      { timeoutMs: 15_000, message: "the broker applies alice's quota and throttles her" },
    );
    raw.close();
    expect(throttleTimeMs).toBeGreaterThan(0);

    const alice = new SkeinClient({ metadata: [metadata.address], tls: tlsOf('alice') });
    const bob = new SkeinClient({ metadata: [metadata.address], tls: tlsOf('bob') });
    try {
      /** Produces one 8 KiB batch after another for `ms`; bytes acknowledged after the first second, and over how long. */
      const produceFor = async (c: SkeinClient, ms: number) => {
        const start = Date.now();
        let bytes = 0;
        let from = 0;
        while (Date.now() - start < ms) {
          await c.produceBatch(topic, 0, [{ value: BATCH }], { acks: Acks.ACKS_LEADER });
          if (Date.now() - start < 1000) from = Date.now();
          else bytes += BATCH.length;
        }
        return { bytesPerSecond: (bytes * 1000) / (Date.now() - from) };
      };
      const [a, b] = await Promise.all([produceFor(alice, 5000), produceFor(bob, 5000)]);
      expect(a.bytesPerSecond, `alice produced ${Math.round(a.bytesPerSecond)} B/s against ${PRODUCE_RATE}`).toBeGreaterThan(PRODUCE_RATE * 0.5);
      expect(a.bytesPerSecond, `alice produced ${Math.round(a.bytesPerSecond)} B/s against ${PRODUCE_RATE}`).toBeLessThan(PRODUCE_RATE * 1.6);
      expect(b.bytesPerSecond, `bob produced ${Math.round(b.bytesPerSecond)} B/s`).toBeGreaterThan(PRODUCE_RATE * 4);
      expect(alice.stats.throttledMs).toBeGreaterThan(0);
      expect(bob.stats.throttledMs).toBe(0);

      /** Reads the topic from the start in 32 KiB fetches for `ms`; bytes after the first second. */
      const fetchFor = async (c: SkeinClient, ms: number) => {
        const start = Date.now();
        let offset = 0n;
        let bytes = 0;
        let from = 0;
        while (Date.now() - start < ms) {
          const r = await c.fetch(topic, 0, offset, { maxBytes: 32 * 1024 });
          if (r.records.length === 0) break;
          offset = r.records[r.records.length - 1]!.offset + 1n;
          const got = r.records.reduce((n, rec) => n + (rec.value?.length ?? 0), 0);
          if (Date.now() - start < 1000) from = Date.now();
          else bytes += got;
        }
        return { bytesPerSecond: (bytes * 1000) / (Date.now() - from) };
      };
      const [fa, fb] = await Promise.all([fetchFor(alice, 4000), fetchFor(bob, 4000)]);
      expect(fa.bytesPerSecond, `alice fetched ${Math.round(fa.bytesPerSecond)} B/s against ${FETCH_RATE}`).toBeGreaterThan(FETCH_RATE * 0.5);
      expect(fa.bytesPerSecond, `alice fetched ${Math.round(fa.bytesPerSecond)} B/s against ${FETCH_RATE}`).toBeLessThan(FETCH_RATE * 1.6);
      expect(fb.bytesPerSecond, `bob fetched ${Math.round(fb.bytesPerSecond)} B/s`).toBeGreaterThan(FETCH_RATE * 4);

      // Removed: alice is no longer throttled (the next answers carry no throttle time).
      expect((await cli(['quotas', 'alter', '--user', 'alice', '--delete', 'producer_byte_rate', '--delete', 'consumer_byte_rate'])).code).toBe(0);
      expect(JSON.parse((await cli(['quotas', 'describe'])).stdout)).toEqual([]);
      const before = alice.stats.throttledMs;
      await waitFor(
        async () => {
          const t0 = alice.stats.throttledMs;
          for (let i = 0; i < 20; i++) await alice.produceBatch(topic, 0, [{ value: BATCH }], { acks: Acks.ACKS_LEADER });
          return alice.stats.throttledMs === t0;
        },
        { timeoutMs: 15_000, message: 'alice is unthrottled once her quota is removed' },
      );
      expect(alice.stats.throttledMs).toBeGreaterThanOrEqual(before);
    } finally {
      alice.close();
      bob.close();
    }
  });
});
