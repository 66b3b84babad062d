#!/usr/bin/env node
// End-to-end latency through the client library (issue 15): a GroupConsumer on a 6-partition RF 3
// topic on three brokers receives records from a producer with lingerMs 0 and acks=all, at a low
// steady rate; latency is from just before send() to eachMessage, in this one process (one clock).
//   node bench/client-latency.js [--seconds 30] [--rate 50] [--partitions 6] [--client PATH]
// --client loads another build of @skein/client (its dist/index.js; e.g. the client before a change,
// transpiled into bench/.exp/), against the same services, so two clients compare in one sitting.
// Services come from the built dist/ of this checkout (the test harness starts and stops them).
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { startService, stopAll, waitFor } from '../test/dist/services.js';
import { startStores } from '../test/dist/stores.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '30' },
    rate: { type: 'string', default: '50' },
    partitions: { type: 'string', default: '6' },
    'warmup-s': { type: 'string', default: '3' },
    client: { type: 'string' },
  },
});
const root = new URL('../', import.meta.url).pathname;
const clientUrl = values.client ? pathToFileURL(resolve(values.client)).href : new URL('../libs/client/dist/index.js', import.meta.url).href;
const { GroupConsumer, SkeinClient } = await import(clientUrl);
const seconds = Number(values.seconds);
const rate = Number(values.rate);
const partitions = Number(values.partitions);

const pct = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;

const stores = await startStores();
let client;
try {
  const store = (service) => [...stores.args(service, `/client-latency-${process.pid}/`), '--log-level', 'warn'];
  const metadata = await startService({ name: 'metadata', entry: `${root}services/metadata/dist/main.js`, args: store('metadata') });
  for (const id of [1, 2, 3]) {
    await startService({
      name: `broker-${id}`,
      entry: `${root}services/broker/dist/main.js`,
      dataDirFlag: '--data-dir',
      args: ['--broker-id', String(id), '--metadata-addresses', metadata.address, '--log-level', 'warn'],
    });
  }
  const coordinator = await startService({
    name: 'coordinator',
    entry: `${root}services/group-coordinator/dist/main.js`,
    args: [...store('coordinator'), '--metadata-addresses', metadata.address],
  });
  client = new SkeinClient({ metadata: [metadata.address] });
  await waitFor(async () => (await client.describeCluster()).brokers.length === 3, { timeoutMs: 20_000, message: 'three brokers registered' });
  const topic = 'latency';
  await client.createTopic(topic, { partitions, replicationFactor: 3 });
  await waitFor(async () => (await client.topic(topic, true)).partitions.every((p) => p.leaderId > 0 && p.isr.length === 3), {
    timeoutMs: 30_000,
    message: 'topic has leaders and a full ISR',
  });

  let measuring = false;
  const latencies = [];
  let received = 0;
  const consumer = new GroupConsumer(client, { groupId: 'latency', coordinator: [coordinator.address], topics: [topic], autoOffsetReset: 'latest' });
  await consumer.run((m) => {
    const sentAt = Number(m.value.toString());
    received++;
    if (measuring && sentAt > 0) latencies.push(performance.now() - sentAt);
  });
  await waitFor(() => consumer.assignment.length === partitions, { timeoutMs: 30_000, message: 'all partitions assigned' });
  await waitFor(() => Array.from({ length: partitions }, (_, p) => consumer.position(topic, p)).every((o) => o !== undefined), {
    timeoutMs: 30_000,
    message: 'positions known',
  });

  const producer = client.producer({ lingerMs: 0 });
  let sent = 0;
  let failed = 0;
  const tick = () => {
    sent++;
    // Keyless: the sticky partitioner moves on after each batch, so records spread over partitions.
    producer.send(topic, [{ value: String(performance.now()) }]).catch(() => failed++);
  };
  const warmupMs = Number(values['warmup-s']) * 1000;
  const start = performance.now();
  const timer = setInterval(tick, 1000 / rate);
  await new Promise((r) => setTimeout(r, warmupMs));
  measuring = true;
  await new Promise((r) => setTimeout(r, seconds * 1000));
  clearInterval(timer);
  await producer.close();
  await waitFor(() => received >= sent - failed, { timeoutMs: 10_000, message: 'every sent record received' }).catch(() => {});
  measuring = false;
  const elapsedS = (performance.now() - start) / 1000;
  await consumer.close();
  latencies.sort((a, b) => a - b);
  const result = {
    client: values.client ?? 'libs/client/dist',
    partitions,
    replicationFactor: 3,
    ratePerS: rate,
    seconds,
    records: latencies.length,
    sent,
    failed,
    elapsedS: +elapsedS.toFixed(1),
    latencyMs: {
      p50: +pct(latencies, 0.5).toFixed(1),
      p90: +pct(latencies, 0.9).toFixed(1),
      p99: +pct(latencies, 0.99).toFixed(1),
      max: +pct(latencies, 1).toFixed(1),
    },
  };
  console.log(JSON.stringify(result));
  console.error(
    `${result.records} records, e2e latency p50 ${result.latencyMs.p50} ms, p90 ${result.latencyMs.p90} ms, p99 ${result.latencyMs.p99} ms, max ${result.latencyMs.max} ms`,
  );
} finally {
  client?.close();
  await stopAll();
  await stores.stop();
}
