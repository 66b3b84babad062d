// How a GroupConsumer fetches, against real processes (metadata, three brokers serving /metrics,
// a group coordinator): one long-polling Fetch per broker for all the partitions it leads, not one
// per partition (counted by the brokers' own per-RPC counter), and delivery driven by the brokers'
// answers, not by a timer: with the consumer's clock frozen, a record produced to an idle
// partition still reaches eachMessage.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GroupConsumer, type Message, SkeinClient } from '@skein/client';
import { systemTimers, type Clock, type Timers } from '@skein/common/timers.js';
import { startStores, type TestStores } from './harness/stores.js';
import { startService, stopAll, waitFor, type ServiceProcess } from './harness/services.js';
import { metricsUrl, scrape, total } from './harness/metrics.js';
import { BROKER_ENTRY, COORDINATOR_ENTRY, METADATA_ENTRY } from './harness/entries.js';

let stores: TestStores;
let client: SkeinClient;
let coordinator: ServiceProcess;
const brokerMetrics = new Map<number, string>();

beforeAll(async () => {
  stores = await startStores();
  const store = (service: string) => stores.args(service, `/consumer-fetch-${process.pid}/`);
  const metadata = await startService({ name: 'metadata', entry: METADATA_ENTRY, args: store('metadata') });
  for (const id of [1, 2, 3]) {
    const b = await startService({ name: `broker-${id}`, entry: BROKER_ENTRY, dataDirFlag: '--data-dir', args: ['--broker-id', String(id), '--metadata-addresses', metadata.address, '--metrics-port', '0'] });
    brokerMetrics.set(id, await metricsUrl(b));
  }
  client = new SkeinClient({ metadata: [metadata.address] });
  await waitFor(async () => (await client.describeCluster()).brokers.length === 3, { timeoutMs: 15_000, message: 'three brokers registered' });
  // A long session: the frozen-clock consumer sends no heartbeat while frozen.
  coordinator = await startService({ name: 'coordinator', entry: COORDINATOR_ENTRY, args: [...store('coordinator'), '--metadata-addresses', metadata.address, '--session-timeout-ms', '60000', '--heartbeat-interval-ms', '200'] });
}, 90_000);

afterAll(async () => {
  client?.close();
  await stopAll();
  await stores?.stop();
});

async function createTopic(name: string, partitions: number): Promise<void> {
  await client.createTopic(name, { partitions, replicationFactor: 1 });
  await waitFor(async () => (await client.topic(name, true)).partitions.every((p) => p.leaderId > 0), { timeoutMs: 20_000, message: `${name} has leaders` });
}

/** Fetch calls each broker has handled so far, from its /metrics. */
async function fetchCalls(): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  for (const [id, url] of brokerMetrics) out.set(id, total(await scrape(url), 'skein_grpc_server_handled_total', { method: 'Fetch' }));
  return out;
}

/** A producer whose record keys name their partition. */
const producerFor = (c: SkeinClient) => c.producer({ lingerMs: 0, partitioner: (key) => Number(key!.toString()) });

