/**
 * Follower side of replication: one Replicate stream (replica.proto) per leader broker, carrying
 * every partition this broker follows there. A partition joins its leader's stream with a new
 * position epoch; the leader pushes batches as they are appended; after appending them (and any
 * fsync the flush policy asks for) the follower acknowledges its new log end offset on the same
 * stream, which is what moves the leader's high watermark. Answers are applied strictly in order,
 * one message at a time, through followerAction (replication-core.ts): truncate to a diverging
 * epoch, start over at the leader's log start, or append.
 *
 * Nothing here runs per partition on a timer: an idle partition costs one map entry. A partition
 * moves between streams when metadata names a new leader (reconcile); a broken stream is opened
 * again with backoff and every partition on it is re-sent with a new position epoch. A replica
 * whose log is offline (storage error) is not followed: it cannot store anything, and its stale
 * log end would read as caught up on an idle partition (Kafka stops fetchers of offline logs too).
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { failpoint } from '@skein/common/failpoints.js';
import { type ReplicaPartitionData, ReplicaServiceClient, type ReplicateResponse, type ReplicaPosition } from '@skein/proto/skein/broker/v1/replica.js';
import { type Partition, partitionKey, type ReplicaManager } from '../replica-manager.js';
import { followerAction, followerHighWatermark } from './replication-core.js';

export interface ReplicaStreamOptions {
  brokerId: number;
  replicas: ReplicaManager;
  /** host:port of a broker, from the cluster cache. */
  addressOf: (brokerId: number) => string | undefined;
  logger: Logger;
  /** How to dial leaders (the shell's clientCredentials: mTLS between brokers); plaintext if absent. */
  credentials?: grpc.ChannelCredentials;
}

interface Followed {
  p: Partition;
  leaderId: number;
  leaderEpoch: number;
  positionEpoch: number;
  /** A refused partition is asked for again after this timer. */
  retry: ReturnType<typeof setTimeout> | undefined;
  retryMs: number;
  /** When the leader last sent anything for this partition (ms, Date.now()). */
  lastHeardMs: number;
}


/** How often a followed partition outside the ISR, silent that long, sends its position again (ms). */
const OUT_OF_ISR_REFRESH_MS = 1000;

/** One stream to one leader broker. */
class LeaderStream {
  readonly parts = new Map<string, Followed>();
  private call: grpc.ClientDuplexStream<unknown, ReplicateResponse> | undefined;
  private client: ReplicaServiceClient | undefined;
  private address: string | undefined;
  private processing: Promise<void> = Promise.resolve();
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private backoffMs = 100;
  private closed = false;

  constructor(private readonly leaderId: number, private readonly opts: ReplicaStreamOptions, private readonly nextEpoch: () => number) {}

  add(f: Followed): void {
    this.parts.set(partitionKey(f.p.topic, f.p.partition), f);
    this.resend(f);
  }

  remove(f: Followed): void {
    const k = partitionKey(f.p.topic, f.p.partition);
    if (this.parts.get(k) !== f) return;
    this.parts.delete(k);
    if (f.retry) clearTimeout(f.retry);
    this.send({ replicaId: this.opts.brokerId, positions: [], removed: [{ topic: f.p.topic, partition: f.p.partition }] });
  }

  /** Sends the partition's position again (see ReplicaStreamManager.refreshOutOfIsr). */
  refresh(f: Followed): void {
    if (this.parts.get(partitionKey(f.p.topic, f.p.partition)) === f) this.resend(f);
  }

  /** (Re)starts a partition on the stream at its current log end, under a new position epoch. */
  private resend(f: Followed): void {
    f.positionEpoch = this.nextEpoch();
    this.send({ replicaId: this.opts.brokerId, positions: [position(f)], removed: [] });
  }

  private send(req: { replicaId: number; positions: ReplicaPosition[]; removed: Array<{ topic: string; partition: number }> }): void {
    if (this.closed) return;
    // A stream opened now (or later, after a backoff) starts with every partition's position.
    if (!this.call) {
      this.ensureOpen();
      return;
    }
    this.call.write(req);
  }

