/**
 * A consumer in a group: heartbeats to the group coordinator (server-side assignment, KIP-848
 * style), releases partitions it is told to give up (committing their positions first), starts
 * reading newly assigned ones from the group's committed offsets, and hands records to your code
 * in one of three styles:
 *
 *   await consumer.run({ eachMessage: async (m) => ... })   // one record at a time
 *   await consumer.run({ eachBatch: async (b) => ... })     // one fetched batch per partition at a time
 *   for await (const m of consumer) { ... }                 // an async iterator
 *
 * Delivery guarantees. A record's position moves past it only after your handler returns (or, with
 * the iterator, when you ask for the next record), and auto-commit (on by default, every
 * `autoCommitIntervalMs`, and before any partition is given up) commits positions: at-least-once.
 * For at-most-once, turn auto-commit off and `commit()` a record's offset before processing it;
 * for your own scheme, turn auto-commit off and call `commit()` when you choose.
 *
 * Fetching is Kafka's (fetcher.ts): one long-polling Fetch request per broker for every assigned
 * partition it leads, the next one in flight while your handler runs, no timer between a record's
 * arrival and your handler (time is injected, `clock`/`timers`, and only paces heartbeats,
 * auto-commit and backoff after errors).
 *
 * Fetch failures never spin silently. Each partition is in one of three fetch states: FETCHING;
 * BACKING_OFF after an error that outlived the client's own retries (reported to `onError`, tried
 * again after a jittered, growing delay); or HELD (awaiting seek) after an error about the data at
 * the position, which fetching again cannot fix (a corrupt batch, a batch over the decompression
 * limit, an out-of-range position under `autoOffsetReset: 'none'`), reported to `onError` once
 * and not fetched again until you `seek()` it or it is reassigned, as Kafka's poll() keeps
 * failing until you seek.
 * An out-of-range position (retention deleted it) otherwise follows `autoOffsetReset`.
 */
import * as grpc from '@grpc/grpc-js';
import { backoffDelayMs, type BackoffPolicy, retry } from '@skein/common/backoff.js';
import { fromServiceError, SkeinError } from '@skein/common/errors.js';
import { type Clock, systemClock, systemTimers, type Timers } from '@skein/common/timers.js';
import { Fetcher } from './fetcher.js';
import { isRetriableError } from './retry.js';
import type { ConsumedRecord } from '@skein/common/records/record-batch.js';
import { OffsetSpec } from '@skein/proto/skein/broker/v1/broker.js';
import { type CommitOffsetsRequest, type GroupCoordinatorServiceClient, type HeartbeatRequest, type HeartbeatResponse, type SessionRequest, type SessionResponse, type TopicPartitions } from '@skein/proto/skein/group/v1/group.js';
import type { SkeinClient } from './client.js';
import { CoordinatorPool } from './coordinators.js';
import { CommitChannel, type CommitRpc } from './commit-stream.js';
import { callUnary, type UnaryStub } from './rpc.js';

