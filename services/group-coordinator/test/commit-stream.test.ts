// CommitStream against a real coordinator gRPC server (the shared shell, on an embedded store):
// every request is answered by its id, answers may overtake each other, commits of one partition
// apply in request order; a fenced member's commit is refused with STALE_MEMBER_EPOCH while the
// others flushed with it land; a request over a limit is refused alone and the stream goes on,
// while bytes that do not decode end it; group ACLs are checked per request; and the stream reads
// no further ahead than its in-flight bound.
import * as grpc from '@grpc/grpc-js';
import { fromServiceError, fromStatus } from '@skein/common/errors.js';
import { type GrpcServerHandle, startGrpcServer } from '@skein/common/grpc-server.js';
import { createLogger } from '@skein/common/logger.js';
import { AclCache } from '@skein/common/security/acl-cache.js';
import { EmbeddedStore } from '@skein/common/store/embedded-store.js';
import {
  type CommitOffsetsRequest,
  type CommitStreamResponse,
  GroupCoordinatorServiceClient,
  type HeartbeatResponse,
} from '@skein/proto/skein/group/v1/group.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commitStreamHandler } from '../src/grpc/commit-stream.js';
import { groupAuthorizeMap } from '../src/grpc/group-authz.js';
import { GROUP_SERVICE_NAME, GroupCoordinatorServiceService, groupServiceHandlers } from '../src/grpc/group-service.js';

const logger = createLogger({ service: 'test', level: 'silent' });
const topics = new Map([['orders', 4]]);
let store: EmbeddedStore;
let server: GrpcServerHandle;
let client: GroupCoordinatorServiceClient;

const handlers = () =>
  groupServiceHandlers({
    store,
    prefix: '/t/',
    logger,
    sessionTimeoutMs: 60_000,
    heartbeatIntervalMs: 1000,
    offsetsRetentionMs: 600_000,
    sessionBreakGraceMs: 1000,
    topics: async () => topics,
    listOffset: async () => 0n,
  });

