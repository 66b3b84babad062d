/**
 * Runs a topology: one instance of an application (`applicationId` = the consumer group), sharing
 * its tasks with the other instances through the group coordinator.
 *
 * Tasks and assignment. One GroupConsumer per instance is a member of the group with the
 * coordinator's `streams` assignor (KIP-1071): it sends the topology, numStandbyReplicas and the
 * offset sum of every task it holds local state for (standby.ts), and the coordinator assigns
 * tasks (`${subtopology}_${partition}`: partition p of every source topic of the subtopology),
 * sticky and preferring the instance with the most state. An active task arrives as its
 * partitions and runs only while this instance owns ALL of them (during a hand-over one may arrive
 * before another is released by its old owner; the task's partitions stay paused until the set is
 * complete). A standby task (standby.ts) keeps the task's stores restored from the changelogs;
 * when the task becomes active here its stores are handed over, so only the tail is restored.
 *
 * State. A new task pauses its partitions, restores each changelogged store from its checkpoint
 * to the changelog's end (only the missing tail when the local LMDB survived; everything when it
 * did not), then runs. See state/store-engine.ts for why a store's engine is always exactly at
 * its checkpoint.
 *
 * Guarantees.
 *  - at_least_once: each fetched batch is processed and its outputs and changelog records are
 *    acknowledged before the batch counts as processed; the consumer commits processed positions
 *    every commitIntervalMs (and before giving partitions up). A crash re-processes at most what
 *    came after the last commit.
 *  - exactly_once: one transactional producer per instance (`${applicationId}-${instanceId}`);
 *    everything a commit interval produces (outputs, changelog records, and the input offsets via
 *    sendOffsetsToTransaction with the consumer's group metadata, so a member that lost a partition
 *    cannot commit for it) is one transaction. On a failed commit the transaction aborts, every
 *    task forgets the interval's writes and the consumer rewinds to the offsets of the last commit.
 *    Changelogs and repartition topics are read read_committed.
 *
 * Punctuation. Stream-time punctuators fire inside the task as records move stream time (their
 * outputs go with the batch's). Wall-clock punctuators fire from a timer (every
 * PUNCTUATE_TICK_MS) through the same lock as processing and commits, so their outputs and store
 * writes belong to the current commit interval (under exactly_once: its transaction).
 *
 * Processing errors (an exception from user code) stop the instance (state ERROR, reported to
 * onError), as Kafka Streams' default uncaught-exception handler does: skipping a record silently
 * or retrying it forever are both worse defaults.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  GroupConsumer,
  type Message,
  OffsetSpec,
  type Producer,
  type ProducerRecord,
  type RecordMetadata,
  type SkeinClient,
  SkeinError,
  type TransactionalProducer,
} from '@skein/client';
import { failpoint } from '@skein/common/failpoints.js';
import { GlobalStore } from './global-store.js';
import { prefetchSchemas, prepareSerdes } from './registry-serde.js';
import {
  type KeyQueryMetadata,
  keyQueryMetadata,
  type LocalTasks,
  type QueryableKeyValueStore,
  type QueryableWindowStore,
  queryableKeyValueStore,
  queryableWindowStore,
} from './interactive-queries.js';
import { serveMetrics, StreamsMetrics } from './streams-metrics.js';
import { LmdbEngine } from './state/lmdb-engine.js';
import { MemoryEngine, type StoreEngine } from './state/store-engine.js';
import type { Serde } from './serdes.js';
import { type OutputRecord, StreamTask, type TaskMetrics } from './task.js';
import { offsetSum, scanLocalState, StandbyTasks } from './standby.js';
import type { Topology } from './topology.js';

export type ProcessingGuarantee = 'at_least_once' | 'exactly_once';

export interface StreamsConfig {
  /** Names the consumer group, internal topics (`${applicationId}-...`) and the state directory. */
  applicationId: string;
  /** Where task state lives (`${stateDir}/${applicationId}/${taskId}`); omitted: in memory (restored in full on every start). */
  stateDir?: string;
  processingGuarantee?: ProcessingGuarantee;
  /** How often offsets (and, under exactly_once, transactions) are committed. Default 1000 ms; 100 ms under exactly_once, as Kafka Streams. */
  commitIntervalMs?: number;
  /** This instance's stable name (the transactional id's suffix): keep it across restarts so a restart fences its predecessor. Default: random. */
  instanceId?: string;
  /** Group coordinator addresses (default: found from the metadata service). */
  coordinator?: string[];
  /** Replication factor of the internal topics (changelog, repartition). Default 1. */
  replicationFactor?: number;
  /** Transaction timeout under exactly_once. Default 10,000 ms (Kafka Streams' default). */
  transactionTimeoutMs?: number;
  /** Most bytes per partition per fetch. Default 1 MiB. */
  maxBytesPerPartition?: number;
  /** Told about errors: retried commits, a task's failure, the error that stopped the instance. */
  onError?: (err: unknown) => void;
  /** Told about lifecycle events (task assigned, restored, revoked), for logs and tests. */
  onEvent?: (event: StreamsEvent) => void;
  /**
   * Standby copies of each stateful task kept on other instances (0-16; default 0), restored
   * continuously from the changelogs so a task that moves there replays only the tail. Every
   * instance of an application must use the same value (the coordinator refuses a mismatch).
   */
  numStandbyReplicas?: number;
  /** Serves GET /metrics (Prometheus text, per-task metrics) on 127.0.0.1 at this port while running; 0: any free port (see metricsPort()). Default: not served (metrics() still answers). */
  metricsPort?: number;
}

