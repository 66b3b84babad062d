// mTLS on every hop (issue 14), in real processes: etcd (client TLS with --client-cert-auth), a
// metadata service, three brokers and a group coordinator, each with its own certificate from the
// development CA (scripts/dev-ca.js), serving and dialling mTLS. The metadata service and the
// brokers require client certificates at the handshake (--tls-require-client-cert); the
// coordinator asks for one and answers calls without it UNAUTHENTICATED
// (--authentication-required), so both ways of refusing are covered.
//
// Checked: plaintext refused on every port; no client certificate refused (handshake, or
// UNAUTHENTICATED / AUTHENTICATION_REQUIRED); records produced under TLS with acks=all are
// replicated to all three brokers (the ISR keeps them, and after the leader stops they are read
// from its successor); a broker certificate rotated on disk is served to new connections without
// a restart, while replication goes on.
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GroupAdmin, SkeinClient } from '@skein/client';
import { channelCredentials } from '@skein/common/tls.js';
import { Acks } from '@skein/proto/skein/broker/v1/broker.js';
import { ensureDevCertificates, issueCertificate, writeCertificate } from '../scripts/dev-ca.js';
import { BROKER_ENTRY, COORDINATOR_ENTRY, METADATA_ENTRY } from './harness/entries.js';
import { type EtcdCluster, startEtcd } from './harness/etcd.js';
import { skipUnless } from './harness/requirements.js';
import { healthCheck, startService, stopAll, waitFor, type ServiceProcess } from './harness/services.js';

const skip = skipUnless(import.meta.url, 'etcd-binary');
const dir = mkdtempSync(join(tmpdir(), 'skein-secure-'));
const tlsDir = join(dir, 'tls');
const local = { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] };
const SERVICES = ['etcd', 'metadata', 'broker-1', 'broker-2', 'broker-3', 'coordinator'];

