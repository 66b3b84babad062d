/**
 * The controller: exactly one metadata instance at a time, elected through the store. While it
 * leads it keeps every partition in line with the live broker set (failover, ISR shrink on broker
 * death, bringing offline partitions back), completes partition states a crashed topic writer left
 * out, and serves the leader-only RPCs (AlterPartition, preferred leader election).
 *
 * Fencing: every write is one store transaction guarded by the election key's create revision
 * (the controller epoch) and by the modRevision of each key it replaces, so a deposed controller
 * or a concurrent admin write makes the transaction fail instead of overwriting. Work is
 * serialized on one queue; decisions come from the pure functions in domain/partition-state.ts.
 */

import { backoffDelayMs, type BackoffPolicy } from '@skein/common/backoff.js';
import { sleep } from '@skein/common/timers.js';
import type { Compare, MetadataStore, TxnOp } from '@skein/common/store/types.js';
import { Election, type Leadership } from '@skein/common/store/election.js';
import { StoreSession } from '@skein/common/store/session.js';
import type { Logger } from 'pino';
import {
  type PartitionRecord,
  applyAlterPartition,
  applyLeaderReplicaOffline,
  completeReassignment,
  electPreferredLeader,
  startReassignment,
  initialPartitionRecord,
  reconcilePartition,
} from '../domain/partition-state.js';
import { type ControllerRecord, type MetadataKeys, encodePartition, encodeRecord } from '../domain/records.js';
import { completedDirectoryChanges, fencedBrokers } from '../domain/broker-directories.js';
import { SerialQueue } from './serial-queue.js';
import type { MetadataView } from './metadata-view.js';
import { SkeinError } from '@skein/common/errors.js';

/** etcd refuses transactions with more than 128 operations by default; stay well below. */
const MAX_OPS_PER_TXN = 100;

/** A failed campaign (store unreachable) is retried 100 ms doubling to 2 s, jittered. */
const CAMPAIGN_BACKOFF: BackoffPolicy = { initialMs: 100, maxMs: 2000 };
/** A failed reconcile pass is retried 500 ms doubling to 5 s, jittered, unless a change comes first. */
const RECONCILE_BACKOFF: BackoffPolicy = { initialMs: 500, maxMs: 5000 };

/** What the controller reports for metrics (runtime/metadata-metrics.ts counts them). */
export type ControllerEvent =
  /** This instance won the controller election. */
  | { type: 'became-controller' }
  /**
   * A partition leader election was committed: `failover` (the leader left; a new one from the ISR),
   * `unclean` (from outside the ISR), `preferred` (an operator's preferred-leader election),
   * `leader-replica-offline` (the leader's log failed and it handed over).
   */
  | { type: 'leader-elected'; kind: 'failover' | 'unclean' | 'preferred' | 'leader-replica-offline' };

export interface ControllerOptions {
  instanceId: string;
  advertisedHost: string;
  advertisedPort: number;
  sessionTtlMs: number;
  /** Told what happened, for metrics; must not throw. */
  onEvent?: (e: ControllerEvent) => void;
}

export class Controller {
  private leadership: Leadership | undefined;
  private session: StoreSession | undefined;
  private readonly queue = new SerialQueue();
  private stopped = false;
  private campaignAbort = new AbortController();
  private unsubscribe: (() => void) | undefined;
  private reconcileScheduled = false;
  /** Reconcile passes failed in a row (the backoff before the next retry grows with it). */
  private reconcileFailures = 0;

  constructor(
    private readonly store: MetadataStore,
    private readonly keys: MetadataKeys,
    private readonly view: MetadataView,
    private readonly options: ControllerOptions,
    private readonly logger: Logger,
  ) {}

  get isLeader(): boolean {
    return this.leadership !== undefined;
  }

  get epoch(): bigint | undefined {
    return this.leadership?.revision;
  }

  start(): void {
    void this.campaignLoop();
  }