export type StreamsEvent =
  | { type: 'task-assigned'; taskId: string }
  | { type: 'task-restored'; taskId: string; store: string; records: number; fromOffset: bigint; toOffset: bigint }
  /** About once a second while a store restores: changelog offsets replayed of those to replay, and records so far. */
  | { type: 'restore-progress'; taskId: string; store: string; restoredOffsets: number; totalOffsets: number; records: number }
  | { type: 'task-running'; taskId: string }
  | { type: 'task-revoked'; taskId: string }
  | { type: 'commit'; records: number }
  | { type: 'aborted'; reason: string }
  /** A standby task started following its changelogs here. */
  | { type: 'standby-assigned'; taskId: string }
  /** A standby task stopped: moved elsewhere, or `promoted` to this instance's active task (its stores handed over). */
  | { type: 'standby-revoked'; taskId: string; promoted: boolean };

export type StreamsState = 'CREATED' | 'STARTING' | 'RUNNING' | 'CLOSING' | 'CLOSED' | 'ERROR';

interface TaskEntry {
  id: string;
  subtopology: number;
  partition: number;
  owned: Set<string>;
  state: 'RESTORING' | 'RUNNING' | 'CLOSED';
  task?: StreamTask;
  restoring?: Promise<void>;
  /** Records restored per store, this incarnation. */
  restored: Record<string, number>;
  /** Restore progress per store in changelog offsets, this incarnation (for the metrics). */
  restore: Record<string, { restored: number; total: number }>;
}

export interface TaskStatus {
  id: string;
  state: TaskEntry['state'];
  metrics: TaskMetrics | undefined;
  restored: Record<string, number>;
  streamTime: number | undefined;
}

const tpKey = (topic: string, partition: number) => `${topic}:${partition}`;
/** How often the wall-clock punctuation timer looks for due punctuators (Kafka's resolution is its poll loop's). */
const PUNCTUATE_TICK_MS = 50;
const RESTORE_PROGRESS_EVERY_MS = 1_000;
const splitTp = (k: string): [string, number] => {
  const i = k.lastIndexOf(':');
  return [k.slice(0, i), Number(k.slice(i + 1))];
};

export class SkeinStreams {
  private stateValue: StreamsState = 'CREATED';
  private readonly guarantee: ProcessingGuarantee;
  private readonly commitIntervalMs: number;
  private readonly instanceId: string;
  private readonly tasks = new Map<string, TaskEntry>();
  private readonly globals = new Map<string, GlobalStore>();
  private readonly partitionCount = new Map<number, number>();
  private readonly internalTopics = new Set<string>();
  /** The serdes of the source reading each (full) topic name, for prefetching registry schemas. */
  private readonly sourceSerdes = new Map<string, { keySerde: Serde<unknown>; valueSerde: Serde<unknown> }>();
  private consumer: GroupConsumer | undefined;
  private producer: Producer | undefined;
  private txnProducer: TransactionalProducer | undefined;
  private txnProducerReady = false;
  private commitTimer: NodeJS.Timeout | undefined;
  private punctuateTimer: NodeJS.Timeout | undefined;
  private readonly taskMetrics: StreamsMetrics;
  private metricsServer: { port: number; close(): Promise<void> } | undefined;
  /** Serializes processing, commits, assignment changes. */
  private lock: Promise<unknown> = Promise.resolve();
  /** Under exactly_once: the open transaction's bookkeeping. */
  private txn:
    | {
        startedMs: number;
        sends: Array<Promise<RecordMetadata[]>>;
        outputs: OutputRecord[][];
        offsets: Map<string, bigint>;
        rewind: Map<string, bigint>;
        records: number;
      }
    | undefined;
  /** Under at_least_once: changelog offsets acknowledged and not yet checkpointed, per task and store. */
  private readonly pendingCheckpoints = new Map<string, Map<string, bigint>>();
  /** Standby tasks (numStandbyReplicas > 0 somewhere in the group). */
  private standbys: StandbyTasks | undefined;
  /** Offset sums of local task state that is neither active nor standby now (found at start, or left by a revoked task). */
  private readonly localOffsets = new Map<string, bigint>();
  readonly stats = { commits: 0, aborts: 0, processed: 0, lastCommitMs: 0 };
  private committedProcessed = 0;

  constructor(
    private readonly topology: Topology,
    private readonly client: SkeinClient,
    private readonly config: StreamsConfig,
  ) {
    if (!/^[a-zA-Z0-9._-]+$/.test(config.applicationId))
      throw new SkeinError('INVALID_REQUEST', `applicationId must be letters, digits, '.', '_' or '-', got ${config.applicationId}`);
    this.guarantee = config.processingGuarantee ?? 'at_least_once';
    if (this.guarantee !== 'at_least_once' && this.guarantee !== 'exactly_once')
      throw new SkeinError('INVALID_REQUEST', `processingGuarantee must be at_least_once or exactly_once, got ${String(this.guarantee)}`);
    this.commitIntervalMs = config.commitIntervalMs ?? (this.guarantee === 'exactly_once' ? 100 : 1000);
    this.instanceId = config.instanceId ?? Math.random().toString(36).slice(2, 10);
    const standbys = config.numStandbyReplicas ?? 0;
    if (!Number.isInteger(standbys) || standbys < 0 || standbys > 16)
      throw new SkeinError('INVALID_REQUEST', `numStandbyReplicas must be an integer in 0..16, got ${String(config.numStandbyReplicas)}`);
    for (const t of topology.repartitionTopics) this.internalTopics.add(t);
    if (config.metricsPort !== undefined && (!Number.isInteger(config.metricsPort) || config.metricsPort < 0 || config.metricsPort > 65535))
      throw new SkeinError('INVALID_REQUEST', `metricsPort must be an integer in 0..65535, got ${String(config.metricsPort)}`);
    this.taskMetrics = new StreamsMetrics({ application_id: config.applicationId, instance_id: this.instanceId }, () =>
      [...this.tasks.values()].map((e) => ({ id: e.id, metrics: e.task?.metrics, restore: e.restore })),
    );
  }

