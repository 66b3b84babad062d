/**
 * The leader side of ISR changes: on a timer, each partition this broker leads compares its ISR
 * with `desiredIsr` (replication-core.ts) and proposes the change to the controller. Nothing
 * changes on the leader's word alone: while the proposal is in flight its members count for the
 * high watermark (maximal ISR, KIP-497), and the new ISR applies only once the controller's
 * compare-and-set succeeded and answered, at the leader epoch it was proposed in.
 */
import type { Logger } from 'pino';
import type { Partition, ReplicaManager } from '../replica-manager.js';
import type { Clock, Timers } from '../runtime/timers.js';

/** The controller's answer to an accepted proposal. */
export interface AcceptedPartitionState {
  isr: number[];
  leaderEpoch: number;
  partitionEpoch: number;
}

export interface AlterPartitionRequest {
  topic: string;
  topicId: string;
  partition: number;
  leaderEpoch: number;
  partitionEpoch: number;
  newIsr: number[];
  /** The leader's replica is offline: the controller moves leadership away (see the proto). */
  leaderReplicaOffline?: boolean;
}

export interface IsrManagerOptions {
  replicas: ReplicaManager;
  clock: Clock;
  timers: Timers;
  logger: Logger;
  /** replica.lag.time.max.ms */
  lagMs: number;
  /** Told the number of hosted partitions whose log is offline after every pass (health, metrics). */
  onOfflinePartitions?: (count: number) => void;
  /** Sends the proposal to the controller; resolves with the state it accepted. */
  alterPartition(req: AlterPartitionRequest): Promise<AcceptedPartitionState>;
}

export class IsrManager {
  private cancel: (() => void) | undefined;

  constructor(private readonly opts: IsrManagerOptions) {}

  start(): void {
    this.cancel ??= this.opts.timers.setInterval(() => this.tick(), Math.max(100, Math.floor(this.opts.lagMs / 4)));
  }

  stop(): void {
    this.cancel?.();
    this.cancel = undefined;
  }

  /** One pass over the partitions this broker leads (tests call it directly). */
  tick(): void {
    const now = this.opts.clock.nowMs();
    let offline = 0;
    for (const p of this.opts.replicas.listPartitions()) {
      if (p.log.isOffline) offline++;
      if (!p.isLeader || p.isrRequestInFlight) continue;
      if (p.log.isOffline) {
        // A leader whose log failed hands leadership to another ISR member (Kafka moves the
        // leaders of an offline log dir); refused while no other ISR member is live, so retried.
        if (now - p.pendingIsrSinceMs >= this.retryMs || p.pendingIsrSinceMs === 0) this.resign(p, now);
        continue;
      }
      // A proposal whose outcome is unknown (no answer) is sent again, unchanged: the controller
      // applies it once, or answers that the partition epoch moved on.
      if (p.pendingIsr) {
        if (now - p.pendingIsrSinceMs >= this.retryMs) this.send(p, p.pendingIsr, now);
        continue;
      }
      const desired = p.desiredIsr(now, this.opts.lagMs);
      if (desired) this.send(p, desired, now);
    }
    this.opts.onOfflinePartitions?.(offline);
  }

  private resign(p: Partition, now: number): void {
    p.pendingIsrSinceMs = now;
    p.isrRequestInFlight = true;
    this.opts
      .alterPartition({ topic: p.topic, topicId: p.topicId, partition: p.partition, leaderEpoch: p.leaderEpoch, partitionEpoch: p.partitionEpoch, newIsr: [], leaderReplicaOffline: true })
      .then((state) => this.opts.logger.warn({ topic: p.topic, partition: p.partition, leaderEpoch: state.leaderEpoch, isr: state.isr }, 'replica offline: leadership handed over'))
      .catch((err: unknown) => this.opts.logger.warn({ err, topic: p.topic, partition: p.partition }, 'replica offline: leadership not handed over yet'))
      .finally(() => {
        p.isrRequestInFlight = false;
      });
  }

  /**
   * How soon a proposal whose outcome is unknown is sent again: about a second, whatever the lag
   * limit. It was max(500 ms, replica.lag.time.max.ms) = 30 s by default, so one lost answer or
   * NOT_CONTROLLER during a failover kept a caught-up follower out of the ISR for 30 s and more.
   */
  private get retryMs(): number {
    return Math.min(1000, Math.max(100, this.opts.lagMs));
  }

  /**
   * The proposal stays pending — its members counting for the watermark — until its outcome is
   * known: the controller's answer, a definite refusal, or newer metadata (ReplicaManager clears it
   * when the partition epoch moves). Dropping it on a lost answer would let the watermark pass a
   * replica that the controller did put into the ISR.
   */
  private send(p: Partition, isr: readonly number[], now: number): void {
    const proposedEpoch = p.leaderEpoch;
    if (p.pendingIsr !== isr) {
      p.pendingIsr = isr;
    }
    p.pendingIsrSinceMs = now;
    p.isrRequestInFlight = true;
    this.opts
      .alterPartition({ topic: p.topic, topicId: p.topicId, partition: p.partition, leaderEpoch: p.leaderEpoch, partitionEpoch: p.partitionEpoch, newIsr: [...isr] })
      .then((state) => {
        if (p.leaderEpoch !== proposedEpoch || state.leaderEpoch !== proposedEpoch) return;
        if (state.partitionEpoch > p.partitionEpoch) {
          this.opts.replicas.isrChanged(p, p.isr, state.isr);
          p.isr = state.isr;
          p.partitionEpoch = state.partitionEpoch;
          this.opts.logger.info({ topic: p.topic, partition: p.partition, isr: state.isr, partitionEpoch: state.partitionEpoch }, 'ISR changed');
        }
        if (p.pendingIsr === isr) p.pendingIsr = undefined;
      })
      .catch((err: unknown) => {
        // Only a refusal of the proposal itself proves it was not applied.
        if ((err as { reason?: string }).reason === 'INVALID_ISR' && p.pendingIsr === isr && p.leaderEpoch === proposedEpoch) p.pendingIsr = undefined;
        this.opts.logger.warn({ err, topic: p.topic, partition: p.partition, isr }, 'ISR change not confirmed; kept pending until metadata or a retry settles it');
      })
      .finally(() => {
        p.isrRequestInFlight = false;
        p.maybeAdvanceHighWatermark();
        p.notify();
      });
  }
}
