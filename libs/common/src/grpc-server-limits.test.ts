// Hostile input against the shared service shell: requests that do not decode, errors that echo
// huge inputs, too many connections from one client, idle connections, oversized messages. Each
// case talks to a real server on a loopback port through grpc-js or raw HTTP/2.
import * as http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { HeartbeatRequest, HeartbeatResponse } from '@skein/proto/skein/group/v1/group.js';
import { fromServiceError, MAX_ERROR_MESSAGE_BYTES, SkeinError } from './errors.js';
import { bidiStreaming, type GrpcServerHandle, type GrpcServerLimits, serverStreaming, startGrpcServer, unary } from './grpc-server.js';

const logger = pino({ level: 'silent' });
const identity = (b: Buffer) => b;

/** A small service with real ts-proto codecs, in the three call shapes the services use. */
const definition: grpc.ServiceDefinition = {
  beat: { path: '/skein.test.Beats/Beat', requestStream: false, responseStream: false, requestSerialize: (m: HeartbeatRequest) => Buffer.from(HeartbeatRequest.encode(m).finish()), requestDeserialize: (b: Buffer) => HeartbeatRequest.decode(b), responseSerialize: (m: HeartbeatResponse) => Buffer.from(HeartbeatResponse.encode(m).finish()), responseDeserialize: (b: Buffer) => HeartbeatResponse.decode(b) },
  watch: { path: '/skein.test.Beats/Watch', requestStream: false, responseStream: true, requestSerialize: (m: HeartbeatRequest) => Buffer.from(HeartbeatRequest.encode(m).finish()), requestDeserialize: (b: Buffer) => HeartbeatRequest.decode(b), responseSerialize: (m: HeartbeatResponse) => Buffer.from(HeartbeatResponse.encode(m).finish()), responseDeserialize: (b: Buffer) => HeartbeatResponse.decode(b) },
  session: { path: '/skein.test.Beats/Session', requestStream: true, responseStream: true, requestSerialize: (m: HeartbeatRequest) => Buffer.from(HeartbeatRequest.encode(m).finish()), requestDeserialize: (b: Buffer) => HeartbeatRequest.decode(b), responseSerialize: (m: HeartbeatResponse) => Buffer.from(HeartbeatResponse.encode(m).finish()), responseDeserialize: (b: Buffer) => HeartbeatResponse.decode(b) },
};

/** Field 1 (group_id), length-delimited, claiming ~4 GiB that are not there: no decoder accepts it. */
const GARBAGE = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02]);

interface Seen { calls: string[]; sessionsEnded: number }

function implementation(seen: Seen): grpc.UntypedServiceImplementation {
  return {
    beat: unary(async (req: HeartbeatRequest) => {
      seen.calls.push(`beat:${req.groupId}`);
      if (req.groupId === 'huge-error') {
        const metadata: Record<string, string> = {};
        for (let i = 0; i < 10_000; i++) metadata[`config.key.${i}`] = 'x'.repeat(100);
        throw new SkeinError('UNKNOWN_CONFIG', `unknown config keys: ${Object.keys(metadata).join(', ')}`, { metadata: { topic: 't'.repeat(100_000), ...metadata } });
      }
      return { memberId: req.groupId, memberEpoch: 1, heartbeatIntervalMs: 1, assignment: [], standbyTasks: [] };
    }),
    watch: serverStreaming(async (call: grpc.ServerWritableStream<HeartbeatRequest, HeartbeatResponse>) => {
      seen.calls.push(`watch:${call.request.groupId}`);
    }),
    session: bidiStreaming(async (call: grpc.ServerDuplexStream<HeartbeatRequest, HeartbeatResponse>) => {
      await new Promise<void>((resolve) => {
        call.on('data', (m: HeartbeatRequest) => {
          seen.calls.push(`session:${m.groupId}`);
          call.write({ memberId: m.groupId, memberEpoch: 1, heartbeatIntervalMs: 1, assignment: [], standbyTasks: [] });
        });
        call.on('end', resolve);
        call.on('cancelled', resolve);
      });
      seen.sessionsEnded++;
    }),
  };
}

const servers: GrpcServerHandle[] = [];
const clients: grpc.Client[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const s of servers.splice(0)) await s.shutdown(1000);
});