export interface ConsumerOptions {
  groupId: string;
  /**
   * Group coordinator addresses; any instance serves any group. Left out (or empty): found from
   * the metadata service (SkeinClient.findCoordinators, Kafka's FindCoordinator), and found again
   * when every known instance has failed.
   */
  coordinator?: string[];
  topics?: string[];
  /** Subscribe to every topic whose whole name matches this regular expression (new topics too). */
  topicRegex?: string;
  /** The server-side assignor; 'streams' needs `streams` (stream-processing members, KIP-1071). */
  assignor?: 'uniform' | 'range' | 'roundrobin' | 'streams';
  /**
   * A stream-processing member (with `assignor: 'streams'`): the coordinator assigns tasks of this
   * topology (proto StreamsMember, group.proto, says how). Active tasks arrive as partitions, as
   * for any consumer; standby tasks through `onStandbyTasks`. `topics` may be left out: the
   * topology's source topics are the subscription.
   */
  streams?: StreamsMemberOptions;
  /**
   * Where to start when the group has no committed offset for a partition, and where to go when
   * a position is out of range (retention deleted the records there, or the log was truncated),
   * as Kafka's `auto.offset.reset`: 'earliest' (the log start offset), 'latest' (the high
   * watermark: only records produced from now on), or 'none' (an OFFSET_OUT_OF_RANGE error to
   * `onError`, and the partition waits for `seek()`). Default 'earliest' (this consumer's behaviour
   * before the option existed; note that Kafka's default is 'latest'), or 'latest' when
   * `fromBeginning: false`.
   */
  autoOffsetReset?: AutoOffsetReset;
  /** Older spelling: `fromBeginning: false` means `autoOffsetReset: 'latest'`. */
  fromBeginning?: boolean;
  /** Called after `autoOffsetReset` moved an out-of-range position (records in between were skipped or will be read again). */
  onOffsetReset?: (reset: OffsetReset) => void;
  /**
   * Most bytes the compressed batches of one fetch may decompress to (default 64 MiB, the
   * client's largest gRPC message). A single batch above it is a MESSAGE_TOO_LARGE error to
   * `onError`, never an out-of-memory crash.
   */
  maxUncompressedBytes?: number;
  /**
   * 'read_committed': only records of committed transactions (and non-transactional ones), up to
   * the last stable offset; aborted transactions' records are dropped (Kafka's isolation.level).
   * Default 'read_uncommitted'. Transaction markers are never handed out.
   */
  isolationLevel?: 'read_uncommitted' | 'read_committed';
  autoCommit?: boolean;
  autoCommitIntervalMs?: number;
  clientId?: string;
  /** Called after partitions are assigned, before any of their records are handed out. */
  onAssigned?: (partitions: string[]) => void | Promise<void>;
  /** Called when partitions are taken away (after their positions were committed, with auto-commit). */
  onRevoked?: (partitions: string[]) => void | Promise<void>;
  /** Most bytes per partition per fetch (Kafka: max.partition.fetch.bytes). Default 1 MiB. */
  maxBytesPerPartition?: number;
  /**
   * Longest a broker holds a fetch while it has nothing new (Kafka: fetch.max.wait.ms). Default
   * 500. It bounds how often an idle consumer asks (one request per broker per maxWaitMs), not
   * latency: a broker answers as soon as a record arrives.
   */
  maxWaitMs?: number;
  /** Bytes a broker waits for before answering a fetch (Kafka: fetch.min.bytes). Default 1. */
  minBytes?: number;
  /** Most bytes per fetch, all partitions together (Kafka: fetch.max.bytes). Default 50 MiB. */
  maxBytes?: number;
  /** Time for heartbeats, auto-commit and backoff (tests pass a manual or frozen one). Default the system's. */
  clock?: Clock;
  timers?: Timers;
  /**
   * 'stream' (default): heartbeats travel over one Session stream, so that when this process dies
   * its connection breaks and the coordinator moves its partitions after a short grace instead of
   * the whole session timeout. 'unary': one call per heartbeat.
   */
  session?: 'stream' | 'unary';
  /**
   * 'stream' (default): commits travel over one CommitStream per coordinator instance (unary on
   * an instance too old to have it). 'unary': one CommitOffsets call per commit.
   */
  commits?: CommitRpc;
  /**
   * Called when a handler throws, and when fetching a partition fails; `err.reason` says why
   * (e.g. CORRUPT_MESSAGE, OFFSET_OUT_OF_RANGE, MESSAGE_TOO_LARGE, NOT_LEADER_OR_FOLLOWER).
   * After CORRUPT_MESSAGE, MESSAGE_TOO_LARGE, UNSUPPORTED_COMPRESSION_TYPE and OFFSET_OUT_OF_RANGE
   * (with autoOffsetReset 'none') the partition waits for `seek()`; after anything else the
   * consumer keeps trying by itself. A record whose handler threw is not counted as processed: it is handed out again
   * after a short backoff, so a failing handler delays its partition but never skips a record.
   * Without onError, both kinds are reported with process.emitWarning.
   */
  onError?: (err: unknown, where: { topic: string; partition: number; offset: bigint }) => void;
}

export type AutoOffsetReset = 'earliest' | 'latest' | 'none';

