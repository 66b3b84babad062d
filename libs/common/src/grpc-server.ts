/**
 * The gRPC server bootstrap every Skein service uses: grpc.health.v1 (overall and per service),
 * server reflection (so `grpcurl list/describe` work without .proto files), optional TLS/mTLS
 * from PEM files, per-RPC Prometheus metrics, error mapping through errors.ts, and a graceful
 * shutdown that reports NOT_SERVING, drains in-flight calls for a grace period, then forces.
 * Handlers are written as async functions through `unary`/`serverStreaming`/`bidiStreaming`.
 *
 * Hostile input is handled here, once, for every service (docs/limits.md lists each bound):
 * - a request that does not decode answers INVALID_ARGUMENT / INVALID_REQUEST (grpc-js itself
 *   answers INTERNAL when a deserializer throws): every registered service's deserializers are
 *   wrapped, and an interceptor turns the marker they return into the status before any handler;
 * - HTTP/2 and gRPC limits: receive message size, concurrent streams per connection, idle
 *   connections closed, keepalive pings that find dead peers, optional maximum connection age;
 * - connections per client address and in total, counted on our own listening socket, which hands
 *   accepted connections to grpc-js through its connection injector (grpc-js has no such limit).
 */

import * as net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import type { Logger } from 'pino';
import type { ConfigOf, ConfigSchema } from './config.js';
import { SkeinError, toServiceError, truncateUtf8 } from './errors.js';
import type { MetricsRegistry } from './metrics.js';
import { addReflection } from './reflection.js';
import { type AuthorizationSettings, type AuthorizeMap, authorizationInterceptor, tokenInterceptor } from './security/enforcement.js';
import type { JwtVerifier } from './security/jwt.js';

export interface ServerSecurityOptions {
  /** Verifies `authorization: Bearer` tokens; present whenever any security is configured (a token with no verifier is refused). */
  tokens?: { jwt: JwtVerifier | undefined; audit: Logger };
  /** With the authorizer enabled: enforces each registration's `authorize` rules. */
  authorization?: AuthorizationSettings;
}

/** The interceptors around the shell's own: token verification first, authorization last. */
function securityInterceptors(options: GrpcServerOptions): { first: grpc.ServerInterceptor[]; last: grpc.ServerInterceptor[] } {
  const s = options.security;
  return {
    first: s?.tokens ? [tokenInterceptor(s.tokens.jwt, s.tokens.audit)] : [],
    last: s?.authorization ? [authorizationInterceptor(s.authorization, options.services, options.logger)] : [],
  };
}
import type { Authenticator } from './security/authentication.js';
import { serverCredentials as tlsServerCredentials, type ServerTlsConfig } from './tls.js';

export interface ServiceRegistration {
  /** Full service name, e.g. skein.metadata.v1.MetadataService. */
  name: string;
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
  /** Broker-to-broker services: served, but neither listed by reflection nor given a health entry. */
  internal?: boolean;
  /**
   * What each RPC (by method name, e.g. `produce`) needs from the authorizer; enforced by the shell
   * when the authorizer is enabled (security/enforcement.ts). An RPC left out needs cluster_action.
   */
  authorize?: AuthorizeMap;
}

/** Server TLS from PEM files, re-read when they change (tls.ts). */
export type TlsOptions = ServerTlsConfig;

export interface GrpcServerOptions {
  host: string;
  port: number;
  services: ServiceRegistration[];
  tls?: TlsOptions;
  logger: Logger;
  metrics?: MetricsRegistry;
  /** Connection, stream and message limits; anything not given takes DEFAULT_GRPC_SERVER_LIMITS. */
  limits?: Partial<GrpcServerLimits>;
  /** Bearer tokens (verified before the shell's checks) and ACL enforcement (after them); see security/enforcement.ts. */
  security?: ServerSecurityOptions;
  /** @deprecated use limits.maxReceiveMessageBytes */
  maxReceiveMessageBytes?: number;
  /** Initial health per service name ('' = the whole server), over the default SERVING for each service. */
  health?: Record<string, 'SERVING' | 'NOT_SERVING'>;
  /** Identifies callers; with `required`, unauthenticated calls get UNAUTHENTICATED before any handler. */
  authenticator?: Authenticator;
  /**
   * A second, always plaintext port serving grpc.health.v1 and nothing else (same statuses as the
   * main port): kubelet gRPC probes cannot speak TLS. Undefined or negative: none; 0: a free port.
   */
  healthPort?: number;
}