async function start(limits: Partial<GrpcServerLimits> = {}): Promise<{ server: GrpcServerHandle; seen: Seen }> {
  const seen: Seen = { calls: [], sessionsEnded: 0 };
  const server = await startGrpcServer({ host: '127.0.0.1', port: 0, services: [{ name: 'skein.test.Beats', definition, implementation: implementation(seen) }], logger, limits });
  servers.push(server);
  return { server, seen };
}

/** Each client gets its own connection (grpc-js otherwise shares one per target across clients). */
function client(port: number): grpc.Client {
  const c = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
  clients.push(c);
  return c;
}

function rawUnary(c: grpc.Client, path: string, body: Buffer, deadlineMs = 5000): Promise<Buffer> {
  return new Promise((resolve, reject) => c.makeUnaryRequest(path, identity, identity, body, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (e, r) => (e ? reject(e) : resolve(r!))));
}

const beat = (groupId: string) => Buffer.from(HeartbeatRequest.encode({ groupId, memberId: '', memberEpoch: 0, clientId: '', subscribedTopics: [], subscribedTopicRegex: '', serverAssignor: '', ownedPartitions: [] }).finish());
const failure = (p: Promise<unknown>) => p.then(() => { throw new Error('expected the call to fail'); }, (e: grpc.ServiceError) => e);

describe('service shell: malformed requests', () => {
  it('answers garbage bytes with INVALID_ARGUMENT / INVALID_REQUEST, in every call shape, without calling the handler', async () => {
    const { server, seen } = await start();
    const c = client(server.port);

    const unaryErr = await failure(rawUnary(c, '/skein.test.Beats/Beat', GARBAGE));
    expect([unaryErr.code, fromServiceError(unaryErr).reason]).toEqual([grpc.status.INVALID_ARGUMENT, 'INVALID_REQUEST']);
    expect(unaryErr.details).toMatch(/^malformed Beat request: /);

    const streamErr = await failure(new Promise((resolve, reject) => {
      const call = c.makeServerStreamRequest('/skein.test.Beats/Watch', identity, identity, GARBAGE, new grpc.Metadata(), { deadline: Date.now() + 5000 });
      call.on('data', () => {});
      call.on('error', reject);
      call.on('end', resolve);
    }));
    expect([streamErr.code, fromServiceError(streamErr).reason]).toEqual([grpc.status.INVALID_ARGUMENT, 'INVALID_REQUEST']);

    // A bidi stream: a good message is handled, the garbage after it ends the call, and the
    // handler's call is cancelled so it does not wait forever.
    const replies: Buffer[] = [];
    const bidiErr = await failure(new Promise((resolve, reject) => {
      const call = c.makeBidiStreamRequest('/skein.test.Beats/Session', identity, identity, new grpc.Metadata(), { deadline: Date.now() + 5000 });
      call.on('data', (b: Buffer) => {
        replies.push(b);
        call.write(GARBAGE);
      });
      call.on('error', reject);
      call.on('end', resolve);
      call.write(beat('first'));
    }));
    expect([bidiErr.code, fromServiceError(bidiErr).reason]).toEqual([grpc.status.INVALID_ARGUMENT, 'INVALID_REQUEST']);
    expect(HeartbeatResponse.decode(replies[0]!).memberId).toBe('first');
    await expect.poll(() => seen.sessionsEnded, { timeout: 5000 }).toBe(1);

    // Health is registered through the same wrapper and still answers (its protobufjs decoder
    // happens to accept these bytes, so there is no error to see there).
    expect((await rawUnary(c, '/grpc.health.v1.Health/Check', Buffer.alloc(0))).equals(Buffer.from([0x08, 0x01]))).toBe(true);

    expect(seen.calls).toEqual(['session:first']);
    // The server keeps serving.
    expect(HeartbeatResponse.decode(await rawUnary(c, '/skein.test.Beats/Beat', beat('after'))).memberId).toBe('after');
  });
});

