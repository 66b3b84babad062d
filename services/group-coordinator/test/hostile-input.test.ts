// Hostile input against a real coordinator gRPC server (the shared shell, on an embedded store):
// a catastrophic-backtracking subscription regex, regexes RE2 refuses, oversized strings and
// lists, and bytes that are not a protobuf message. Every refusal is INVALID_ARGUMENT with a
// reason, comes before any work (nothing is stored), and the coordinator keeps serving.
import * as grpc from '@grpc/grpc-js';
import { fromServiceError } from '@skein/common/errors.js';
import { type GrpcServerHandle, startGrpcServer } from '@skein/common/grpc-server.js';
import { createLogger } from '@skein/common/logger.js';
import { EmbeddedStore } from '@skein/common/store/embedded-store.js';
import { GroupCoordinatorServiceClient, type HeartbeatRequest, type HeartbeatResponse, type CommitOffsetsRequest } from '@skein/proto/skein/group/v1/group.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GROUP_SERVICE_NAME, GroupCoordinatorServiceService, groupServiceHandlers } from '../src/grpc/group-service.js';

const LONG_A = 'a'.repeat(40);
let store: EmbeddedStore;
let server: GrpcServerHandle;
let client: GroupCoordinatorServiceClient;

beforeAll(async () => {
  store = await EmbeddedStore.open();
  const logger = createLogger({ service: 'test', level: 'silent' });
  // Topic names chosen so that V8 would backtrack ~2^40 steps on `(a+)+$` against the second.
  const topics = new Map([[LONG_A, 2], [`${LONG_A}b`, 2], ['orders', 1]]);
  server = await startGrpcServer({
    host: '127.0.0.1', port: 0, logger,
    services: [{ name: GROUP_SERVICE_NAME, definition: GroupCoordinatorServiceService, implementation: groupServiceHandlers({ store, prefix: '/t/', logger, sessionTimeoutMs: 30_000, heartbeatIntervalMs: 1000, offsetsRetentionMs: 60_000, sessionBreakGraceMs: 1000, topics: async () => topics, listOffset: async () => 0n }) }],
  });
  client = new GroupCoordinatorServiceClient(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
});
afterAll(async () => {
  client?.close();
  await server?.shutdown(1000);
  await store?.close();
});

const deadline = () => ({ deadline: Date.now() + 10_000 });
const request = (r: Partial<HeartbeatRequest>): HeartbeatRequest => ({ groupId: 'g', memberId: '', memberEpoch: 0, clientId: 'c', subscribedTopics: [], subscribedTopicRegex: '', serverAssignor: '', ownedPartitions: [], ...r });
const heartbeat = (r: Partial<HeartbeatRequest>) => new Promise<HeartbeatResponse>((resolve, reject) => client.heartbeat(request(r), new grpc.Metadata(), deadline(), (e, res) => (e ? reject(e) : resolve(res))));
const commit = (r: CommitOffsetsRequest) => new Promise<void>((resolve, reject) => client.commitOffsets(r, new grpc.Metadata(), deadline(), (e) => (e ? reject(e) : resolve())));

async function refusal(p: Promise<unknown>): Promise<{ code: grpc.status; reason: string; message: string }> {
  const err = await p.then(() => { throw new Error('expected a refusal'); }, (e: grpc.ServiceError) => e);
  const decoded = fromServiceError(err);
  return { code: err.code, reason: decoded.reason, message: decoded.message };
}

describe('coordinator: subscription regexes', () => {
  it('matches (a+)+$ in linear time: the heartbeat returns with the one matching topic assigned', async () => {
    const res = await heartbeat({ groupId: 'regex-redos', subscribedTopicRegex: '(a+)+$' });
    expect(res.assignment).toEqual([{ topic: LONG_A, partitions: [0, 1] }]);
    // The coordinator still serves others.
    const other = await heartbeat({ groupId: 'regex-other', subscribedTopicRegex: 'ord.*' });
    expect(other.assignment).toEqual([{ topic: 'orders', partitions: [0] }]);
  });

  it('refuses patterns RE2 cannot run and patterns over the size limits with INVALID_SUBSCRIPTION', async () => {
    for (const pattern of ['(a)\\1', '(?=a)a', 'x'.repeat(256), '[a-z]{100}[a-z]{100}[a-z]{100}[a-z]{100}[a-z]{100}[a-z]{100}']) {
      const r = await refusal(heartbeat({ groupId: 'regex-bad', subscribedTopicRegex: pattern }));
      expect([r.code, r.reason]).toEqual([grpc.status.INVALID_ARGUMENT, 'INVALID_SUBSCRIPTION']);
    }
    expect((await store.range('/t/groups/')).kvs.map((kv) => kv.key)).not.toContain('/t/groups/regex-bad');
  });
});

describe('coordinator: stored strings and request sizes', () => {
  it('refuses oversized ids, subscriptions and owned lists before storing anything', async () => {
    const cases: Array<[Partial<HeartbeatRequest>, string]> = [
      [{ clientId: 'c'.repeat(1024 * 1024) }, 'INVALID_REQUEST'],
      [{ memberId: 'm'.repeat(65), memberEpoch: 1 }, 'INVALID_REQUEST'],
      [{ groupId: 'g'.repeat(256) }, 'INVALID_GROUP_ID'],
      [{ serverAssignor: 'x'.repeat(65) }, 'INVALID_REQUEST'],
      [{ subscribedTopics: ['t'.repeat(250)] }, 'INVALID_TOPIC_NAME'],
      [{ subscribedTopics: Array.from({ length: 10_001 }, (_, i) => `t${i}`) }, 'INVALID_SUBSCRIPTION'],
      [{ subscribedTopics: ['orders'], ownedPartitions: [{ topic: 'orders', partitions: Array.from({ length: 10_001 }, (_, i) => i) }] }, 'INVALID_REQUEST'],
    ];
    for (const [r, reason] of cases) {
      const got = await refusal(heartbeat({ groupId: 'big-strings', subscribedTopics: ['orders'], ...r }));
      expect([got.code, got.reason]).toEqual([grpc.status.INVALID_ARGUMENT, reason]);
      expect(Buffer.byteLength(got.message)).toBeLessThan(1100);
    }
    expect((await store.range('/t/groups/big-strings')).kvs).toEqual([]);
  });

  it('refuses commit metadata over 4 KiB and commits of more than 10,000 partitions; 4 KiB is accepted', async () => {
    const big = await refusal(commit({ groupId: 'meta', memberId: '', memberEpoch: -1, offsets: [{ topic: 'orders', partition: 0, offset: 1n, metadata: 'm'.repeat(1024 * 1024) }] }));
    expect([big.code, big.reason]).toEqual([grpc.status.INVALID_ARGUMENT, 'INVALID_REQUEST']);
    expect(big.message).toMatch(/offset\.metadata\.max\.bytes/);
    const many = await refusal(commit({ groupId: 'meta', memberId: '', memberEpoch: -1, offsets: Array.from({ length: 10_001 }, () => ({ topic: 'orders', partition: 0, offset: 1n, metadata: '' })) }));
    expect([many.code, many.reason]).toEqual([grpc.status.INVALID_ARGUMENT, 'INVALID_REQUEST']);
    expect((await store.range('/t/offsets/meta/')).kvs).toEqual([]);
    await commit({ groupId: 'meta', memberId: '', memberEpoch: -1, offsets: [{ topic: 'orders', partition: 0, offset: 1n, metadata: 'm'.repeat(4096) }] });
    expect((await store.range('/t/offsets/meta/')).kvs.length).toBe(1);
  });

  it('answers bytes that are not a HeartbeatRequest with INVALID_ARGUMENT / INVALID_REQUEST (it was INTERNAL)', async () => {
    const raw = new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
    try {
      const identity = (b: Buffer) => b;
      const r = await refusal(new Promise((resolve, reject) => raw.makeUnaryRequest('/skein.group.v1.GroupCoordinatorService/Heartbeat', identity, identity, Buffer.from([0x0a, 0x05, 0x01]), new grpc.Metadata(), deadline(), (e, v) => (e ? reject(e) : resolve(v)))));
      expect([r.code, r.reason]).toEqual([grpc.status.INVALID_ARGUMENT, 'INVALID_REQUEST']);
    } finally {
      raw.close();
    }
  });
});
