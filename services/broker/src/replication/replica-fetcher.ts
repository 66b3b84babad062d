/**
 * Follower side of replication: one fetch loop per partition this broker follows. Each round
 * sends the log end offset and the epoch of the last local batch; the leader answers with batches
 * to append as they are, or with a diverging epoch to truncate to first (so replicas never
 * diverge, also after several quick leader changes). The follower's high watermark follows the
 * leader's. Loops stop when the partition's leader or epoch changes; the metadata follower
 * starts the next one.
 */
import * as grpc from '@grpc/grpc-js';
import { ReplicaServiceClient, type ReplicaFetchResponse } from '@skein/proto/skein/broker/v1/replica.js';
import type { Logger } from 'pino';
import type { Partition, ReplicaManager } from '../replica-manager.js';
import { followerAction, followerHighWatermark } from './replication-core.js';
import { failpoint } from '@skein/common/failpoints.js';

export interface ReplicaFetcherOptions {
  brokerId: number;
  replicas: ReplicaManager;
  /** host:port of a broker, from the cluster cache. */
  addressOf: (brokerId: number) => string | undefined;
  logger: Logger;
  maxBytes?: number;
  maxWaitMs?: number;
}

export class ReplicaFetcherManager {
  private readonly loops = new Map<string, { leaderId: number; leaderEpoch: number; stop: () => void }>();
  private readonly clients = new Map<string, ReplicaServiceClient>();
  private closed = false;

  constructor(private readonly opts: ReplicaFetcherOptions) {}

  /** Starts, keeps or stops the fetch loop of a partition after its state changed. */
  reconcile(p: Partition): void {
    const key = `${p.partition}:${p.topic}`;
    const current = this.loops.get(key);
    // An offline log (storage error) cannot store what it fetches, and its fetches would still tell
    // the leader its stale log end: on an idle partition that reads as caught up, and the leader
    // would take the offline replica back into the ISR (Kafka stops fetchers of offline logs too).
    const shouldFollow = !this.closed && !p.isLeader && p.leaderId >= 0 && p.replicas.includes(this.opts.brokerId) && !p.log.isOffline;
    if (current && (!shouldFollow || current.leaderId !== p.leaderId || current.leaderEpoch !== p.leaderEpoch)) {
      current.stop();
      this.loops.delete(key);
    }
    if (shouldFollow && !this.loops.has(key)) {
      let stopped = false;
      const entry = { leaderId: p.leaderId, leaderEpoch: p.leaderEpoch, stop: () => { stopped = true; } };
      this.loops.set(key, entry);
      void this.run(p, entry.leaderId, entry.leaderEpoch, () => stopped || this.closed || p.log.isOffline || this.opts.replicas.getPartition(p.topic, p.partition) !== p)
        .catch((err: unknown) => this.opts.logger.error({ err, topic: p.topic, partition: p.partition }, 'replica fetch loop failed'))
        .finally(() => {
        if (this.loops.get(key) === entry) this.loops.delete(key);
      });
    }
  }

  stopPartition(topic: string, partition: number): void {
    const key = `${partition}:${topic}`;
    this.loops.get(key)?.stop();
    this.loops.delete(key);
  }

  private client(address: string): ReplicaServiceClient {
    let c = this.clients.get(address);
    if (!c) {
      c = new ReplicaServiceClient(address, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': 64 * 1024 * 1024 });
      this.clients.set(address, c);
    }
    return c;
  }

  private async run(p: Partition, leaderId: number, leaderEpoch: number, stopped: () => boolean): Promise<void> {
    const log = this.opts.logger.child({ topic: p.topic, partition: p.partition, leaderId, leaderEpoch });
    log.info('following leader');
    let backoffMs = 50;
    while (!stopped()) {
      const address = this.opts.addressOf(leaderId);
      if (!address) {
        await sleep(200);
        continue;
      }
      let res: ReplicaFetchResponse;
      try {
        res = await new Promise<ReplicaFetchResponse>((resolve, reject) => {
          this.client(address).replicaFetch({
            replicaId: this.opts.brokerId, topic: p.topic, partition: p.partition, leaderEpoch,
            fetchOffset: p.log.logEndOffset, lastFetchedEpoch: p.log.logEndOffset > 0n ? p.log.latestEpoch() : -1,
            maxBytes: this.opts.maxBytes ?? 4 * 1024 * 1024, maxWaitMs: this.opts.maxWaitMs ?? 500,
          }, new grpc.Metadata(), { deadline: Date.now() + 15_000 }, (err, r) => (err ? reject(err) : resolve(r)));
        });
      } catch (err) {
        if (stopped()) return;
        log.debug({ err }, 'replica fetch failed; retrying');
        await sleep(backoffMs);
        backoffMs = Math.min(2000, backoffMs * 2);
        continue;
      }
      if (stopped()) return;
      if (res.error) {
        // Not leader / fenced / unknown epoch: wait for metadata to tell us the new leader.
        await sleep(backoffMs);
        backoffMs = Math.min(2000, backoffMs * 2);
        continue;
      }
      backoffMs = 50;
      try {
        await this.apply(p, res, log);
      } catch (err) {
        // A storage error takes the log offline (the log reports it); anything else is retried.
        if (stopped()) return;
        log.warn({ err }, 'applying the leader\'s answer failed; retrying');
        await sleep(backoffMs);
        backoffMs = Math.min(2000, backoffMs * 2);
      }
    }
  }

  /** Carries out followerAction (replication-core.ts) for one answer of the leader. */
  private async apply(p: Partition, res: ReplicaFetchResponse, log: Logger): Promise<void> {
    const action = followerAction(p.log, {
      logStartOffset: res.logStartOffset,
      highWatermark: res.highWatermark,
      divergingEpoch: res.divergingEpoch,
      firstBaseOffset: res.batches[0]?.baseOffset,
    });
    switch (action.kind) {
      case 'truncate':
        log.warn({ truncateTo: action.to.toString(), logEndOffset: p.log.logEndOffset.toString(), epoch: res.divergingEpoch?.epoch }, 'log diverged from the leader; truncating');
        await p.log.truncateTo(action.to);
        return;
      case 'truncate-fully-and-start-at':
        log.warn({ startAt: action.offset.toString(), logStartOffset: p.log.logStartOffset.toString(), logEndOffset: p.log.logEndOffset.toString() }, 'log ends below the leader\'s log start; truncating fully');
        await p.log.truncateFullyAndStartAt(action.offset);
        return;
      case 'append':
        for (const b of res.batches) {
          if (b.baseOffset < p.log.logEndOffset) continue; // already have it (first batch may start earlier)
          const appended = p.log.appendAsFollower(b.batch, b.baseOffset, b.leaderEpoch);
          if (appended.flushed) await appended.flushed;
          // Crash tests: the follower holds the batch, its high watermark and the leader's view of it
          // (the next fetch offset) have not moved yet.
          failpoint('replica.afterAppend');
        }
        if (p.log.updateHighWatermark(followerHighWatermark(p.log.logEndOffset, res.highWatermark))) p.notify();
    }
  }

  close(): void {
    this.closed = true;
    for (const l of this.loops.values()) l.stop();
    this.loops.clear();
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