beforeAll(async () => {
  store = await EmbeddedStore.open();
  server = await startGrpcServer({
    host: '127.0.0.1',
    port: 0,
    logger,
    services: [{ name: GROUP_SERVICE_NAME, definition: GroupCoordinatorServiceService, implementation: handlers() }],
  });
  client = new GroupCoordinatorServiceClient(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
});
afterAll(async () => {
  client?.close();
  await server?.shutdown(1000);
  await store?.close();
});

const deadline = () => ({ deadline: Date.now() + 10_000 });

/** A CommitStream whose answers are collected in arrival order; `next(n)` waits for n more. */
function openStream(c: GroupCoordinatorServiceClient = client, metadata = new grpc.Metadata()) {
  const call = c.commitStream(metadata);
  const answers: CommitStreamResponse[] = [];
  let ended: grpc.ServiceError | 'ok' | undefined;
  const wakers: Array<() => void> = [];
  const wake = () => {
    for (const w of wakers.splice(0)) w();
  };
  call.on('data', (r: CommitStreamResponse) => {
    answers.push(r);
    wake();
  });
  call.on('error', (e: grpc.ServiceError) => {
    ended = e;
    wake();
  });
  call.on('end', () => {
    ended ??= 'ok';
    wake();
  });
  const until = (done: () => boolean, what: string) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out waiting for ${what}; ${answers.length} answers, ended: ${String(ended && (ended === 'ok' ? 'ok' : ended.code))}`)),
        10_000,
      );
      const check = () => {
        if (done()) {
          clearTimeout(timer);
          resolve();
        } else if (ended !== undefined) {
          clearTimeout(timer);
          reject(new Error(`stream ended (${ended === 'ok' ? 'ok' : ended.code}) waiting for ${what}`));
        } else wakers.push(check);
      };
      check();
    });
  return {
    call,
    answers,
    ended: () => ended,
    send: (requestId: number, commit: CommitOffsetsRequest | undefined) => call.write({ requestId: BigInt(requestId), commit }),
    answered: (n: number) => until(() => answers.length >= n, `${n} answers`),
    end: () => until(() => ended !== undefined, 'the end of the stream'),
  };
}

const reasonOf = (r: CommitStreamResponse | undefined) => (r?.error ? fromStatus(r.error)?.reason : r ? 'OK' : 'missing');
const byId = (answers: CommitStreamResponse[]) => new Map(answers.map((a) => [Number(a.requestId), a]));
const commitReq = (groupId: string, memberId: string, memberEpoch: number, partition: number, offset: bigint, metadata = ''): CommitOffsetsRequest => ({
  groupId,
  memberId,
  memberEpoch,
  offsets: [{ topic: 'orders', partition, offset, metadata }],
});
const fetchOffsets = (groupId: string) =>
  new Promise<Map<number, bigint>>((resolve, reject) =>
    client.fetchOffsets({ groupId, partitions: [] }, new grpc.Metadata(), deadline(), (e, r) =>
      e ? reject(e) : resolve(new Map(r.offsets.map((o) => [o.partition, o.offset]))),
    ),
  );
const heartbeat = (groupId: string, memberId: string, memberEpoch: number, owned: number[]) =>
  new Promise<HeartbeatResponse>((resolve, reject) =>
    client.heartbeat(
      {
        groupId,
        memberId,
        memberEpoch,
        clientId: 'c',
        subscribedTopics: ['orders'],
        subscribedTopicRegex: '',
        serverAssignor: '',
        ownedPartitions: owned.length ? [{ topic: 'orders', partitions: owned }] : [],
      },
      new grpc.Metadata(),
      deadline(),
      (e, r) => (e ? reject(e) : resolve(r)),
    ),
  );

/** Two members of `groupId` that own two partitions each. */
async function twoMembers(groupId: string) {
  const ms = [
    { id: '', epoch: 0, owned: [] as number[] },
    { id: '', epoch: 0, owned: [] as number[] },
  ];
  for (let round = 0; round < 8 && !ms.every((m) => m.owned.length === 2); round++) {
    for (const m of ms) {
      const r = await heartbeat(groupId, m.id, m.epoch, m.owned);
      Object.assign(m, { id: r.memberId, epoch: r.memberEpoch, owned: r.assignment.flatMap((t) => t.partitions) });
    }
  }
  expect(ms.every((m) => m.owned.length === 2)).toBe(true);
  return ms;
}

describe('CommitStream', () => {
  it('answers every request by its id, lets a quick answer overtake a slow one, and applies commits of one partition in request order', async () => {
    const s = openStream();
    // 100 commits of one partition, pipelined, then one refused before any store work.
    for (let i = 1; i <= 100; i++) s.send(i, commitReq('ordered', '', -1, 0, BigInt(i)));
    s.send(101, commitReq('not a valid id!', '', -1, 0, 1n));
    await s.answered(101);
    const answers = byId(s.answers);
    expect([...answers.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 101 }, (_, i) => i + 1));
    for (let i = 1; i <= 100; i++) expect(reasonOf(answers.get(i))).toBe('OK');
    expect(reasonOf(answers.get(101))).toBe('INVALID_GROUP_ID');
    // The refusal needed no flush: it came back before the last durable commit.
    expect(s.answers.findIndex((a) => a.requestId === 101n)).toBeLessThan(s.answers.findIndex((a) => a.requestId === 100n));
    // Every commit of the partition was answered as durable, and the last one sent is what is stored.
    expect((await fetchOffsets('ordered')).get(0)).toBe(100n);
    s.call.end();
    expect(await s.end().then(() => s.ended())).toBe('ok');
  });

  it('refuses a fenced member with STALE_MEMBER_EPOCH while the commits flushed with it land', async () => {
    const [a, b] = await twoMembers('fenced');
    const s = openStream();
    s.send(1, commitReq('fenced', a!.id, a!.epoch, a!.owned[0]!, 10n));
    s.send(2, commitReq('fenced', a!.id, a!.epoch - 1, a!.owned[1]!, 999n)); // a zombie of a: an older epoch
    s.send(3, commitReq('fenced', b!.id, b!.epoch, b!.owned[0]!, 30n));
    s.send(4, commitReq('fenced', b!.id, b!.epoch, a!.owned[1]!, 40n)); // b does not own it
    s.send(5, commitReq('fenced', 'nobody', 1, b!.owned[1]!, 50n));
    await s.answered(5);
    const answers = byId(s.answers);
    expect([1, 2, 3, 4, 5].map((id) => reasonOf(answers.get(id)))).toEqual(['OK', 'STALE_MEMBER_EPOCH', 'OK', 'STALE_MEMBER_EPOCH', 'UNKNOWN_MEMBER']);
    // Encoded as the unary call's error would be: FAILED_PRECONDITION, not retriable.
    const stale = fromStatus(answers.get(2)!.error!)!;
    expect({ code: stale.code, retriable: stale.retriable }).toEqual({ code: grpc.status.FAILED_PRECONDITION, retriable: false });
    expect(Object.fromEntries(await fetchOffsets('fenced'))).toEqual({ [a!.owned[0]!]: 10n, [b!.owned[0]!]: 30n });
    s.call.end();
    await s.end();
  });

  it('refuses a request over a limit, or without a commit, alone with INVALID_ARGUMENT and goes on; bytes that do not decode end the stream', async () => {
    const s = openStream();
    s.send(1, commitReq('limits', '', -1, 0, 1n, 'm'.repeat(4097)));
    s.send(2, undefined);
    s.send(3, {
      groupId: 'limits',
      memberId: '',
      memberEpoch: -1,
      offsets: Array.from({ length: 10_001 }, (_, i) => ({ topic: 'orders', partition: i % 4, offset: 1n, metadata: '' })),
    });
    s.send(4, commitReq('limits', '', -1, 1, 7n));
    await s.answered(4);
    const answers = byId(s.answers);
    expect([1, 2, 3, 4].map((id) => reasonOf(answers.get(id)))).toEqual(['INVALID_REQUEST', 'INVALID_REQUEST', 'INVALID_REQUEST', 'OK']);
    expect(fromStatus(answers.get(1)!.error!)!.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(fromStatus(answers.get(1)!.error!)!.message).toContain('offset.metadata.max.bytes');
    expect(Object.fromEntries(await fetchOffsets('limits'))).toEqual({ 1: 7n });
    s.call.end();
    await s.end();

    // A message that is not a CommitStreamRequest: its id is unknown, so the stream ends.
    const raw = new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
    const identity = (b: Buffer) => b;
    const call = raw.makeBidiStreamRequest('/skein.group.v1.GroupCoordinatorService/CommitStream', identity, identity, new grpc.Metadata(), deadline());
    const ended = new Promise<grpc.ServiceError>((resolve) => call.on('error', resolve));
    call.on('data', () => undefined);
    call.write(Buffer.from([0x12, 0x05, 0x01]));
    const err = await ended;
    expect({ code: err.code, reason: fromServiceError(err).reason }).toEqual({ code: grpc.status.INVALID_ARGUMENT, reason: 'INVALID_REQUEST' });
    raw.close();
  });

  it('reads no further ahead than its in-flight bound, and answers everything once commits complete', async () => {
    // The handler alone, over a commit function that completes only when told.
    const started: Array<() => void> = [];
    let running = 0;
    let maxRunning = 0;
    const slowCommit = () =>
      new Promise<void>((resolve) => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        started.push(() => {
          running--;
          resolve();
        });
      });
    const commitStream = commitStreamHandler({ logger, limits: { maxInFlightRequests: 4 }, commit: slowCommit });
    const bounded = await startGrpcServer({
      host: '127.0.0.1',
      port: 0,
      logger,
      services: [{ name: GROUP_SERVICE_NAME, definition: GroupCoordinatorServiceService, implementation: { ...handlers(), commitStream } }],
    });
    const c = new GroupCoordinatorServiceClient(`127.0.0.1:${bounded.port}`, grpc.credentials.createInsecure());
    try {
      const s = openStream(c);
      for (let i = 0; i < 40; i++) s.send(i, commitReq('bounded', '', -1, 0, BigInt(i)));
      for (let done = 0; done < 40; done++) {
        const deadlineMs = Date.now() + 10_000;
        while (started.length === 0) {
          if (Date.now() > deadlineMs) throw new Error(`no commit started after ${done} answered`);
          await new Promise((r) => setImmediate(r));
        }
        started.shift()!();
        await s.answered(done + 1);
      }
      expect(maxRunning).toBe(4);
      expect(new Set(s.answers.map((a) => Number(a.requestId))).size).toBe(40);
      s.call.end();
      await s.end();
    } finally {
      c.close();
      await bounded.shutdown(1000);
    }
  });
});

describe('CommitStream with the authorizer', () => {
  let authz: GrpcServerHandle;
  let authzClient: GroupCoordinatorServiceClient;
  const audit: Array<Record<string, unknown>> = [];
  beforeAll(async () => {
    const acls = new AclCache();
    acls.update(
      [
        { principal: 'User:alice', resourceType: 'group', resourceName: 'alice-', patternType: 'prefixed', operation: 'read', permission: 'allow' },
        { principal: 'User:alice', resourceType: 'topic', resourceName: 'orders', patternType: 'literal', operation: 'read', permission: 'allow' },
      ],
      1n,
    );
    // The caller is named by a header: the authenticator is not what this test is about.
    const authenticator = {
      identify: (call: { metadata?: grpc.Metadata }) => ({
        principal: { type: 'User', name: String(call.metadata?.get('x-user')[0] ?? 'ANONYMOUS') },
        internal: false,
        superUser: false,
      }),
    };
    const auditLogger = { info: (o: Record<string, unknown>) => audit.push(o) } as unknown as import('pino').Logger;
    authz = await startGrpcServer({
      host: '127.0.0.1',
      port: 0,
      logger,
      services: [{ name: GROUP_SERVICE_NAME, definition: GroupCoordinatorServiceService, implementation: handlers(), authorize: groupAuthorizeMap }],
      security: { authorization: { authenticator, acls, audit: auditLogger } },
    });
    authzClient = new GroupCoordinatorServiceClient(`127.0.0.1:${authz.port}`, grpc.credentials.createInsecure());
  });
  afterAll(async () => {
    authzClient?.close();
    await authz?.shutdown(1000);
  });

  it('checks each request against CommitOffsets’ rule, answering a denial to that request alone', async () => {
    const md = new grpc.Metadata();
    md.set('x-user', 'alice');
    const s = openStream(authzClient, md);
    s.send(1, commitReq('alice-allowed', '', -1, 0, 5n));
    s.send(2, commitReq('bob-group', '', -1, 0, 6n));
    s.send(3, { groupId: 'alice-allowed', memberId: '', memberEpoch: -1, offsets: [{ topic: 'payments', partition: 0, offset: 1n, metadata: '' }] });
    s.send(4, commitReq('alice-allowed', '', -1, 1, 8n));
    await s.answered(4);
    const answers = byId(s.answers);
    expect([1, 2, 3, 4].map((id) => reasonOf(answers.get(id)))).toEqual(['OK', 'GROUP_AUTHORIZATION_FAILED', 'TOPIC_AUTHORIZATION_FAILED', 'OK']);
    expect(fromStatus(answers.get(2)!.error!)!.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(audit.filter((a) => a.event === 'denied').map((a) => [a.resourceName, a.rpc])).toEqual([
      ['bob-group', 'skein.group.v1.GroupCoordinatorService/CommitStream'],
      ['payments', 'skein.group.v1.GroupCoordinatorService/CommitStream'],
    ]);
    expect(Object.fromEntries(await fetchOffsets('alice-allowed'))).toEqual({ 0: 5n, 1: 8n });
    expect(await fetchOffsets('bob-group')).toEqual(new Map());
    s.call.end();
    await s.end();
  });
});