describe('GroupConsumer fetching', () => {
  it('sends one Fetch per broker per round for 50 partitions on 3 brokers, not one per partition', async () => {
    const topic = 'fanout';
    const partitions = 50;
    await createTopic(topic, partitions);
    const leaders = new Set((await client.topic(topic, true)).partitions.map((p) => p.leaderId));
    expect(leaders.size).toBe(3);
    const got: Message[] = [];
    // A long maxWaitMs: while a round is awaited, an idle broker's long-poll stays open instead of
    // being answered empty and asked again, so the count measures requests per round.
    const consumer = new GroupConsumer(client, { groupId: 'fanout-group', coordinator: [coordinator.address], topics: [topic], maxWaitMs: 30_000 });
    const producer = producerFor(client);
    try {
      await consumer.run((m) => void got.push(m));
      await waitFor(() => consumer.assignment.length === partitions, { timeoutMs: 30_000, message: 'all 50 partitions assigned' });
      const all = Array.from({ length: partitions }, (_, partition) => ({ topic, partition }));
      const send = (n: number) => producer.send(topic, Array.from({ length: partitions }, (_, p) => ({ key: String(p), value: `r${n}-p${p}` })));
      const consumed = (n: number) => waitFor(() => got.length >= (n + 1) * partitions, { timeoutMs: 30_000, message: `round ${n} consumed` });
      await send(0); // warm-up: every position past the start, every broker polled
      await consumed(0);
      const rounds = 5;
      const calls = async (round: () => Promise<void>): Promise<number[]> => {
        const before = await fetchCalls();
        for (let n = 0; n < rounds; n++) await round();
        const after = await fetchCalls();
        return [...after].map(([id, c]) => c - before.get(id)!);
      };
      let n = 0;
      // Free-running: each broker's long-poll is answered by the first append of a round and the
      // rest follow in a few more requests; one partition at a time would be 50 or more per round.
      const flowing = await calls(async () => {
        await send(++n);
        await consumed(n);
      });
      expect(flowing.reduce((a, b) => a + b, 0)).toBeLessThan(partitions * rounds);
      // Paused while a round is produced and acknowledged, then resumed: one request per broker
      // carries every partition it leads (and the next one is the long-poll left open).
      const resumed = await calls(async () => {
        consumer.pause(all);
        await send(++n);
        consumer.resume(all);
        await consumed(n);
      });
      for (const c of resumed) expect(c).toBeLessThan(3 * rounds);
      // Every record, once, per partition in order.
      const values = got.map((m) => m.value!.toString());
      expect(new Set(values).size).toBe(values.length);
      for (let p = 0; p < partitions; p++) {
        const offsets = got.filter((m) => m.partition === p).map((m) => m.offset);
        expect(offsets).toEqual([...offsets].sort((a, b) => (a < b ? -1 : 1)));
      }
    } finally {
      await consumer.close();
      await producer.close();
    }
  });

  it('with the consumer clock frozen, a record produced to an idle partition still reaches eachMessage', async () => {
    const topic = 'frozen';
    await createTopic(topic, 3);
    // The consumer's time: real until frozen; from then on its clock stands still and no timer it
    // asked for (heartbeats, auto-commit, backoff) or asks for fires.
    let frozen = false;
    let frozenAtMs = 0;
    const clock: Clock = { nowMs: () => (frozen ? frozenAtMs : Date.now()) };
    const unlessFrozen = (fn: () => void) => () => {
      if (!frozen) fn();
    };
    const timers: Timers = {
      setTimeout: (fn, ms) => systemTimers.setTimeout(unlessFrozen(fn), ms),
      setInterval: (fn, ms) => systemTimers.setInterval(unlessFrozen(fn), ms),
    };
    const got: Message[] = [];
    const consumer = new GroupConsumer(client, { groupId: 'frozen-group', coordinator: [coordinator.address], topics: [topic], clock, timers });
    const producer = producerFor(client);
    try {
      await consumer.run((m) => void got.push(m));
      await waitFor(() => consumer.assignment.length === 3 && [0, 1, 2].every((p) => consumer.position(topic, p) !== undefined), { timeoutMs: 30_000, message: 'all partitions assigned with positions' });
      frozenAtMs = Date.now();
      frozen = true;
      // The first answer ends the long-poll that was open at the freeze; the second record needs
      // the next request, which must go out without a timer; the third comes on another partition.
      const expected: Array<{ partition: number; value: string }> = [];
      for (const [partition, value] of [[1, 'frozen-1'], [1, 'frozen-2'], [2, 'frozen-3']] as const) {
        await producer.send(topic, [{ key: String(partition), value }]);
        expected.push({ partition, value });
        await waitFor(() => got.length === expected.length, { timeoutMs: 20_000, message: `${value} reached eachMessage with the clock frozen` });
      }
      expect(got.map((m) => ({ partition: m.partition, value: m.value!.toString() }))).toEqual(expected);
    } finally {
      frozen = false;
      await consumer.close();
      await producer.close();
    }
  });
});
