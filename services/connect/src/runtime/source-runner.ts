/**
 * Runs one source task: poll, transform, convert, produce; commit offsets every
 * `offset.flush.interval.ms`.
 *
 * Exactly-once (KIP-618), when the worker allows it and the connector does not disable it: the task
 * has its own transactional id (`<group>-<connector>-<task>`), and `initTransactions()` runs
 * *before* the task reads its offsets, so any earlier instance of the task (a zombie on a worker cut
 * off from the group, or the one just killed) is fenced and its open transaction aborted first.
 * Records and the offsets they reach are sent in one transaction per commit interval, to the
 * output topics and to the offsets topic; a reader with read_committed sees both or neither, and a
 * restarted task resumes from the offsets of the last committed transaction, so nothing is
 * duplicated or lost. Only after a commit is `task.commit()` told (the PostgreSQL source moves its
 * slot's confirmed position then).
 *
 * At least once otherwise: records are produced (idempotently); at each interval the producer is
 * flushed, then the offsets are written, then `task.commit()`. A crash between the two re-sends
 * what was produced after the last offsets.
 */

import { Acks, type Producer, type SkeinClient, type TransactionalProducer } from '@skein/client';
import type { Logger } from 'pino';
import type { Converter } from '../domain/converters.js';
import { makeConverter } from './registry-converters.js';
import { errorPolicy, traceOf } from '../domain/error-policy.js';
import { buildTransformChain } from '../domain/transforms.js';
import type { SourceOffset, SourcePartition, SourceRecord, SourceTask } from '../sdk/types.js';
import type { TaskReporter } from './task-reporter.js';
import type { OffsetStore } from './offset-store.js';
import { ensureTopic } from './topic-log.js';

export interface SourceRunnerOptions {
  client: SkeinClient;
  connector: string;
  task: number;
  config: Readonly<Record<string, string>>;
  instance: SourceTask;
  offsets: OffsetStore;
  transactionalId: string | undefined;
  reporter: TaskReporter;
  logger: Logger;
}

type Prepared = { topic: string; record: { key: Buffer | null; value: Buffer | null; headers: SourceRecord['headers']; timestampMs?: number } };

export class SourceTaskRunner {
  private readonly abort = new AbortController();
  private paused = false;
  private loop: Promise<void> | undefined;
  private resumeWaiter: (() => void) | undefined;

  constructor(private readonly o: SourceRunnerOptions) {}

  start(): void {
    this.loop = this.run().catch((err) => {
      this.o.logger.error({ err }, 'source task failed');
      void this.o.reporter.report('FAILED', traceOf(err));
    });
  }

  pause(): void {
    this.paused = true;
    void this.o.reporter.report('PAUSED');
  }

  resume(): void {
    this.paused = false;
    this.resumeWaiter?.();
    void this.o.reporter.report('RUNNING');
  }

