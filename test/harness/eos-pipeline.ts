/**
 * One member of the exactly-once test's pipeline (topic IN -> identity transform -> topic OUT), as
 * its own process so the nemesis can SIGKILL it. Configured by environment: SKEIN_METADATA,
 * SKEIN_COORDINATORS (comma-separated), GROUP, IN, OUT, TXN_ID, and MODE:
 *   txn     runExactlyOnce: output and input offsets in one transaction (the product)
 *   broken  the same transaction for the output, but the offsets committed outside it, by the
 *           consumer, after the transaction commits; failpoint eos.afterTxnCommit sits between
 *           the two, so a crash there makes the restarted member process the batch again
 * Prints one JSON line per committed batch ({"e":"batch","n":records}) on stdout.
 */
import { GroupConsumer, runExactlyOnce, SkeinClient } from '@skein/client';
import { failpoint } from '@skein/common/failpoints.js';

const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is required`);
  return v;
};
const client = new SkeinClient({ metadata: env('SKEIN_METADATA').split(',') });
const coordinator = env('SKEIN_COORDINATORS').split(',');
const out = env('OUT');
const emit = (n: number) => process.stdout.write(`${JSON.stringify({ e: 'batch', n })}\n`);
// Small fetches, so a run is many transactions (more places for the nemesis to land).
const consumerOptions = { coordinator, maxBytesPerPartition: 2048, session: 'stream' as const };

let stop: () => Promise<void>;
if (process.env.MODE === 'broken') {
  const producer = client.producer({ transactionalId: env('TXN_ID'), coordinator, lingerMs: 1, transactionTimeoutMs: 5000 });
  await producer.initTransactions();
  const consumer = new GroupConsumer(client, {
    ...consumerOptions,
    groupId: env('GROUP'),
    topics: [env('IN')],
    autoCommit: false,
    isolationLevel: 'read_committed',
  });
  await consumer.run({
    eachBatch: async (b) => {
      producer.beginTransaction();
      try {
        await producer.send(
          out,
          b.messages.map((m) => ({ key: m.key, value: m.value })),
        );
        await producer.commitTransaction();
      } catch (err) {
        await producer.abortTransaction().catch(() => {});
        throw err;
      }
      failpoint('eos.afterTxnCommit');
      await consumer.commit([{ topic: b.topic, partition: b.partition, offset: b.messages[b.messages.length - 1]!.offset + 1n }]);
      emit(b.messages.length);
    },
  });
  stop = async () => {
    await consumer.close();
    await producer.close();
  };
} else {
  const pipeline = await runExactlyOnce(client, {
    groupId: env('GROUP'),
    inputTopics: [env('IN')],
    transactionalId: env('TXN_ID'),
    transform: (m) => [{ topic: out, record: { key: m.key, value: m.value } }],
    consumer: consumerOptions,
    producer: { coordinator, lingerMs: 1, transactionTimeoutMs: 5000 },
  });
  let reported = 0;
  const timer = setInterval(() => {
    if (pipeline.stats.records > reported) emit(pipeline.stats.records - reported);
    reported = pipeline.stats.records;
  }, 100);
  stop = async () => {
    clearInterval(timer);
    await pipeline.stop();
  };
}
process.once('SIGTERM', () => {
  void stop().finally(() => {
    client.close();
    process.exit(0);
  });
});
