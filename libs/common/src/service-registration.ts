/**
 * Keeps a process listed in the metadata service's service discovery (RegisterServiceInstance,
 * FindServiceInstances: Kafka's FindCoordinator) for as long as it runs: registers, heartbeats at
 * the interval the metadata service suggests, registers again when its session ended (expired
 * while the metadata service was unreachable, or replaced), and unregisters on stop so clients
 * stop finding it before it drains. Every role other than the broker uses it: the group
 * coordinator today, a schema registry or a Connect worker later.
 *
 * Registration goes through the metadata service, not straight into the store, so a role needs
 * no store access of its own (a Connect worker has none) and always lands in the store the
 * metadata service reads (with `npm start` the coordinator keeps groups in a store of its own).
 *
 * Failures never end the process: each is logged at warn and retried after a jittered backoff,
 * moving to the next metadata address.
 */

import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { MetadataServiceClient, type ServiceRole } from '@skein/proto/skein/metadata/v1/metadata.js';
import { fromServiceError } from './errors.js';
import { backoffDelayMs, type BackoffPolicy } from './backoff.js';
import { systemTimers, type Timers } from './timers.js';

export interface ServiceRegistrationOptions {
  /** Metadata service addresses, host:port; tried in turn. */
  metadataAddresses: readonly string[];
  role: ServiceRole;
  /** Unique within the role (e.g. the pod name); a restart under the same name replaces the entry. */
  instanceId: string;
  /** Where clients reach this process. */
  endpoint: { host: string; port: number };
  logger: Logger;
  credentials?: grpc.ChannelCredentials;
  /** Requested session TTL; 0 or absent takes the metadata service's default. */
  sessionTtlMs?: number;
  /** Per-call deadline. */
  callTimeoutMs?: number;
  /** Injected for tests; defaults to Math.random. */
  random?: () => number;
  /** Injected for tests; defaults to the real timers. */
  timers?: Timers;
}

export interface ServiceRegistrationHandle {
  /** Resolves when the first registration succeeded (it is retried until then, or until stop). */
  readonly registered: Promise<void>;
  /** Stops heartbeating and unregisters (bounded by the call timeout; a failure is only logged). */
  stop(): Promise<void>;
}

/** Backoff before retry `attempt` + 1: 200 ms doubling to 5 s, scaled by [0.5, 1) so instances spread out. */
export function registrationBackoffMs(attempt: number, random: () => number = Math.random): number {
  return backoffDelayMs(REGISTRATION_BACKOFF, attempt, random);
}

const REGISTRATION_BACKOFF: BackoffPolicy = { initialMs: 200, maxMs: 5000 };

export function startServiceRegistration(options: ServiceRegistrationOptions): ServiceRegistrationHandle {
  if (options.metadataAddresses.length === 0) throw new Error('service registration needs at least one metadata address');
  const credentials = options.credentials ?? grpc.credentials.createInsecure();
  const clients = options.metadataAddresses.map((a) => new MetadataServiceClient(a, credentials));
  const timeoutMs = options.callTimeoutMs ?? 5000;
  const random = options.random ?? Math.random;
  const timers = options.timers ?? systemTimers;
  const { logger, role, instanceId } = options;
  let next = 0;
  let session: { sessionId: bigint; heartbeatIntervalMs: number } | undefined;
  let cancelTimer: () => void = () => {};
  let stopped = false;
  let failures = 0;
  let inFlight: Promise<void> = Promise.resolve();
  let onRegistered: () => void = () => {};
  const registered = new Promise<void>((resolve) => { onRegistered = resolve; });

  const call = <Res>(fn: (c: MetadataServiceClient, cb: (err: grpc.ServiceError | null, res: Res) => void, opts: Partial<grpc.CallOptions>) => void): Promise<Res> =>
    new Promise((resolve, reject) => {
      fn(clients[next % clients.length]!, (err, res) => (err ? reject(fromServiceError(err)) : resolve(res)), { deadline: Date.now() + timeoutMs });
    });

  const schedule = (ms: number) => {
    if (stopped) return;
    cancelTimer = timers.setTimeout(() => { inFlight = step(); }, ms);
  };

  async function step(): Promise<void> {
    try {
      if (!session) {
        const res = await call<{ sessionId: bigint; heartbeatIntervalMs: number; sessionTtlMs: number }>((c, cb, o) => c.registerServiceInstance(
          { role, instanceId, endpoint: options.endpoint, sessionTtlMs: options.sessionTtlMs ?? 0 }, new grpc.Metadata(), o, cb));
        session = { sessionId: res.sessionId, heartbeatIntervalMs: res.heartbeatIntervalMs };
        logger.info({ instanceId, endpoint: options.endpoint, sessionTtlMs: res.sessionTtlMs }, 'registered with the metadata service');
        onRegistered();
      } else {
        await call((c, cb, o) => c.serviceInstanceHeartbeat({ role, instanceId, sessionId: session!.sessionId }, new grpc.Metadata(), o, cb));
      }
      failures = 0;
      schedule(session.heartbeatIntervalMs);
    } catch (err) {
      if (stopped) return;
      if ((err as { reason?: string }).reason === 'SESSION_EXPIRED') {
        // Expired while we could not heartbeat, or replaced: register again at once.
        logger.warn({ instanceId }, 'service registration session ended; registering again');
        session = undefined;
        schedule(0);
        return;
      }
      next++;
      logger.warn({ err, instanceId, attempt: failures }, session ? 'heartbeat to the metadata service failed; retrying' : 'registration with the metadata service failed; retrying');
      schedule(Math.min(registrationBackoffMs(failures++, random), session ? session.heartbeatIntervalMs : Infinity));
    }
  }

  inFlight = step();
  return {
    registered,
    async stop() {
      stopped = true;
      cancelTimer();
      await inFlight;
      const ended = session;
      session = undefined;
      if (ended) {
        await call((c, cb, o) => c.unregisterServiceInstance({ role, instanceId, sessionId: ended.sessionId }, new grpc.Metadata(), o, cb))
          .then(() => logger.info({ instanceId }, 'unregistered from the metadata service'))
          .catch((err: unknown) => logger.warn({ error: err instanceof Error ? err.message : String(err), instanceId }, 'unregistering failed; the entry ends with its session'));
      }
      for (const c of clients) c.close();
    },
  };
}