/** What one server lets a client hold. Each has a config key (grpcServerLimitsConfigSchema). */
export interface GrpcServerLimits {
  /** Largest request message accepted, in bytes (larger: RESOURCE_EXHAUSTED from grpc-js). */
  maxReceiveMessageBytes: number;
  /** Concurrent calls on one HTTP/2 connection (SETTINGS_MAX_CONCURRENT_STREAMS); more wait in the client. */
  maxConcurrentStreams: number;
  /** Open connections from one remote address; 0 = unlimited. Over it, a new connection is closed at once. */
  maxConnectionsPerClient: number;
  /** Open connections in total; 0 = unlimited. */
  maxConnections: number;
  /** Calls in flight from one remote address over all its connections; 0 = unlimited. Over it: RESOURCE_EXHAUSTED. */
  maxConcurrentCallsPerClient: number;
  /** A connection with no call in flight for this long is closed (GOAWAY); clients reconnect on demand. 0 = never. */
  maxConnectionIdleMs: number;
  /** The server pings a connection silent this long... */
  keepaliveTimeMs: number;
  /** ...and closes it when the ping is not answered within this (a dead peer frees its streams). */
  keepaliveTimeoutMs: number;
  /** Connections are closed gracefully after this age (spreads clients over new instances); 0 = never. */
  maxConnectionAgeMs: number;
  /**
   * HTTP/2 receive window of each stream (SETTINGS_INITIAL_WINDOW_SIZE) and of each connection, in
   * bytes; 0 = Node's default (64 KiB). A sender stops after this much unacknowledged data, so it
   * bounds a stream's throughput to window / round trip, and the unread data a connection can
   * queue. grpc-js servers read it only with patches/@grpc+grpc-js+*.patch (README).
   */
  http2WindowBytes: number;
}

export const DEFAULT_GRPC_SERVER_LIMITS: Readonly<GrpcServerLimits> = Object.freeze({
  maxReceiveMessageBytes: 4 * 1024 * 1024,
  maxConcurrentStreams: 1000,
  maxConnectionsPerClient: 256,
  maxConnections: 10_000,
  maxConcurrentCallsPerClient: 10_000,
  maxConnectionIdleMs: 600_000,
  keepaliveTimeMs: 60_000,
  keepaliveTimeoutMs: 20_000,
  maxConnectionAgeMs: 0,
  http2WindowBytes: 0,
});

const D = DEFAULT_GRPC_SERVER_LIMITS;
/** Config keys for the limits; services spread this into their schema and pass limitsFromConfig(config). */
export const grpcServerLimitsConfigSchema = {
  maxReceiveMessageBytes: { type: 'int', default: D.maxReceiveMessageBytes, min: 1024, max: 1024 * 1024 * 1024, doc: 'Largest gRPC request message accepted, in bytes' },
  maxConcurrentStreams: { type: 'int', default: D.maxConcurrentStreams, min: 1, max: 1_000_000, doc: 'Concurrent calls per client connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS)' },
  maxConnectionsPerClient: { type: 'int', default: D.maxConnectionsPerClient, min: 0, max: 1_000_000, doc: 'Open connections per client address; 0 = unlimited (Kafka: max.connections.per.ip)' },
  maxConnections: { type: 'int', default: D.maxConnections, min: 0, max: 1_000_000, doc: 'Open connections in total; 0 = unlimited (Kafka: max.connections)' },
  maxConcurrentCallsPerClient: { type: 'int', default: D.maxConcurrentCallsPerClient, min: 0, max: 10_000_000, doc: 'Calls in flight from one client address over all its connections; 0 = unlimited' },
  maxConnectionIdleMs: { type: 'int', default: D.maxConnectionIdleMs, min: 0, max: 86_400_000, doc: 'Close a connection with no call in flight after this long; 0 = never (Kafka: connections.max.idle.ms)' },
  keepaliveTimeMs: { type: 'int', default: D.keepaliveTimeMs, min: 1000, max: 86_400_000, doc: 'Ping a silent connection after this long' },
  keepaliveTimeoutMs: { type: 'int', default: D.keepaliveTimeoutMs, min: 1000, max: 600_000, doc: 'Close a connection whose ping is not answered within this' },
  maxConnectionAgeMs: { type: 'int', default: D.maxConnectionAgeMs, min: 0, max: 86_400_000 * 30, doc: 'Close connections gracefully after this age; 0 = never' },
  http2WindowBytes: { type: 'int', default: D.http2WindowBytes, min: 0, max: 2 ** 31 - 1, doc: "HTTP/2 receive window per stream and per connection, in bytes; 0 = Node's default (64 KiB)" },
} as const satisfies ConfigSchema;