  private async campaignLoop(): Promise<void> {
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        this.session = await StoreSession.create(this.store, { ttlMs: this.options.sessionTtlMs });
        const session = this.session;
        const lostSession = new Promise<void>((resolve) => session.onLost(() => resolve()));
        const election = new Election(this.store, session, this.keys.electionPrefix());
        const record: ControllerRecord = { v: 1, instanceId: this.options.instanceId, host: this.options.advertisedHost, port: this.options.advertisedPort };
        this.campaignAbort = new AbortController();
        const campaign = election.campaign(encodeRecord(record), this.campaignAbort.signal);
        // A campaign abandoned because the session died rejects later; nobody awaits it then.
        campaign.catch(() => {});
        const won = await Promise.race([campaign, lostSession.then(() => undefined)]);
        if (!won || this.stopped) {
          this.campaignAbort.abort();
          await session.close().catch(() => {});
          continue;
        }
        attempt = 0;
        await this.lead(won, lostSession);
        await session.close().catch(() => {});
      } catch (err) {
        if (this.stopped) return;
        this.logger.warn({ err, attempt }, 'controller campaign failed; retrying');
        await sleep(backoffDelayMs(CAMPAIGN_BACKOFF, attempt));
      }
    }
  }

  private async lead(leadership: Leadership, lostSession: Promise<void>): Promise<void> {
    // The view must include our own election key before acting, so decisions use a view at least
    // as new as our epoch.
    await this.view.waitForRevision(leadership.revision);
    this.leadership = leadership;
    this.options.onEvent?.({ type: 'became-controller' });
    this.logger.info({ controllerEpoch: leadership.revision.toString() }, 'became controller');
    const sub = this.view.subscribe((batch) => {
      const relevant = batch.resync || batch.directoriesChanged || batch.changes.some((c) =>
        c.change?.$case === 'brokerRegistered' || c.change?.$case === 'brokerUnregistered' ||
        c.change?.$case === 'topicChanged' || c.change?.$case === 'partitionChanged');
      if (relevant) this.scheduleReconcile();
    });
    this.unsubscribe = sub.unsubscribe;
    this.scheduleReconcile();
    await lostSession;
    this.leadership = undefined;
    sub.unsubscribe();
    this.unsubscribe = undefined;
    if (!this.stopped) this.logger.warn('controller session lost; stepped down');
  }

  private scheduleReconcile(): void {
    if (this.reconcileScheduled) return;
    this.reconcileScheduled = true;
    void this.queue.run(async () => {
      this.reconcileScheduled = false;
      try {
        await this.reconcileAll();
        this.reconcileFailures = 0;
      } catch (err) {
        const delayMs = backoffDelayMs(RECONCILE_BACKOFF, this.reconcileFailures++);
        this.logger.warn({ err, attempt: this.reconcileFailures, delayMs: Math.round(delayMs) }, 'reconcile failed; retrying (or on the next change)');
        setTimeout(() => { if (this.leadership) this.scheduleReconcile(); }, delayMs).unref();
      }
    });
  }

  /**
   * One pass over every partition: create missing states, then apply reconcilePartition; brokers
   * with a pending (replaced) data directory are fenced out of every ISR, and once none is left in
   * one, their new directory is accepted (domain/broker-directories.ts).
   */
  private async reconcileAll(): Promise<void> {
    const leadership = this.leadership;
    if (!leadership) return;
    const image = this.view.current;
    const live = image.liveBrokerIds();
    const fenced = fencedBrokers([...image.directories.values()].map((d) => d.record));
    const writes: Array<{ compare: Compare[]; op: TxnOp; describe: string; onCommitted?: () => void }> = [];
    for (const [name, topic] of image.topics) {
      for (const p of image.missingPartitionStates(name)) {
        const replicas = topic.record.assignment[p]!;
        const initial = reconcilePartition(initialPartitionRecord(topic.record.topicId, replicas), live, { uncleanLeaderElection: false, fenced })
          ?? initialPartitionRecord(topic.record.topicId, replicas);
        writes.push({
          compare: [
            { key: this.keys.topic(name), target: 'modRevision', op: '=', value: topic.modRevision },
            { key: this.keys.partition(name, p), target: 'createRevision', op: '=', value: 0n },
          ],
          op: { type: 'put', key: this.keys.partition(name, p), value: encodePartition(initial) },
          describe: `${name}-${p} created`,
        });
      }
      const unclean = topic.record.configs['unclean.leader.election.enable'] === 'true';
      for (const [p, state] of image.partitionsOf(name)) {
        if (state.record.topicId !== topic.record.topicId) continue;
        const reconciled = reconcilePartition(state.record, live, { uncleanLeaderElection: unclean, fenced });
        const next = completeReassignment(reconciled ?? state.record) ?? reconciled;
        if (!next) continue;
        const write = this.partitionWrite(name, p, state.modRevision, next);
        if (next.leaderId >= 0 && next.leaderId !== state.record.leaderId) {
          const kind = state.record.isr.includes(next.leaderId) ? 'failover' : 'unclean';
          writes.push({ ...write, onCommitted: () => this.options.onEvent?.({ type: 'leader-elected', kind }) });
        } else writes.push(write);
        this.logger.info({ topic: name, partition: p, leader: next.leaderId, leaderEpoch: next.leaderEpoch, isr: next.isr }, 'partition state change');
      }
    }
    await this.commitInChunks(leadership, writes);
    if (fenced.size > 0) await this.acceptFencedDirectories(leadership);
  }

  /**
   * Accepts the pending directory of every fenced broker that no partition lists in its ISR or as
   * leader any more, judged on the view after this pass's writes. Each write is guarded by the
   * directory record it was computed from; a partition that still holds the broker (its write lost
   * a race) changes again, which schedules another pass.
   */
  private async acceptFencedDirectories(leadership: Leadership): Promise<void> {
    const image = this.view.current;
    const partitions = [...image.partitions.values()].flatMap((m) => [...m.values()].map((v) => v.record));
    const completed = completedDirectoryChanges([...image.directories.values()].map((d) => d.record), partitions, Date.now());
    const writes = completed.map((record) => {
      const key = this.keys.brokerDirectory(record.brokerId);
      const modRevision = image.directories.get(record.brokerId)!.modRevision;
      this.logger.info({ brokerId: record.brokerId, directoryId: record.directoryId }, 'broker fenced out of every ISR; its new data directory is accepted');
      return {
        compare: [{ key, target: 'modRevision' as const, op: '=' as const, value: modRevision }],
        op: { type: 'put' as const, key, value: encodeRecord(record) },
        describe: `broker ${record.brokerId} directory`,
      };
    });
    await this.commitInChunks(leadership, writes);
  }

  private partitionWrite(topic: string, partition: number, modRevision: bigint, next: PartitionRecord) {
    const key = this.keys.partition(topic, partition);
    return {
      compare: [{ key, target: 'modRevision' as const, op: '=' as const, value: modRevision }],
      op: { type: 'put' as const, key, value: encodePartition(next) },
      describe: `${topic}-${partition}`,
    };
  }

  /**
   * Commits independent per-partition writes, many per transaction. A transaction fails as a
   * whole if any compare fails; then each of its writes is retried alone so one stale partition
   * does not block the others (the next reconcile recomputes the stale one from a fresh view).
   */
  private async commitInChunks(leadership: Leadership, writes: Array<{ compare: Compare[]; op: TxnOp; describe: string; onCommitted?: () => void }>): Promise<bigint> {
    let revision = 0n;
    const guard = leadership.guard();
    const perTxn = Math.floor((MAX_OPS_PER_TXN - 1) / 2);
    for (let i = 0; i < writes.length; i += perTxn) {
      const chunk = writes.slice(i, i + perTxn);
      const result = await this.store.txn({ compare: [guard, ...chunk.flatMap((w) => w.compare)], success: chunk.map((w) => w.op) });
      if (result.succeeded) {
        revision = result.revision;
        for (const w of chunk) w.onCommitted?.();
        continue;
      }
      for (const w of chunk) {
        const single = await this.store.txn({ compare: [guard, ...w.compare], success: [w.op] });
        if (single.succeeded) {
          revision = single.revision;
          w.onCommitted?.();
        }
        else if (!(await this.stillLeader(leadership))) throw new SkeinError('NOT_CONTROLLER', 'this instance lost the controller election');
      }
    }
    if (revision > 0n) await this.view.waitForRevision(revision);
    return revision;
  }

  private async stillLeader(leadership: Leadership): Promise<boolean> {
    const kv = await this.store.get(leadership.key);
    return kv !== undefined && kv.createRevision === leadership.revision;
  }

  /** AlterPartition: only the controller decides, only with current epochs. */
  async alterPartition(request: { brokerId: number; topic: string; topicId: string; partition: number; leaderEpoch: number; partitionEpoch: number; newIsr: number[]; leaderReplicaOffline?: boolean }): Promise<PartitionRecord> {
    return this.queue.run(async () => {
      const leadership = this.requireLeadership();
      const image = this.view.current;
      const topic = image.topics.get(request.topic);
      if (!topic || (request.topicId !== '' && topic.record.topicId !== request.topicId)) {
        throw new SkeinError('UNKNOWN_TOPIC', `topic ${request.topic} does not exist${topic ? ' with that topic id' : ''}`, { metadata: { topic: request.topic } });
      }
      const state = image.partitionsOf(request.topic).get(request.partition);
      if (!state) throw new SkeinError('UNKNOWN_PARTITION', `partition ${request.partition} of ${request.topic} does not exist`, { metadata: { topic: request.topic, partition: String(request.partition) } });
      // A fenced broker (replaced data directory) cannot join an ISR until its new directory is accepted.
      const fenced = fencedBrokers([...image.directories.values()].map((d) => d.record));
      const joinable = new Set([...image.liveBrokerIds()].filter((id) => !fenced.has(id)));
      const result = request.leaderReplicaOffline
        ? applyLeaderReplicaOffline(state.record, request, joinable)
        : applyAlterPartition(state.record, request, joinable);
      if ('problem' in result) {
        throw new SkeinError(result.problem.reason, result.problem.message, {
          metadata: { topic: request.topic, partition: String(request.partition) },
          leaderHint: leaderHintOf(image, state.record),
        });
      }
      const w = this.partitionWrite(request.topic, request.partition, state.modRevision, result.next);
      const txn = await this.store.txn({ compare: [leadership.guard(), ...w.compare], success: [w.op] });
      if (!txn.succeeded) {
        if (!(await this.stillLeader(leadership))) throw new SkeinError('NOT_CONTROLLER', 'this instance lost the controller election');
        throw new SkeinError('STALE_PARTITION_EPOCH', 'the partition changed concurrently; refresh and retry', { metadata: { topic: request.topic, partition: String(request.partition) } });
      }
      if (request.leaderReplicaOffline && result.next.leaderId !== state.record.leaderId) this.options.onEvent?.({ type: 'leader-elected', kind: 'leader-replica-offline' });
      await this.view.waitForRevision(txn.revision);
      this.logger.info({ topic: request.topic, partition: request.partition, isr: result.next.isr, leaderId: result.next.leaderId, partitionEpoch: result.next.partitionEpoch, leaderReplicaOffline: request.leaderReplicaOffline === true }, request.leaderReplicaOffline ? 'leader replica offline: leadership moved' : 'ISR changed by leader');
      return result.next;
    });
  }

  async electPreferredLeaders(filter: Array<{ topic: string; partitions: number[] }>): Promise<Array<{ topic: string; topicId: string; partition: number; record: PartitionRecord }>> {
    return this.queue.run(async () => {
      const leadership = this.requireLeadership();
      const image = this.view.current;
      const live = image.liveBrokerIds();
      const wanted = filter.length === 0 ? [...image.topics.keys()].map((topic) => ({ topic, partitions: [] as number[] })) : filter;
      const writes: Array<{ compare: Compare[]; op: TxnOp; describe: string; onCommitted?: () => void }> = [];
      const elected: Array<{ topic: string; topicId: string; partition: number; record: PartitionRecord }> = [];
      for (const { topic, partitions } of wanted) {
        if (!image.topics.has(topic)) throw new SkeinError('UNKNOWN_TOPIC', `topic ${topic} does not exist`, { metadata: { topic } });
        const states = image.partitionsOf(topic);
        for (const p of partitions) {
          if (!states.has(p)) throw new SkeinError('UNKNOWN_PARTITION', `partition ${p} of ${topic} does not exist`, { metadata: { topic, partition: String(p) } });
        }
        for (const [p, state] of states) {
          if (partitions.length > 0 && !partitions.includes(p)) continue;
          const next = electPreferredLeader(state.record, live);
          if (!next) continue;
          writes.push({ ...this.partitionWrite(topic, p, state.modRevision, next), onCommitted: () => this.options.onEvent?.({ type: 'leader-elected', kind: 'preferred' }) });
          elected.push({ topic, topicId: next.topicId, partition: p, record: next });
        }
      }
      await this.commitInChunks(leadership, writes);
      return elected;
    });
  }

  /** Starts reassignments; the reconcile pass completes each once its targets are in the ISR. */
  async reassign(requests: Array<{ topic: string; partition: number; targetReplicas: number[] }>): Promise<Array<{ topic: string; topicId: string; partition: number; record: PartitionRecord }>> {
    return this.queue.run(async () => {
      const leadership = this.requireLeadership();
      const image = this.view.current;
      const live = image.liveBrokerIds();
      const writes: Array<{ compare: Compare[]; op: TxnOp; describe: string }> = [];
      const started: Array<{ topic: string; topicId: string; partition: number; record: PartitionRecord }> = [];
      for (const r of requests) {
        const meta = { topic: r.topic, partition: String(r.partition) };
        const topic = image.topics.get(r.topic);
        if (!topic) throw new SkeinError('UNKNOWN_TOPIC', `topic ${r.topic} does not exist`, { metadata: meta });
        const state = image.partitionsOf(r.topic).get(r.partition);
        if (!state) throw new SkeinError('UNKNOWN_PARTITION', `partition ${r.partition} of ${r.topic} does not exist`, { metadata: meta });
        const t = r.targetReplicas;
        if (t.length === 0 || new Set(t).size !== t.length) throw new SkeinError('INVALID_REPLICATION_FACTOR', 'target_replicas must be a non-empty list of distinct broker ids', { metadata: meta });
        const dead = t.find((id) => !live.has(id));
        if (dead !== undefined) throw new SkeinError('BROKER_NOT_AVAILABLE', `broker ${dead} is not live`, { metadata: { ...meta, broker_id: String(dead) } });
        const next = startReassignment(state.record, t);
        if (!next) continue;
        writes.push(this.partitionWrite(r.topic, r.partition, state.modRevision, next));
        started.push({ topic: r.topic, topicId: next.topicId, partition: r.partition, record: next });
        this.logger.info({ topic: r.topic, partition: r.partition, from: state.record.replicas, to: t }, 'reassignment started');
      }
      await this.commitInChunks(leadership, writes);
      return started;
    });
  }

  private requireLeadership(): Leadership {
    if (!this.leadership) {
      const controller = this.view.current.controller;
      throw new SkeinError('NOT_CONTROLLER', controller ? `this instance is not the controller; ${controller.record.instanceId} is` : 'no controller is elected yet', {
        controllerHint: controller ? { controllerId: controller.record.instanceId, controllerEndpoint: { host: controller.record.host, port: controller.record.port } } : undefined,
      });
    }
    return this.leadership;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.campaignAbort.abort();
    this.unsubscribe?.();
    const leadership = this.leadership;
    this.leadership = undefined;
    // Resigning hands the controller role over at once instead of after the session TTL.
    await leadership?.resign().catch(() => {});
    await this.session?.close().catch(() => {});
  }
}

export function leaderHintOf(image: { brokers: ReadonlyMap<number, { record: { host: string; port: number } }> }, record: PartitionRecord) {
  const broker = image.brokers.get(record.leaderId);
  return {
    leaderId: record.leaderId,
    leaderEndpoint: broker ? { host: broker.record.host, port: broker.record.port } : undefined,
    leaderEpoch: record.leaderEpoch,
  };
}
