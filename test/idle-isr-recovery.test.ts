// Idle partitions get their whole ISR back after broker restarts. Three brokers, RF 3 topics with
// min.insync.replicas 2 that nobody writes to, brokers SIGKILLed and restarted in turn (leaders
// and followers alike): after each restart every partition must have all three replicas in its
// ISR again, or an acks=all producer that comes later is refused NOT_ENOUGH_REPLICAS once one more
// broker fails. (Found by the exactly-once test's long mode: after 12 nemesis rounds, idle
// partitions sat at ISR [1] for more than a minute.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SkeinClient } from '@skein/client';
import { skipUnless } from './harness/requirements.js';
import { startEtcd, type EtcdCluster } from './harness/etcd.js';
import { metadataClient } from './harness/clients.js';
import { startService, stopAll, waitFor, type ServiceProcess } from './harness/services.js';
import { BROKER_ENTRY, METADATA_ENTRY } from './harness/entries.js';

const skip = skipUnless(import.meta.url, 'etcd');
const ROUNDS = Number(process.env.SKEIN_IDLE_ISR_ROUNDS ?? 6);
const TOPICS = ['idle-a', 'idle-b'];
const PARTITIONS = 4;

let etcd: EtcdCluster;
let client: SkeinClient;
const brokers = new Map<number, ServiceProcess>();

beforeAll(async () => {
  if (skip) return;
  etcd = await startEtcd({ members: 1 });
  const metadata = await startService({
    name: 'metadata',
    entry: METADATA_ENTRY,
    args: ['--store', `etcd://${etcd.endpoints.join(',')}`, '--prefix', `/idle-isr-${process.pid}/`],
  });
  for (const id of [1, 2, 3]) {
    brokers.set(
      id,
      await startService({
        name: `broker-${id}`,
        entry: BROKER_ENTRY,
        dataDirFlag: '--data-dir',
        args: ['--broker-id', String(id), '--metadata-addresses', metadata.address, '--session-ttl-ms', '3000'],
      }),
    );
  }
  const meta = metadataClient(metadata.address);
  await waitFor(async () => (await meta.getClusterMetadata({ topics: [] })).metadata!.brokers.length === 3, {
    timeoutMs: 20_000,
    message: 'three brokers registered',
  });
  for (const t of TOPICS)
    await meta.createTopic({ name: t, partitions: PARTITIONS, replicationFactor: 3, configs: { 'min.insync.replicas': '2' }, validateOnly: false });
  meta.close();
  client = new SkeinClient({ metadata: [metadata.address] });
}, 120_000);

afterAll(async () => {
  client?.close();
  await stopAll();
  await etcd?.stop();
});

/** The partitions whose ISR is not all three replicas, as "topic-p leader L isr [..]". */
async function shortIsrs(): Promise<string[]> {
  const short: string[] = [];
  for (const t of TOPICS) {
    for (const p of (await client.topic(t, true)).partitions) {
      if (p.leaderId < 0 || p.isr.length < 3) short.push(`${t}-${p.partition} leader ${p.leaderId} isr [${p.isr.join(',')}]`);
    }
  }
  return short;
}

async function fullIsrs(what: string): Promise<void> {
  await waitFor(
    async () => {
      const short = await shortIsrs();
      // Thrown so that a timeout names the partitions still short.
      if (short.length > 0) throw new Error(short.join('; '));
      return true;
    },
    { timeoutMs: 30_000, intervalMs: 200, message: `every idle partition has its full ISR ${what}` },
  );
}

describe.skipIf(skip)('idle partitions after broker restarts', () => {
  it(`get all three replicas back into their ISR after each SIGKILL and restart (${ROUNDS} rounds)`, async () => {
    await fullIsrs('at the start');
    for (let round = 0; round < ROUNDS; round++) {
      const broker = brokers.get((round % 3) + 1)!;
      broker.kill();
      await broker.exited();
      // Odd rounds: back at once, before its old session (TTL 3 s) expires, so the controller
      // fences the old incarnation while the new one is already following. Even rounds: back
      // after the ISR shrank.
      if (round % 2 === 0) await waitFor(async () => (await shortIsrs()).length > 0, { timeoutMs: 20_000, message: `${broker.name} leaves some ISR` });
      await broker.restart();
      await fullIsrs(`after ${broker.name} restarted (round ${round + 1})`);
    }
    expect(await shortIsrs()).toEqual([]);
  }, 600_000);
});
