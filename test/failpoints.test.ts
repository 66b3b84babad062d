// Failpoints (libs/common/src/failpoints.ts) in a real broker process: with
// SKEIN_FAILPOINTS=broker.produce.afterAppend=exit the broker SIGKILLs itself right after the leader
// appended a produced batch, before answering it; restarted on the same disk, the record is in the
// log (the write reached the file before the crash; acks=1 never acknowledged it, so keeping it is
// allowed, as in Kafka) and the log takes the next write after it.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Acks } from '@skein/proto/skein/broker/v1/broker.js';
import { buildRecordBatch, decodeRecordBatch } from '@skein/common/records/record-batch.js';
import { startStores, type TestStores } from './harness/stores.js';
import { brokerClient, metadataClient } from './harness/clients.js';
import { startService, stopAll, waitFor, type ServiceProcess } from './harness/services.js';
import { BROKER_ENTRY, METADATA_ENTRY } from './harness/entries.js';

const TOPIC = `failpoints-${process.pid}`;
let stores: TestStores;
let meta: ReturnType<typeof metadataClient>;
let broker: ServiceProcess;

beforeAll(async () => {
  stores = await startStores();
  const metadata = await startService({ name: 'metadata', entry: METADATA_ENTRY, args: stores.args('metadata', `/failpoints-${process.pid}/`) });
  meta = metadataClient(metadata.address);
  broker = await startService({
    name: 'broker-1', entry: BROKER_ENTRY, dataDirFlag: '--data-dir',
    args: ['--broker-id', '1', '--metadata-addresses', metadata.address, '--session-ttl-ms', '2000'],
    env: { SKEIN_FAILPOINTS: 'broker.produce.afterAppend=exit' },
  });
  await waitFor(async () => (await meta.getClusterMetadata({ topics: [] })).metadata!.brokers.length === 1, { timeoutMs: 15_000, message: 'broker registered' });
  await meta.createTopic({ name: TOPIC, partitions: 1, replicationFactor: 1, configs: {}, validateOnly: false });
}, 60_000);

afterAll(async () => {
  meta?.close();
  await stopAll();
  await stores?.stop();
});

/** Waits until the broker serves the partition as its leader (a fetch at offset 0 answers without error). */
async function leading(client: ReturnType<typeof brokerClient>): Promise<void> {
  await waitFor(async () => {
    const res = await client.fetch({ maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20, topics: [{ topic: TOPIC, partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1 << 20, currentLeaderEpoch: -1 }] }] });
    return res.topics[0]?.partitions[0]?.error === undefined;
  }, { timeoutMs: 20_000, message: `broker 1 leads ${TOPIC}-0` });
}

async function readValues(client: ReturnType<typeof brokerClient>): Promise<string[]> {
  const res = await client.fetch({ maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20, topics: [{ topic: TOPIC, partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1 << 20, currentLeaderEpoch: -1 }] }] });
  const p = res.topics[0]!.partitions[0]!;
  expect(p.error).toBeUndefined();
  return p.batches.flatMap((b) => decodeRecordBatch(b.batch!, b.baseOffset).map((r) => `${r.offset}:${r.value!.toString()}`));
}

const produce = (client: ReturnType<typeof brokerClient>, value: string) =>
  client.produce({ acks: Acks.ACKS_LEADER, timeoutMs: 5000, topics: [{ topic: TOPIC, partitions: [{ partition: 0, batch: buildRecordBatch([{ key: 'k', value, timestampMs: Date.now() }]) }] }] }, { deadlineMs: 10_000 });

describe('failpoints in a broker process', () => {
  it('broker.produce.afterAppend=exit kills the broker after the append and before the answer; the record survives the restart', async () => {
    let client = brokerClient(broker.address);
    await leading(client);

    const answered = produce(client, 'appended-then-crashed').then(() => 'answered', () => 'failed');
    // Never acknowledged: the connection dies with the process (without the failpoint: 'answered').
    expect(await answered).toBe('failed');
    expect((await broker.exited()).signal).toBe('SIGKILL');
    expect(readFileSync(broker.logFile, 'utf8')).toContain('failpoint broker.produce.afterAppend: exit');
    client.close();

    await broker.restart({ env: { SKEIN_FAILPOINTS: '' } });
    client = brokerClient(broker.address);
    await leading(client);
    expect(await readValues(client)).toEqual(['0:appended-then-crashed']);
    const next = await produce(client, 'after-restart');
    expect(next.topics[0]!.partitions[0]!.error).toBeUndefined();
    expect(next.topics[0]!.partitions[0]!.baseOffset).toBe(1n);
    client.close();
  });
});
