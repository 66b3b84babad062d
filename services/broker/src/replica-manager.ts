/**
 * The partitions this broker hosts: opens, creates and deletes their logs as the metadata follower
 * commands, knows which ones it leads, appends to them and wakes readers when their high watermark
 * moves. Runs the background log tasks (retention, flush.ms, checkpoints, compaction).
 *
 * Leadership: a partition whose leader is this broker accepts produce at its leader epoch; while
 * its ISR is just this broker the high watermark follows the log end offset (replication will move
 * it from follower progress instead).
 */
import * as fs from 'node:fs';
import { partitionDir } from './log/topic-dir.js';
import type { Logger } from 'pino';
import { DEFAULT_LOG_CONFIG, type LogConfig, parseLogConfig } from './log/log-config.js';
import { LogError } from './log/log-error.js';
import { type AppendResult, type LogEvent, PartitionLog } from './log/partition-log.js';
import { compactLog } from './log/log-cleaner.js';
import type { ControlMarker } from './log/control-batch.js';
import type { Clock, Timers } from './runtime/timers.js';
import {
  acksAllDecision,
  desiredIsr,
  type FollowerProgress,
  followerFetched,
  followersToForget,
  isStalePartitionState,
  type LeaderView,
  mayAppendAcksAll,
  nextHighWatermark,
} from './replication/replication-core.js';
import { failpoint } from '@skein/common/failpoints.js';

function sameMembers(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((r) => b.includes(r));
}

function minInsync(configs: Readonly<Record<string, string>>): number {
  const n = Number(configs['min.insync.replicas'] ?? '1');
  return Number.isInteger(n) && n >= 1 ? n : 1;
}

/** How long the background pass may keep the event loop before it lets I/O in (ms). */
const BACKGROUND_SLICE_MS = 2;
const yieldToIo = () => new Promise<void>((resolve) => setImmediate(resolve));

/** What the metadata follower passes for each replica this broker hosts. */
export interface PartitionAssignment {
  topic: string;
  topicId: string;
  partition: number;
  leaderId: number;
  leaderEpoch: number;
  replicas: readonly number[];
  isr: readonly number[];
  /** Topic config overrides (defaults apply to keys not present). */
  configs: Readonly<Record<string, string>>;
  /** The controller's partition epoch: the CAS token for ISR proposals (AlterPartition). */
  partitionEpoch?: number;
}

/**
 * What the replica manager reports for metrics (runtime/broker-metrics.ts counts them; nothing in
 * the data path depends on who listens).
 */
export type ReplicaEvent =
  | { type: 'appended'; topic: string; bytes: number; records: number }
  /** The ISR of a partition this broker leads changed at its leader epoch (proposal accepted). */
  | { type: 'isr-changed'; topic: string; partition: number; from: readonly number[]; to: readonly number[] }
  | { type: 'log'; topic: string; partition: number; event: LogEvent };

export interface LeaderInfo {
  leaderId: number;
  leaderEpoch: number;
}

