/**
 * Leader side of the Replicate stream (replica.proto): one session per follower broker carries
 * every partition that follower follows here. The session is driven by events, not timers — a
 * partition's `onChange` (append, watermark, leadership) or a follower message marks it dirty, and
 * one pump per session sends what the dirty partitions have — so an idle partition costs nothing.
 *
 * Per partition the session keeps the follower's position epoch, the next offset to send and the
 * bytes sent but not yet acknowledged (at most `windowBytes`: a slow follower holds back only its
 * own partitions). Decisions are the pure ones of replication-core.ts (leaderFetchDecision on a new
 * position; followerFetched through Partition.recordFollowerFetch on every acknowledgement, which
 * is what moves the high watermark). Batches go out as stored (encodeReplicateResponse), never
 * re-encoded. Backpressure: the pump waits for 'drain' when grpc-js buffers a message.
 *
 * Latency (bench/PROFILE.md §5): the pump runs as a microtask of the append or acknowledgement
 * that dirtied a partition, so its HTTP/2 write leaves in the same event-loop turn. A message that
 * would carry only a new high watermark is held back `hwDelayMs`: while data flows, the next push
 * carries the watermark anyway (as a Kafka fetch response does), and each acks=all batch costs the
 * leader two writes and each follower one wake-up fewer. The follower's watermark only bounds what
 * it would expose after an election, where the new leader's own rules apply (replication-core.ts).
 */
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { ReplicaPosition, ReplicateRequest } from '@skein/proto/skein/broker/v1/replica.js';
import { toLogError, toPartitionError } from '../grpc/error-mapping.js';
import { encodeReplicateResponse, type ReplicaPartitionDataWire } from '../grpc/wire-codec.js';
import { LogError } from '../log/log-error.js';
import { type Partition, partitionKey, type ReplicaManager } from '../replica-manager.js';
import { type Clock, systemTimers, type Timers } from '../runtime/timers.js';
import { leaderFetchDecision } from './replication-core.js';

export interface LeaderSessionOptions {
  replicas: ReplicaManager;
  clock: Clock;
  logger: Logger;
  /** Bytes of batches in one stream message (at least one batch is sent). */
  maxMessageBytes?: number;
  /** Bytes sent and not yet acknowledged, per partition. */
  windowBytes?: number;
  /** How long a high-watermark-only update may wait for a push of data to carry it. */
  hwDelayMs?: number;
  timers?: Timers;
}

interface SessionPartition {
  readonly key: string;
  readonly topic: string;
  readonly partition: number;
  positionEpoch: number;
  /** Set while the leader streams this partition; undefined after a refusal or a divergence answer. */
  p: Partition | undefined;
  leaderEpoch: number;
  nextOffset: bigint;
  inflight: Array<{ end: bigint; bytes: number }>;
  inflightBytes: number;
  lastSentHw: bigint;
  lastSentLogStart: bigint;
  /** When the follower started to be owed a watermark update that no push has carried yet (-1: not owed). */
  hwOwedSinceMs: number;
  /** An answer to send before anything else (divergence, start over, error). */
  answer: ReplicaPartitionDataWire | undefined;
  off: (() => void) | undefined;
}


export class LeaderSession {
  private readonly parts = new Map<string, SessionPartition>();
  private readonly dirty = new Set<SessionPartition>();
  private replicaId = -1;
  private pumping = false;
  private scheduled = false;
  private closed = false;
  private readonly maxMessageBytes: number;
  private readonly windowBytes: number;
  private readonly hwDelayMs: number;
  private readonly timers: Timers;
  /** Partitions owed a watermark-only update; one timer per session sends those still owed when due. */
  private readonly hwOwed = new Set<SessionPartition>();
  private cancelHwTimer: (() => void) | undefined;

  constructor(
    private readonly opts: LeaderSessionOptions,
    private readonly call: grpc.ServerDuplexStream<ReplicateRequest, Buffer>,
  ) {
    this.maxMessageBytes = opts.maxMessageBytes ?? 4 * 1024 * 1024;
    this.windowBytes = opts.windowBytes ?? 8 * 1024 * 1024;
    this.hwDelayMs = opts.hwDelayMs ?? 25;
    this.timers = opts.timers ?? systemTimers;
  }

  /** Handles one message of the follower. Throws LogError for a request that ends the stream. */
  receive(req: ReplicateRequest): void {
    if (this.closed) return;
    if (this.replicaId < 0) this.replicaId = req.replicaId;
    else if (req.replicaId !== this.replicaId) throw new LogError('INVALID_REQUEST', `replica_id changed on the stream from ${this.replicaId} to ${req.replicaId}`);
    for (const r of req.removed) this.drop(partitionKey(r.topic, r.partition));
    const now = this.opts.clock.nowMs();
    for (const pos of req.positions) this.position(pos, now);
    this.schedule();
  }

