/**
 * Runs one sink task: a member of the connector's consumer group (`connect-<connector>`, so the
 * tasks of one sink share its topics' partitions through the group coordinator), reading
 * read_committed by default. Each fetched batch is converted and transformed record by record, then
 * handed to `put`; every `offset.flush.interval.ms` (and when stopping) the task is flushed and only
 * then the group's offsets committed, so a crash re-delivers at most what came after the last
 * flush (at least once; a sink that keeps its own position, like the file sink, returns it from
 * `open` and resumes exactly there).
 *
 * Failures (error-policy.ts): a record that fails conversion or a transform is handled at once by
 * the tolerance; a failed `put` is retried with backoff for errors.retry.timeout.ms, then, with
 * errors.tolerance=all, put again record by record so that only the records that fail alone go to
 * the dead-letter topic (a poison record does not take its batch with it) and the task keeps
 * running. With errors.tolerance=none the task fails and stops consuming; RestartTask starts it
 * again from the last commit.
 */

import { Acks, GroupConsumer, type Producer, type SkeinClient, type Batch } from '@skein/client';
import type { Logger } from 'pino';
import { backoffDelayMs } from '@skein/common/backoff.js';
import { splitList } from '../domain/config-def.js';
import type { Converter } from '../domain/converters.js';
import { makeConverter } from './registry-converters.js';
import { deadLetterHeaders, errorPolicy, shouldRetry, type Stage, traceOf } from '../domain/error-policy.js';
import { buildTransformChain } from '../domain/transforms.js';
import type { SinkRecord, SinkTask } from '../sdk/types.js';
import type { TaskReporter } from './task-reporter.js';
import { ensureTopic } from './topic-log.js';

export interface SinkRunnerOptions {
  client: SkeinClient;
  connector: string;
  task: number;
  config: Readonly<Record<string, string>>;
  instance: SinkTask;
  reporter: TaskReporter;
  logger: Logger;
  clientId: string;
}

class TaskFailed extends Error {}

export class SinkTaskRunner {
  private consumer: GroupConsumer | undefined;
  private dlq: Producer | undefined;
  private failed = false;
  private stopped = false;
  private lastFlush = Date.now();
  private readonly uncommitted = new Map<string, { topic: string; partition: number; offset: bigint }>();
  private started: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly policy;
  private readonly transform;
  private readonly keyConverter: Converter;
  private readonly valueConverter: Converter;

  constructor(private readonly o: SinkRunnerOptions) {
    this.policy = errorPolicy(o.config);
    this.transform = buildTransformChain(o.config);
    this.keyConverter = makeConverter('key.converter', o.config, 'string');
    this.valueConverter = makeConverter('value.converter', o.config, 'json');
  }

  start(): void {
    this.started = this.run().catch((err) => this.fail(err));
  }

  private async run(): Promise<void> {
    const { client, config, instance, connector, task, logger } = this.o;
    if (this.policy.deadLetterTopic) {
      await ensureTopic(client, this.policy.deadLetterTopic, 1, -1, {}).catch((err) =>
        logger.warn({ err }, 'could not create the dead-letter topic; producing to it may fail'),
      );
      this.dlq = client.producer({ acks: Acks.ACKS_ALL, lingerMs: 5 }) as Producer;
    }
    await instance.start(config, { connector, task, logger });
    const topics = splitList(config.topics ?? '');
    const consumer = new GroupConsumer(client, {
      groupId: `connect-${connector}`,
      clientId: this.o.clientId,
      ...(topics.length > 0 ? { topics } : { topicRegex: config['topics.regex'] }),
      autoCommit: false,
      autoOffsetReset: (config['consumer.auto.offset.reset'] ?? 'earliest') as 'earliest' | 'latest',
      isolationLevel: (config['consumer.isolation.level'] ?? 'read_committed') as 'read_committed' | 'read_uncommitted',
      onAssigned: async (keys) => {
        const parts = keys.map(splitKey);
        const starts = await instance.open?.(parts);
        for (const s of starts ?? []) consumer.seek(s.topic, s.partition, s.offset);
      },
      onRevoked: async (keys) => {
        for (const k of keys) this.uncommitted.delete(k);
        await instance.close?.(keys.map(splitKey));
      },
      onError: (err, where) => logger.warn({ err, ...where, offset: where.offset.toString() }, 'sink consumer error'),
    });
    this.consumer = consumer;
    await consumer.run({ eachBatch: (b) => this.exclusive(() => this.handleBatch(b)) });
    // Idle partitions are flushed and committed too (no batch arrives to trigger it).
    const intervalMs = Number(config['offset.flush.interval.ms'] ?? '1000');
    this.timer = setInterval(
      () => {
        if (this.failed || this.stopped || Date.now() - this.lastFlush < intervalMs || this.uncommitted.size === 0) return;
        void this.exclusive(() => this.flushAndCommit()).catch((err) => this.fail(err));
      },
      Math.max(10, Math.floor(intervalMs / 2)),
    );
    void this.o.reporter.report('RUNNING');
    logger.info('sink task started');
  }

