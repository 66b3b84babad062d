// The client library commits over CommitStream, in process against real coordinator gRPC servers
// (the shared shell, an embedded store): GroupConsumer and GroupAdmin commit over the stream and
// never call the unary CommitOffsets (counted by the coordinator's per-RPC metric), a refusal
// comes back as the unary call's SkeinError would; against a coordinator without CommitStream
// (an older one: UNIMPLEMENTED) both fall back to CommitOffsets and their commits still land.
import * as grpc from '@grpc/grpc-js';
import { type GrpcServerHandle, startGrpcServer } from '@skein/common/grpc-server.js';
import { createLogger } from '@skein/common/logger.js';
import { MetricsRegistry } from '@skein/common/metrics.js';
import { EmbeddedStore } from '@skein/common/store/embedded-store.js';
import { GroupAdmin, GroupConsumer, SkeinClient } from '@skein/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GROUP_SERVICE_NAME, GroupCoordinatorServiceService, groupServiceHandlers } from '../services/group-coordinator/src/grpc/group-service.js';
import { waitFor } from './harness/wait.js';

const logger = createLogger({ service: 'test', level: 'silent' });
let store: EmbeddedStore;
const servers: Record<'current' | 'old', { handle: GrpcServerHandle; metrics: MetricsRegistry; address: string }> = {} as never;

beforeAll(async () => {
  store = await EmbeddedStore.open();
  const handlers = groupServiceHandlers({
    store,
    prefix: '/t/',
    logger,
    sessionTimeoutMs: 60_000,
    heartbeatIntervalMs: 60_000,
    offsetsRetentionMs: 600_000,
    sessionBreakGraceMs: 1000,
    topics: async () => new Map([['orders', 2]]),
    listOffset: async () => 0n,
  });
  // An older coordinator: the same service without the CommitStream method, so grpc-js answers UNIMPLEMENTED.
  const { commitStream: _def, ...oldDefinition } = GroupCoordinatorServiceService;
  const { commitStream: _impl, ...oldHandlers } = handlers;
  for (const [name, definition, implementation] of [
    ['current', GroupCoordinatorServiceService, handlers],
    ['old', oldDefinition, oldHandlers],
  ] as const) {
    const metrics = new MetricsRegistry();
    const handle = await startGrpcServer({
      host: '127.0.0.1',
      port: 0,
      logger,
      metrics,
      services: [
        { name: GROUP_SERVICE_NAME, definition: definition as grpc.ServiceDefinition, implementation: implementation as grpc.UntypedServiceImplementation },
      ],
    });
    servers[name] = { handle, metrics, address: `127.0.0.1:${handle.port}` };
  }
});
afterAll(async () => {
  for (const s of Object.values(servers)) await s.handle.shutdown(1000);
  await store?.close();
});

/** Calls of `method` the coordinator finished, by status code. */
async function calls(server: 'current' | 'old', method: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of (await servers[server].metrics.rpcHandled.get()).values) if (v.labels.method === method) out[String(v.labels.code)] = v.value;
  return out;
}

async function consumeAndCommit(server: 'current' | 'old', groupId: string): Promise<Map<number, bigint>> {
  const admin = new GroupAdmin([servers[server].address]);
  // Committed before the member joins, so it starts from them without asking a broker.
  await admin.commitOffsets(groupId, [
    { topic: 'orders', partition: 0, offset: 1n },
    { topic: 'orders', partition: 1, offset: 1n },
  ]);
  const client = new SkeinClient({ metadata: ['127.0.0.1:1'], requestTimeoutMs: 1000 });
  const consumer = new GroupConsumer(client, {
    groupId,
    topics: ['orders'],
    coordinator: [servers[server].address],
    autoCommit: false,
    onError: () => undefined,
  });
  try {
    await consumer.run(() => undefined);
    await consumer.commit([{ topic: 'orders', partition: 0, offset: 42n }]);
    await consumer.commit([{ topic: 'orders', partition: 1, offset: 43n }]);
    // The group has a member now: an admin commit is refused, with the reason and code of the unary call.
    await expect(admin.commitOffsets(groupId, [{ topic: 'orders', partition: 0, offset: 7n }])).rejects.toMatchObject({
      reason: 'GROUP_NOT_EMPTY',
      code: grpc.status.FAILED_PRECONDITION,
      retriable: false,
    });
    return new Map((await admin.fetchOffsets(groupId)).map((o) => [o.partition, o.offset]));
  } finally {
    await consumer.close();
    client.close();
    admin.close();
  }
}

describe('client commits', () => {
  it('GroupConsumer and GroupAdmin commit over CommitStream, never the unary CommitOffsets', async () => {
    expect(await consumeAndCommit('current', 'stream-group')).toEqual(
      new Map([
        [0, 42n],
        [1, 43n],
      ]),
    );
    expect(await calls('current', 'CommitOffsets')).toEqual({});
    // Each closed its stream: the consumer's and the admin's.
    await waitFor(async () => Object.values(await calls('current', 'CommitStream')).reduce((a, b) => a + b, 0) === 2, {
      timeoutMs: 10_000,
      message: 'both commit streams ended',
    });
  });

  it('falls back to CommitOffsets on a coordinator without CommitStream', async () => {
    expect(await consumeAndCommit('old', 'unary-group')).toEqual(
      new Map([
        [0, 42n],
        [1, 43n],
      ]),
    );
    // The admin's commit and its refused one, and the consumer's two.
    expect(await calls('old', 'CommitOffsets')).toEqual({ OK: 3, FAILED_PRECONDITION: 1 });
  });
});