export class Partition {
  leaderId: number;
  leaderEpoch: number;
  replicas: readonly number[];
  isr: readonly number[];
  minInsyncReplicas: number;
  partitionEpoch: number;
  /** Followers' progress, known only while this broker leads (reset on leadership change). */
  readonly followers = new Map<number, FollowerProgress>();
  /**
   * An ISR change proposed to the controller whose outcome is not known yet; its members count for
   * the watermark (KIP-497). Cleared by the answer, a definite refusal, newer metadata, or a new
   * leader epoch — never by a lost answer.
   */
  pendingIsr: readonly number[] | undefined;
  pendingIsrSinceMs = 0;
  /** An AlterPartition request is on the wire. */
  isrRequestInFlight = false;
  /** When this broker started leading at the current epoch. */
  leaderSinceMs: number;
  /** The log end offset when this broker started leading at the current epoch. */
  leaderEpochStartOffset: bigint;
  private readonly listeners = new Set<() => void>();

  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly log: PartitionLog,
    a: PartitionAssignment,
    private readonly brokerId: number,
    nowMs: number,
  ) {
    this.leaderId = a.leaderId;
    this.leaderEpoch = a.leaderEpoch;
    this.replicas = a.replicas;
    this.isr = a.isr;
    this.minInsyncReplicas = minInsync(a.configs);
    this.partitionEpoch = a.partitionEpoch ?? 0;
    this.leaderSinceMs = nowMs;
    this.leaderEpochStartOffset = log.logEndOffset;
  }

  get topicId(): string {
    return this.log.topicId;
  }

  get isLeader(): boolean {
    return this.leaderId === this.brokerId;
  }

  /** Calls `fn` when new data becomes readable (or the partition changes state). */
  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  notify(): void {
    for (const fn of [...this.listeners]) fn();
  }

  /** The leader's view for the pure replication rules (replication-core.ts). */
  leaderView(): LeaderView {
    return {
      leaderId: this.leaderId,
      replicas: this.replicas,
      isr: this.isr,
      pendingIsr: this.pendingIsr,
      minInsyncReplicas: this.minInsyncReplicas,
      logEndOffset: this.log.logEndOffset,
      highWatermark: this.log.highWatermark,
      followers: this.followers,
      leaderSinceMs: this.leaderSinceMs,
      leaderEpochStartOffset: this.leaderEpochStartOffset,
    };
  }

  /** Moves the leader's high watermark by the strict min-ISR rule (nextHighWatermark). */
  maybeAdvanceHighWatermark(): void {
    if (!this.isLeader) return;
    if (this.log.updateHighWatermark(nextHighWatermark(this.leaderView()))) this.notify();
  }

  /** Records a follower's fetch position (its log end offset) at `nowMs`. */
  recordFollowerFetch(replicaId: number, fetchOffset: bigint, nowMs: number): void {
    this.followers.set(replicaId, followerFetched(this.followers.get(replicaId), fetchOffset, this.log.logEndOffset, nowMs, this.leaderSinceMs));
    this.maybeAdvanceHighWatermark();
  }

  /** The ISR this leader should propose, if any change is due (replication-core.ts). */
  desiredIsr(nowMs: number, lagMs: number): number[] | undefined {
    if (!this.isLeader) return undefined;
    return desiredIsr(this.leaderView(), nowMs, lagMs);
  }

  /**
   * Resolves once an acks=all write ending at `endOffset` (exclusive), appended at `appendEpoch`,
   * may be acknowledged (acksAllDecision). Rejects with a reason that says the write is in the log
   * but its outcome is unknown: NOT_ENOUGH_REPLICAS_AFTER_APPEND (ISR below min.insync.replicas),
   * NOT_LEADER_AFTER_APPEND (leadership or epoch moved: the batch may be truncated away), or
   * REQUEST_TIMED_OUT.
   */
  waitForAcksAll(endOffset: bigint, appendEpoch: number, timeoutMs: number, timers: Timers): Promise<void> {
    return new Promise((resolve, reject) => {
      let cancel = () => {};
      let off: () => void = () => {};
      const settle = (err?: LogError) => {
        off();
        cancel();
        if (err) reject(err);
        else resolve();
      };
      const check = (): boolean => {
        if (!this.isLeader || this.leaderEpoch !== appendEpoch || this.log.isOffline) {
          settle(new LogError('NOT_LEADER_AFTER_APPEND', `leadership of ${this.topic}-${this.partition} moved (epoch ${appendEpoch} → ${this.leaderEpoch}) before the write was replicated; it may or may not be kept`, {
            leaderHint: this.leaderId >= 0 ? { leaderId: this.leaderId, leaderEpoch: this.leaderEpoch } : undefined,
            metadata: { topic: this.topic, partition: String(this.partition) },
          }));
          return true;
        }
        const d = acksAllDecision(this.leaderView(), endOffset);
        if (d.kind === 'wait') return false;
        if (d.kind === 'ack') settle();
        else {
          settle(new LogError(d.reason, `the ISR ${JSON.stringify(this.isr)} fell below min.insync.replicas ${this.minInsyncReplicas} after the write was appended; it may or may not become visible`, {
            metadata: { topic: this.topic, partition: String(this.partition) },
          }));
        }
        return true;
      };
      if (check()) return;
      off = this.onChange(() => void check());
      cancel = timers.setTimeout(() => {
        settle(new LogError('REQUEST_TIMED_OUT', `the write was appended but not replicated to the ISR ${JSON.stringify(this.isr)} within ${timeoutMs} ms; it may or may not become visible`));
      }, timeoutMs);
    });
  }
}

