/**
 * Consume-transform-produce, exactly once (Kafka Streams' processing.guarantee=exactly_once_v2):
 * each fetched batch of an input partition is transformed, its output produced and the input
 * offsets committed in ONE transaction, so after any crash the group resumes from offsets that
 * match exactly the output that became visible: every input record's output appears once to
 * read_committed readers, in input order per partition.
 *
 *   const pipeline = await runExactlyOnce(client, {
 *     groupId: 'enricher', inputTopics: ['orders'], transactionalId: `enricher-${instance}`,
 *     transform: (m) => [{ topic: 'orders-enriched', record: { key: m.key, value: enrich(m.value) } }],
 *   });
 *   ...
 *   await pipeline.stop();
 *
 * How: a GroupConsumer (read_committed, no auto-commit) hands out one partition's batch at a time;
 * a TransactionalProducer wraps it in a transaction with sendOffsetsToTransaction(offsets,
 * consumer.groupMetadata()). The coordinator commits those offsets in the same compare-and-set as
 * the commit decision, after re-checking that this member still owns the partition at its epoch
 * (KIP-447), so a member that lost the partition to another can never commit for it: its
 * transaction aborts and the records are the new owner's to process. One transactional id per
 * application instance suffices (stable across restarts: a restarted instance fences the open
 * transaction of its previous incarnation).
 *
 * A failed transaction is aborted and the batch handed out again (the consumer rewinds to the
 * first record not committed); a fenced producer (PRODUCER_FENCED) is replaced by a new one.
 */
import type { SkeinClient } from './client.js';
import { type Batch, type ConsumerOptions, GroupConsumer } from './consumer.js';
import type { ProducerRecord } from './producer.js';
import type { TransactionalProducer, TransactionalProducerOptions } from './transactional-producer.js';

export interface TransformOutput {
  topic: string;
  record: ProducerRecord;
}

export interface ExactlyOnceOptions {
  groupId: string;
  inputTopics: string[];
  /** Stable per application instance (e.g. `${app}-${podName}`). */
  transactionalId: string;
  /** Outputs of one input record (none, one or many); may be async. */
  transform: (m: Batch['messages'][number]) => TransformOutput[] | Promise<TransformOutput[]>;
  /** More consumer options (coordinator, session, assignor...); isolation, auto-commit and group are set here. */
  consumer?: Omit<ConsumerOptions, 'groupId' | 'topics' | 'topicRegex' | 'autoCommit' | 'isolationLevel'>;
  /** More producer options (transactionTimeoutMs, coordinator, lingerMs...). */
  producer?: Omit<TransactionalProducerOptions, 'transactionalId'>;
  /** Told about each transaction that failed and will be retried. */
  onError?: (err: unknown) => void;
}

export interface ExactlyOncePipeline {
  /** Transactions committed, and input records they covered. */
  readonly stats: { committed: number; aborted: number; records: number };
  readonly consumer: GroupConsumer;
  /** Stops consuming (the open transaction, if any, finishes or aborts first) and closes both ends. */
  stop(): Promise<void>;
}

export async function runExactlyOnce(client: SkeinClient, options: ExactlyOnceOptions): Promise<ExactlyOncePipeline> {
  const newProducer = async () => {
    const p = client.producer({ ...options.producer, transactionalId: options.transactionalId });
    await p.initTransactions();
    return p;
  };
  let producer: TransactionalProducer | undefined = await newProducer();
  const stats = { committed: 0, aborted: 0, records: 0 };
  const consumer = new GroupConsumer(client, {
    ...options.consumer,
    groupId: options.groupId,
    topics: options.inputTopics,
    autoCommit: false,
    isolationLevel: 'read_committed',
  });

  const processBatch = async (b: Batch): Promise<void> => {
    if (b.messages.length === 0) return;
    producer ??= await newProducer();
    const p = producer;
    p.beginTransaction();
    try {
      const sends: Array<Promise<unknown>> = [];
      for (const m of b.messages) {
        const outputs = await options.transform(m);
        const byTopic = new Map<string, ProducerRecord[]>();
        for (const o of outputs) byTopic.set(o.topic, [...(byTopic.get(o.topic) ?? []), o.record]);
        for (const [topic, records] of byTopic) sends.push(p.send(topic, records));
      }
      await Promise.all(sends);
      const last = b.messages[b.messages.length - 1]!;
      await p.sendOffsetsToTransaction([{ topic: b.topic, partition: b.partition, offset: last.offset + 1n }], consumer.groupMetadata());
      await p.commitTransaction();
      stats.committed++;
      stats.records += b.messages.length;
    } catch (err) {
      stats.aborted++;
      options.onError?.(err);
      try {
        await p.abortTransaction();
      } catch {
        // Fenced, or the abort could not be confirmed: a new producer instance (made before the next
        // batch) fences whatever holds the id, aborting the open transaction, and goes on.
        await p.close().catch(() => {});
        producer = undefined;
      }
      // The consumer hands this batch out again from its first record (nothing of it committed).
      throw err;
    }
  };

  await consumer.run({ eachBatch: processBatch });
  return {
    stats,
    consumer,
    async stop() {
      await consumer.close();
      await producer?.close();
    },
  };
}