  get state(): StreamsState {
    return this.stateValue;
  }

  /** A topic's name on the cluster: repartition topics carry the application id. */
  topicName(topic: string, internal = this.internalTopics.has(topic)): string {
    return internal ? `${this.config.applicationId}-${topic}` : topic;
  }

  changelogTopic(store: string): string {
    return `${this.config.applicationId}-${store}-changelog`;
  }

  private readCommitted(): 'read_committed' | 'read_uncommitted' {
    return this.guarantee === 'exactly_once' ? 'read_committed' : 'read_uncommitted';
  }

  private lockSince: number | undefined;
  private lockHolder: string | undefined;

  private withLock<T>(fn: () => Promise<T>, holder = 'processing'): Promise<T> {
    const held = async () => {
      this.lockSince = Date.now();
      this.lockHolder = holder;
      try {
        return await fn();
      } finally {
        this.lockSince = undefined;
        this.lockHolder = undefined;
      }
    };
    const run = this.lock.then(held, held);
    this.lock = run.catch(() => undefined);
    return run;
  }

  private emit(event: StreamsEvent): void {
    try {
      this.config.onEvent?.(event);
    } catch {
      // a listener's failure is not ours
    }
  }

  private report(err: unknown): void {
    try {
      this.config.onError?.(err);
    } catch {
      // as above
    }
  }

  /** Checks topics, creates internal ones, loads global tables, and joins the group. Resolves once the group answered. */
  async start(): Promise<void> {
    if (this.stateValue !== 'CREATED') throw new Error(`start() in state ${this.stateValue}`);
    this.stateValue = 'STARTING';
    await this.resolvePartitionCounts();
    await this.createInternalTopics();
    await this.prepareSerdes();
    for (const g of this.topology.globalTables) {
      const store = new GlobalStore(this.client, g);
      await store.start(this.readCommitted());
      this.globals.set(g.store, store);
    }
    if (this.guarantee === 'exactly_once') {
      await this.readyTxnProducer();
    } else {
      this.producer = this.client.producer({ lingerMs: 1 });
    }
    const topics = this.topology.subtopologies.flatMap((s) => s.sourceTopics.map((t) => this.topicName(t)));
    this.standbys = new StandbyTasks({
      client: this.client,
      isolationLevel: this.readCommitted(),
      changelogs: (id) => this.changelogsOf(id),
      openEngine: (id) => this.openEngine(id),
      emit: (e) => this.emit(e),
      report: (err) => this.report(err),
      left: (id, sum) => {
        if (sum === undefined || !this.config.stateDir) this.localOffsets.delete(id);
        else this.localOffsets.set(id, sum);
      },
    });
    if (this.config.stateDir)
      for (const [id, sum] of await scanLocalState(
        join(this.config.stateDir, this.config.applicationId),
        (id) => this.changelogsOf(id),
        (id) => this.openEngine(id),
      ))
        this.localOffsets.set(id, sum);
    this.consumer = new GroupConsumer(this.client, {
      groupId: this.config.applicationId,
      topics,
      coordinator: this.config.coordinator,
      // Server-side task assignment (KIP-1071): sticky, placed where local state is, with standbys.
      assignor: 'streams',
      streams: {
        topology: this.topology.subtopologies.map((s) => ({
          subtopologyId: String(s.id),
          sourceTopics: s.sourceTopics.map((t) => this.topicName(t)),
          changelogTopics: s.stores.filter((st) => this.topology.stores.get(st)!.changelog).map((st) => this.changelogTopic(st)),
        })),
        numStandbyReplicas: this.config.numStandbyReplicas ?? 0,
        taskOffsets: () => this.taskOffsets(),
        // Tasks running active here are not standbys (the coordinator lists a standby until its task's partitions all arrived).
        onStandbyTasks: (tasks) => this.standbys?.update(tasks.filter((t) => !this.tasks.has(t))),
      },
      autoOffsetReset: 'earliest',
      autoCommit: this.guarantee === 'at_least_once',
      autoCommitIntervalMs: this.commitIntervalMs,
      isolationLevel: this.readCommitted(),
      maxBytesPerPartition: this.config.maxBytesPerPartition,
      onAssigned: (parts) => this.onAssigned(parts),
      onRevoked: (parts) => this.onRevoked(parts),
      onError: (err) => this.report(err),
    });
    await this.consumer.run({ eachBatch: (b) => this.processBatch(b.topic, b.partition, b.messages, b.highWatermark) });
    this.commitTimer = setInterval(() => void this.withLock(() => this.commit(), 'commit timer').catch((err) => this.report(err)), this.commitIntervalMs);
    this.punctuateTimer = setInterval(() => this.maybePunctuateWallClock(), PUNCTUATE_TICK_MS);
    if (this.config.metricsPort !== undefined) {
      try {
        this.metricsServer = await serveMetrics(this.taskMetrics, this.config.metricsPort);
      } catch (err) {
        await this.shutdown();
        throw err;
      }
    }
    this.stateValue = 'RUNNING';
  }