export interface StreamsMemberOptions {
  /** Subtopologies with their source topics (as named on the cluster) and their stores' changelog topics. */
  topology: Array<{ subtopologyId: string; sourceTopics: string[]; changelogTopics: string[] }>;
  /** Standby copies per stateful task; every member of the group must send the same. */
  numStandbyReplicas: number;
  /** Read before every heartbeat: the offset sum (sum of checkpointed changelog offsets) of each task with local state. */
  taskOffsets: () => Array<{ taskId: string; offsetSum: bigint }>;
  /**
   * Called with the whole standby task list when it changes, after the same heartbeat's
   * revocations and assignments were applied (so a task moving from active to standby here has
   * been revoked first, and one becoming active has been assigned first).
   */
  onStandbyTasks?: (tasks: string[]) => void | Promise<void>;
}

export interface OffsetReset {
  topic: string;
  partition: number;
  policy: Exclude<AutoOffsetReset, 'none'>;
  /** The position that was out of range. */
  from: bigint;
  /** The position it was moved to. */
  to: bigint;
}

export type FetchErrorAction = { action: 'reset'; to: 'earliest' | 'latest' } | { action: 'hold' } | { action: 'backoff'; delayMs: number };

/**
 * Errors about the data at the position itself: fetching the same offset again gives the same
 * answer, so the partition waits for the application to seek (Kafka's poll() throws these until
 * it does). Anything else (a broker restarting, a leader moving, a topic being deleted, even an
 * unexpected INTERNAL) may pass, so it is retried with backoff and reported each time.
 */
const HOLD_REASONS = new Set(['CORRUPT_MESSAGE', 'MESSAGE_TOO_LARGE', 'UNSUPPORTED_COMPRESSION_TYPE', 'INVALID_RECORD']);

/** A partition whose fetches keep failing waits 100 ms doubling to 5 s (jittered) between tries. */
const FETCH_BACKOFF: BackoffPolicy = { initialMs: 100, maxMs: 5000 };
/** A record whose handler threw is handed out again after this long. */
const HANDLER_RETRY_MS = 200;

/**
 * What the consumer does after fetching a partition failed (the client has already retried what
 * it retries). Pure. `failures` counts the failures in a row before this one.
 */
export function fetchErrorAction(err: unknown, policy: AutoOffsetReset, failures: number, random: () => number = Math.random): FetchErrorAction {
  const reason = (err as { reason?: unknown } | null)?.reason;
  if (reason === 'OFFSET_OUT_OF_RANGE') return policy === 'none' ? { action: 'hold' } : { action: 'reset', to: policy };
  if (typeof reason === 'string' && HOLD_REASONS.has(reason) && !isRetriableError(err)) return { action: 'hold' };
  return { action: 'backoff', delayMs: backoffDelayMs(FETCH_BACKOFF, failures, random) };
}

export interface Message extends ConsumedRecord {
  topic: string;
  partition: number;
}

export interface Batch {
  topic: string;
  partition: number;
  messages: Message[];
  highWatermark: bigint;
}

export interface RunHandlers {
  eachMessage?: (m: Message) => Promise<void> | void;
  eachBatch?: (b: Batch) => Promise<void> | void;
}

/** Reasons that mean this member was fenced or forgotten by the group: rejoin from scratch. */
const FENCED = new Set(['UNKNOWN_MEMBER', 'STALE_MEMBER_EPOCH']);

const key = (topic: string, partition: number) => `${topic}:${partition}`;
const split = (k: string): [string, number] => {
  const i = k.lastIndexOf(':');
  return [k.slice(0, i), Number(k.slice(i + 1))];
};
/** Returned by the iterator's internal handler for a record handed out but not confirmed processed. */
const ABANDONED = Symbol('abandoned');

export class GroupConsumer implements AsyncIterable<Message> {
  private readonly coordinators: CoordinatorPool;
  private memberId = '';
  private memberEpoch = 0;
  private readonly owned = new Set<string>();
  private readonly positions = new Map<string, bigint>();
  private readonly committed = new Map<string, bigint>();
  private readonly paused = new Set<string>();
  private readonly autoOffsetReset: AutoOffsetReset;
  private readonly pendingSeeks = new Map<string, bigint>();
  /**
   * Fetches every assigned partition, from assignment (once its start is known) to revocation;
   * its generations tell a chunk fetched before a seek, pause or reset from one fetched after.
   */
  private readonly fetcher: Fetcher;
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly commits: CommitChannel;
  private stopped = false;
  private started = false;
  private cancelHeartbeat: (() => void) | undefined;
  private heartbeatIntervalMs = 1000;
  private cancelAutoCommit: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  /** Heartbeats and commits are serialized: a commit must use the epoch the coordinator last gave. */
  private serial: Promise<unknown> = Promise.resolve();
  /** Wakes an iterator waiting for a record when close() is called from elsewhere. */
  private wakeIterator: (() => void) | undefined;