  private position(pos: ReplicaPosition, now: number): void {
    const k = partitionKey(pos.topic, pos.partition);
    let sp = this.parts.get(k);
    // Position epochs only grow on a stream: an older one was overtaken on the wire.
    if (sp && pos.positionEpoch < sp.positionEpoch) return;
    if (sp && sp.positionEpoch === pos.positionEpoch) {
      // An acknowledgement: the follower stored everything below log_end_offset.
      if (!sp.p) return;
      while (sp.inflight.length > 0 && sp.inflight[0]!.end <= pos.logEndOffset) sp.inflightBytes -= sp.inflight.shift()!.bytes;
      if (sp.p.isLeader && sp.p.leaderEpoch === sp.leaderEpoch) sp.p.recordFollowerFetch(this.replicaId, pos.logEndOffset, now);
      this.dirty.add(sp);
      return;
    }
    if (!sp) {
      sp = { key: k, topic: pos.topic, partition: pos.partition, positionEpoch: 0, p: undefined, leaderEpoch: -1, nextOffset: 0n, inflight: [], inflightBytes: 0, lastSentHw: -1n, lastSentLogStart: -1n, hwOwedSinceMs: -1, answer: undefined, off: undefined };
      this.parts.set(k, sp);
    }
    this.unsubscribe(sp);
    sp.positionEpoch = pos.positionEpoch;
    sp.inflight = [];
    sp.inflightBytes = 0;
    sp.lastSentHw = -1n;
    sp.lastSentLogStart = -1n;
    this.dirty.add(sp);
    try {
      if (pos.logEndOffset < 0n) throw new LogError('INVALID_REQUEST', `log_end_offset must not be negative, got ${pos.logEndOffset}`);
      const p = this.opts.replicas.leaderPartition(pos.topic, pos.partition, pos.leaderEpoch);
      if (!p.replicas.includes(this.replicaId) || this.replicaId === p.leaderId) {
        throw new LogError('INVALID_REQUEST', `broker ${this.replicaId} is not a follower of ${pos.topic}-${pos.partition}`);
      }
      const d = leaderFetchDecision(p.log, pos.logEndOffset, pos.lastFetchedEpoch);
      if (d.kind !== 'read') {
        // The follower truncates (or starts over) and sends a new position; nothing is pushed until then.
        sp.answer = {
          topic: pos.topic, partition: pos.partition, highWatermark: p.log.highWatermark, logStartOffset: p.log.logStartOffset,
          divergingEpoch: d.kind === 'diverging' ? { epoch: d.epoch, endOffset: d.endOffset } : undefined, batches: [], positionEpoch: pos.positionEpoch,
        };
        return;
      }
      p.recordFollowerFetch(this.replicaId, pos.logEndOffset, now);
      sp.p = p;
      sp.leaderEpoch = p.leaderEpoch;
      sp.nextOffset = pos.logEndOffset;
      sp.off = p.onChange(() => {
        this.dirty.add(sp!);
        this.schedule();
      });
    } catch (e) {
      this.refuse(sp, toLogError(e, (x) => this.opts.logger.error({ err: x }, 'unexpected error in Replicate')));
    }
  }

  private refuse(sp: SessionPartition, err: LogError): void {
    this.unsubscribe(sp);
    sp.answer = { topic: sp.topic, partition: sp.partition, error: toPartitionError(err), highWatermark: -1n, logStartOffset: -1n, batches: [], positionEpoch: sp.positionEpoch };
    this.dirty.add(sp);
  }

  private unsubscribe(sp: SessionPartition): void {
    sp.off?.();
    sp.off = undefined;
    sp.p = undefined;
    sp.hwOwedSinceMs = -1;
    this.hwOwed.delete(sp);
  }

  private drop(k: string): void {
    const sp = this.parts.get(k);
    if (!sp) return;
    this.unsubscribe(sp);
    this.parts.delete(k);
    this.dirty.delete(sp);
  }