  /**
   * Partition counts per sub-topology: those reading input topics from the topics (which must
   * agree: co-partitioning); those reading only repartition topics from the sub-topologies that
   * write them.
   */
  private async resolvePartitionCounts(): Promise<void> {
    const counts = new Map<string, number>();
    const external = [...new Set(this.topology.subtopologies.flatMap((s) => s.sourceTopics).filter((t) => !this.internalTopics.has(t)))];
    for (const g of this.topology.globalTables) external.push(g.topic);
    for (const t of external) {
      try {
        counts.set(t, (await this.client.topic(t, true)).partitions.length);
      } catch (err) {
        if ((err as SkeinError).reason === 'UNKNOWN_TOPIC_OR_PARTITION' || (err as SkeinError).reason === 'UNKNOWN_TOPIC')
          throw new SkeinError('UNKNOWN_TOPIC_OR_PARTITION', `source topic ${t} does not exist: create it before starting ${this.config.applicationId}`);
        throw err;
      }
    }
    for (let round = 0; round <= this.topology.subtopologies.length; round++) {
      for (const s of this.topology.subtopologies) {
        if (this.partitionCount.has(s.id)) continue;
        const known = s.sourceTopics.filter((t) => counts.has(t));
        if (known.length < s.sourceTopics.length) continue;
        const distinct = [...new Set(known.map((t) => counts.get(t)!))];
        if (distinct.length > 1) {
          throw new SkeinError(
            'INVALID_REQUEST',
            `topics ${known.map((t) => `${t} (${counts.get(t)} partitions)`).join(', ')} are not co-partitioned: a join or merge inside one task needs the same partition count on every input`,
          );
        }
        this.partitionCount.set(s.id, distinct[0]!);
        for (const r of s.repartitionSinks) counts.set(r, Math.max(counts.get(r) ?? 0, distinct[0]!));
      }
    }
    for (const s of this.topology.subtopologies)
      if (!this.partitionCount.has(s.id)) throw new Error(`cannot tell how many partitions sub-topology ${s.id} has`);
  }