  constructor(private readonly client: SkeinClient, private readonly options: ConsumerOptions) {
    if (!options.topics?.length && !options.topicRegex && !options.streams) throw new Error('subscribe to at least one topic or a topicRegex');
    if (options.streams && options.assignor !== 'streams') throw new Error("streams members need assignor: 'streams'");
    this.autoOffsetReset = options.autoOffsetReset ?? (options.fromBeginning === false ? 'latest' : 'earliest');
    if (!['earliest', 'latest', 'none'].includes(this.autoOffsetReset)) throw new Error(`autoOffsetReset must be earliest, latest or none, got ${String(this.autoOffsetReset)}`);
    this.coordinators = new CoordinatorPool(options.coordinator?.length ? options.coordinator : () => client.findCoordinators(), client.credentials, undefined, client.clientOptions);
    this.clock = options.clock ?? systemClock;
    this.timers = options.timers ?? systemTimers;
    this.commits = new CommitChannel(options.commits ?? 'stream', this.timers);
    this.fetcher = new Fetcher(client, {
      maxWaitMs: options.maxWaitMs, minBytes: options.minBytes, maxBytes: options.maxBytes, maxBytesPerPartition: options.maxBytesPerPartition,
      maxUncompressedBytes: options.maxUncompressedBytes, isolationLevel: options.isolationLevel, clock: this.clock, timers: this.timers,
    });
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.serial.then(fn, fn);
    this.serial = run.catch(() => undefined);
    return run;
  }

  /** Calls a coordinator RPC through its generated stub (`(c) => c.heartbeat.bind(c)`). */
  private async call<Req, Res>(rpc: (c: GroupCoordinatorServiceClient) => UnaryStub<Req, Res>, req: Req): Promise<Res> {
    // Any coordinator instance serves any group; move to the next one on failure.
    const c = await this.coordinators.current();
    try {
      return await callUnary(rpc(c), req, 5000);
    } catch (err) {
      const e = err as grpc.ServiceError;
      if (e.code === grpc.status.UNAVAILABLE || e.code === grpc.status.DEADLINE_EXCEEDED) this.coordinators.failed();
      throw fromServiceError(e);
    }
  }

  /** One commit, over the commit stream or unary, moving to the next instance where `call` would. */
  private async sendCommit(req: CommitOffsetsRequest): Promise<void> {
    const c = await this.coordinators.current();
    try {
      await this.commits.commit(c, req, 5000);
    } catch (err) {
      const code = (err as SkeinError).code;
      if (code === grpc.status.UNAVAILABLE || code === grpc.status.DEADLINE_EXCEEDED) this.coordinators.failed();
      throw err;
    }
  }

  private stream: { call: grpc.ClientDuplexStream<SessionRequest, SessionResponse>; waiting: Array<{ resolve: (r: HeartbeatResponse) => void; reject: (e: unknown) => void }> } | undefined;

  /** One heartbeat: over the session stream (opened on demand, on the next instance after a failure) or unary. */
  private async sendHeartbeat(req: HeartbeatRequest): Promise<HeartbeatResponse> {
    if ((this.options.session ?? 'stream') === 'unary') return this.call((c) => c.heartbeat.bind(c), req);
    const coordinator = this.stream ? undefined : await this.coordinators.current();
    if (!this.stream && coordinator) {
      const call = coordinator.session();
      const opened: NonNullable<GroupConsumer['stream']> = { call, waiting: [] };
      const fail = (err: unknown) => {
        if (this.stream === opened) this.stream = undefined;
        for (const w of opened.waiting.splice(0)) w.reject(err);
      };
      call.on('data', (r: SessionResponse) => opened.waiting.shift()?.resolve(r.heartbeat!));
      call.on('error', (e: grpc.ServiceError) => {
        if (e.code === grpc.status.UNAVAILABLE || e.code === grpc.status.DEADLINE_EXCEEDED) this.coordinators.failed();
        fail(fromServiceError(e));
      });
      call.on('end', () => fail(new SkeinError('COORDINATOR_NOT_AVAILABLE', 'the group coordinator ended the session')));
      this.stream = opened;
    }
    const session = this.stream!;
    return new Promise<HeartbeatResponse>((resolve, reject) => {
      const cancelTimer = this.timers.setTimeout(() => {
        // An answer this late means the instance is in trouble: drop the stream and try another.
        this.coordinators.failed();
        session.call.cancel();
      }, 5000);
      session.waiting.push({ resolve: (r) => { cancelTimer(); resolve(r); }, reject: (e) => { cancelTimer(); reject(e); } });
      session.call.write({ heartbeat: req });
    });
  }

