/**
 * The broker's link to the metadata service: registers (and re-registers after a lost session),
 * heartbeats, and follows WatchMetadata into a ClusterCache, resuming from the last revision after
 * a disconnect and trying each configured metadata address in turn. Local assignment changes are
 * handed to `onDelta` one message at a time, in order.
 */

import * as grpc from '@grpc/grpc-js';
import { fromServiceError } from '@skein/common/errors.js';
import { MetadataServiceClient, type WatchMetadataResponse } from '@skein/proto/skein/metadata/v1/metadata.js';
import type { Logger } from 'pino';
import { backoffDelayMs, type BackoffPolicy, retry } from '@skein/common/backoff.js';
import { sleep } from '@skein/common/timers.js';
import { type AssignmentDelta, ClusterCache } from './cluster-cache.js';

/** A generated unary stub in its (request, metadata, options, callback) form, the last overload ts-proto emits. */
type UnaryStub<Req, Res> = (
  request: Req,
  metadata: grpc.Metadata,
  options: Partial<grpc.CallOptions>,
  callback: (err: grpc.ServiceError | null, response: Res) => void,
) => grpc.ClientUnaryCall;

/** Registration retries: 200 ms doubling to 2 s, jittered (brokers restarted together spread out). */
const REGISTER_BACKOFF: BackoffPolicy = { initialMs: 200, maxMs: 2000 };
/** Re-opening the metadata watch: at once-ish after a stream that delivered, up to 1.6 s while it keeps failing. */
const WATCH_BACKOFF: BackoffPolicy = { initialMs: 100, maxMs: 1600 };

export interface MetadataFollowerOptions {
  metadataAddresses: string[];
  brokerId: number;
  advertisedHost: string;
  advertisedPort: number;
  rack: string;
  sessionTtlMs: number;
  /**
   * The data directory's id (log/data-dir.ts), sent at registration so the controller can tell an
   * empty or replaced disk from a restart. Omitted: not checked.
   */
  directoryId?: string;
  credentials?: grpc.ChannelCredentials;
  onDelta: (delta: AssignmentDelta, cache: ClusterCache) => Promise<void>;
  logger: Logger;
}

export class MetadataFollower {
  readonly cache: ClusterCache;
  private clients: MetadataServiceClient[];
  private current = 0;
  private sessionId: bigint | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private watchCall: grpc.ClientReadableStream<WatchMetadataResponse> | undefined;
  private stopped = false;
  private deliveries: Promise<void> = Promise.resolve();
  private readyResolve!: () => void;
  /** Resolves once the broker is registered and has applied a first snapshot. */
  readonly ready: Promise<void>;
  private registered = false;
  private snapshotApplied = false;

  constructor(private readonly options: MetadataFollowerOptions) {
    if (options.metadataAddresses.length === 0) throw new Error('at least one metadata address is required');
    this.cache = new ClusterCache(options.brokerId);
    const creds = options.credentials ?? grpc.credentials.createInsecure();
    this.clients = options.metadataAddresses.map((a) => new MetadataServiceClient(a, creds));
    this.ready = new Promise((resolve) => { this.readyResolve = resolve; });
  }

  private get client(): MetadataServiceClient {
    return this.clients[this.current % this.clients.length]!;
  }

  private rotate(): void {
    this.current = (this.current + 1) % this.clients.length;
  }

  start(): void {
    void this.registerLoop();
    this.watchLoop();
  }

  get isRegistered(): boolean {
    return this.sessionId !== undefined;
  }

  private checkReady(): void {
    if (this.registered && this.snapshotApplied) this.readyResolve();
  }

  /** Calls the current metadata client through its generated stub (\`(c) => c.registerBroker.bind(c)\`), typed by the contract. */
  private unary<Req, Res>(rpc: (c: MetadataServiceClient) => UnaryStub<Req, Res>, req: Req, timeoutMs = 5000): Promise<Res> {
    return new Promise((resolve, reject) => {
      rpc(this.client)(req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => {
        if (err) reject(fromServiceError(err));
        else resolve(res);
      });
    });
  }