describe('service shell: error size', () => {
  it('an error echoing a 100 KB name and 10,000 keys arrives promptly as a short status', async () => {
    const { server } = await start();
    const err = await failure(rawUnary(client(server.port), '/skein.test.Beats/Beat', beat('huge-error'), 10_000));
    // Before the bound, ~1.5 MB of trailers never arrived and this was DEADLINE_EXCEEDED.
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(Buffer.byteLength(err.details)).toBeLessThanOrEqual(MAX_ERROR_MESSAGE_BYTES + 40);
    expect(err.details).toMatch(/^unknown config keys: config\.key\.0, config\.key\.1, .*… \(\d+ more bytes\)$/);
    const decoded = fromServiceError(err);
    expect(decoded.reason).toBe('UNKNOWN_CONFIG');
    expect(Object.keys(decoded.metadata).length).toBeLessThanOrEqual(8);
    expect(Buffer.byteLength(decoded.metadata.topic!)).toBeLessThan(300);
    expect(decoded.metadata.topic).toMatch(/^t+… \(\d+ more bytes\)$/);
  });
});

describe('service shell: connection and message limits', () => {
  it('refuses a client its connection over maxConnectionsPerClient, and accepts it again once one closes', async () => {
    const { server } = await start({ maxConnectionsPerClient: 2 });
    const [a, b, c] = [client(server.port), client(server.port), client(server.port)];
    await rawUnary(a, '/skein.test.Beats/Beat', beat('a'));
    await rawUnary(b, '/skein.test.Beats/Beat', beat('b'));
    const refused = await failure(rawUnary(c, '/skein.test.Beats/Beat', beat('c'), 2000));
    expect(refused.code).toBe(grpc.status.UNAVAILABLE);
    a.close();
    // c's channel reconnects with backoff; it gets through once a's connection has closed.
    await expect.poll(async () => rawUnary(c, '/skein.test.Beats/Beat', beat('c'), 1000).then(() => 'ok', (e: grpc.ServiceError) => e.code), { timeout: 15_000, interval: 200 }).toBe('ok');
  });

  it('refuses a call over maxConcurrentCallsPerClient (across connections) with RESOURCE_EXHAUSTED / TOO_MANY_CALLS, and counts calls that ended as gone', async () => {
    const { server, seen } = await start({ maxConcurrentCallsPerClient: 2 });
    const [a, b] = [client(server.port), client(server.port)];
    for (let i = 0; i < 5; i++) await rawUnary(a, '/skein.test.Beats/Beat', beat(`seq${i}`));
    // Two open sessions from two connections of the same address hold both slots.
    const open = [a, b].map((c, i) => {
      const call = c.makeBidiStreamRequest('/skein.test.Beats/Session', identity, identity, new grpc.Metadata(), { deadline: Date.now() + 20_000 });
      const replied = new Promise<void>((resolve) => call.once('data', () => resolve()));
      call.on('error', () => {});
      call.write(beat(`open${i}`));
      return { call, replied };
    });
    await Promise.all(open.map((o) => o.replied));
    const refused = await failure(rawUnary(b, '/skein.test.Beats/Beat', beat('third')));
    expect([refused.code, fromServiceError(refused).reason, fromServiceError(refused).retriable]).toEqual([grpc.status.RESOURCE_EXHAUSTED, 'TOO_MANY_CALLS', true]);
    expect(seen.calls).not.toContain('beat:third');
    open[0]!.call.end();
    await expect.poll(async () => rawUnary(b, '/skein.test.Beats/Beat', beat('third')).then(() => 'ok', (e: grpc.ServiceError) => e.code), { timeout: 5000 }).toBe('ok');
    open[1]!.call.end();
  });

  it('announces maxConcurrentStreams in its HTTP/2 settings and closes an idle connection', async () => {
    const { server } = await start({ maxConcurrentStreams: 7, maxConnectionIdleMs: 300 });
    const session = http2.connect(`http://127.0.0.1:${server.port}`);
    try {
      const settings = await new Promise<http2.Settings>((resolve) => session.once('remoteSettings', resolve));
      expect(settings.maxConcurrentStreams).toBe(7);
      // No call is ever made on this connection: the server sends GOAWAY once it has been idle.
      const code = await new Promise<number>((resolve) => session.once('goaway', resolve));
      expect(code).toBe(http2.constants.NGHTTP2_NO_ERROR);
    } finally {
      session.destroy();
    }
  });

  it('refuses a request larger than maxReceiveMessageBytes with RESOURCE_EXHAUSTED', async () => {
    const { server, seen } = await start({ maxReceiveMessageBytes: 1024 });
    const err = await failure(rawUnary(client(server.port), '/skein.test.Beats/Beat', beat('x'.repeat(2048))));
    expect(err.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(seen.calls).toEqual([]);
  });
});