  private ownedPartitions(): TopicPartitions[] {
    const byTopic = new Map<string, number[]>();
    for (const k of this.owned) {
      const [t, p] = split(k);
      byTopic.set(t, [...(byTopic.get(t) ?? []), p]);
    }
    return [...byTopic.entries()].map(([topic, partitions]) => ({ topic, partitions }));
  }

  private async release(partitions: string[]): Promise<void> {
    for (const k of partitions) {
      this.owned.delete(k);
      this.positions.delete(k);
      this.committed.delete(k);
      const [t, p] = split(k);
      this.fetcher.remove(t, p);
    }
    if (partitions.length > 0) await this.options.onRevoked?.(partitions);
  }

  private heartbeat(leave = false): Promise<void> {
    return this.exclusive(async () => {
      const res = await this.sendHeartbeat({
        groupId: this.options.groupId, memberId: this.memberId, memberEpoch: leave ? -1 : this.memberEpoch, clientId: this.options.clientId ?? 'skein-client',
        subscribedTopics: this.options.topics ?? this.options.streams?.topology.flatMap((t) => t.sourceTopics) ?? [], subscribedTopicRegex: this.options.topicRegex ?? '', serverAssignor: this.options.assignor ?? 'uniform',
        ownedPartitions: this.ownedPartitions(),
        streams: this.streamsRequest(leave),
      });
      if (leave) return;
      this.memberId = res.memberId;
      this.heartbeatIntervalMs = res.heartbeatIntervalMs;
      const assignment = new Set(res.assignment.flatMap((t) => t.partitions.map((p) => key(t.topic, p))));
      const revoked = [...this.owned].filter((k) => !assignment.has(k));
      if (revoked.length > 0) {
        // Commit what was processed before giving partitions up, so the next owner resumes there.
        // Still at the old epoch: the coordinator keeps us owning them until we confirm the release.
        if (this.options.autoCommit ?? true) await this.commitNow(revoked).catch(() => {});
        await this.release(revoked);
      }
      this.memberEpoch = res.memberEpoch;
      const added = [...assignment].filter((k) => !this.owned.has(k));
      if (added.length > 0) {
        const committed = await this.call((c) => c.fetchOffsets.bind(c), { groupId: this.options.groupId, partitions: [] });
        const applied: string[] = [];
        for (const k of added) {
          const [t, p] = split(k);
          const c = committed.offsets.find((o) => o.topic === t && o.partition === p);
          let start = this.pendingSeeks.get(k) ?? c?.offset;
          if (start === undefined && this.autoOffsetReset === 'none') {
            // Kafka's NoOffsetForPartitionException: owned, but not read until the application seeks.
            // Left out of the fetcher until seek() puts it in.
            const err = new SkeinError('OFFSET_OUT_OF_RANGE', `${t}-${p} has no committed offset in group ${this.options.groupId} and autoOffsetReset is none: seek() it`, { metadata: { topic: t, partition: String(p) } });
            this.committed.set(k, -1n);
            this.owned.add(k);
            applied.push(k);
            this.report(err, { topic: t, partition: p, offset: -1n });
            continue;
          }
          // A partition whose start cannot be found now (its leader moving, say) is left out; the
          // coordinator offers it again on the next heartbeat.
          start ??= await this.client.listOffset(t, p, this.autoOffsetReset === 'latest' ? OffsetSpec.OFFSET_SPEC_LATEST : OffsetSpec.OFFSET_SPEC_EARLIEST).catch(() => undefined);
          if (start === undefined) continue;
          this.pendingSeeks.delete(k);
          this.positions.set(k, start);
          this.committed.set(k, c?.offset ?? -1n);
          this.owned.add(k);
          this.fetcher.assign(t, p, start);
          if (this.paused.has(k)) this.fetcher.pause(t, p);
          applied.push(k);
        }
        if (applied.length > 0) await this.options.onAssigned?.(applied);
      }
      const standby = [...res.standbyTasks].sort();
      if (this.options.streams && standby.join('\u0000') !== this.standby.join('\u0000')) {
        this.standby = standby;
        await this.options.streams.onStandbyTasks?.([...standby]);
      }
    });
  }