  private ensureOpen(): void {
    if (this.call || this.reconnectTimer) return;
    const address = this.opts.addressOf(this.leaderId);
    if (!address) {
      this.scheduleReconnect();
      return;
    }
    if (address !== this.address) {
      this.client?.close();
      // Keepalive finds a leader that vanished without closing the connection.
      this.client = new ReplicaServiceClient(address, this.opts.credentials ?? grpc.credentials.createInsecure(), {
        'grpc.max_receive_message_length': 64 * 1024 * 1024,
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 5_000,
        'grpc.http2.write_buffer_size': 1024 * 1024,
        // The follower receives the leader's pushes: with Node's 64 KiB window the leader would
        // wait a round trip per 64 KiB (the broker's server side gets the same via http2WindowBytes).
        'grpc-node.flow_control_window': 8 * 1024 * 1024,
        // The stream is never retried (a broken one is reopened with new positions), so grpc-js's
        // retry layer would only copy every acknowledgement into its replay buffer and free it again.
        'grpc.enable_retries': 0,
      } as grpc.ChannelOptions);
      this.address = address;
    }
    const call = this.client!.replicate();
    this.call = call as unknown as grpc.ClientDuplexStream<unknown, ReplicateResponse>;
    call.on('data', (res: ReplicateResponse) => {
      this.backoffMs = 100;
      // Strictly in order: each message is applied after the previous one (appends, truncations).
      this.processing = this.processing.then(() => this.apply(res)).catch((err: unknown) => {
        this.opts.logger.warn({ err, leaderId: this.leaderId }, 'applying replicated data failed; restarting the stream');
        this.restart();
      });
    });
    const broken = (err?: unknown) => {
      if (this.call !== call) return;
      if (!this.closed) this.opts.logger.debug({ err, leaderId: this.leaderId }, 'replication stream ended; reopening');
      this.call = undefined;
      this.scheduleReconnect();
    };
    call.on('error', broken);
    call.on('end', () => broken());
    call.write({ replicaId: this.opts.brokerId, positions: [...this.parts.values()].map((f) => {
      f.positionEpoch = this.nextEpoch();
      return position(f);
    }), removed: [] });
  }

  private restart(): void {
    const call = this.call;
    this.call = undefined;
    call?.cancel();
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer || this.parts.size === 0) return;
    const delay = this.backoffMs * (0.5 + Math.random());
    this.backoffMs = Math.min(2_000, this.backoffMs * 2);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.ensureOpen();
    }, delay);
  }

  /** Applies one message of the leader; then acknowledges the new positions in one message. */
  private async apply(res: ReplicateResponse): Promise<void> {
    const acks: ReplicaPosition[] = [];
    for (const d of res.partitions) {
      const f = this.parts.get(partitionKey(d.topic, d.partition));
      if (!f || d.positionEpoch !== f.positionEpoch) continue; // for an older position: superseded
      f.lastHeardMs = Date.now();
      const p = f.p;
      if (this.opts.replicas.getPartition(p.topic, p.partition) !== p || p.log.isOffline) continue;
      if (d.error) {
        // Not leader yet or any more, fenced, unknown epoch: ask again later (metadata will also
        // move the partition to its new leader's stream).
        this.retryLater(f, d.error.reason);
        continue;
      }
      f.retryMs = 200;
      const ack = await this.applyData(f, d);
      if (ack === 'resend') this.resend(f);
      else if (ack) acks.push(position(f));
    }
    if (acks.length > 0) this.send({ replicaId: this.opts.brokerId, positions: acks, removed: [] });
  }

  private async applyData(f: Followed, d: ReplicaPartitionData): Promise<boolean | 'resend'> {
    const p = f.p;
    const action = followerAction(p.log, {
      logStartOffset: d.logStartOffset,
      highWatermark: d.highWatermark,
      divergingEpoch: d.divergingEpoch,
      firstBaseOffset: d.batches[0]?.baseOffset,
    });
    const log = this.opts.logger;
    switch (action.kind) {
      case 'truncate':
        log.warn({ topic: p.topic, partition: p.partition, truncateTo: action.to.toString(), logEndOffset: p.log.logEndOffset.toString(), epoch: d.divergingEpoch?.epoch }, 'log diverged from the leader; truncating');
        await p.log.truncateTo(action.to);
        return 'resend';
      case 'truncate-fully-and-start-at':
        log.warn({ topic: p.topic, partition: p.partition, startAt: action.offset.toString(), logEndOffset: p.log.logEndOffset.toString() }, 'log ends below the leader\'s log start; truncating fully');
        await p.log.truncateFullyAndStartAt(action.offset);
        return 'resend';
      case 'append': {
        if (d.divergingEpoch === undefined && d.batches.length === 0 && p.log.logEndOffset < d.logStartOffset) return 'resend';
        const before = p.log.logEndOffset;
        for (const b of d.batches) {
          if (b.baseOffset < p.log.logEndOffset) continue; // already have it (the first may start earlier)
          if (b.baseOffset > p.log.logEndOffset) return 'resend'; // a gap: start again from our end
          const appended = p.log.appendAsFollower(Buffer.from(b.batch.buffer, b.batch.byteOffset, b.batch.byteLength), b.baseOffset, b.leaderEpoch);
          if (appended.flushed) await appended.flushed;
          // Crash tests: appended here, not yet acknowledged to the leader (docs/operations.md).
          failpoint('replica.afterAppend');
        }
        if (p.log.updateHighWatermark(followerHighWatermark(p.log.logEndOffset, d.highWatermark))) p.notify();
        // Acknowledge whatever was delivered, so the leader's window for this partition opens again.
        return d.batches.length > 0 || p.log.logEndOffset !== before;
      }
    }
  }

  private retryLater(f: Followed, reason: string): void {
    if (f.retry) return;
    this.opts.logger.debug({ topic: f.p.topic, partition: f.p.partition, leaderId: this.leaderId, reason }, 'leader refused the partition; asking again later');
    f.retry = setTimeout(() => {
      f.retry = undefined;
      if (this.parts.get(partitionKey(f.p.topic, f.p.partition)) === f) this.resend(f);
    }, f.retryMs);
    f.retryMs = Math.min(2_000, f.retryMs * 2);
  }

  close(): void {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    for (const f of this.parts.values()) if (f.retry) clearTimeout(f.retry);
    this.call?.end();
    this.call?.cancel();
    this.client?.close();
  }
}