  /** One batch or flush at a time: put, flush and commit never interleave. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => {});
    return run;
  }

  private async handleBatch(b: Batch): Promise<void> {
    if (this.failed || this.stopped || b.messages.length === 0) return;
    const records: SinkRecord[] = [];
    for (const m of b.messages) {
      let stage: Stage = 'KEY_CONVERTER';
      try {
        let key = m.key.length === 0 ? null : this.keyConverter.toConnect(m.key, b.topic);
        // Only the registry's converters answer promises: the others cost no await.
        if (key instanceof Promise) key = await key;
        stage = 'VALUE_CONVERTER';
        let value = this.valueConverter.toConnect(m.value, b.topic);
        if (value instanceof Promise) value = await value;
        stage = 'TRANSFORMATION';
        const r = this.transform<SinkRecord>({
          topic: b.topic,
          partition: b.partition,
          offset: m.offset,
          key,
          value,
          headers: m.headers,
          timestampMs: Number(m.timestampMs),
        });
        if (r) records.push(r);
      } catch (err) {
        await this.tolerate(err, stage, b.topic, b.partition, m);
      }
    }
    try {
      await this.putWithRetries(records);
    } catch (err) {
      if (!this.policy.tolerateAll) return this.fail(err);
      // Isolate the records that fail alone; the rest are delivered.
      for (const r of records) {
        try {
          await this.o.instance.put([r]);
        } catch (one) {
          const m = b.messages.find((x) => x.offset === r.offset)!;
          await this.tolerate(one, 'TASK_PUT', b.topic, b.partition, m);
        }
      }
    }
    const last = b.messages[b.messages.length - 1]!;
    this.uncommitted.set(`${b.topic}:${b.partition}`, { topic: b.topic, partition: b.partition, offset: last.offset + 1n });
    if (Date.now() - this.lastFlush >= Number(this.o.config['offset.flush.interval.ms'] ?? '1000')) await this.flushAndCommit();
  }

  private async putWithRetries(records: SinkRecord[]): Promise<void> {
    if (records.length === 0) return;
    const first = Date.now();
    for (let attempt = 0; ; attempt++) {
      try {
        await this.o.instance.put(records);
        return;
      } catch (err) {
        // A task marks what a retry cannot fix (err.retriable === false), as Kafka's RetriableException does the opposite.
        if (this.stopped || (err as { retriable?: boolean }).retriable === false || !shouldRetry(this.policy, Date.now() - first)) throw err;
        const delay = Math.min(this.policy.retryDelayMaxMs, backoffDelayMs({ initialMs: 100, maxMs: this.policy.retryDelayMaxMs }, attempt));
        this.o.logger.warn({ err, attempt, delayMs: delay }, 'sink put failed; retrying');
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** errors.tolerance: none fails the task (throws), all skips the record into the dead-letter topic. */
  private async tolerate(
    err: unknown,
    stage: Stage,
    topic: string,
    partition: number,
    m: { offset: bigint; key: Buffer; value: Buffer | null; headers: Array<{ key: string; value: Buffer }> },
  ): Promise<void> {
    if (!this.policy.tolerateAll) {
      this.fail(err);
      throw new TaskFailed(traceOf(err));
    }
    this.o.logger.warn({ err, topic, partition, offset: m.offset.toString(), stage }, 'record failed; skipped (errors.tolerance=all)');
    if (!this.dlq) return;
    const headers = [
      ...m.headers,
      ...(this.policy.contextHeaders
        ? deadLetterHeaders({ topic, partition, offset: m.offset, connector: this.o.connector, task: this.o.task, stage, error: err })
        : []),
    ];
    await this.dlq.send(this.policy.deadLetterTopic, [{ key: m.key.length > 0 ? m.key : null, value: m.value, headers }]);
  }

  private async flushAndCommit(): Promise<void> {
    await this.o.instance.flush?.();
    this.lastFlush = Date.now();
    const offsets = [...this.uncommitted.values()];
    this.uncommitted.clear();
    if (offsets.length > 0 && this.consumer)
      await this.consumer
        .commit(offsets)
        .catch((err) => this.o.logger.warn({ err }, 'offset commit failed; the records after the last commit will be delivered again'));
  }

  private fail(err: unknown): void {
    if (this.failed || err instanceof TaskFailed) return;
    this.failed = true;
    this.o.logger.error({ err }, 'sink task failed');
    void this.o.reporter.report('FAILED', traceOf(err));
    // Stop consuming; nothing after the failed record is committed.
    void this.consumer?.close().catch(() => {});
  }

  pause(): void {
    const assignment = this.consumer?.assignment;
    if (assignment && this.consumer) this.consumer.pause(assignment.map(splitKey));
    void this.o.reporter.report('PAUSED');
  }

  resume(): void {
    const assignment = this.consumer?.assignment;
    if (assignment && this.consumer) this.consumer.resume(assignment.map(splitKey));
    void this.o.reporter.report('RUNNING');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.started;
    if (!this.failed) await this.exclusive(() => this.flushAndCommit()).catch((err) => this.o.logger.warn({ err }, 'final flush failed'));
    await this.consumer?.close().catch(() => {});
    await this.o.instance.stop().catch((err) => this.o.logger.warn({ err }, 'sink task stop failed'));
    await this.dlq?.close().catch(() => {});
    this.o.logger.info('sink task stopped');
  }
}

function splitKey(k: string): { topic: string; partition: number } {
  const i = k.lastIndexOf(':');
  return { topic: k.slice(0, i), partition: Number(k.slice(i + 1)) };
}