  private standby: string[] = [];

  private streamsRequest(leave: boolean): HeartbeatRequest['streams'] {
    const s = this.options.streams;
    if (!s || leave) return undefined;
    return { topology: s.topology, numStandbyReplicas: s.numStandbyReplicas, taskOffsets: s.taskOffsets() };
  }

  /** Streams members: the standby tasks the coordinator gave this member last. */
  get standbyTasks(): string[] {
    return [...this.standby];
  }

  private async commitNow(only?: string[]): Promise<void> {
    const offsets = (only ?? [...this.owned]).filter((k) => this.owned.has(k) && this.positions.has(k) && this.positions.get(k) !== this.committed.get(k)).map((k) => {
      const [topic, partition] = split(k);
      return { topic, partition, offset: this.positions.get(k)!, metadata: '' };
    });
    if (offsets.length === 0) return;
    await retry(() => this.sendCommit({ groupId: this.options.groupId, memberId: this.memberId, memberEpoch: this.memberEpoch, offsets }), {
      initialMs: 100, maxMs: 800, maxAttempts: 5, retryIf: (err) => (err as SkeinError).retriable, timers: this.timers,
    });
    for (const o of offsets) this.committed.set(key(o.topic, o.partition), o.offset);
  }

  /**
   * Commits the position of every owned partition that moved since the last commit, or the given
   * offsets (the next record to read, as in Kafka) for owned partitions.
   */
  async commit(offsets?: Array<{ topic: string; partition: number; offset: bigint }>): Promise<void> {
    return this.exclusive(async () => {
      if (offsets) {
        for (const o of offsets) {
          const k = key(o.topic, o.partition);
          if (!this.owned.has(k)) throw new Error(`cannot commit ${o.topic}-${o.partition}: not assigned to this consumer`);
          this.positions.set(k, o.offset);
        }
        return this.commitNow(offsets.map((o) => key(o.topic, o.partition)));
      }
      return this.commitNow();
    });
  }

  /** Starts consuming; resolves once the group has answered the first heartbeat. */
  async run(handlers: RunHandlers | ((m: Message) => Promise<void> | void)): Promise<void> {
    if (this.started) throw new Error('this consumer is already running');
    this.started = true;
    const h: RunHandlers = typeof handlers === 'function' ? { eachMessage: handlers } : handlers;
    if (!h.eachMessage && !h.eachBatch) throw new Error('run() needs eachMessage or eachBatch');
    // Joining retries while the coordinators are unreachable (one restarting, say); bad input
    // (an invalid group id or subscription) fails at once.
    await retry(() => this.heartbeat(), { initialMs: 50, maxMs: 1000, retryIf: (err) => (err as SkeinError).retriable && !this.stopped, timers: this.timers });
    const beat = () => {
      this.cancelHeartbeat = this.timers.setTimeout(() => {
        if (this.stopped) return;
        this.heartbeat().then(beat, async (err: { reason?: string }) => {
          if (FENCED.has(err.reason ?? '')) {
            // Fenced or forgotten (e.g. after a long pause): its partitions may already be someone
            // else's, so drop them without committing and rejoin, as KIP-848 members do.
            await this.exclusive(async () => {
              this.memberEpoch = 0;
              await this.release([...this.owned]);
            }).catch(() => {});
          }
          beat();
        });
      }, this.heartbeatIntervalMs);
    };
    beat();
    if (this.options.autoCommit ?? true) this.cancelAutoCommit = this.timers.setInterval(() => void this.commit().catch(() => {}), this.options.autoCommitIntervalMs ?? 1000);
    // The loop catches its own failures; should one escape anyway, it is reported, not unhandled.
    this.loop = this.fetchLoop(h).catch((err) => this.report(err, { topic: '', partition: -1, offset: -1n }));
  }

