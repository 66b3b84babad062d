/**
 * A Connect worker (Kafka Connect's DistributedHerder, reduced to what the task-slot design needs):
 *
 * - replays the config topic into the cluster state (cluster-state.ts) and the status topic into
 *   task statuses; keeps the offsets topic in memory (offset-store.ts);
 * - is a member of the Connect group (`--group-id`) over the task-slot topic (assignment.ts): the
 *   group coordinator gives it slots; it runs the tasks hashed to its slots;
 * - reconciles, one pass at a time, whenever the state or its slots change: stops tasks that moved
 *   away or changed (awaiting their final commit *before* the revocation is acknowledged, so the
 *   next owner starts after this one stopped), starts new ones, pauses and resumes;
 * - writes each task's state to the status topic.
 *
 * Connector configuration changes (create, update, pause, restart, delete) are writes to the
 * config topic by whichever worker answered the RPC (connect-service.ts); every worker acts on them
 * when it reads them back.
 */

import { GroupConsumer, type SkeinClient, TransactionalProducer } from '@skein/client';
import type { Logger } from 'pino';
import { type ClusterState, type ConnectorRecord, connectorKey, encodeConnector, replay } from '../domain/cluster-state.js';
import { desiredTasks, reconcile, taskId } from '../domain/assignment.js';
import { encodeStatus, replayStatus, type StatusMap, type TaskState, taskStatusKey } from '../domain/status.js';
import type { SinkTask, SourceTask } from '../sdk/types.js';
import { OffsetStore } from './offset-store.js';
import type { PluginRegistry } from './plugins.js';
import { SinkTaskRunner } from './sink-runner.js';
import { SourceTaskRunner } from './source-runner.js';
import { ensureTopic, TopicLog } from './topic-log.js';

export interface WorkerOptions {
  client: SkeinClient;
  workerId: string;
  groupId: string;
  configTopic: string;
  offsetsTopic: string;
  offsetsPartitions: number;
  statusTopic: string;
  slotsTopic: string;
  taskSlots: number;
  replicationFactor: number;
  exactlyOnceSourceSupport: boolean;
  plugins: PluginRegistry;
  logger: Logger;
  /** Group coordinator addresses; found from the metadata service when empty. */
  coordinator?: string[];
}

interface RunningTask {
  runKey: string;
  paused: boolean;
  runner: SourceTaskRunner | SinkTaskRunner;
}

export class Worker {
  private state: ClusterState = new Map();
  private statuses: StatusMap = new Map();
  private readonly configLog: TopicLog;
  private readonly statusLog: TopicLog;
  readonly offsets: OffsetStore;
  private membership: GroupConsumer | undefined;
  private readonly ownedSlots = new Set<number>();
  private readonly running = new Map<string, RunningTask>();
  private reconciling: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly stateListeners = new Set<() => void>();

  constructor(private readonly o: WorkerOptions) {
    const logger = o.logger;
    this.configLog = new TopicLog(o.client, {
      topic: o.configTopic,
      partitions: 1,
      replicationFactor: o.replicationFactor,
      logger,
      onRecord: (key, value) => {
        this.state = replay(this.state, key, value, (why) => logger.warn({ why }, 'config record skipped'));
        for (const l of this.stateListeners) l();
        this.scheduleReconcile();
      },
    });
    this.statusLog = new TopicLog(o.client, {
      topic: o.statusTopic,
      partitions: 1,
      replicationFactor: o.replicationFactor,
      logger,
      onRecord: (key, value) => {
        this.statuses = replayStatus(this.statuses, key, value);
      },
    });
    this.offsets = new OffsetStore(o.client, { topic: o.offsetsTopic, partitions: o.offsetsPartitions, replicationFactor: o.replicationFactor, logger });
  }

  get workerId(): string {
    return this.o.workerId;
  }

  get clusterState(): ClusterState {
    return this.state;
  }

  get taskStatuses(): StatusMap {
    return this.statuses;
  }

  get plugins(): PluginRegistry {
    return this.o.plugins;
  }

  async start(): Promise<void> {
    const { client, logger } = this.o;
    await Promise.all([this.configLog.start(), this.statusLog.start(), this.offsets.start()]);
    await ensureTopic(client, this.o.slotsTopic, this.o.taskSlots, this.o.replicationFactor, {});
    this.membership = new GroupConsumer(client, {
      groupId: this.o.groupId,
      clientId: this.o.workerId,
      topics: [this.o.slotsTopic],
      assignor: 'uniform',
      autoCommit: false,
      ...(this.o.coordinator && this.o.coordinator.length > 0 ? { coordinator: this.o.coordinator } : {}),
      onAssigned: (keys) => {
        for (const k of keys) this.ownedSlots.add(Number(k.slice(k.lastIndexOf(':') + 1)));
        logger.info({ slots: [...this.ownedSlots].sort((a, b) => a - b) }, 'task slots assigned');
        this.scheduleReconcile();
      },
      onRevoked: async (keys) => {
        for (const k of keys) this.ownedSlots.delete(Number(k.slice(k.lastIndexOf(':') + 1)));
        logger.info({ revoked: keys.length }, 'task slots revoked; stopping their tasks');
        // Awaited: the coordinator hands the slots on only after this returns (tasks stopped, committed).
        await this.scheduleReconcile();
      },
      onError: (err) => logger.warn({ err }, 'connect group membership error'),
    });
    // The slot topic stays empty; membership is what this consumer is for.
    await this.membership.run({ eachBatch: () => {} });
    logger.info({ groupId: this.o.groupId, workerId: this.o.workerId }, 'worker joined the connect group');
  }