  async stop(): Promise<void> {
    this.abort.abort();
    this.resumeWaiter?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    const { client, config, instance, offsets, connector, task, logger } = this.o;
    const keyConverter = makeConverter('key.converter', config, 'string');
    const valueConverter = makeConverter('value.converter', config, 'json');
    const transform = buildTransformChain(config);
    const policy = errorPolicy(config);
    const intervalMs = Number(config['offset.flush.interval.ms'] ?? '1000');
    const txnId = this.o.transactionalId;
    let txn: TransactionalProducer | undefined;
    let producer: Producer | undefined;
    if (txnId) {
      txn = client.producer({
        transactionalId: txnId,
        acks: Acks.ACKS_ALL,
        lingerMs: 5,
        transactionTimeoutMs: Math.max(60_000, intervalMs * 10),
      }) as TransactionalProducer;
      // Fence every earlier instance of this task before reading where it got to (KIP-618).
      await txn.initTransactions();
    } else {
      producer = client.producer({ acks: Acks.ACKS_ALL, lingerMs: 5 }) as Producer;
    }
    await offsets.readToEnd();
    await instance.start(config, { connector, task, logger, offset: (p) => offsets.get(connector, p) });
    void this.o.reporter.report(this.paused ? 'PAUSED' : 'RUNNING');
    logger.info({ transactional: txnId !== undefined }, 'source task started');

    const pending = new Map<string, { partition: SourcePartition; offset: SourceOffset }>();
    const ensured = new Set<string>();
    let sends: Array<Promise<unknown>> = [];
    let inTxn = false;
    let lastCommit = Date.now();
    const signal = this.abort.signal;

    const commit = async () => {
      if (pending.size === 0 && !inTxn) return;
      const entries = new Map(pending);
      if (txn) {
        if (!inTxn) {
          txn.beginTransaction();
          inTxn = true;
        }
        await Promise.all(sends);
        if (entries.size > 0)
          await txn.send(
            offsets.topic,
            [...entries.values()].map((e) => offsets.record(connector, e.partition, e.offset)),
          );
        await txn.commitTransaction();
        inTxn = false;
      } else {
        await Promise.all(sends);
        await producer!.flush();
        for (const e of entries.values()) await offsets.write(connector, e.partition, e.offset);
      }
      sends = [];
      for (const e of entries.values()) offsets.set(connector, e.partition, e.offset);
      pending.clear();
      await instance.commit?.(entries);
    };

    try {
      while (!signal.aborted) {
        if (this.paused) {
          await commit();
          await new Promise<void>((resolve) => {
            this.resumeWaiter = resolve;
            if (!this.paused || signal.aborted) resolve();
          });
          this.resumeWaiter = undefined;
          continue;
        }
        const records = await instance.poll(signal);
        // One send per topic per poll, not per record: the producer batches either way, but a
        // promise per record is measurable at file-copy rates.
        const byTopic = new Map<string, Prepared[]>();
        for (const r of records) {
          let out = this.prepare(r, transform, keyConverter, valueConverter, policy.tolerateAll);
          // Only the registry's converters answer promises: the others cost no await.
          if (out instanceof Promise) out = await out;
          if (out) {
            let list = byTopic.get(out.topic);
            if (!list) byTopic.set(out.topic, (list = []));
            list.push(out);
          }
          pending.set(offsets.key(connector, r.sourcePartition), { partition: r.sourcePartition, offset: r.sourceOffset });
        }
        for (const [topic, outs] of byTopic) {
          if (!ensured.has(topic)) {
            // Kafka's topic.creation (KIP-158), reduced: a missing topic is created on first use.
            await ensureTopic(
              client,
              topic,
              Number(config['topic.creation.default.partitions'] ?? '1'),
              Number(config['topic.creation.default.replication.factor'] ?? '-1'),
              {},
            );
            ensured.add(topic);
          }
          if (txn && !inTxn) {
            txn.beginTransaction();
            inTxn = true;
          }
          const p = (txn ?? producer!).send(
            topic,
            outs.map((o) => o.record),
          );
          // Failures surface at the commit's Promise.all; marked handled so none is unhandled meanwhile.
          p.catch(() => {});
          sends.push(p);
        }
        if (Date.now() - lastCommit >= intervalMs) {
          await commit();
          lastCommit = Date.now();
        }
      }
      await commit();
    } catch (err) {
      if (txn && inTxn) await txn.abortTransaction().catch(() => {});
      await instance.stop().catch(() => {});
      await (txn ?? producer)?.close().catch(() => {});
      throw err;
    }
    await instance.stop();
    await (txn ?? producer)?.close();
    logger.info('source task stopped');
  }

  private prepare(
    r: SourceRecord,
    transform: ReturnType<typeof buildTransformChain>,
    keyConverter: Converter,
    valueConverter: Converter,
    tolerateAll: boolean,
  ): Prepared | undefined | Promise<Prepared | undefined> {
    const skip = (err: unknown): undefined => {
      if (!tolerateAll) throw err;
      this.o.logger.warn({ err, topic: r.topic }, 'source record skipped (errors.tolerance=all)');
      return undefined;
    };
    try {
      const t = transform(r);
      if (!t) return undefined;
      const key = keyConverter.fromConnect(t.key, t.topic);
      const value = valueConverter.fromConnect(t.value, t.topic);
      const prepared = (k: Buffer | null, v: Buffer | null): Prepared => ({
        topic: t.topic,
        record: { key: k, value: v, headers: t.headers, ...(t.timestampMs !== undefined ? { timestampMs: t.timestampMs } : {}) },
      });
      if (key instanceof Promise || value instanceof Promise) return Promise.all([key, value]).then(([k, v]) => prepared(k, v), skip);
      return prepared(key, value);
    } catch (err) {
      return skip(err);
    }
  }
}