function position(f: Followed): ReplicaPosition {
  const log = f.p.log;
  return {
    topic: f.p.topic,
    partition: f.p.partition,
    leaderEpoch: f.leaderEpoch,
    logEndOffset: log.logEndOffset,
    lastFetchedEpoch: log.logEndOffset > log.logStartOffset ? log.latestEpoch() : -1,
    positionEpoch: f.positionEpoch,
  };
}

export class ReplicaStreamManager {
  private readonly followed = new Map<string, Followed>();
  private readonly streams = new Map<number, LeaderStream>();
  /** Followed partitions whose ISR (as metadata says) does not hold this broker. */
  private readonly outOfIsr = new Set<string>();
  private refreshTimer: ReturnType<typeof setInterval> | undefined;
  private epochs = 0;
  private closed = false;

  constructor(private readonly opts: ReplicaStreamOptions) {}

  /** Follows, keeps following or stops following a partition after its state changed. */
  reconcile(p: Partition): void {
    const k = partitionKey(p.topic, p.partition);
    const current = this.followed.get(k);
    const shouldFollow = !this.closed && !p.isLeader && p.leaderId >= 0 && p.replicas.includes(this.opts.brokerId) && !p.log.isOffline;
    if (current && (!shouldFollow || current.p !== p || current.leaderId !== p.leaderId || current.leaderEpoch !== p.leaderEpoch)) {
      this.streams.get(current.leaderId)?.remove(current);
      this.followed.delete(k);
      this.closeIfEmpty(current.leaderId);
    }
    if (shouldFollow && !this.followed.has(k)) {
      const f: Followed = { p, leaderId: p.leaderId, leaderEpoch: p.leaderEpoch, positionEpoch: 0, retry: undefined, retryMs: 200, lastHeardMs: Date.now() };
      this.followed.set(k, f);
      let stream = this.streams.get(p.leaderId);
      if (!stream) {
        stream = new LeaderStream(p.leaderId, this.opts, () => ++this.epochs);
        this.streams.set(p.leaderId, stream);
      }
      this.opts.logger.info({ topic: p.topic, partition: p.partition, leaderId: p.leaderId, leaderEpoch: p.leaderEpoch }, 'following leader');
      stream.add(f);
    }
    if (shouldFollow && !p.isr.includes(this.opts.brokerId)) this.outOfIsr.add(k);
    else this.outOfIsr.delete(k);
    if (this.outOfIsr.size > 0 && !this.refreshTimer) {
      this.refreshTimer = setInterval(() => this.refreshOutOfIsr(), OUT_OF_ISR_REFRESH_MS);
      this.refreshTimer.unref();
    }
  }

  /**
   * A followed partition outside the ISR whose leader has sent nothing for a while gets its
   * position sent again. A leader forgets a follower's progress when the controller removes it
   * from the ISR (a fenced old incarnation of this broker: its progress proves nothing), and the
   * position this incarnation sent may have arrived just before that. On an idle partition
   * nothing else would ever tell the leader again, so the follower stayed out of the ISR for good
   * (test/idle-isr-recovery.test.ts). In-sync partitions cost nothing here: only the out-of-ISR
   * set is scanned, and the timer runs only while it is not empty.
   */
  private refreshOutOfIsr(): void {
    const now = Date.now();
    for (const k of this.outOfIsr) {
      const f = this.followed.get(k);
      if (!f || f.p.isr.includes(this.opts.brokerId)) {
        this.outOfIsr.delete(k);
        continue;
      }
      if (now - f.lastHeardMs >= OUT_OF_ISR_REFRESH_MS) {
        f.lastHeardMs = now;
        this.streams.get(f.leaderId)?.refresh(f);
      }
    }
    if (this.outOfIsr.size === 0 && this.refreshTimer) {
      clearInterval(this.refreshTimer);
      this.refreshTimer = undefined;
    }
  }

  stopPartition(topic: string, partition: number): void {
    const f = this.followed.get(partitionKey(topic, partition));
    if (!f) return;
    this.streams.get(f.leaderId)?.remove(f);
    this.followed.delete(partitionKey(topic, partition));
    this.closeIfEmpty(f.leaderId);
  }

  /** Partitions followed and streams open (tests, metrics). */
  stats(): { partitions: number; streams: number } {
    return { partitions: this.followed.size, streams: this.streams.size };
  }

  private closeIfEmpty(leaderId: number): void {
    const s = this.streams.get(leaderId);
    if (s && s.parts.size === 0) {
      s.close();
      this.streams.delete(leaderId);
    }
  }

  close(): void {
    this.closed = true;
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    this.refreshTimer = undefined;
    this.outOfIsr.clear();
    for (const s of this.streams.values()) s.close();
    this.streams.clear();
    this.followed.clear();
  }
}