  /**
   * Coalesces the changes of one callback (an append, a follower message) into one pass. A
   * microtask, not setImmediate: Node's HTTP/2 session flushes writes from a native immediate, and
   * one queued while JS immediates run waits for the next event-loop turn, behind that turn's poll.
   */
  private schedule(): void {
    if (this.scheduled || this.pumping || this.closed) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      void this.pump().catch((err: unknown) => {
        this.opts.logger.error({ err, replicaId: this.replicaId }, 'replication stream failed');
        this.close();
      });
    });
  }

  private async pump(): Promise<void> {
    if (this.pumping || this.closed) return;
    this.pumping = true;
    try {
      while (!this.closed && this.dirty.size > 0) {
        const entries: ReplicaPartitionDataWire[] = [];
        let budget = this.maxMessageBytes;
        for (const sp of [...this.dirty]) {
          if (budget <= 0) break;
          this.dirty.delete(sp);
          if (sp.answer) {
            entries.push(sp.answer);
            sp.answer = undefined;
            continue;
          }
          const entry = this.next(sp, budget);
          if (!entry) continue;
          for (const b of entry.batches) budget -= b.batch.length;
          entries.push(entry);
        }
        if (entries.length === 0) continue;
        if (!this.call.write(encodeReplicateResponse(entries))) {
          await new Promise<void>((resolve) => {
            const done = () => {
              this.call.off('drain', done);
              this.call.off('close', done);
              resolve();
            };
            this.call.on('drain', done);
            this.call.on('close', done);
          });
        }
      }
    } finally {
      this.pumping = false;
    }
    if (this.dirty.size > 0) this.schedule();
  }

  /** What to send for one streaming partition now, if anything; keeps it dirty while more is due. */
  private next(sp: SessionPartition, budget: number): ReplicaPartitionDataWire | undefined {
    const p = sp.p;
    if (!p) return undefined;
    if (!p.isLeader || p.leaderEpoch !== sp.leaderEpoch || this.opts.replicas.getPartition(sp.topic, sp.partition) !== p) {
      this.refuse(sp, new LogError('NOT_LEADER_OR_FOLLOWER', `no longer the leader of ${sp.topic}-${sp.partition} at epoch ${sp.leaderEpoch}`, {
        leaderHint: p.leaderId >= 0 ? { leaderId: p.leaderId, leaderEpoch: p.leaderEpoch } : undefined,
      }));
      const answer = sp.answer;
      sp.answer = undefined;
      return answer;
    }
    const log = p.log;
    const batches: ReplicaPartitionDataWire['batches'][number][] = [];
    if (sp.nextOffset < log.logEndOffset && sp.inflightBytes < this.windowBytes) {
      let entries;
      try {
        // 'header': the follower's appendAsFollower verifies each batch's payload CRC (as Kafka's
        // replica fetcher does), so reading it here too would be a second pass per byte.
        entries = log.read(sp.nextOffset, Math.min(budget, this.windowBytes - sp.inflightBytes), log.logEndOffset, 'header');
      } catch (e) {
        const err = toLogError(e);
        if (err.reason === 'OFFSET_OUT_OF_RANGE') {
          // Retention moved the log start past what the follower needs: it starts over there.
          sp.answer = { topic: sp.topic, partition: sp.partition, highWatermark: log.highWatermark, logStartOffset: log.logStartOffset, batches: [], positionEpoch: sp.positionEpoch };
          this.unsubscribe(sp);
          const answer = sp.answer;
          sp.answer = undefined;
          return answer;
        }
        this.refuse(sp, err);
        const answer = sp.answer;
        sp.answer = undefined;
        return answer;
      }
      let bytes = 0;
      for (const e of entries) {
        batches.push({ baseOffset: e.baseOffset, leaderEpoch: e.leaderEpoch, batch: e.batch });
        bytes += e.size;
        sp.nextOffset = e.lastOffset + 1n;
      }
      if (entries.length > 0) {
        sp.inflight.push({ end: sp.nextOffset, bytes });
        sp.inflightBytes += bytes;
      }
      if (sp.nextOffset < log.logEndOffset && sp.inflightBytes < this.windowBytes) this.dirty.add(sp);
    }
    const hwMoved = log.highWatermark !== sp.lastSentHw || log.logStartOffset !== sp.lastSentLogStart;
    if (batches.length === 0 && !hwMoved) return undefined;
    // Only the watermark moved (the log start did not, and this is not the first answer): wait a
    // little for a push of data to carry it (see the header).
    if (batches.length === 0 && sp.lastSentHw >= 0n && log.logStartOffset === sp.lastSentLogStart && !this.hwDue(sp)) return undefined;
    sp.hwOwedSinceMs = -1;
    this.hwOwed.delete(sp);
    sp.lastSentHw = log.highWatermark;
    sp.lastSentLogStart = log.logStartOffset;
    return { topic: sp.topic, partition: sp.partition, highWatermark: log.highWatermark, logStartOffset: log.logStartOffset, batches, positionEpoch: sp.positionEpoch };
  }

  /** Whether a watermark-only update is due now; if not, makes sure the timer will ask again. */
  private hwDue(sp: SessionPartition): boolean {
    const now = this.opts.clock.nowMs();
    if (sp.hwOwedSinceMs < 0) sp.hwOwedSinceMs = now;
    if (now - sp.hwOwedSinceMs >= this.hwDelayMs) return true;
    this.hwOwed.add(sp);
    this.armHwTimer(sp.hwOwedSinceMs + this.hwDelayMs - now);
    return false;
  }

  private armHwTimer(ms: number): void {
    if (this.cancelHwTimer || this.closed) return;
    this.cancelHwTimer = this.timers.setTimeout(() => {
      this.cancelHwTimer = undefined;
      for (const sp of this.hwOwed) this.dirty.add(sp);
      this.hwOwed.clear();
      this.schedule();
    }, Math.max(1, ms));
  }

  /** Ends the session: every subscription is released. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.cancelHwTimer?.();
    this.cancelHwTimer = undefined;
    this.hwOwed.clear();
    for (const sp of this.parts.values()) this.unsubscribe(sp);
    this.parts.clear();
    this.dirty.clear();
    if (!this.call.writableEnded) this.call.end();
  }
}