  /** Hands an error to onError (or, without one, a process warning); a throwing onError is ignored. */
  private report(err: unknown, where: { topic: string; partition: number; offset: bigint }): void {
    try {
      if (this.options.onError) this.options.onError(err, where);
      else {
        const e = err as { reason?: string; message?: string };
        process.emitWarning(`skein consumer ${this.options.groupId}: ${where.topic}-${where.partition} at offset ${where.offset}: ${e.reason ?? 'ERROR'}: ${e.message ?? String(err)}`, { type: 'SkeinConsumerWarning', code: e.reason });
      }
    } catch {
      // The application's error handler failed; the consumer carries on.
    }
  }

  /** After a fetch of `k` at `from` failed: reset the position, back off, or wait for seek(). */
  private async fetchFailed(k: string, from: bigint, err: unknown, stillValid: () => boolean): Promise<void> {
    const [topic, partition] = split(k);
    const failures = this.fetcher.failures(topic, partition);
    const decision = fetchErrorAction(err, this.autoOffsetReset, failures);
    const backOff = (e: unknown, delayMs: number) => {
      this.fetcher.backOff(topic, partition, delayMs);
      this.report(e, { topic, partition, offset: from });
    };
    if (decision.action === 'backoff') return backOff(err, decision.delayMs);
    // The fetcher holds the partition until a seek (or a reassignment) starts it again.
    if (decision.action === 'hold') return this.report(err, { topic, partition, offset: from });
    let to: bigint;
    try {
      to = await this.client.listOffset(topic, partition, decision.to === 'earliest' ? OffsetSpec.OFFSET_SPEC_EARLIEST : OffsetSpec.OFFSET_SPEC_LATEST);
    } catch (e) {
      return backOff(e, backoffDelayMs(FETCH_BACKOFF, failures));
    }
    if (!stillValid()) return;
    this.positions.set(k, to);
    this.fetcher.assign(topic, partition, to);
    try {
      this.options.onOffsetReset?.({ topic, partition, policy: decision.to, from, to });
    } catch {
      // as in report()
    }
  }

  /**
   * Hands each fetched chunk to the handlers, in arrival order. No sleeps: it waits on the fetcher,
   * which answers when a broker does; a chunk that went stale meanwhile (revoked, paused, seeked)
   * is skipped, and one that goes stale while its handler runs stops there.
   */
  private async fetchLoop(h: RunHandlers): Promise<void> {
    while (!this.stopped) {
      const chunk = await this.fetcher.next();
      if (!chunk) break;
      const { topic, partition, generation } = chunk;
      const k = key(topic, partition);
      const current = () => this.owned.has(k) && this.fetcher.generation(topic, partition) === generation;
      const stillValid = () => !this.stopped && current() && !this.paused.has(k);
      if (!stillValid()) continue;
      if (chunk.kind === 'error') {
        await this.fetchFailed(k, chunk.fetchOffset, chunk.error, stillValid);
        continue;
      }
      const { records, highWatermark } = chunk;
      try {
        if (h.eachBatch) {
          await h.eachBatch({ topic, partition, highWatermark, messages: records.map((r) => ({ ...r, topic, partition })) });
          if (current()) this.positions.set(k, records[records.length - 1]!.offset + 1n);
        } else {
          for (const r of records) {
            if (!stillValid()) break;
            if ((await h.eachMessage!({ ...r, topic, partition })) === (ABANDONED as unknown)) break;
            if (!current()) break;
            this.positions.set(k, r.offset + 1n);
          }
        }
      } catch (err) {
        this.report(err, { topic, partition, offset: this.positions.get(k) ?? chunk.fetchOffset });
        // Handed out again after a short backoff: the fetcher goes back to the first record not
        // processed (dropping what it fetched past it), unless a seek or revocation moved on.
        const position = this.positions.get(k);
        if (current() && position !== undefined) {
          this.fetcher.assign(topic, partition, position);
          this.fetcher.backOff(topic, partition, HANDLER_RETRY_MS);
        }
      }
    }
  }