  private scheduleReconcile(): Promise<void> {
    this.reconciling = this.reconciling.then(() => this.reconcileOnce()).catch((err) => this.o.logger.error({ err }, 'reconciling tasks failed'));
    return this.reconciling;
  }

  private async reconcileOnce(): Promise<void> {
    const desired = this.stopped ? new Map() : desiredTasks(this.state, this.ownedSlots, this.o.taskSlots);
    const changes = reconcile(new Map([...this.running].map(([id, r]) => [id, { runKey: r.runKey, paused: r.paused }])), desired);
    await Promise.all(
      changes.stop.map(async (id) => {
        const r = this.running.get(id)!;
        this.running.delete(id);
        await r.runner.stop().catch((err) => this.o.logger.warn({ err, task: id }, 'stopping a task failed'));
        const [connector, task] = splitTaskId(id);
        // Moved away or deleted: say so (a restart here reports RUNNING itself). DeleteConnector
        // waits for this before releasing what the plugin holds outside.
        if (!desired.has(id)) await this.report(connector, task, 'UNASSIGNED');
      }),
    );
    for (const id of changes.pause) {
      const r = this.running.get(id)!;
      r.paused = true;
      r.runner.pause();
    }
    for (const id of changes.resume) {
      const r = this.running.get(id)!;
      r.paused = false;
      r.runner.resume();
    }
    for (const d of changes.start) {
      const record = this.state.get(d.connector);
      if (!record) continue;
      this.startTask(record, d.task, d.runKey, d.paused);
    }
  }

  private startTask(record: ConnectorRecord, task: number, runKey: string, paused: boolean): void {
    const { client, logger } = this.o;
    const id = taskId(record.name, task);
    const taskLogger = logger.child({ component: 'task', connector: record.name, task });
    const reporter = { report: (state: TaskState, trace = '') => this.report(record.name, task, state, trace) };
    const config = record.tasks[task] ?? record.config;
    const plugin = this.o.plugins.get(record.config['connector.class'] ?? '');
    if (!plugin) {
      void reporter.report('FAILED', `unknown connector.class ${record.config['connector.class']} on worker ${this.o.workerId}`);
      return;
    }
    let runner: SourceTaskRunner | SinkTaskRunner;
    if (plugin.type === 'source') {
      const eos = this.o.exactlyOnceSourceSupport && (config['exactly.once.support'] ?? 'requested') !== 'disabled';
      if (!eos && config['exactly.once.support'] === 'required') {
        void reporter.report('FAILED', 'exactly.once.support=required but this worker runs with --exactly-once-source-support=false');
        return;
      }
      runner = new SourceTaskRunner({
        client,
        connector: record.name,
        task,
        config,
        instance: plugin.createTask() as SourceTask,
        offsets: this.offsets,
        transactionalId: eos ? sourceTransactionalId(this.o.groupId, record.name, task) : undefined,
        reporter,
        logger: taskLogger,
      });
    } else {
      runner = new SinkTaskRunner({
        client,
        connector: record.name,
        task,
        config,
        instance: plugin.createTask() as SinkTask,
        reporter,
        logger: taskLogger,
        clientId: `${this.o.workerId}-${id}`,
      });
    }
    this.running.set(id, { runKey, paused, runner });
    if (paused) runner.pause();
    runner.start();
  }

  private async report(connector: string, task: number, state: TaskState, trace = ''): Promise<void> {
    try {
      await this.statusLog.send(
        taskStatusKey(connector, task),
        encodeStatus({ connector, task, state, workerId: this.o.workerId, trace, updatedAtMs: Date.now() }),
      );
    } catch (err) {
      this.o.logger.warn({ err, connector, task, state }, 'writing a task status failed');
    }
  }

  /** Writes a connector record (null: delete) and waits until this worker has read it back. */
  async writeConnector(name: string, record: ConnectorRecord | null): Promise<void> {
    await this.configLog.send(connectorKey(name), record ? encodeConnector(record) : null);
    await this.configLog.readToEnd();
  }

  /** Removes the status records of a deleted connector's tasks. */
  async deleteStatuses(connector: string, tasks: number): Promise<void> {
    for (let t = 0; t < tasks; t++) await this.statusLog.send(taskStatusKey(connector, t), null);
  }

  readConfigToEnd(): Promise<void> {
    return this.configLog.readToEnd();
  }

  /**
   * Fences the transactional ids of source tasks that no longer exist after a connector shrank
   * (KIP-618's fencing on task-count change): a zombie of a removed task can then commit nothing.
   */
  async fenceSourceTasks(connector: string, tasks: number[]): Promise<void> {
    for (const t of tasks) {
      const p = new TransactionalProducer(this.o.client, { transactionalId: sourceTransactionalId(this.o.groupId, connector, t) });
      try {
        await p.initTransactions();
      } finally {
        await p.close().catch(() => {});
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    // Leaving the group revokes every slot: tasks stop and commit before the slots move.
    await this.membership?.close().catch((err) => this.o.logger.warn({ err }, 'leaving the connect group failed'));
    await this.scheduleReconcile();
    await Promise.all([this.configLog.stop(), this.statusLog.stop(), this.offsets.stop()]);
  }
}

export function sourceTransactionalId(groupId: string, connector: string, task: number): string {
  return `${groupId}-${connector}-${task}`.slice(0, 255);
}

function splitTaskId(id: string): [string, number] {
  const i = id.lastIndexOf('/');
  return [id.slice(0, i), Number(id.slice(i + 1))];
}
