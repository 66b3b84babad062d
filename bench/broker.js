#!/usr/bin/env node
// One-broker throughput benchmark, not run by the tests:
//   npx tsc -b services/broker && node bench/broker.js [--mb 256]
// Knobs (environment): BENCH_BATCH_1K records per 1 KiB-record batch (default 960, ~1 MiB batches),
// BENCH_INFLIGHT batches in flight (default 16), BENCH_PROF=DIR writes a CPU profile of the broker.
// Starts a broker in a child process (temp dir, 127.0.0.1, port 0), produces with ProduceStream
// (acks=1, many batches in flight) and consumes with Subscribe, for 1 KiB and 100 B records, and in
// the same run measures the raw limits (bench/lib/raw.js): a grpc-js bidi stream of 1 MiB messages
// to another process on loopback, and sequential 1 MiB writes + fdatasync. bench/run.js runs the
// side-by-side comparison (with NATS JetStream and replicated clusters); this script stays for a
// quick look at one broker without a metadata service. Batches are built once up front
// (producer-side encoding is the client's cost, not the broker's).
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';

const args = process.argv.slice(2);
const MB = Number(args[args.indexOf('--mb') + 1] ?? 0) || 256;

if (process.env.BENCH_ROLE === 'broker') {
  const { BrokerServer } = await import('../services/broker/dist/server.js');
  const dir = process.env.BENCH_DIR;
  const server = new BrokerServer({
    config: { brokerId: 1, dataDir: dir, host: '127.0.0.1', port: 0, backgroundIntervalMs: 60_000, producerIdBlockSize: 1000, fetchMaxBytes: 64 << 20 },
    logger: pino({ level: 'warn' }),
    metadata: { getMetadata: () => ({ clusterId: 'b', brokers: [], topics: [], revision: 0n }), leaderOf: () => undefined },
    producerIdSource: { allocateProducerIds: async (n) => ({ firstProducerId: 1n, count: n }) },
  });
  const port = await server.start();
  for (const topic of ['t1k', 't100']) {
    await server.replicas.applyPartitionAssignment({ topic, topicId: topic, partition: 0, leaderId: 1, leaderEpoch: 0, replicas: [1], isr: [1], configs: {} });
  }
  process.send({ port });
  process.on('message', async (m) => {
    if (m === 'stop') {
      await server.stop(1000);
      process.exit(0);
    }
  });
} else {
  const { BrokerServiceClient, ProduceStreamRequest, ProduceStreamResponse } = await import('@skein/proto/skein/broker/v1/broker.js');
  const { buildRecordBatch } = await import('@skein/common/records/record-batch.js');
  const { rawDisk, rawGrpc } = await import('./lib/raw.js');
  const dir = mkdtempSync(join(tmpdir(), 'skein-bench-'));
  const child = fork(new URL(import.meta.url).pathname, [], { env: { ...process.env, BENCH_ROLE: 'broker', BENCH_DIR: dir }, execArgv: process.env.BENCH_PROF ? ['--cpu-prof', '--cpu-prof-dir=' + process.env.BENCH_PROF] : [] });
  const { port } = await new Promise((resolve) => child.once('message', resolve));
  const client = new BrokerServiceClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': 64 << 20,
  });
  const results = [];

  async function produce(topic, recordBytes, recordsPerBatch) {
    const pool = Array.from({ length: 32 }, (_, b) =>
      buildRecordBatch(
        Array.from({ length: recordsPerBatch }, (_, i) => ({ key: `key-${b}-${i}`, value: Buffer.alloc(recordBytes - 12, 97 + (i % 26)), timestampMs: Date.now() })),
      ),
    );
    const batchBytes = recordBytes * recordsPerBatch;
    const batches = Math.ceil((MB * 1e6) / batchBytes);
    const inflight = Number(process.env.BENCH_INFLIGHT ?? 16);
    // Requests are encoded once: the benchmark measures the broker, not the client's encoder.
    const encoded = pool.map((batch) => Buffer.from(ProduceStreamRequest.encode({ correlationId: 0n, acks: 2, timeoutMs: 10_000, topics: [{ topic, partitions: [{ partition: 0, batch }] }] }).finish()));
    const stream = client.makeBidiStreamRequest('/skein.broker.v1.BrokerService/ProduceStream', (b) => b, ProduceStreamResponse.decode);
    let sent = 0;
    let acked = 0;
    const t0 = process.hrtime.bigint();
    await new Promise((resolve, reject) => {
      stream.on('error', reject);
      const pump = () => {
        while (sent < batches && sent - acked < inflight) {
          stream.write(encoded[sent % encoded.length]);
          sent++;
        }
      };
      stream.on('data', (r) => {
        const e = r.topics[0].partitions[0].error;
        if (e) { console.error('produce error', e); return reject(new Error(e.reason)); }
        acked++;
        if (acked === batches) resolve();
        else pump();
      });
      pump();
    });
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    stream.end();
    const records = batches * recordsPerBatch;
    results.push({ what: `produce ${recordBytes} B records (ProduceStream, acks=1, ${recordsPerBatch}/batch)`, recordsPerS: Math.round(records / s), MBps: +((records * recordBytes) / s / 1e6).toFixed(1) });
    return records;
  }

  async function consume(topic, recordBytes, total) {
    const t0 = process.hrtime.bigint();
    let got = 0;
    await new Promise((resolve, reject) => {
      const s = client.subscribe({ topic, partition: 0, offset: 0n, maxBytes: 4 << 20, currentLeaderEpoch: -1 });
      s.on('data', (m) => {
        for (const b of m.batches) got += b.batch.recordCount;
        if (got >= total) {
          s.cancel();
          resolve();
        }
      });
      s.on('error', (e) => (e.code === grpc.status.CANCELLED ? undefined : reject(e)));
    });
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    results.push({ what: `consume ${recordBytes} B records (Subscribe)`, recordsPerS: Math.round(got / s), MBps: +((got * recordBytes) / s / 1e6).toFixed(1) });
  }

  try {
    // The raw limits live in bench/lib/raw.js, shared with bench/run.js.
    const grpcLimit = await rawGrpc(MB);
    results.push({ what: 'raw: grpc-js bidi stream, 1 MiB messages, Node → Node process', recordsPerS: '-', MBps: +grpcLimit.MBps.toFixed(1) });
    const diskLimit = rawDisk(dir, MB);
    results.push({ what: 'raw: sequential 1 MiB writes + fdatasync', recordsPerS: '-', MBps: +diskLimit.MBps.toFixed(1) });
    const n1k = await produce("t1k", 1024, Number(process.env.BENCH_BATCH_1K ?? 960));
    await consume('t1k', 1024, n1k);
    const n100 = await produce('t100', 100, 500);
    await consume('t100', 100, n100);
    console.table(results);
  } finally {
    client.close();
    child.send('stop');
    await new Promise((r) => child.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}