export function limitsFromConfig(config: ConfigOf<typeof grpcServerLimitsConfigSchema>): GrpcServerLimits {
  const out = {} as GrpcServerLimits;
  for (const key of Object.keys(grpcServerLimitsConfigSchema) as Array<keyof GrpcServerLimits>) out[key] = config[key];
  return out;
}

export interface GrpcServerHandle {
  port: number;
  /** The plaintext health-only port, when options.healthPort asked for one. */
  healthPort?: number;
  server: grpc.Server;
  setServing(serviceName: string, serving: boolean): void;
  shutdown(graceMs: number): Promise<void>;
}

type Handler = (...args: never[]) => unknown;

/** Wraps each handler: records per-RPC metrics, and turns thrown errors into statuses with details. */
function instrument(reg: ServiceRegistration, logger: Logger, metrics?: MetricsRegistry): grpc.UntypedServiceImplementation {
  const out: grpc.UntypedServiceImplementation = {};
  for (const [method, impl] of Object.entries(reg.implementation)) {
    const def = reg.definition[method];
    const rpcName = def?.path.split('/').pop() ?? method;
    const observe = (code: grpc.status, startNs: bigint) => {
      metrics?.rpcHandled.inc({ service: reg.name, method: rpcName, code: grpc.status[code] ?? String(code) });
      metrics?.rpcSeconds.observe({ service: reg.name, method: rpcName }, Number(process.hrtime.bigint() - startNs) / 1e9);
    };
    const onUnexpected = (err: unknown) => logger.error({ err, rpc: `${reg.name}/${rpcName}` }, 'unexpected error in RPC handler');
    if (def && !def.requestStream && !def.responseStream) {
      out[method] = ((call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        const start = process.hrtime.bigint();
        (impl as Handler as (c: unknown, cb: grpc.sendUnaryData<unknown>) => void)(call, (err, value, trailer, flags) => {
          if (err) {
            const status = toServiceError(err, onUnexpected);
            observe(status.code, start);
            callback(status, null);
          } else {
            observe(grpc.status.OK, start);
            callback(null, value, trailer, flags);
          }
        });
      }) as grpc.UntypedHandleCall;
    } else {
      out[method] = ((call: grpc.ServerWritableStream<unknown, unknown>) => {
        const start = process.hrtime.bigint();
        let done = false;
        const finish = (code: grpc.status) => { if (!done) { done = true; observe(code, start); } };
        call.on('finish', () => finish(grpc.status.OK));
        call.on('cancelled', () => finish(grpc.status.CANCELLED));
        call.on('error', () => finish(grpc.status.UNKNOWN));
        (impl as Handler as (c: unknown) => void)(call);
      }) as grpc.UntypedHandleCall;
    }
  }
  return out;
}

/** An async unary handler; errors (thrown or rejected) become statuses with details. */
export function unary<Req, Res>(fn: (request: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    fn(call.request, call).then((res) => callback(null, res), (err: unknown) => callback(err as grpc.ServiceError, null));
  };
}