export interface ReplicaManagerOptions {
  brokerId: number;
  dataDir: string;
  clock: Clock;
  timers: Timers;
  logger: Logger;
  /** Broker-wide defaults under the topic overrides. */
  defaultLogConfig?: LogConfig;
  /** How often retention, flush.ms and checkpoints run. */
  backgroundIntervalMs?: number;
  /** Idempotent producers idle longer than this are forgotten (default one day, as in Kafka). */
  producerIdExpirationMs?: number;
  /**
   * Refuse the data path (BROKER_NOT_AVAILABLE, retriable) until `markReady()`: the broker process
   * calls it once it has applied its first metadata snapshot, so nothing is answered from a
   * half-known partition set. In-process tests that drive assignments themselves leave it off.
   */
  awaitMetadata?: boolean;
  /** Told what happened, for metrics; must not throw. */
  onEvent?: (e: ReplicaEvent) => void;
}

/**
 * The in-memory key of a partition: unambiguous for any topic string (the partition number has no
 * ':'), unlike `${topic}-${partition}`, which made (X, -1) and (X-, 1) the same partition.
 */
export function partitionKey(topic: string, partition: number): string {
  return `${partition}:${topic}`;
}


export class ReplicaManager {
  private readonly partitions = new Map<string, Partition>();
  private readonly cancelTimers: Array<() => void> = [];
  private readonly compacting = new Map<string, Promise<void>>();
  private readonly lastCompactedActiveBase = new Map<string, bigint>();
  /** Serialises commands per partition so open/delete never interleave. */
  private readonly queues = new Map<string, Promise<unknown>>();
  private closed = false;
  private ready: boolean;

  constructor(private readonly opts: ReplicaManagerOptions) {
    fs.mkdirSync(opts.dataDir, { recursive: true });
    this.ready = !opts.awaitMetadata;
  }

  /** The first metadata snapshot is applied: the data path may answer. */
  markReady(): void {
    this.ready = true;
  }

  get brokerId(): number {
    return this.opts.brokerId;
  }

  private serial<T>(k: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.queues.get(k) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.queues.set(k, tail);
    void tail.then(() => {
      if (this.queues.get(k) === tail) this.queues.delete(k);
    });
    return next;
  }

  /**
   * Creates or opens the partition's log and applies leadership, replicas, ISR and configs. A
   * directory left by a deleted topic of the same name (another topic id) is removed first.
   */
  applyPartitionAssignment(a: PartitionAssignment): Promise<void> {
    return this.serial(partitionKey(a.topic, a.partition), async () => {
      if (this.closed) return;
      const k = partitionKey(a.topic, a.partition);
      const config = parseLogConfig(a.configs, this.opts.defaultLogConfig ?? DEFAULT_LOG_CONFIG);
      let p = this.partitions.get(k);
      if (p && p.topicId !== a.topicId) {
        await this.removePartition(p, 'topic re-created with a new id');
        p = undefined;
      }
      if (!p) {
        const dir = partitionDir(this.opts.dataDir, a.topic, a.partition);
        const stored = PartitionLog.storedTopicId(dir);
        if (stored !== undefined && stored !== a.topicId) {
          this.opts.logger.info({ topic: a.topic, partition: a.partition, stored, topicId: a.topicId }, 'removing data of a deleted topic with the same name');
          fs.rmSync(dir, { recursive: true, force: true });
        }
        const logger = this.opts.logger.child({ component: 'log', topic: a.topic, partition: a.partition });
        const log = PartitionLog.open({ dir, topicId: a.topicId, config, clock: this.opts.clock, onEvent: (e) => this.logEvent(logger, e, a.topic, a.partition) });
        p = new Partition(a.topic, a.partition, log, a, this.opts.brokerId, this.opts.clock.nowMs());
        this.partitions.set(k, p);
        logger.info({ logStartOffset: log.logStartOffset.toString(), logEndOffset: log.logEndOffset.toString(), leaderId: a.leaderId, leaderEpoch: a.leaderEpoch }, 'partition opened');
      } else if (a.partitionEpoch !== undefined && isStalePartitionState(p, { leaderEpoch: a.leaderEpoch, partitionEpoch: a.partitionEpoch })) {
        // The watch delivered a state older than one this broker already applied (its own
        // AlterPartition answer arrives first): applying it would bring back an old ISR.
        this.opts.logger.debug({ topic: a.topic, partition: a.partition, leaderEpoch: a.leaderEpoch, partitionEpoch: a.partitionEpoch, current: p.partitionEpoch }, 'stale partition state ignored');
        p.log.config = config;
        p.minInsyncReplicas = minInsync(a.configs);
      } else {
        const becameLeader = !p.isLeader && a.leaderId === this.opts.brokerId;
        const epochChanged = p.leaderEpoch !== a.leaderEpoch;
        if (epochChanged || becameLeader) {
          this.opts.logger.info({ topic: a.topic, partition: a.partition, leaderId: a.leaderId, leaderEpoch: a.leaderEpoch }, 'leader changed');
        }
        if (epochChanged || becameLeader) {
          p.followers.clear();
          p.pendingIsr = undefined;
          p.leaderSinceMs = this.opts.clock.nowMs();
          p.leaderEpochStartOffset = p.log.logEndOffset;
        }
        // The controller's newer state settles any proposal made against the older one.
        if (a.partitionEpoch !== undefined && a.partitionEpoch > p.partitionEpoch) p.pendingIsr = undefined;
        if (!epochChanged && !becameLeader) for (const id of followersToForget(p.isr, a.isr, p.leaderId)) p.followers.delete(id);
        // The ISR of a partition led on at the same epoch changed: the controller accepted a
        // proposal (its answer, arriving later, then finds nothing new) or fenced a replica.
        if (p.isLeader && a.leaderId === this.opts.brokerId && !epochChanged && !sameMembers(p.isr, a.isr)) this.isrChanged(p, p.isr, a.isr);
        p.leaderId = a.leaderId;
        p.leaderEpoch = a.leaderEpoch;
        p.partitionEpoch = a.partitionEpoch ?? p.partitionEpoch;
        p.replicas = a.replicas;
        p.isr = a.isr;
        p.minInsyncReplicas = minInsync(a.configs);
        p.log.config = config;
      }
      p.maybeAdvanceHighWatermark();
      p.notify();
    });
  }