  private async registerLoop(): Promise<void> {
    await retry(async () => {
      const res = await this.unary((c) => c.registerBroker.bind(c), {
        brokerId: this.options.brokerId,
        endpoint: { host: this.options.advertisedHost, port: this.options.advertisedPort },
        rack: this.options.rack,
        sessionTtlMs: this.options.sessionTtlMs,
        directoryId: this.options.directoryId ?? '',
      });
      this.sessionId = res.sessionId;
      this.registered = true;
      this.options.logger.info({ sessionId: res.sessionId.toString(), ttlMs: res.sessionTtlMs }, 'registered with the metadata service');
      this.checkReady();
      this.scheduleHeartbeats(res.heartbeatIntervalMs);
    }, {
      ...REGISTER_BACKOFF,
      stopped: () => this.stopped,
      onRetry: (err, attempt) => {
        const reason = (err as { reason?: string }).reason;
        // BROKER_ID_IN_USE right after a restart is our own previous session: it expires within its TTL.
        this.options.logger.warn({ reason, attempt, err: reason ? undefined : err }, 'broker registration failed; retrying');
        if (reason !== 'BROKER_ID_IN_USE') this.rotate();
      },
    });
  }

  private scheduleHeartbeats(intervalMs: number): void {
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = setInterval(() => {
      const sessionId = this.sessionId;
      if (sessionId === undefined || this.stopped) return;
      this.unary((c) => c.brokerHeartbeat.bind(c), { brokerId: this.options.brokerId, sessionId }, intervalMs).catch((err: { reason?: string }) => {
        if (err.reason === 'SESSION_EXPIRED' && this.sessionId === sessionId && !this.stopped) {
          this.options.logger.warn('broker session expired; registering again');
          clearInterval(this.heartbeatTimer);
          this.sessionId = undefined;
          void this.registerLoop();
        } else if (err.reason !== 'SESSION_EXPIRED') {
          this.rotate();
        }
      });
    }, intervalMs);
    this.heartbeatTimer.unref();
  }

  private watchLoop(attempt = 0): void {
    if (this.stopped) return;
    const call = this.client.watchMetadata({ fromRevision: this.cache.revision });
    this.watchCall = call;
    let gotData = false;
    call.on('data', (msg: WatchMetadataResponse) => {
      gotData = true;
      const delta = this.cache.apply(msg);
      if (msg.snapshot) {
        this.snapshotApplied = true;
      }
      this.deliveries = this.deliveries.then(() => this.options.onDelta(delta, this.cache)).catch((err) => {
        this.options.logger.error({ err }, 'applying a metadata change failed');
      });
      if (msg.snapshot) void this.deliveries.then(() => this.checkReady());
    });
    const retry = (why: unknown) => {
      if (this.watchCall !== call || this.stopped) return;
      this.watchCall = undefined;
      this.options.logger.warn({ err: why }, 'metadata watch ended; reconnecting');
      this.rotate();
      const next = gotData ? 0 : attempt + 1;
      setTimeout(() => this.watchLoop(next), backoffDelayMs(WATCH_BACKOFF, next)).unref();
    };
    call.on('error', retry);
    call.on('end', () => retry('stream ended'));
  }

  /**
   * Controlled shutdown: unregisters so the controller moves leadership away at once, and waits
   * (up to `waitMs`) until the metadata shows this broker leads nothing, so clients are redirected
   * before the broker stops serving.
   */
  async unregisterAndDrain(waitMs: number): Promise<void> {
    clearInterval(this.heartbeatTimer);
    const sessionId = this.sessionId;
    this.sessionId = undefined;
    this.stopped = true; // no re-registration from here on
    if (sessionId === undefined) return;
    try {
      await this.unary((c) => c.unregisterBroker.bind(c), { brokerId: this.options.brokerId, sessionId }, 3000);
    } catch (err) {
      // Expected when the metadata service stops first (a local cluster stopped with Ctrl-C): one
      // line, not a stack trace.
      this.options.logger.warn({ error: err instanceof Error ? err.message : String(err) }, 'unregister failed; the session will expire by itself');
      return;
    }
    const deadline = Date.now() + waitMs;
    const leadsSomething = () => [...this.cache.topics.values()].some((t) => [...t.partitions.values()].some((p) => p.leaderId === this.options.brokerId));
    while (leadsSomething() && Date.now() < deadline) await sleep(50);
    this.options.logger.info({ stillLeading: leadsSomething() }, 'controlled shutdown: leadership moved away');
  }

  /** Stops following the metadata service. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.heartbeatTimer);
    const call = this.watchCall;
    this.watchCall = undefined;
    call?.cancel();
    await this.deliveries;
    for (const c of this.clients) c.close();
  }
}