function failStream(call: { destroy(err?: Error): void; emit(event: string, ...args: unknown[]): boolean }, err: unknown): void {
  const status = toServiceError(err);
  const e = Object.assign(new Error(status.details), status);
  call.emit('error', e);
}

export function serverStreaming<Req, Res>(fn: (call: grpc.ServerWritableStream<Req, Res>) => Promise<void>): grpc.handleServerStreamingCall<Req, Res> {
  return (call) => {
    fn(call).then(() => { if (!call.writableEnded) call.end(); }, (err: unknown) => failStream(call, err));
  };
}

export function bidiStreaming<Req, Res>(fn: (call: grpc.ServerDuplexStream<Req, Res>) => Promise<void>): grpc.handleBidiStreamingCall<Req, Res> {
  return (call) => {
    fn(call).then(() => { if (!call.writableEnded) call.end(); }, (err: unknown) => failStream(call, err));
  };
}

/** Plaintext, or TLS/mTLS whose files are re-read on change (new connections use rotated certificates). */
export function serverCredentials(tls?: TlsOptions, logger?: Logger): grpc.ServerCredentials {
  return tlsServerCredentials(tls, logger);
}

/**
 * Adds grpc.health.v1 (with the given initial statuses) and server reflection to a server (for
 * services that build their own grpc.Server). Reflection lists the services in `statuses` plus
 * Health, and describes them from the descriptors buf compiled (libs/proto), so grpcurl and other
 * reflection clients resolve every import and map type.
 */
export function addHealthAndReflection(server: grpc.Server, statuses: Record<string, 'SERVING' | 'NOT_SERVING'>): HealthImplementation {
  const health = new HealthImplementation(statuses);
  health.addToServer(server);
  const listed = [...Object.keys(statuses).filter((name) => name !== '' && !name.includes('/')), 'grpc.health.v1.Health'];
  addReflection(server, listed);
  return health;
}

/** What a wrapped deserializer returns for bytes that do not decode (grpc-js would answer INTERNAL). */
class MalformedRequest {
  constructor(readonly problem: string) {}
}

/** The definition with every request deserializer made total: a decode failure becomes a MalformedRequest. */
function guardDeserializers(definition: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, method] of Object.entries(definition)) {
    const decode = method.requestDeserialize;
    out[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        try {
          return decode(bytes);
        } catch (err) {
          return new MalformedRequest(err instanceof Error ? err.message : String(err));
        }
      },
    };
  }
  return out;
}

/**
 * A grpc.Server whose every service (ours, health, reflection) decodes through guardDeserializers,
 * so no registration can forget it.
 */
class ShellServer extends grpc.Server {
  override addService(service: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation): void {
    super.addService(guardDeserializers(service), implementation);
  }
}

/**
 * The shell's interceptor, around every call of every service:
 * - with authentication required, answers a call without an authenticated principal with
 *   UNAUTHENTICATED / AUTHENTICATION_REQUIRED before its handler runs (health checks excepted);
 * - counts calls in flight per client address and refuses one over maxConcurrentCallsPerClient
 *   with RESOURCE_EXHAUSTED before its handler runs (metadata is never forwarded, so no handler
 *   is invoked); the count drops when the call ends, however it ends;
 * - answers a MalformedRequest with INVALID_ARGUMENT / INVALID_REQUEST before any handler sees it
 *   (for every call shape: a unary handler is never invoked; a streaming handler's call is
 *   cancelled when the status is sent). Later messages and the half-close of that call are dropped.
 */