  /** Closes the partition's log and deletes its data (topic deleted or replica moved away). */
  deletePartition(d: { topic: string; topicId?: string; partition: number }): Promise<void> {
    return this.serial(partitionKey(d.topic, d.partition), async () => {
      const p = this.partitions.get(partitionKey(d.topic, d.partition));
      if (p && (d.topicId === undefined || d.topicId === p.topicId)) await this.removePartition(p, 'deleted');
      else if (!p) {
        const dir = partitionDir(this.opts.dataDir, d.topic, d.partition);
        const stored = PartitionLog.storedTopicId(dir);
        if (stored !== undefined && (d.topicId === undefined || stored === d.topicId)) fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  private async removePartition(p: Partition, why: string): Promise<void> {
    this.partitions.delete(partitionKey(p.topic, p.partition));
    await p.log.delete();
    p.notify();
    this.opts.logger.info({ topic: p.topic, partition: p.partition, why }, 'partition removed');
  }

  /** Reports an ISR change of a partition this broker leads (here and from IsrManager's answers). */
  isrChanged(p: Partition, from: readonly number[], to: readonly number[]): void {
    this.opts.onEvent?.({ type: 'isr-changed', topic: p.topic, partition: p.partition, from, to });
  }

  getPartition(topic: string, partition: number): Partition | undefined {
    return this.partitions.get(partitionKey(topic, partition));
  }

  listPartitions(): Partition[] {
    return [...this.partitions.values()];
  }

  /**
   * The partition, if this broker leads it at `currentLeaderEpoch` (-1 skips the epoch check).
   * Throws UNKNOWN_TOPIC_OR_PARTITION / NOT_LEADER_OR_FOLLOWER (with a hint) / epoch errors.
   */
  leaderPartition(topic: string, partition: number, currentLeaderEpoch = -1, hint?: (topic: string, partition: number) => LeaderInfo | undefined): Partition {
    if (!Number.isSafeInteger(partition) || partition < 0) {
      throw new LogError('INVALID_REQUEST', `partition must be a non-negative integer, got ${partition}`, { metadata: { partition: String(partition) } });
    }
    if (!this.ready) {
      throw new LogError('BROKER_NOT_AVAILABLE', `broker ${this.opts.brokerId} has not applied its metadata yet`, { metadata: { topic, partition: String(partition) } });
    }
    const p = this.partitions.get(partitionKey(topic, partition));
    if (!p) {
      const h = hint?.(topic, partition);
      if (h) {
        throw new LogError('NOT_LEADER_OR_FOLLOWER', `broker ${this.opts.brokerId} does not host ${topic}-${partition}; broker ${h.leaderId} leads it`, {
          leaderHint: h,
          metadata: { topic, partition: String(partition) },
        });
      }
      throw new LogError('UNKNOWN_TOPIC_OR_PARTITION', `this broker does not host ${topic}-${partition}`, { metadata: { topic, partition: String(partition) } });
    }
    if (!p.isLeader) {
      throw new LogError('NOT_LEADER_OR_FOLLOWER', `broker ${this.opts.brokerId} is not the leader of ${topic}-${partition}`, {
        leaderHint: { leaderId: p.leaderId, leaderEpoch: p.leaderEpoch },
        metadata: { topic, partition: String(partition) },
      });
    }
    if (currentLeaderEpoch >= 0 && currentLeaderEpoch !== p.leaderEpoch) {
      const reason = currentLeaderEpoch < p.leaderEpoch ? 'FENCED_LEADER_EPOCH' : 'UNKNOWN_LEADER_EPOCH';
      throw new LogError(reason, `leader epoch ${currentLeaderEpoch} does not match the current ${p.leaderEpoch}`, {
        leaderHint: { leaderId: p.leaderId, leaderEpoch: p.leaderEpoch },
        metadata: { topic, partition: String(partition) },
      });
    }
    return p;
  }

  /**
   * Appends a batch to a partition this broker leads. With acks=all, refuses up front when the ISR
   * is below min.insync.replicas. Resolves once the batch is as durable as the flush policy asks.
   */
  async appendToLeader(p: Partition, batch: Buffer, acksAll: boolean, timeoutMs = 30_000): Promise<AppendResult> {
    if (acksAll && !mayAppendAcksAll(p)) {
      throw new LogError('NOT_ENOUGH_REPLICAS', `ISR size ${p.isr.length} is below min.insync.replicas ${p.minInsyncReplicas}; nothing was written`);
    }
    const appendEpoch = p.leaderEpoch;
    const result = p.log.appendAsLeader(batch, appendEpoch);
    // Crash tests: the batch is in the leader's log, no follower has it, nothing is acknowledged.
    failpoint('broker.produce.afterAppend');
    if (!result.duplicate) {
      this.opts.onEvent?.({ type: 'appended', topic: p.topic, bytes: batch.length, records: result.recordCount });
      p.maybeAdvanceHighWatermark();
      // Followers long-polling for data are woken by the append.
      p.notify();
    }
    if (result.flushed) await result.flushed;
    // acks=all: acknowledged once the watermark passed the batch, i.e. at least min.insync.replicas
    // replicas hold it (replication-core.ts). A duplicate waits too: its first copy may not be.
    if (acksAll) await p.waitForAcksAll(result.baseOffset + BigInt(result.recordCount), appendEpoch, timeoutMs > 0 ? timeoutMs : 30_000, this.opts.timers);
    return result;
  }

  /**
   * Appends a transaction control batch (BEGIN, COMMIT, ABORT) to a partition this broker leads,
   * at its leader epoch, with acks=all semantics: resolves once the ISR has it (a no-op — a retry
   * or a transaction already over — resolves at once, after the ISR has the log up to its end, so
   * a retry is not acknowledged before the first write is). Refused up front below min.insync.replicas.
   */
  async appendControlToLeader(p: Partition, producerId: bigint, producerEpoch: number, marker: ControlMarker, timeoutMs = 30_000): Promise<AppendResult | undefined> {
    if (!mayAppendAcksAll(p)) {
      throw new LogError('NOT_ENOUGH_REPLICAS', `ISR size ${p.isr.length} is below min.insync.replicas ${p.minInsyncReplicas}; nothing was written`);
    }
    const appendEpoch = p.leaderEpoch;
    const result = p.log.appendControlAsLeader(producerId, producerEpoch, marker, appendEpoch);
    if (result) {
      p.maybeAdvanceHighWatermark();
      p.notify();
      if (result.flushed) await result.flushed;
    }
    const endOffset = result ? result.baseOffset + 1n : p.log.logEndOffset;
    await p.waitForAcksAll(endOffset, appendEpoch, timeoutMs > 0 ? timeoutMs : 30_000, this.opts.timers);
    return result;
  }

  /** Starts retention, flush.ms, checkpoint and compaction passes on a timer. */
  startBackgroundTasks(): void {
    const every = this.opts.backgroundIntervalMs ?? 5_000;
    this.cancelTimers.push(this.opts.timers.setInterval(() => void this.runBackgroundPass(), every));
  }

  /** One pass of the background tasks (tests call it directly). */
  async runBackgroundPass(): Promise<void> {
    const now = this.opts.clock.nowMs();
    let sliceStart = performance.now();
    for (const p of this.listPartitions()) {
      if (p.log.isOffline) continue;
      // The per-partition work below mostly resolves without I/O (nothing to flush, delete or
      // write), i.e. as microtasks: without a yield the whole pass is one turn of the event loop,
      // which with 2,000 partitions stalled every request of the broker for tens of ms every pass
      // (e2e p99 at 5 MB/s: 30 ms with no idle partitions, 93 ms with 2,000). Yield to I/O after
      // each ~2 ms of it.
      if (performance.now() - sliceStart > BACKGROUND_SLICE_MS) {
        await yieldToIo();
        sliceStart = performance.now();
      }
      try {
        await p.log.maybeFlushByTime(now);
        await p.log.applyRetention(now);
        p.log.expireProducers(now - (this.opts.producerIdExpirationMs ?? 86_400_000));
        // Off the event loop: a synchronous fsync here stalled every request on the broker.
        await p.log.writeCheckpointsInBackground();
        // Clean only when a roll has closed new data since the last run (a cheap dirty check; the
        // cleaner rereads the log to build its key map).
        if (p.log.config.cleanupCompact && this.lastCompactedActiveBase.get(partitionKey(p.topic, p.partition)) !== p.log.activeBaseOffset) {
          this.lastCompactedActiveBase.set(partitionKey(p.topic, p.partition), p.log.activeBaseOffset);
          void this.compact(p);
        }
      } catch (e) {
        this.opts.logger.warn({ topic: p.topic, partition: p.partition, err: e }, 'background log task failed');
      }
    }
  }

  /** Runs the cleaner on one partition; while it runs there, callers share the run in flight. */
  compact(p: Partition): Promise<void> {
    const k = partitionKey(p.topic, p.partition);
    const running = this.compacting.get(k);
    if (running) return running;
    const run = (async () => {
      try {
        const result = await compactLog(p.log, this.opts.clock.nowMs());
        if (result.segmentsCleaned > 0) {
          this.opts.logger.info({ topic: p.topic, partition: p.partition, ...result }, 'log compacted');
        }
      } catch (e) {
        this.opts.logger.warn({ topic: p.topic, partition: p.partition, err: e }, 'log compaction failed');
      } finally {
        this.compacting.delete(k);
      }
    })();
    this.compacting.set(k, run);
    return run;
  }

  private logEvent(logger: Logger, e: LogEvent, topic: string, partition: number): void {
    this.opts.onEvent?.({ type: 'log', topic, partition, event: e });
    switch (e.type) {
      case 'recovered':
        logger.info({ segment: e.segment.toString(), ...e.report }, 'segment recovered');
        break;
      case 'segments-deleted-after-truncation':
        logger.warn({ count: e.count }, 'segments after a damaged one deleted during recovery');
        break;
      case 'producer-state-rebuilt':
        logger.info({ fromOffset: e.fromOffset.toString(), reason: e.reason }, 'producer state rebuilt from the log');
        break;
      case 'rolled':
        logger.info({ baseOffset: e.newBaseOffset.toString() }, 'segment rolled');
        break;
      case 'retention':
        logger.info({ deleted: e.deleted, reason: e.reason, logStartOffset: e.logStartOffset.toString() }, 'old segments deleted');
        break;
      case 'truncated':
        logger.info({ offset: e.offset.toString() }, 'log truncated');
        break;
      case 'corrupt-batch':
        // The read that needed it failed (DATA_LOSS); the partition stays online. An operator can
        // restore the batch from another replica or move consumers past it.
        logger.warn({ topic, partition, baseOffset: e.baseOffset.toString(), lastOffset: e.lastOffset?.toString(), during: e.during, why: e.why }, 'stored batch cannot be read');
        break;
      case 'offline': {
        logger.error({ err: e.error }, 'partition offline after a storage error');
        this.partitions.get(partitionKey(topic, partition))?.notify();
        break;
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const c of this.cancelTimers.splice(0)) c();
    for (const p of this.listPartitions()) {
      await p.log.close();
      p.notify();
    }
    this.partitions.clear();
  }
}