describe.skipIf(skip)('a cluster with mTLS on every hop, etcd included', () => {
  const pki = ensureDevCertificates(tlsDir, [
    ...SERVICES.map((name) => ({ name, organizationalUnit: 'services', ...local })),
    { name: 'admin' },
    { name: 'alice' },
  ]);
  const f = pki.files;
  const admin = { caFile: pki.caFile, certFile: f.admin!.certFile, keyFile: f.admin!.keyFile };
  const adminCreds = channelCredentials(admin);
  const caOnly = channelCredentials({ caFile: pki.caFile });
  const plaintext = grpc.credentials.createInsecure();
  let etcd: EtcdCluster;
  let metadata: ServiceProcess;
  let coordinator: ServiceProcess;
  const brokers: ServiceProcess[] = [];
  let client: SkeinClient;

  /** The TLS flags of a service: its own certificate both ways, the dev CA, principals by CN. */
  const tlsArgs = (name: string) => [
    '--tls-cert-file',
    f[name]!.certFile,
    '--tls-key-file',
    f[name]!.keyFile,
    '--tls-ca-file',
    pki.caFile,
    '--ssl-principal-mapping-rules',
    'RULE:^CN=([^,]+),OU=services,.*$/$1/, RULE:^CN=([^,]+),.*$/$1/',
    '--internal-principals',
    'User:metadata;User:broker-*;User:coordinator',
    '--super-users',
    'User:admin',
    '--tls-refresh-interval-ms',
    '200',
  ];
  const etcdArgs = (name: string) => ['--etcd-ca-file', pki.caFile, '--etcd-cert-file', f[name]!.certFile, '--etcd-key-file', f[name]!.keyFile];

  beforeAll(async () => {
    etcd = await startEtcd({
      members: 1,
      tls: {
        certFile: f.etcd!.certFile,
        keyFile: f.etcd!.keyFile,
        caFile: pki.caFile,
        clientCertAuth: true,
        clientCertFile: admin.certFile,
        clientKeyFile: admin.keyFile,
      },
    });
    const store = `etcd://${etcd.endpoints.join(',')}`;
    metadata = await startService({
      name: 'metadata',
      entry: METADATA_ENTRY,
      credentials: adminCreds,
      args: ['--store', store, ...etcdArgs('metadata'), ...tlsArgs('metadata'), '--tls-require-client-cert'],
    });
    for (const id of [1, 2, 3]) {
      brokers.push(
        await startService({
          name: `broker-${id}`,
          entry: BROKER_ENTRY,
          dataDirFlag: '--data-dir',
          credentials: adminCreds,
          args: ['--broker-id', String(id), '--metadata-addresses', metadata.address, ...tlsArgs(`broker-${id}`), '--tls-require-client-cert'],
        }),
      );
    }
    coordinator = await startService({
      name: 'coordinator',
      entry: COORDINATOR_ENTRY,
      credentials: adminCreds,
      args: ['--store', store, ...etcdArgs('coordinator'), '--metadata-addresses', metadata.address, ...tlsArgs('coordinator'), '--authentication-required'],
    });
    client = new SkeinClient({ metadata: [metadata.address], tls: admin });
    await waitFor(async () => (await client.describeCluster()).brokers.length === 3, { timeoutMs: 30_000, message: 'three brokers registered over mTLS' });
  }, 120_000);

  afterAll(async () => {
    client?.close();
    await stopAll();
    await etcd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses plaintext on every port, and clients without a certificate', async () => {
    for (const s of [metadata, ...brokers, coordinator]) {
      await expect(healthCheck(s.address, '', 3000, plaintext), `${s.name} plaintext`).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
      expect(await healthCheck(s.address, '', 5000, adminCreds)).toBe('SERVING');
    }
    // Required at the handshake: the TLS connection itself fails.
    for (const s of [metadata, brokers[0]!]) {
      await expect(healthCheck(s.address, '', 3000, caOnly), `${s.name} without a certificate`).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    }
    // The coordinator lets the handshake through and refuses the call (health stays open for probes).
    expect(await healthCheck(coordinator.address, '', 5000, caOnly)).toBe('SERVING');
    const anonymous = new GroupAdmin([coordinator.address], caOnly);
    const refused = await anonymous.listGroups().catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: grpc.status.UNAUTHENTICATED, reason: 'AUTHENTICATION_REQUIRED' });
    anonymous.close();
    // etcd itself: no client certificate, no store.
    const { EtcdStore } = await import('@skein/common/store/etcd-store.js');
    await expect(EtcdStore.connect({ endpoints: etcd.endpoints, tls: { caFile: pki.caFile }, dialTimeoutMs: 3000 })).rejects.toThrow();
    const withCert = await EtcdStore.connect({ endpoints: etcd.endpoints, tls: admin });
    expect((await withCert.range('/skein/')).kvs.length).toBeGreaterThan(0);
    await withCert.close();
  });

  it('replicates records produced under TLS to all three brokers, and serves them after the leader stops', async () => {
    const topic = `secure-${process.pid}`;
    await client.createTopic(topic, { partitions: 1, replicationFactor: 3 });
    const values = Array.from({ length: 50 }, (_, i) => `v${i}`);
    await waitFor(
      async () => {
        try {
          await client.produceBatch(
            topic,
            0,
            values.map((value) => ({ value })),
            { acks: Acks.ACKS_ALL },
          );
          return true;
        } catch {
          return false;
        }
      },
      { timeoutMs: 30_000, message: `${topic}-0 accepts an acks=all write` },
    );
    const state = (await client.describeTopic(topic)).topic!.partitions[0]!;
    expect([...state.isr].sort()).toEqual([1, 2, 3]);
    // The coordinator, authenticated, answers over mTLS too.
    const groups = new GroupAdmin(client);
    expect(Array.isArray(await groups.listGroups())).toBe(true);
    groups.close();

    const leader = brokers.find((b) => b.name === `broker-${state.leaderId}`)!;
    await leader.stop();
    await waitFor(
      async () => {
        const p = (await client.describeTopic(topic)).topic!.partitions[0]!;
        return p.leaderId > 0 && p.leaderId !== state.leaderId;
      },
      { timeoutMs: 30_000, message: 'a follower takes over the partition' },
    );
    await client.refreshMetadata();
    let read: string[] = [];
    await waitFor(
      async () => {
        try {
          read = (await client.fetch(topic, 0, 0n)).records.map((r) => String(r.value));
        } catch {
          return false;
        }
        return read.length >= values.length;
      },
      { timeoutMs: 30_000, message: 'the new leader serves what the old one acknowledged' },
    );
    expect(read.slice(0, values.length)).toEqual(values);
    await leader.restart();
  });

  it('serves a certificate rotated on disk to new connections, without a restart', async () => {
    const broker = brokers[1]!;
    const serialSeen = (): Promise<string | undefined> =>
      new Promise((resolve, reject) => {
        // A private subchannel pool: a new connection, as a new client makes.
        const c = new grpc.Client(broker.address, adminCreds, { 'grpc.use_local_subchannel_pool': 1 });
        const req = Buffer.from([0x0a, 0]);
        const call = c.makeUnaryRequest(
          '/grpc.health.v1.Health/Check',
          (b: Buffer) => b,
          (b: Buffer) => b,
          req,
          new grpc.Metadata(),
          { deadline: Date.now() + 5000 },
          (err) => {
            const serial = call.getAuthContext()?.sslPeerCertificate?.serialNumber;
            c.close();
            if (err) reject(err);
            else resolve(serial?.toUpperCase());
          },
        );
      });
    const before = await serialSeen();
    const rotated = issueCertificate(pki.ca, { commonName: broker.name, organizationalUnit: 'services', ...local, days: 1 });
    writeCertificate(tlsDir, broker.name, rotated);
    const expected = new X509Certificate(rotated.certPem).serialNumber.toUpperCase();
    expect(expected).not.toBe(before);
    let seen = before;
    await waitFor(async () => (seen = await serialSeen()) === expected, { timeoutMs: 15_000, message: `${broker.name} serves the rotated certificate` });
    expect(broker.logs(200)).toContain('TLS files changed');
    // Same process, and it still works with the rest of the cluster over mTLS.
    expect(await healthCheck(broker.address, '', 5000, adminCreds)).toBe('SERVING');
    const topic = `secure-rotated-${process.pid}`;
    await client.createTopic(topic, { partitions: 1, replicationFactor: 3 });
    await waitFor(
      async () => {
        try {
          await client.produceBatch(topic, 0, [{ value: 'after rotation' }], { acks: Acks.ACKS_ALL });
          return true;
        } catch {
          return false;
        }
      },
      { timeoutMs: 30_000, message: 'an acks=all write after the rotation' },
    );
  });
});