function shellInterceptor(limits: GrpcServerLimits, metrics?: MetricsRegistry, authenticator?: Authenticator): grpc.ServerInterceptor {
  const callsPerClient = new Map<string, number>();
  return (method, call) => {
    let rejected = false;
    const [, service = '', rpc = method.path] = method.path.split('/');
    const client = call.getConnectionInfo().remoteAddress ?? '';
    let counted = false;
    const release = () => {
      if (!counted) return;
      counted = false;
      const n = (callsPerClient.get(client) ?? 1) - 1;
      if (n <= 0) callsPerClient.delete(client);
      else callsPerClient.set(client, n);
    };
    return new grpc.ServerInterceptingCall(call, {
      start: (next) => next({
        onReceiveMetadata: (metadata: grpc.Metadata, forward: (m: grpc.Metadata) => void) => {
          if (authenticator?.required) {
            const refused = authenticator.check(service, authenticator.identify({ getAuthContext: () => call.getAuthContext(), metadata }));
            if (refused) {
              rejected = true;
              metrics?.rpcHandled.inc({ service, method: rpc, code: 'UNAUTHENTICATED' });
              call.sendStatus(toServiceError(refused));
              return;
            }
          }
          const inFlight = callsPerClient.get(client) ?? 0;
          if (limits.maxConcurrentCallsPerClient > 0 && inFlight >= limits.maxConcurrentCallsPerClient) {
            rejected = true;
            metrics?.rpcHandled.inc({ service, method: rpc, code: 'RESOURCE_EXHAUSTED' });
            call.sendStatus(toServiceError(new SkeinError('TOO_MANY_CALLS', `too many calls in flight from this client (limit ${limits.maxConcurrentCallsPerClient}); retry when some have finished`, { metadata: { limit: 'maxConcurrentCallsPerClient' } })));
            return;
          }
          counted = true;
          callsPerClient.set(client, inFlight + 1);
          forward(metadata);
        },
        onCancel: release,
        onReceiveMessage: (message: unknown, forward: (m: unknown) => void) => {
          if (rejected) return;
          if (!(message instanceof MalformedRequest)) {
            forward(message);
            return;
          }
          rejected = true;
          metrics?.rpcHandled.inc({ service, method: rpc, code: 'INVALID_ARGUMENT' });
          call.sendStatus(toServiceError(new SkeinError('INVALID_REQUEST', `malformed ${rpc} request: ${truncateUtf8(message.problem, 256)}`)));
        },
        onReceiveHalfClose: (forward: () => void) => {
          if (!rejected) forward();
        },
      }),
      sendStatus: (status, forward) => {
        release();
        forward(status);
      },
    });
  };
}

/** grpc-js channel options for the limits (only options grpc-js 1.x servers read; see docs/limits.md). */
function serverChannelOptions(limits: GrpcServerLimits, metrics?: MetricsRegistry, authenticator?: Authenticator, security?: { first: grpc.ServerInterceptor[]; last: grpc.ServerInterceptor[] }): grpc.ServerOptions {
  return {
    'grpc.max_receive_message_length': limits.maxReceiveMessageBytes,
    'grpc.max_concurrent_streams': limits.maxConcurrentStreams,
    // grpc-js treats a value at or above ~24.8 days as "never".
    'grpc.max_connection_idle_ms': limits.maxConnectionIdleMs > 0 ? limits.maxConnectionIdleMs : 2 ** 31 - 1,
    'grpc.keepalive_time_ms': limits.keepaliveTimeMs,
    'grpc.keepalive_timeout_ms': limits.keepaliveTimeoutMs,
    ...(limits.maxConnectionAgeMs > 0 ? { 'grpc.max_connection_age_ms': limits.maxConnectionAgeMs, 'grpc.max_connection_age_grace_ms': limits.keepaliveTimeoutMs } : {}),
    // Read by servers only with our grpc-js patch (grpc/grpc-node PR #3058 adds it upstream).
    ...(limits.http2WindowBytes > 0 ? { 'grpc-node.flow_control_window': limits.http2WindowBytes } : {}),
    interceptors: [...(security?.first ?? []), shellInterceptor(limits, metrics, authenticator), ...(security?.last ?? [])],
  };
}

/**
 * The listening socket. It counts open connections per remote address and in total, closes a
 * connection over either limit before a byte of HTTP/2 is read, and hands the others to grpc-js
 * (which applies TLS, HTTP/2 settings, keepalive and idle timeouts to them as to its own).
 */