  private async createInternalTopics(): Promise<void> {
    const rf = this.config.replicationFactor ?? 1;
    const want: Array<{ name: string; partitions: number; configs: Record<string, string> }> = [];
    for (const s of this.topology.subtopologies) {
      const n = this.partitionCount.get(s.id)!;
      for (const r of s.repartitionSinks) {
        const reader = this.topology.subtopologyOf.get(r)!;
        want.push({ name: this.topicName(r, true), partitions: this.partitionCount.get(reader)!, configs: {} });
      }
      for (const store of s.stores)
        if (this.topology.stores.get(store)!.changelog)
          want.push({ name: this.changelogTopic(store), partitions: n, configs: { 'cleanup.policy': 'compact' } });
    }
    for (const t of want) {
      try {
        await this.client.createTopic(t.name, { partitions: t.partitions, replicationFactor: rf, configs: t.configs });
      } catch (err) {
        if ((err as SkeinError).reason !== 'TOPIC_ALREADY_EXISTS') throw err;
      }
      // Wait for leaders: the first produce or restore would otherwise meet a topic still being placed.
      for (let i = 0; ; i++) {
        const desc = await this.client.topic(t.name, true).catch(() => undefined);
        if (desc && desc.partitions.length === t.partitions && desc.partitions.every((p) => p.leaderId > 0)) break;
        if (desc && desc.partitions.length !== t.partitions)
          throw new SkeinError('INVALID_REQUEST', `internal topic ${t.name} has ${desc.partitions.length} partitions, needs ${t.partitions}`);
        if (i > 200) throw new SkeinError('UNAVAILABLE', `internal topic ${t.name} has no leaders`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  private taskIdOf(topic: string, partition: number): { id: string; subtopology: number } | undefined {
    // Topic names on the cluster map back to the topology's (repartition topics are prefixed).
    const prefix = `${this.config.applicationId}-`;
    const local = topic.startsWith(prefix) && this.internalTopics.has(topic.slice(prefix.length)) ? topic.slice(prefix.length) : topic;
    const s = this.topology.subtopologyOf.get(local);
    return s === undefined ? undefined : { id: `${s}_${partition}`, subtopology: s };
  }

  private sourcesOf(entry: TaskEntry): string[] {
    return this.topology.subtopologies[entry.subtopology]!.sourceTopics.map((t) => tpKey(this.topicName(t), entry.partition));
  }

  private onAssigned(parts: string[]): void {
    for (const k of parts) {
      const [topic, partition] = splitTp(k);
      const t = this.taskIdOf(topic, partition);
      if (!t) continue;
      let entry = this.tasks.get(t.id);
      if (!entry) {
        entry = { id: t.id, subtopology: t.subtopology, partition, owned: new Set(), state: 'RESTORING', restored: {}, restore: {} };
        this.tasks.set(t.id, entry);
        this.emit({ type: 'task-assigned', taskId: t.id });
        const e = entry;
        e.restoring = this.restoreTask(e).catch((err) => {
          this.report(err);
          this.fail(err);
        });
      }
      entry.owned.add(k);
      // Paused until restored and complete (records handed out before that would be processed without state).
      if (entry.state !== 'RUNNING' || !this.complete(entry)) this.consumer!.pause([{ topic, partition }]);
      else this.consumer!.resume([{ topic, partition }]);
    }
    for (const entry of this.tasks.values()) this.maybeResume(entry);
  }

  private complete(entry: TaskEntry): boolean {
    return this.sourcesOf(entry).every((k) => entry.owned.has(k));
  }

  private maybeResume(entry: TaskEntry): void {
    if (entry.state !== 'RUNNING' || !this.complete(entry)) return;
    this.consumer!.resume(
      [...entry.owned].map((k) => {
        const [topic, partition] = splitTp(k);
        return { topic, partition };
      }),
    );
  }

  private openEngine(taskId: string): StoreEngine {
    if (!this.config.stateDir) return new MemoryEngine();
    const dir = join(this.config.stateDir, this.config.applicationId, taskId);
    mkdirSync(dir, { recursive: true });
    return new LmdbEngine(dir);
  }

  private async restoreTask(entry: TaskEntry): Promise<void> {
    const sub = this.topology.subtopologies[entry.subtopology]!;
    // A standby of this task hands over its stores: only what it had not fetched yet is restored.
    const engine = (await this.standbys?.promote(entry.id)) ?? this.openEngine(entry.id);
    const task = new StreamTask(
      entry.id,
      sub,
      this.topology,
      entry.partition,
      engine,
      this.globals,
      (s) => this.changelogTopic(s),
      (t, internal) => this.topicName(t, internal),
    );
    entry.task = task;
    for (const store of sub.stores) {
      if (!this.topology.stores.get(store)!.changelog) continue;
      if (entry.state === 'CLOSED') return;
      entry.restored[store] = await this.restoreStore(
        task,
        store,
        () => entry.state === 'CLOSED',
        (p) => {
          entry.restore[store] = p;
        },
      );
    }
    if (entry.state === 'CLOSED') return;
    entry.state = 'RUNNING';
    this.emit({ type: 'task-running', taskId: entry.id });
    this.maybeResume(entry);
  }

  /** Replays the store's changelog from its checkpoint to the end into the engine; returns the records replayed. */
  private async restoreStore(
    task: StreamTask,
    store: string,
    cancelled: () => boolean,
    progress: (p: { restored: number; total: number }) => void = () => {},
  ): Promise<number> {
    const topic = this.changelogTopic(store);
    const p = task.partition;
    const isolationLevel = this.readCommitted();
    const end = await this.client.listOffset(topic, p, OffsetSpec.OFFSET_SPEC_LATEST, 0n, isolationLevel);
    let from = task.checkpoint(store) ?? 0n;
    if (from > end) {
      // The local store is ahead of its changelog (the topic was re-created): it cannot be trusted.
      await task.engine.wipe();
      from = 0n;
    }
    const start = from;
    let n = 0;
    const total = Number(end - start);
    let lastProgressMs = Date.now();
    progress({ restored: 0, total });
    while (from < end && !cancelled()) {
      const res = await this.client.fetch(topic, p, from, { isolationLevel, maxBytes: 4 << 20 });
      const writes = res.records.filter((r) => r.offset < end).map((r) => ({ store, key: r.key, value: r.value }));
      const next = res.nextOffset ?? (res.records.length ? res.records[res.records.length - 1]!.offset + 1n : from);
      if (next <= from) throw new SkeinError('UNAVAILABLE', `restoring ${topic}-${p}: no progress at offset ${from} (end ${end})`);
      const upTo = next < end ? next : end;
      task.engine.write(writes, { [`checkpoint:${store}`]: String(upTo) });
      n += writes.length;
      from = upTo;
      progress({ restored: Number(from - start), total });
      if (Date.now() - lastProgressMs >= RESTORE_PROGRESS_EVERY_MS && from < end) {
        lastProgressMs = Date.now();
        this.emit({ type: 'restore-progress', taskId: task.id, store, restoredOffsets: Number(from - start), totalOffsets: total, records: n });
      }
    }
    this.emit({ type: 'task-restored', taskId: task.id, store, records: n, fromOffset: start, toOffset: from });
    return n;
  }

  /** A task's changelogged stores and their topics, from its id (`${subtopology}_${partition}`); none for a stateless or unknown task. */
  private changelogsOf(taskId: string): Array<{ store: string; topic: string }> {
    const m = /^(\d+)_(\d+)$/.exec(taskId);
    const sub = m ? this.topology.subtopologies[Number(m[1])] : undefined;
    if (!sub || Number(m![2]) >= (this.partitionCount.get(sub.id) ?? 0)) return [];
    return sub.stores.filter((s) => this.topology.stores.get(s)!.changelog).map((store) => ({ store, topic: this.changelogTopic(store) }));
  }

  /** What this instance reports on each heartbeat: the offset sum of every task it holds state for (active, standby, or left on disk). */
  private taskOffsets(): Array<{ taskId: string; offsetSum: bigint }> {
    const sums = new Map(this.localOffsets);
    for (const [id, sum] of this.standbys?.offsetSums() ?? []) sums.set(id, sum);
    for (const e of this.tasks.values()) {
      const sum =
        e.task && e.state === 'RUNNING'
          ? offsetSum(
              e.task.engine,
              this.changelogsOf(e.id).map((c) => c.store),
            )
          : undefined;
      if (sum !== undefined) sums.set(e.id, sum);
    }
    return [...sums].map(([taskId, sum]) => ({ taskId, offsetSum: sum })).sort((a, b) => (a.taskId < b.taskId ? -1 : 1));
  }

  /** A closing task's state stays on disk (with a stateDir): reported from now on, so the task can come back here. */
  private rememberLocalState(entry: TaskEntry): void {
    const sum =
      entry.task && this.config.stateDir
        ? offsetSum(
            entry.task.engine,
            this.changelogsOf(entry.id).map((c) => c.store),
          )
        : undefined;
    if (sum === undefined) this.localOffsets.delete(entry.id);
    else this.localOffsets.set(entry.id, sum);
  }

  private async onRevoked(parts: string[]): Promise<void> {
    await this.withLock(async () => {
      this.lockHolder = `revoking ${parts.length}`;
      const affected = new Set<TaskEntry>();
      for (const k of parts) {
        const [topic, partition] = splitTp(k);
        const t = this.taskIdOf(topic, partition);
        const entry = t && this.tasks.get(t.id);
        if (entry) affected.add(entry);
      }
      if (affected.size === 0) return;
      // Everything processed so far is committed before the partitions go (all tasks: one transaction covers them all).
      await this.commit().catch((err) => this.report(err));
      for (const entry of affected) {
        this.tasks.delete(entry.id);
        entry.state = 'CLOSED';
        await entry.restoring;
        this.closeTask(entry);
        this.rememberLocalState(entry);
        await entry.task?.engine.close();
        this.pendingCheckpoints.delete(entry.id);
        this.emit({ type: 'task-revoked', taskId: entry.id });
      }
    });
  }

  private fail(err: unknown): void {
    if (this.stateValue === 'ERROR' || this.stateValue === 'CLOSED') return;
    this.stateValue = 'ERROR';
    this.report(err);
    void this.shutdown();
  }

  /** Serdes that need the registry (schema ids) resolve them now, so processing stays synchronous (registry-serde.ts). */
  private async prepareSerdes(): Promise<void> {
    const serdes: Array<Serde<unknown>> = [];
    for (const n of this.topology.nodes.values()) {
      if (n.kind === 'processor') continue;
      serdes.push(n.keySerde, n.valueSerde);
      if (n.kind === 'source') for (const t of n.topics) this.sourceSerdes.set(this.topicName(t, n.repartition), n);
    }
    for (const g of this.topology.globalTables) serdes.push(g.keySerde, g.valueSerde);
    await prepareSerdes(serdes);
  }

  private async processBatch(topic: string, partition: number, messages: Message[], highWatermark?: bigint): Promise<void> {
    await this.withLock(async () => {
      if (this.stateValue === 'ERROR') throw new SkeinError('INVALID_REQUEST', 'this streams instance stopped after an error');
      const t = this.taskIdOf(topic, partition);
      const entry = t && this.tasks.get(t.id);
      if (entry?.state !== 'RUNNING' || !entry.task || !this.complete(entry)) {
        // Fetched just before the task was paused: handed out again once the task runs.
        this.consumer!.pause([{ topic, partition }]);
        throw new SkeinError('UNAVAILABLE', `task for ${topic}-${partition} is not running yet`);
      }
      const task = entry.task;
      const source = this.sourceSerdes.get(topic);
      // Writer schemas not met before are fetched here, before anything of the batch is processed.
      const fetching = source && prefetchSchemas(source.keySerde, source.valueSerde, messages);
      if (fetching) {
        this.lockHolder = 'processing: schema registry';
        await fetching;
        this.lockHolder = 'processing';
      }
      await this.beginTxnIfNeeded();
      try {
        for (const m of messages) task.process(topic, partition, m);
      } catch (err) {
        this.fail(err);
        throw err;
      }
      this.stats.processed += messages.length;
      const k = tpKey(topic, partition);
      const last = messages[messages.length - 1]!.offset + 1n;
      if (highWatermark !== undefined) this.taskMetrics.recordLag(task.id, topic, partition, highWatermark, last);
      const outputs = task.drainOutputs();
      if (this.txn) {
        if (!this.txn.rewind.has(k)) this.txn.rewind.set(k, messages[0]!.offset);
        this.txn.offsets.set(k, last);
        this.txn.records += messages.length;
        this.sendInTxn(task.id, outputs);
        if (Date.now() - this.txn.startedMs >= this.commitIntervalMs) await this.commit();
      } else {
        // at_least_once: acknowledged before the batch counts as processed (and its offsets become committable).
        const checkpoints = await this.send(this.producer!, outputs);
        // Outputs acknowledged, offsets not committed yet: a crash here re-processes the batch (at least once).
        failpoint('streams.afterOutputs');
        this.noteCheckpoints(task.id, checkpoints);
      }
    });
  }

  /** Under exactly_once, opens the interval's transaction if none is open (throws while the coordinator cannot be reached). */
  private async beginTxnIfNeeded(): Promise<void> {
    if (this.guarantee !== 'exactly_once' || this.txn) return;
    const holder = this.lockHolder;
    this.lockHolder = `${holder}: producer`;
    (await this.readyTxnProducer()).beginTransaction();
    this.lockHolder = holder;
    this.txn = { startedMs: Date.now(), sends: [], outputs: [], offsets: new Map(), rewind: new Map(), records: 0 };
  }

  /** The timer's check: takes the lock only when some running task has a wall-clock punctuator due. */
  private maybePunctuateWallClock(): void {
    if (this.stateValue !== 'RUNNING') return;
    const now = Date.now();
    const due = [...this.tasks.values()].some((e) => e.state === 'RUNNING' && (e.task?.nextWallClockPunctuation() ?? Number.POSITIVE_INFINITY) <= now);
    if (due) void this.withLock(() => this.punctuateWallClock(), 'punctuation').catch((err) => this.report(err));
  }

  /** Fires due wall-clock punctuators (under the lock); their outputs join the current interval like a batch's. */
  private async punctuateWallClock(): Promise<void> {
    if (this.stateValue !== 'RUNNING') return;
    const running = [...this.tasks.values()].filter((e) => e.state === 'RUNNING' && e.task && this.complete(e));
    const now = Date.now();
    if (!running.some((e) => (e.task!.nextWallClockPunctuation() ?? Number.POSITIVE_INFINITY) <= now)) return;
    await this.beginTxnIfNeeded();
    for (const e of running) {
      const task = e.task!;
      try {
        if (task.punctuateWallClock(now) === 0) continue;
      } catch (err) {
        this.fail(err); // reports it and stops the instance, as a processing error does
        return;
      }
      const outputs = task.drainOutputs();
      if (this.txn) this.sendInTxn(task.id, outputs);
      else this.noteCheckpoints(task.id, await this.send(this.producer!, outputs));
    }
  }

  /** Calls the task's processors' close() (a user processor's exception is reported, not thrown: the task is going anyway). */
  private closeTask(entry: TaskEntry): void {
    try {
      entry.task?.close();
    } catch (err) {
      this.report(err);
    }
    this.taskMetrics.retire(entry.id, entry.task?.metrics);
  }

  /** Sends records grouped by topic (order kept per partition); resolves with the next changelog offset per store topic and partition. */
  private async send(producer: Producer | TransactionalProducer, outputs: OutputRecord[]): Promise<Map<string, bigint>> {
    const byTopic = new Map<string, ProducerRecord[]>();
    for (const o of outputs) {
      let list = byTopic.get(o.topic);
      if (!list) byTopic.set(o.topic, (list = []));
      list.push({ key: o.key, value: o.value, timestampMs: o.timestamp, headers: o.headers, ...(o.partition === undefined ? {} : { partition: o.partition }) });
    }
    const results = await Promise.all([...byTopic.entries()].map(([topic, records]) => producer.send(topic, records)));
    const next = new Map<string, bigint>();
    for (const metas of results) {
      for (const m of metas) {
        if (!m.topic.endsWith('-changelog')) continue;
        const k = tpKey(m.topic, m.partition);
        if ((next.get(k) ?? -1n) < m.offset + 1n) next.set(k, m.offset + 1n);
      }
    }
    return next;
  }

  private noteCheckpoints(taskId: string, next: Map<string, bigint>): void {
    const entry = this.tasks.get(taskId);
    if (!entry?.task) return;
    let pending = this.pendingCheckpoints.get(taskId);
    if (!pending) this.pendingCheckpoints.set(taskId, (pending = new Map()));
    for (const store of entry.task.stores.keys()) {
      const o = next.get(tpKey(this.changelogTopic(store), entry.partition));
      if (o !== undefined) pending.set(store, o);
    }
  }

  private sendInTxn(taskId: string, outputs: OutputRecord[]): void {
    if (outputs.length === 0) return;
    const p = this.send(this.txnProducer!, outputs).then((next) => {
      this.noteCheckpoints(taskId, next);
      return [];
    });
    p.catch(() => {}); // awaited at commit; marked handled so an early failure is not unhandled
    this.txn!.sends.push(p as Promise<RecordMetadata[]>);
  }

  /** Commits what was processed (under the lock). */
  private async commit(): Promise<void> {
    const started = Date.now();
    const running = [...this.tasks.values()].filter((e) => e.state === 'RUNNING' && e.task);
    if (this.guarantee === 'at_least_once') {
      for (const e of running) {
        e.task!.prepareCommit();
        this.noteCheckpoints(e.id, await this.send(this.producer!, e.task!.drainOutputs()));
      }
      for (const e of running) {
        e.task!.flush(this.pendingCheckpoints.get(e.id) ?? new Map());
        this.pendingCheckpoints.delete(e.id);
      }
      this.stats.commits++;
      this.stats.lastCommitMs = Date.now() - started;
      this.taskMetrics.commitSeconds.observe(this.stats.lastCommitMs / 1000);
      this.emit({ type: 'commit', records: this.stats.processed - this.committedProcessed });
      this.committedProcessed = this.stats.processed;
      return;
    }
    const txn = this.txn;
    if (!txn) return;
    try {
      for (const e of running) {
        e.task!.prepareCommit();
        this.sendInTxn(e.id, e.task!.drainOutputs());
      }
      this.lockHolder = 'commit: sends';
      await Promise.all(txn.sends);
      this.lockHolder = 'commit: offsets';
      const offsets = [...txn.offsets.entries()].map(([k, offset]) => {
        const [topic, partition] = splitTp(k);
        return { topic, partition, offset };
      });
      await this.txnProducer!.sendOffsetsToTransaction(offsets, this.consumer!.groupMetadata());
      this.lockHolder = 'commit: end transaction';
      await this.txnProducer!.commitTransaction();
    } catch (err) {
      await this.abort(err);
      return;
    }
    this.txn = undefined;
    // Committed, stores not yet at the new checkpoints: a crash here leaves the tail for the restore to replay.
    failpoint('streams.afterTxnCommit');
    // The transaction is committed: now the stores may move to the new checkpoints.
    for (const e of running) {
      e.task!.flush(this.pendingCheckpoints.get(e.id) ?? new Map());
      this.pendingCheckpoints.delete(e.id);
    }
    this.stats.commits++;
    this.stats.lastCommitMs = Date.now() - started;
    this.taskMetrics.commitSeconds.observe(this.stats.lastCommitMs / 1000);
    this.emit({ type: 'commit', records: txn.records });
  }

  /** The transactional producer, initialized; a new one after a failure that left the old one unusable. */
  private async readyTxnProducer(): Promise<TransactionalProducer> {
    if (this.txnProducer && this.txnProducerReady) return this.txnProducer;
    // Not awaited: closing flushes what the broken producer still holds, which can take as long as
    // a broker takes to come back; the new producer's initTransactions() fences it anyway.
    void this.txnProducer?.close().catch(() => {});
    this.txnProducer = this.client.producer({
      transactionalId: `${this.config.applicationId}-${this.instanceId}`,
      coordinator: this.config.coordinator,
      lingerMs: 1,
      transactionTimeoutMs: this.config.transactionTimeoutMs ?? 10_000,
    });
    await this.txnProducer.initTransactions();
    this.txnProducerReady = true;
    return this.txnProducer;
  }

  /** Aborts the open transaction: every task forgets the interval, the consumer rewinds to the last committed offsets. */
  private async abort(err: unknown): Promise<void> {
    const txn = this.txn;
    this.txn = undefined;
    this.stats.aborts++;
    this.report(err);
    this.emit({ type: 'aborted', reason: (err as SkeinError).reason ?? String(err) });
    this.lockHolder = 'abort';
    try {
      await this.txnProducer!.abortTransaction();
    } catch {
      // Fenced, or the abort could not be confirmed: the next transaction starts on a new producer,
      // whose initTransactions() fences whatever holds the id (aborting its transaction).
      this.txnProducerReady = false;
    }
    for (const e of this.tasks.values()) {
      e.task?.discard();
      this.pendingCheckpoints.delete(e.id);
    }
    // Only partitions still owned: seek() remembers an offset for an unowned partition and would
    // start there if it came back later, re-processing what its other owner committed meanwhile.
    const owned = new Set(this.consumer!.assignment);
    for (const [k, offset] of txn?.rewind ?? []) {
      if (!owned.has(k)) continue;
      const [topic, partition] = splitTp(k);
      this.consumer!.seek(topic, partition, offset);
    }
  }

  /** What the instance is doing now (for debugging a stall): the open transaction, whether the lock is held and since when. */
  debugState(): { state: StreamsState; txnOpenMs: number | undefined; lockHeldMs: number | undefined; lockHolder: string | undefined; tasks: number } {
    return {
      state: this.stateValue,
      txnOpenMs: this.txn ? Date.now() - this.txn.startedMs : undefined,
      lockHeldMs: this.lockSince === undefined ? undefined : Date.now() - this.lockSince,
      lockHolder: this.lockHolder,
      tasks: this.tasks.size,
    };
  }

  /** The tasks this instance has now. */
  tasksStatus(): TaskStatus[] {
    return [...this.tasks.values()]
      .map((e) => ({ id: e.id, state: e.state, metrics: e.task?.metrics, restored: { ...e.restored }, streamTime: e.task?.streamTime }))
      .sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  /**
   * Interactive query of local state: the value of `key` in store `storeName`, from whichever
   * task of this instance holds it (undefined if no local task has the key: it may be on another
   * instance).
   */
  query<K, V>(storeName: string, key: K, keySerde: Serde<K>, valueSerde: Serde<V>): V | undefined {
    const k = keySerde.serialize(key);
    if (k === null) return undefined;
    for (const e of this.tasks.values()) {
      const s = e.state === 'RUNNING' ? e.task?.stores.get(storeName) : undefined;
      const v = s?.get(k);
      if (v !== undefined) return valueSerde.deserialize(v) ?? undefined;
    }
    const g = this.globals.get(storeName)?.get(k);
    return g === undefined ? undefined : (valueSerde.deserialize(g) ?? undefined);
  }

  /**
   * Interactive query: a read-only, typed view of a store of the tasks running on this instance
   * (interactive-queries.ts: which key is where, and the retriable error when it is not here).
   */
  store<K, V>(storeName: string, type?: 'key-value'): QueryableKeyValueStore<K, V>;
  store<K, V>(storeName: string, type: 'window'): QueryableWindowStore<K, V>;
  store<K, V>(storeName: string, type: 'key-value' | 'window' = 'key-value'): QueryableKeyValueStore<K, V> | QueryableWindowStore<K, V> {
    return type === 'window' ? queryableWindowStore<K, V>(this.localTasks, storeName) : queryableKeyValueStore<K, V>(this.localTasks, storeName);
  }

  /** Which partition and task hold `key` in `storeName`, and whether that task runs here now. */
  queryMetadataForKey<K>(storeName: string, key: K): KeyQueryMetadata {
    return keyQueryMetadata(this.localTasks, storeName, key);
  }

  /** What the interactive queries see of this instance (read afresh on every call). */
  private get localTasks(): LocalTasks {
    return {
      topology: this.topology,
      partitionCount: (s) => this.partitionCount.get(s),
      task: (id) => {
        const e = this.tasks.get(id);
        return e && { state: e.state, stores: e.task?.stores };
      },
      tasks: () => [...this.tasks.values()].map((e) => ({ id: e.id, state: e.state, stores: e.task?.stores })),
    };
  }

  /** Per-task metrics in Prometheus text format (streams-metrics.ts lists them). */
  metrics(): Promise<string> {
    return this.taskMetrics.text();
  }

  /** The port GET /metrics is served on (with the metricsPort option, once started). */
  metricsPort(): number | undefined {
    return this.metricsServer?.port;
  }

  /** Commits, gives up its tasks (committing them), leaves the group and closes the stores. */
  async close(): Promise<void> {
    if (this.stateValue === 'CLOSED') return;
    await this.shutdown();
  }

  private closing: Promise<void> | undefined;

  private shutdown(): Promise<void> {
    this.closing ??= (async () => {
      const failed = this.stateValue === 'ERROR';
      if (!failed) this.stateValue = 'CLOSING';
      if (this.commitTimer) clearInterval(this.commitTimer);
      if (this.punctuateTimer) clearInterval(this.punctuateTimer);
      // Revokes every partition through onRevoked: commit, then each task closes.
      await this.consumer?.close().catch((err) => this.report(err));
      await this.withLock(async () => {
        if (this.txn) await this.abort(new SkeinError('INVALID_REQUEST', 'closing'));
        for (const e of this.tasks.values()) {
          e.state = 'CLOSED';
          await e.restoring;
          this.closeTask(e);
          await e.task?.engine.close();
        }
        this.tasks.clear();
        await this.standbys?.closeAll();
      });
      await this.metricsServer?.close();
      await this.producer?.close().catch(() => {});
      await this.txnProducer?.close().catch(() => {});
      for (const g of this.globals.values()) await g.close();
      if (!failed) this.stateValue = 'CLOSED';
    })();
    return this.closing;
  }
}
