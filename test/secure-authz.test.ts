// Authorization end to end (issue 14), in real processes: etcd with client TLS and client
// certificates required, a metadata service, three brokers and a group coordinator, each serving
// mTLS with its own certificate from the development CA (scripts/dev-ca.js) and dialling the others
// with it, all with --authorizer-enabled, --authentication-required and a JWKS file for bearer
// tokens. `admin` is a super-user; `alice` has a certificate and starts with no ACL.
//
// Checked: plaintext refused on every service port and etcd's; each service's plaintext
// health-only port (--health-port) serves grpc.health.v1 and answers UNIMPLEMENTED to data and
// admin RPCs; a client with neither a certificate nor a token gets UNAUTHENTICATED from every service while health stays open; alice is refused (PERMISSION_DENIED) producing until
// an ACL allows it, then succeeds with the same processes; a prefixed ACL covers a topic created
// after it; a deny overrides an allow; a group ACL gates joining and committing; an expired, a
// wrongly signed and a valid token; RF 3 replication keeps every replica identical and alice's
// group consumes what she produced; a broker's certificate cannot fetch or replicate as another
// broker. The services are the same processes (pids) at the end.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SkeinClient } from '@skein/client';
import type { SkeinError } from '@skein/common/errors.js';
import { buildRecordBatch } from '@skein/common/records/record-batch.js';
import { aclToProto } from '@skein/common/security/acl-codec.js';
import type { AclBinding } from '@skein/common/security/authorizer.js';
import { channelCredentials } from '@skein/common/tls.js';
import { Acks, BrokerServiceClient } from '@skein/proto/skein/broker/v1/broker.js';
import { ReplicaServiceClient, type ReplicateResponse } from '@skein/proto/skein/broker/v1/replica.js';
import { GroupCoordinatorServiceClient } from '@skein/proto/skein/group/v1/group.js';
import { MetadataServiceClient } from '@skein/proto/skein/metadata/v1/metadata.js';
import { ensureDevCertificates } from '../scripts/dev-ca.js';
import { promisify, rejection } from './harness/clients.js';
import { BROKER_ENTRY, COORDINATOR_ENTRY, METADATA_ENTRY } from './harness/entries.js';
import { type EtcdCluster, startEtcd } from './harness/etcd.js';
import { freePort } from './harness/ports.js';
import { skipUnless } from './harness/requirements.js';
import { healthCheck, startService, stopAll, waitFor, type ServiceProcess } from './harness/services.js';

const skip = skipUnless(import.meta.url, 'etcd-binary');
const dir = mkdtempSync(join(tmpdir(), 'skein-authz-'));
const local = { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] };
const SERVICES = ['etcd', 'metadata', 'broker-1', 'broker-2', 'broker-3', 'coordinator'];
const ISSUER = 'https://issuer.skein.test';
const AUDIENCE = 'skein';

/** Bearer-token call credentials on a TLS channel without a client certificate. */
function withToken(tls: grpc.ChannelCredentials, token: string): grpc.ChannelCredentials {
  return grpc.credentials.combineChannelCredentials(
    tls,
    grpc.credentials.createFromMetadataGenerator((_params, callback) => {
      const m = new grpc.Metadata();
      m.set('authorization', `Bearer ${token}`);
      callback(null, m);
    }),
  );
}

const acl = (
  principal: string,
  resourceType: AclBinding['resourceType'],
  resourceName: string,
  operation: AclBinding['operation'],
  more: Partial<AclBinding> = {},
): AclBinding => ({
  principal,
  resourceType,
  resourceName,
  patternType: 'literal',
  operation,
  permission: 'allow',
  ...more,
});