  /**
   * Reads this consumer's records as an async iterator. A record counts as processed (and its
   * offset becomes committable) when you ask for the next one or leave the loop; leaving the loop
   * closes the consumer (committing, with auto-commit).
   */
  async *[Symbol.asyncIterator](): AsyncIterator<Message> {
    type Item = { message: Message; done: (result?: typeof ABANDONED) => void };
    let waiting: ((item: Item) => void) | undefined;
    const handed: Item[] = [];
    let current: Item | undefined;
    await this.run({
      eachMessage: (message) => new Promise<void>((resolve) => {
        const item: Item = { message, done: resolve as Item['done'] };
        if (waiting) {
          const w = waiting;
          waiting = undefined;
          w(item);
        } else handed.push(item);
      }),
    });
    try {
      while (!this.stopped) {
        current = handed.shift() ?? (await new Promise<Item | undefined>((resolve) => {
          waiting = resolve;
          this.wakeIterator = () => resolve(undefined);
        }));
        if (!current) break;
        yield current.message;
        current.done();
        current = undefined;
      }
    } finally {
      // Leaving the loop counts the record you were on as processed (as a poll-based consumer's
      // position counts what poll returned); records fetched but never handed out are read again.
      this.stopped = true;
      current?.done();
      for (const item of handed) item.done(ABANDONED);
      await this.close();
    }
  }

  /** Reads `partition` from `offset` next (now if assigned, else when it is assigned to this consumer). */
  seek(topic: string, partition: number, offset: bigint): void {
    const k = key(topic, partition);
    if (!this.owned.has(k)) {
      this.pendingSeeks.set(k, offset);
      return;
    }
    this.positions.set(k, offset);
    // A new generation: what was fetched or is in flight from the old position is dropped. A seek
    // is also the way out of HELD (and ends any backoff).
    this.fetcher.assign(topic, partition, offset);
    if (this.paused.has(k)) this.fetcher.pause(topic, partition);
  }

  /** Stops fetching these partitions (they stay assigned, and the group does not rebalance); records fetched for them are dropped. */
  pause(partitions: Array<{ topic: string; partition: number }>): void {
    for (const p of partitions) {
      this.paused.add(key(p.topic, p.partition));
      this.fetcher.pause(p.topic, p.partition);
    }
  }

  resume(partitions: Array<{ topic: string; partition: number }>): void {
    for (const p of partitions) {
      const k = key(p.topic, p.partition);
      if (!this.paused.delete(k)) continue;
      const position = this.positions.get(k);
      if (position !== undefined) this.fetcher.resume(p.topic, p.partition, position);
    }
  }

  /** Partitions assigned to this consumer now, as "topic:partition". */
  /**
   * Who this consumer is in its group right now, for offsets committed in a transaction
   * (TransactionalProducer.sendOffsetsToTransaction): the coordinator commits them only if this
   * member still has this epoch and owns the partitions when the transaction commits.
   */
  groupMetadata(): { groupId: string; memberId: string; memberEpoch: number } {
    return { groupId: this.options.groupId, memberId: this.memberId, memberEpoch: this.memberEpoch };
  }

  get assignment(): string[] {
    return [...this.owned].sort();
  }

  /** The next offset this consumer will read per assigned partition. */
  position(topic: string, partition: number): bigint | undefined {
    return this.positions.get(key(topic, partition));
  }

  /** Commits (with auto-commit), releases its partitions (onRevoked), leaves the group (they move at once), and stops. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private closing: Promise<void> | undefined;

  private async shutdown(): Promise<void> {
    this.stopped = true;
    this.wakeIterator?.();
    this.cancelHeartbeat?.();
    this.cancelAutoCommit?.();
    this.fetcher.close();
    await this.loop;
    if (this.started) {
      if (this.options.autoCommit ?? true) await this.commit().catch(() => {});
      // Released before leaving, as on any revocation: the listener runs while we still own them.
      await this.exclusive(() => this.release([...this.owned])).catch(() => {});
      await this.heartbeat(true).catch(() => {});
    }
    // Cancelled rather than half-closed: the leave above was the last word, and a half-closed call
    // keeps its connection (and this process) alive until the server gets round to ending it.
    this.stream?.call.cancel();
    this.stream = undefined;
    this.commits.close();
    this.coordinators.close();
  }
}
