#!/usr/bin/env node
// Transaction figures (issue 16; not run by the tests), on a one-member etcd, three brokers (RF 3,
// acks=all) and one coordinator, all on this machine:
//   npm run build && node bench/transactions.js [--seconds 5]
// 1. Transactions/s with 1, 16 and 64 concurrent transactional producers, each committing
//    transactions of one 10-record batch to its own partition, for --seconds each; latency p50/p99
//    of a whole transaction (begin, send, commit).
// 2. Throughput (records/s) of one producer at 1, 10 and 100 batches (of 100 records, 100 B) per
//    transaction, the batches spread over 10 partitions.
// 3. Metadata-store writes per transaction: etcd revisions during phase 1's 16-producer run,
//    divided by its transactions (InitProducerId excluded).
// 4. Catch-up reads of phase 2's topic from offset 0: read_committed against read_uncommitted,
//    same run, records/s.
import { parseArgs } from 'node:util';
import { SkeinClient } from '@skein/client';
import { MetadataServiceClient } from '@skein/proto/skein/metadata/v1/metadata.js';
import * as grpc from '@grpc/grpc-js';
import { startEtcd } from '../test/dist/etcd.js';
import { startService, stopAll, waitFor } from '../test/dist/services.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' } } });
const seconds = Number(values.seconds);
const root = new URL('..', import.meta.url).pathname;
const entry = (s) => `${root}services/${s}/dist/main.js`;
const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))] ?? 0;

async function etcdRevision(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/^etcd_debugging_mvcc_current_revision (\S+)$/m.exec(text)?.[1] ?? Number.NaN);
}

const etcd = await startEtcd({ members: 1 });
const etcdUrl = `http://${etcd.endpoints[0]}`;
try {
  const store = ['--store', `etcd://${etcd.endpoints.join(',')}`, '--prefix', '/bench-txn/'];
  const metadata = await startService({ name: 'metadata', entry: entry('metadata'), args: store });
  for (const id of [1, 2, 3])
    await startService({
      name: `broker-${id}`,
      entry: entry('broker'),
      dataDirFlag: '--data-dir',
      args: ['--broker-id', String(id), '--metadata-addresses', metadata.address],
    });
  const coordinator = await startService({
    name: 'coordinator',
    entry: entry('group-coordinator'),
    args: [...store, '--metadata-addresses', metadata.address],
  });
  const meta = new MetadataServiceClient(metadata.address, grpc.credentials.createInsecure());
  const call = (m, r) => new Promise((res, rej) => meta[m](r, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (e, v) => (e ? rej(e) : res(v))));
  await waitFor(async () => (await call('getClusterMetadata', { topics: [] })).metadata.brokers.length === 3, {
    timeoutMs: 20_000,
    message: 'brokers registered',
  });
  await call('createTopic', { name: 'bench-txn', partitions: 64, replicationFactor: 3, configs: {}, validateOnly: false });
  await call('createTopic', { name: 'bench-txn-batches', partitions: 10, replicationFactor: 3, configs: {}, validateOnly: false });
  const client = new SkeinClient({ metadata: [metadata.address] });
  await waitFor(
    async () => {
      for (let p = 0; p < 64; p++) await client.listOffset('bench-txn', p, 2);
      return true;
    },
    { timeoutMs: 30_000, message: 'partitions open' },
  );
  const value = Buffer.alloc(100, 120);
  const results = {};

  // 1 and 3.
  for (const n of [1, 16, 64]) {
    const producers = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const p = client.producer({ transactionalId: `bench-${n}-${i}`, coordinator: [coordinator.address], lingerMs: 0, partitioner: () => i });
        await p.initTransactions();
        return p;
      }),
    );
    const latencies = [];
    const rev0 = await etcdRevision(etcdUrl);
    const end = Date.now() + seconds * 1000;
    await Promise.all(
      producers.map(async (p) => {
        while (Date.now() < end) {
          const t0 = performance.now();
          p.beginTransaction();
          await p.send(
            'bench-txn',
            Array.from({ length: 10 }, () => ({ value })),
          );
          await p.commitTransaction();
          latencies.push(performance.now() - t0);
        }
      }),
    );
    const rev1 = await etcdRevision(etcdUrl);
    results[`txn/s, ${n} producer(s)`] = {
      transactionsPerSecond: Math.round(latencies.length / seconds),
      p50Ms: +pct(latencies, 0.5).toFixed(1),
      p99Ms: +pct(latencies, 0.99).toFixed(1),
      storeWritesPerTxn: +((rev1 - rev0) / latencies.length).toFixed(2),
    };
    await Promise.all(producers.map((p) => p.close()));
  }

  // 2.
  for (const batches of [1, 10, 100]) {
    const p = client.producer({
      transactionalId: `bench-batches-${batches}`,
      coordinator: [coordinator.address],
      lingerMs: 0,
      partitioner: (key, n) => Number(key) % n,
    });
    await p.initTransactions();
    let records = 0;
    const t0 = performance.now();
    const end = Date.now() + seconds * 1000;
    while (Date.now() < end) {
      p.beginTransaction();
      // One send per batch: 100 records to one partition (the sticky partitioner's unit).
      await Promise.all(
        Array.from({ length: batches }, (_, b) =>
          p.send(
            'bench-txn-batches',
            Array.from({ length: 100 }, () => ({ key: String(b), value })),
          ),
        ),
      );
      await p.commitTransaction();
      records += batches * 100;
    }
    results[`${batches} batch(es) per transaction`] = { recordsPerSecond: Math.round(records / ((performance.now() - t0) / 1000)) };
    await p.close();
  }

  // 4.
  for (const isolationLevel of ['read_uncommitted', 'read_committed']) {
    let records = 0;
    const t0 = performance.now();
    for (let partition = 0; partition < 10; partition++) {
      let offset = 0n;
      for (;;) {
        const res = await client.fetch('bench-txn-batches', partition, offset, { isolationLevel, maxBytes: 4 << 20 });
        records += res.records.length;
        const next = res.records.length > 0 ? res.records[res.records.length - 1].offset + 1n : (res.nextOffset ?? offset);
        if (next <= offset) break;
        offset = next;
        if (offset >= res.highWatermark) break;
      }
    }
    results[`catch-up ${isolationLevel}`] = { records, recordsPerSecond: Math.round(records / ((performance.now() - t0) / 1000)) };
  }
  console.log(JSON.stringify(results, null, 2));
  client.close();
  meta.close();
} finally {
  await stopAll();
  await etcd.stop();
}