describe.skipIf(skip)('authorization on a cluster with mTLS on every hop', () => {
  const pki = ensureDevCertificates(join(dir, 'tls'), [
    ...SERVICES.map((name) => ({ name, organizationalUnit: 'services', ...local })),
    { name: 'admin' },
    { name: 'alice' },
  ]);
  const f = pki.files;
  const tlsOf = (name: string) => ({ caFile: pki.caFile, certFile: f[name]!.certFile, keyFile: f[name]!.keyFile });
  const adminCreds = channelCredentials(tlsOf('admin'));
  const aliceCreds = channelCredentials(tlsOf('alice'));
  const caOnly = channelCredentials({ caFile: pki.caFile });
  const jwksFile = join(dir, 'jwks.json');
  let sign: (claims: { sub: string; expSec?: number }, key?: 'issuer' | 'stranger') => Promise<string>;
  let etcd: EtcdCluster;
  let metadata: ServiceProcess;
  let coordinator: ServiceProcess;
  const brokers: ServiceProcess[] = [];
  let admin: SkeinClient;
  const pids = new Map<string, number>();
  /** Each service's plaintext health-only port (--health-port). */
  const healthPorts = new Map<string, number>();

  const tlsArgs = (name: string) => [
    '--health-port',
    String(healthPorts.get(name)),
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
    '--authentication-required',
    '--authorizer-enabled',
    '--jwt-jwks-file',
    jwksFile,
    '--jwt-issuer',
    ISSUER,
    '--jwt-audience',
    AUDIENCE,
    '--jwt-clock-tolerance-ms',
    '0',
  ];
  const etcdArgs = (name: string) => ['--etcd-ca-file', pki.caFile, '--etcd-cert-file', f[name]!.certFile, '--etcd-key-file', f[name]!.keyFile];

  async function createAcls(...bindings: AclBinding[]): Promise<void> {
    await admin.meta((m) => m.createAcls.bind(m), { acls: bindings.map(aclToProto) });
  }

  /** The address of the leader of partition 0, as the super-user sees it. */
  async function leaderOf(topic: string): Promise<string> {
    const p = (await admin.describeTopic(topic)).topic!.partitions[0]!;
    return brokers.find((b) => b.name === `broker-${p.leaderId}`)!.address;
  }

  /** One Produce (acks=all) of `values` to partition 0 straight to its leader, under `creds`. */
  async function produceAs(
    creds: grpc.ChannelCredentials,
    topic: string,
    values: string[],
    idempotent?: { producerId: bigint; baseSequence: number },
  ): Promise<bigint> {
    const broker = promisify(new BrokerServiceClient(await leaderOf(topic), creds));
    try {
      const batch = buildRecordBatch(
        values.map((value) => ({ value, timestampMs: Date.now() })),
        idempotent ? { ...idempotent, producerEpoch: 0 } : {},
      );
      const res = await broker.produce({ acks: Acks.ACKS_ALL, timeoutMs: 10_000, topics: [{ topic, partitions: [{ partition: 0, batch }] }] });
      const p = res.topics[0]!.partitions[0]!;
      if (p.error) throw Object.assign(new Error(p.error.message), { reason: p.error.reason });
      return p.baseOffset;
    } finally {
      broker.close();
    }
  }
  /** Retries produceAs until it succeeds: an ACL change reaches every broker within seconds. */
  async function produceOnceAllowed(creds: grpc.ChannelCredentials, topic: string, values: string[]): Promise<bigint> {
    let offset = -1n;
    let last: unknown;
    await waitFor(
      async () => {
        try {
          offset = await produceAs(creds, topic, values);
          return true;
        } catch (err) {
          last = err;
          return false;
        }
      },
      { timeoutMs: 15_000, message: `a produce to ${topic} is allowed (last: ${String((last as Error | undefined)?.message)})` },
    );
    return offset;
  }

  beforeAll(async () => {
    const issuer = await generateKeyPair('ES256');
    const stranger = await generateKeyPair('ES256');
    writeFileSync(jwksFile, JSON.stringify({ keys: [{ ...(await exportJWK(issuer.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] }));
    sign = ({ sub, expSec }, key = 'issuer') =>
      new SignJWT({})
        .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .setSubject(sub)
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setIssuedAt()
        .setExpirationTime(expSec ?? Math.floor(Date.now() / 1000) + 600)
        .sign(key === 'issuer' ? issuer.privateKey : stranger.privateKey);

    for (const name of SERVICES) healthPorts.set(name, await freePort());
    etcd = await startEtcd({
      members: 1,
      tls: {
        certFile: f.etcd!.certFile,
        keyFile: f.etcd!.keyFile,
        caFile: pki.caFile,
        clientCertAuth: true,
        clientCertFile: f.admin!.certFile,
        clientKeyFile: f.admin!.keyFile,
      },
    });
    const store = `etcd://${etcd.endpoints.join(',')}`;
    metadata = await startService({
      name: 'metadata',
      entry: METADATA_ENTRY,
      credentials: adminCreds,
      args: ['--store', store, ...etcdArgs('metadata'), ...tlsArgs('metadata')],
    });
    for (const id of [1, 2, 3]) {
      brokers.push(
        await startService({
          name: `broker-${id}`,
          entry: BROKER_ENTRY,
          dataDirFlag: '--data-dir',
          credentials: adminCreds,
          args: ['--broker-id', String(id), '--metadata-addresses', metadata.address, '--replica-log-read-enabled', ...tlsArgs(`broker-${id}`)],
        }),
      );
    }
    coordinator = await startService({
      name: 'coordinator',
      entry: COORDINATOR_ENTRY,
      credentials: adminCreds,
      args: ['--store', store, ...etcdArgs('coordinator'), '--metadata-addresses', metadata.address, ...tlsArgs('coordinator')],
    });
    for (const s of [metadata, ...brokers, coordinator]) pids.set(s.name, s.pid);
    admin = new SkeinClient({ metadata: [metadata.address], tls: tlsOf('admin') });
    await waitFor(async () => (await admin.describeCluster()).brokers.length === 3, { timeoutMs: 30_000, message: 'three brokers registered over mTLS' });
  }, 90_000);

  afterAll(async () => {
    admin?.close();
    await stopAll();
    await etcd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses plaintext on every port, and calls with neither a certificate nor a token', async () => {
    const plaintext = grpc.credentials.createInsecure();
    for (const s of [metadata, ...brokers, coordinator]) {
      await expect(healthCheck(s.address, '', 3000, plaintext), `${s.name} plaintext`).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
      // Health is open without credentials (probes), and only health.
      expect(await healthCheck(s.address, '', 5000, caOnly)).toBe('SERVING');
    }
    // The plaintext health-only port serves grpc.health.v1 and nothing else.
    for (const s of [metadata, ...brokers, coordinator]) {
      const address = `127.0.0.1:${healthPorts.get(s.name)}`;
      expect(await healthCheck(address, '', 5000, plaintext), `${s.name} health port`).toBe('SERVING');
      const md = promisify(new MetadataServiceClient(address, plaintext));
      const broker = promisify(new BrokerServiceClient(address, plaintext));
      const coord = promisify(new GroupCoordinatorServiceClient(address, plaintext));
      try {
        for (const call of [
          () => md.listTopics({}),
          () => md.createTopic({ name: 'x', partitions: 1, replicationFactor: 1, configs: {}, validateOnly: true }),
          () => broker.getMetadata({ topics: [] }),
          () => coord.listGroups({}),
        ]) {
          expect(await rejection(call()), `${s.name} health port serves no data RPC`).toMatchObject({ code: grpc.status.UNIMPLEMENTED });
        }
      } finally {
        md.close();
        broker.close();
        coord.close();
      }
    }
    // etcd over plain HTTP: no answer at all.
    const etcdPlain = etcd.endpoints[0]!.replace(/^https?:\/\//, 'http://');
    await expect(fetch(`${etcdPlain}/health`, { signal: AbortSignal.timeout(3000) }).then((r) => r.text())).rejects.toThrow();

    const anonymous = {
      metadata: promisify(new MetadataServiceClient(metadata.address, caOnly)),
      broker: promisify(new BrokerServiceClient(brokers[0]!.address, caOnly)),
      coordinator: promisify(new GroupCoordinatorServiceClient(coordinator.address, caOnly)),
    };
    try {
      const calls: Array<() => Promise<unknown>> = [
        () => anonymous.metadata.listTopics({}),
        () => anonymous.broker.getMetadata({ topics: [] }),
        () =>
          anonymous.broker.produce({
            acks: Acks.ACKS_ALL,
            timeoutMs: 1000,
            topics: [{ topic: 'x', partitions: [{ partition: 0, batch: buildRecordBatch([{ value: 'v', timestampMs: 0 }]) }] }],
          }),
        () => anonymous.coordinator.listGroups({}),
      ];
      for (const call of calls) expect(await rejection(call())).toMatchObject({ code: grpc.status.UNAUTHENTICATED, reason: 'AUTHENTICATION_REQUIRED' });
    } finally {
      for (const c of Object.values(anonymous)) c.close();
    }
  });

  it('refuses alice until an ACL allows her, with no restart; prefixed ACLs cover new topics; deny wins; tokens', async () => {
    const topic = `orders-${process.pid}`;
    await admin.createTopic(topic, { partitions: 1, replicationFactor: 3 });
    await waitFor(async () => (await admin.describeTopic(topic)).topic!.partitions[0]!.isr.length === 3, {
      timeoutMs: 15_000,
      message: `${topic} has its ISR`,
    });
    await produceOnceAllowed(adminCreds, topic, ['from admin']);

    // No ACL: refused by the leader, naming the resource and operation.
    const denied = (await rejection(produceAs(aliceCreds, topic, ['a0']))) as SkeinError;
    expect(denied).toMatchObject({ code: grpc.status.PERMISSION_DENIED, reason: 'TOPIC_AUTHORIZATION_FAILED' });
    expect(denied.metadata).toMatchObject({ principal: 'User:alice', resource_name: topic, operation: 'write' });
    // Her client cannot even see the topic (listing shows only what she may describe).
    const alice = new SkeinClient({ metadata: [metadata.address], tls: tlsOf('alice') });
    try {
      expect((await alice.listTopics()).map((t) => t.name)).not.toContain(topic);

      await createAcls(acl('User:alice', 'topic', topic, 'write'));
      const first = await produceOnceAllowed(aliceCreds, topic, ['a1', 'a2']);
      expect(first).toBeGreaterThanOrEqual(1n);
      // Write implies describe: now her client finds the leader itself.
      await waitFor(async () => (await alice.listTopics()).some((t) => t.name === topic), { timeoutMs: 10_000, message: 'alice sees the topic' });
      await alice.produceBatch(topic, 0, [{ value: 'a3' }], { acks: Acks.ACKS_ALL });

      // A prefixed ACL, then a topic created after it.
      await createAcls(acl('User:alice', 'topic', `team-${process.pid}-`, 'write', { patternType: 'prefixed' }));
      const later = `team-${process.pid}-later`;
      const other = `team-${process.pid}-other`;
      await admin.createTopic(later, { partitions: 1, replicationFactor: 3 });
      await admin.createTopic(other, { partitions: 1, replicationFactor: 3 });
      await produceOnceAllowed(aliceCreds, later, ['p1']);
      await produceOnceAllowed(aliceCreds, other, ['p1']);
      // An unrelated topic stays closed.
      const unrelated = `misc-${process.pid}`;
      await admin.createTopic(unrelated, { partitions: 1, replicationFactor: 3 });
      await waitFor(
        async () => {
          const e = await produceAs(aliceCreds, unrelated, ['x']).then(
            () => undefined,
            (err: SkeinError) => err,
          );
          return e?.reason === 'TOPIC_AUTHORIZATION_FAILED';
        },
        { timeoutMs: 15_000, message: `alice is refused on ${unrelated}` },
      );

      // Deny overrides the prefixed allow on one topic; the other keeps working.
      await createAcls(acl('User:alice', 'topic', later, 'write', { permission: 'deny' }));
      await waitFor(
        async () => {
          const e = await produceAs(aliceCreds, later, ['x']).then(
            () => undefined,
            (err: SkeinError) => err,
          );
          return e?.reason === 'TOPIC_AUTHORIZATION_FAILED';
        },
        { timeoutMs: 15_000, message: `the deny on ${later} wins over the prefixed allow` },
      );
      await produceAs(aliceCreds, other, ['p2']);

      // Tokens (no client certificate): valid for alice acts as alice; expired, foreign-signed refused.
      const valid = await sign({ sub: 'alice' });
      await produceAs(withToken(caOnly, valid), topic, ['by token']);
      // The client's own token option (an interceptor), over TLS without a client certificate.
      const aliceByToken = new SkeinClient({ metadata: [metadata.address], tls: { caFile: pki.caFile }, token: valid });
      try {
        await aliceByToken.produceBatch(topic, 0, [{ value: 'by client token' }], { acks: Acks.ACKS_ALL });
      } finally {
        aliceByToken.close();
      }
      const expired = await sign({ sub: 'alice', expSec: Math.floor(Date.now() / 1000) - 60 });
      const foreign = await sign({ sub: 'alice' }, 'stranger');
      for (const [token, why] of [
        [expired, /expired/],
        [foreign, /signature|no issuer key/],
      ] as const) {
        const e = (await rejection(produceAs(withToken(caOnly, token), topic, ['x']))) as SkeinError;
        expect(e).toMatchObject({ code: grpc.status.UNAUTHENTICATED, reason: 'AUTHENTICATION_FAILED' });
        expect(e.message).toMatch(why);
      }
      // A valid token for a principal with no ACL: authenticated, then refused.
      const bob = await sign({ sub: 'bob' });
      expect(await rejection(produceAs(withToken(caOnly, bob), topic, ['x']))).toMatchObject({
        code: grpc.status.PERMISSION_DENIED,
        reason: 'TOPIC_AUTHORIZATION_FAILED',
      });
    } finally {
      alice.close();
    }

    // Replication kept up throughout: every replica holds the same log up to the high watermark.
    const state = (await admin.describeTopic(topic)).topic!.partitions[0]!;
    expect([...state.isr].sort()).toEqual([1, 2, 3]);
    const ends = await Promise.all(
      brokers.map(async (b) => {
        const c = promisify(new BrokerServiceClient(b.address, adminCreds));
        try {
          return await waitForEnd(c, topic);
        } finally {
          c.close();
        }
      }),
    );
    expect(new Set(ends.map((e) => e.toString())).size).toBe(1);
    expect(ends[0]).toBeGreaterThanOrEqual(5n);
  });

  it('binds a producer id to the principal that obtained it', async () => {
    const topic = `pids-${process.pid}`;
    await admin.createTopic(topic, { partitions: 1, replicationFactor: 3 });
    await createAcls(acl('User:alice', 'topic', topic, 'write'));
    await produceOnceAllowed(aliceCreds, topic, ['warm-up']);
    const initAs = async (creds: grpc.ChannelCredentials) => {
      const b = promisify(new BrokerServiceClient(await leaderOf(topic), creds));
      try {
        return (await b.initProducerId({ clientId: 'pids' })).producerId;
      } finally {
        b.close();
      }
    };
    const adminPid = await initAs(adminCreds);
    await produceAs(adminCreds, topic, ['admin 0'], { producerId: adminPid, baseSequence: 0 });
    // alice may write the topic, but not as admin's producer: her batch would take admin's next
    // sequence, and admin's own batch would then be answered as a duplicate and dropped.
    const stolen = await rejection(produceAs(aliceCreds, topic, ['forged 1'], { producerId: adminPid, baseSequence: 1 }));
    expect(stolen).toMatchObject({ reason: 'PRODUCER_ID_AUTHORIZATION_FAILED' });
    expect(stolen.message).toContain('User:alice');
    const next = await produceAs(adminCreds, topic, ['admin 1'], { producerId: adminPid, baseSequence: 1 });
    // With her own producer id she writes idempotently.
    const alicePid = await initAs(aliceCreds);
    expect(alicePid).not.toBe(adminPid);
    const hers = await produceAs(aliceCreds, topic, ['alice 0'], { producerId: alicePid, baseSequence: 0 });
    expect(hers).toBe(next + 1n);
  });

  it('gates joining and committing on the group ACL; the group then consumes what was produced under TLS', async () => {
    const topic = `events-${process.pid}`;
    const group = `billing-${process.pid}`;
    await admin.createTopic(topic, { partitions: 1, replicationFactor: 3 });
    await createAcls(acl('User:alice', 'topic', topic, 'write'), acl('User:alice', 'topic', topic, 'read'));
    const values = Array.from({ length: 20 }, (_, i) => `e${i}`);
    await produceOnceAllowed(aliceCreds, topic, values);

    const coord = promisify(new GroupCoordinatorServiceClient(coordinator.address, aliceCreds));
    const join = () =>
      coord.heartbeat({
        groupId: group,
        memberId: '',
        memberEpoch: 0,
        clientId: 'alice',
        subscribedTopics: [topic],
        subscribedTopicRegex: '',
        serverAssignor: '',
        ownedPartitions: [],
      });
    try {
      expect(await rejection(join())).toMatchObject({ code: grpc.status.PERMISSION_DENIED, reason: 'GROUP_AUTHORIZATION_FAILED' });
      expect(
        await rejection(coord.commitOffsets({ groupId: group, memberId: '', memberEpoch: -1, offsets: [{ topic, partition: 0, offset: 1n, metadata: '' }] })),
      ).toMatchObject({
        code: grpc.status.PERMISSION_DENIED,
        reason: 'GROUP_AUTHORIZATION_FAILED',
      });
      await createAcls(acl('User:alice', 'group', group, 'read'));
      let member = { memberId: '', memberEpoch: 0 };
      await waitFor(
        async () => {
          try {
            const r = await join();
            member = { memberId: r.memberId, memberEpoch: r.memberEpoch };
            return true;
          } catch {
            return false;
          }
        },
        { timeoutMs: 15_000, message: 'alice joins once the group ACL allows it' },
      );
      expect(member.memberId).not.toBe('');
      await coord.heartbeat({
        groupId: group,
        memberId: member.memberId,
        memberEpoch: -1,
        clientId: 'alice',
        subscribedTopics: [],
        subscribedTopicRegex: '',
        serverAssignor: '',
        ownedPartitions: [],
      });
    } finally {
      coord.close();
    }

    // Her consumer in the group reads every record (produced acks=all to three replicas) and commits.
    const alice = new SkeinClient({ metadata: [metadata.address], tls: tlsOf('alice') });
    const { GroupConsumer } = await import('@skein/client');
    const consumer = new GroupConsumer(alice, { groupId: group, topics: [topic], fromBeginning: true });
    const seen: string[] = [];
    try {
      const done = new Promise<void>((resolve, reject) => {
        consumer
          .run(async (m) => {
            seen.push(String(m.value));
            if (seen.length === values.length) resolve();
          })
          .catch(reject);
      });
      await Promise.race([done, new Promise((_, reject) => setTimeout(() => reject(new Error(`consumed only ${seen.length} of ${values.length}`)), 30_000))]);
      await consumer.commit();
    } finally {
      await consumer.close();
      alice.close();
    }
    expect(seen).toEqual(values);
    const adminCoord = promisify(new GroupCoordinatorServiceClient(coordinator.address, adminCreds));
    try {
      const committed = await adminCoord.fetchOffsets({ groupId: group, partitions: [{ topic, partitions: [0] }] });
      expect(committed.offsets.find((o) => o.topic === topic)?.offset).toBe(BigInt(values.length));
    } finally {
      adminCoord.close();
    }
  });

  it('refuses a replica fetch or a replication stream under another broker id', async () => {
    const topic = `replicas-${process.pid}`;
    await admin.createTopic(topic, { partitions: 1, replicationFactor: 3 });
    await produceOnceAllowed(adminCreds, topic, ['r']);
    const p = (await admin.describeTopic(topic)).topic!.partitions[0]!;
    const leader = brokers.find((b) => b.name === `broker-${p.leaderId}`)!;
    const [followerA, followerB] = p.replicas.filter((id) => id !== p.leaderId) as [number, number];
    const asA = new ReplicaServiceClient(leader.address, channelCredentials(tlsOf(`broker-${followerA}`)));
    const replicaFetch = promisify(asA);
    try {
      const forged = await rejection(
        replicaFetch.replicaFetch({
          replicaId: followerB,
          topic,
          partition: 0,
          leaderEpoch: p.leaderEpoch,
          fetchOffset: 0n,
          lastFetchedEpoch: -1,
          maxBytes: 1 << 20,
          maxWaitMs: 0,
        }),
      );
      expect(forged).toMatchObject({ code: grpc.status.PERMISSION_DENIED, reason: 'CLUSTER_AUTHORIZATION_FAILED' });
      expect(forged.message).toContain(`broker ${followerB}`);
      // alice is no broker at all.
      const asAlice = promisify(new ReplicaServiceClient(leader.address, aliceCreds));
      expect(
        await rejection(
          asAlice.replicaFetch({
            replicaId: followerA,
            topic,
            partition: 0,
            leaderEpoch: p.leaderEpoch,
            fetchOffset: 0n,
            lastFetchedEpoch: -1,
            maxBytes: 1 << 20,
            maxWaitMs: 0,
          }),
        ),
      ).toMatchObject({ code: grpc.status.PERMISSION_DENIED, reason: 'CLUSTER_AUTHORIZATION_FAILED' });
      asAlice.close();

      // The replication stream: a forged position report ends the stream, and no data flows back.
      const stream = asA.replicate();
      const got: ReplicateResponse[] = [];
      const ended = new Promise<grpc.StatusObject>((resolve) => {
        stream.on('data', (r: ReplicateResponse) => got.push(r));
        stream.on('error', () => undefined);
        stream.on('status', resolve);
      });
      stream.write({
        replicaId: followerB,
        positions: [{ topic, partition: 0, leaderEpoch: p.leaderEpoch, logEndOffset: 0n, lastFetchedEpoch: -1, positionEpoch: 1 }],
        removed: [],
      });
      const status = await ended;
      expect(status.code).toBe(grpc.status.PERMISSION_DENIED);
      expect(status.details).toContain(`may not act as broker ${followerB}`);
      expect(got.flatMap((r) => r.partitions.flatMap((d) => d.batches))).toEqual([]);
    } finally {
      asA.close();
    }
    // The real followers were not disturbed: the ISR is whole and an acks=all write still completes.
    await produceOnceAllowed(adminCreds, topic, ['after']);
    expect([...(await admin.describeTopic(topic)).topic!.partitions[0]!.isr].sort()).toEqual([1, 2, 3]);
    // Same processes all along: every change above applied without a restart.
    for (const s of [metadata, ...brokers, coordinator]) expect(s.pid, `${s.name} was not restarted`).toBe(pids.get(s.name));
  });
});

/** A replica's log end offset once it stops moving, through ReadReplicaLog (as the super-user). */
async function waitForEnd(broker: ReturnType<typeof promisify<BrokerServiceClient>>, topic: string): Promise<bigint> {
  let end = -1n;
  await waitFor(
    async () => {
      const r = await broker.readReplicaLog({ topic, partition: 0, startOffset: 0n, maxBytes: 1 << 20 });
      end = r.logEndOffset;
      return r.logEndOffset === r.highWatermark && r.batches.length > 0;
    },
    { timeoutMs: 15_000, message: `${topic} replica caught up to its high watermark` },
  );
  return end;
}