async function listen(server: grpc.Server, host: string, port: number, credentials: grpc.ServerCredentials, limits: GrpcServerLimits, logger: Logger): Promise<net.Server> {
  const injector = server.createConnectionInjector(credentials);
  const perClient = new Map<string, number>();
  let refusedLogged = 0;
  const listener = net.createServer({ noDelay: true }, (socket) => {
    const address = socket.remoteAddress ?? '';
    const open = perClient.get(address) ?? 0;
    if (limits.maxConnectionsPerClient > 0 && open >= limits.maxConnectionsPerClient) {
      // Logged at most once a second-ish: a client hammering the limit must not flood the log.
      if (Date.now() - refusedLogged > 1000) {
        refusedLogged = Date.now();
        logger.warn({ client: address, open, limit: limits.maxConnectionsPerClient }, 'connection refused: too many connections from this client');
      }
      socket.destroy();
      return;
    }
    perClient.set(address, open + 1);
    socket.once('close', () => {
      const n = (perClient.get(address) ?? 1) - 1;
      if (n <= 0) perClient.delete(address);
      else perClient.set(address, n);
    });
    injector.injectConnection(socket);
  });
  // Node closes connections over the total at accept.
  if (limits.maxConnections > 0) listener.maxConnections = limits.maxConnections;
  listener.once('close', () => injector.destroy());
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    // grpc-js style "[::1]" hosts are plain addresses to net.
    listener.listen(port, host.replace(/^\[(.*)\]$/, '$1'), () => {
      listener.off('error', reject);
      resolve();
    });
  });
  return listener;
}

export async function startGrpcServer(options: GrpcServerOptions): Promise<GrpcServerHandle> {
  const limits: GrpcServerLimits = {
    ...DEFAULT_GRPC_SERVER_LIMITS,
    ...(options.maxReceiveMessageBytes !== undefined ? { maxReceiveMessageBytes: options.maxReceiveMessageBytes } : {}),
    ...options.limits,
  };
  const server = new ShellServer(serverChannelOptions(limits, options.metrics, options.authenticator, securityInterceptors(options)));
  for (const reg of options.services) server.addService(reg.definition, instrument(reg, options.logger, options.metrics));

  const statuses: Record<string, 'SERVING' | 'NOT_SERVING'> = { '': 'SERVING' };
  for (const reg of options.services) if (!reg.internal) statuses[reg.name] = 'SERVING';
  Object.assign(statuses, options.health);
  const health = addHealthAndReflection(server, statuses);

  const listener = await listen(server, options.host, options.port, serverCredentials(options.tls, options.logger), limits, options.logger);
  const port = (listener.address() as net.AddressInfo).port;
  const healthOnly = options.healthPort !== undefined && options.healthPort >= 0 ? await startHealthOnlyServer(health, options.host, options.healthPort) : undefined;

  return {
    port,
    ...(healthOnly ? { healthPort: healthOnly.port } : {}),
    server,
    setServing(serviceName, serving) {
      const status = serving ? 'SERVING' : 'NOT_SERVING';
      if (serviceName === '') for (const name of Object.keys(statuses)) health.setStatus(name, status);
      else health.setStatus(serviceName, status);
    },
    async shutdown(graceMs) {
      for (const name of Object.keys(statuses)) health.setStatus(name, 'NOT_SERVING');
      listener.close(); // no new connections; the open ones end with the sessions below
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          options.logger.warn({ graceMs }, 'in-flight calls did not finish in time; forcing shutdown');
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      // Last: probes keep reading NOT_SERVING while the calls drain.
      healthOnly?.server.forceShutdown();
    },
  };
}

/**
 * The health-only port: a plaintext server with grpc.health.v1 alone (no reflection, no service,
 * no interceptor that could reach one), reading the main server's statuses. Plaintext on purpose,
 * and safe because Health reveals only SERVING / NOT_SERVING per service name.
 */
async function startHealthOnlyServer(health: HealthImplementation, host: string, port: number): Promise<{ server: grpc.Server; port: number }> {
  const server = new ShellServer();
  health.addToServer(server);
  const bound = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
  return { server, port: bound };
}
