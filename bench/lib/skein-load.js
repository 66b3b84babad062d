// Skein loads, run inside bench worker processes (bench/lib/worker.js). They talk to the broker's
// gRPC API directly with pre-built record batches (ProduceStream, Subscribe), as bench/broker.js
// does: the point is the broker's cost, not the client library's encoder. Consumers count records
// from batch headers without decoding them, except the latency consumer, which must read each
// record's timestamp.
import * as grpc from '@grpc/grpc-js';
import { BrokerServiceClient, ProduceStreamRequest, ProduceStreamResponse, SubscribeRequest } from '@skein/proto/skein/broker/v1/broker.js';
import { buildRecordBatch, decodeRecordBatch } from '@skein/common/records/record-batch.js';
import { HEADER_BYTES, newHistogram, recordReceipt, schedule, stampValue, summarize, traceLoop } from './latency.js';
import { cpuSince } from './procstat.js';

const CHANNEL_OPTIONS = { 'grpc.max_receive_message_length': 64 << 20, 'grpc.max_send_message_length': 64 << 20 };
const id = (b) => b;

// The loads' HTTP/2 receive window: 16 MiB, what the Skein client library opens its broker
// channels with (libs/client/src/client.ts), so a read row measures the broker, not a window no
// Skein client uses. BENCH_CLIENT_WINDOW=0 gives grpc-js's 64 KiB default (reads then run about
// half as fast: bench/PROFILE.md §3).
const clientWindow = Number(process.env.BENCH_CLIENT_WINDOW ?? 16 << 20);

function client(address) {
  return new BrokerServiceClient(address, grpc.credentials.createInsecure(), clientWindow > 0 ? { ...CHANNEL_OPTIONS, 'grpc-node.flow_control_window': clientWindow } : CHANNEL_OPTIONS);
}

function encodeRequest(topic, partition, acks, batch) {
  const bytes = ProduceStreamRequest.encode({ correlationId: 0n, acks, timeoutMs: 30_000, topics: [{ topic, partitions: [{ partition, batch }] }] }).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function produceStream(c) {
  return c.makeBidiStreamRequest('/skein.broker.v1.BrokerService/ProduceStream', id, ProduceStreamResponse.decode);
}

function partitionError(r) {
  const e = r.topics[0]?.partitions[0]?.error;
  return e ? new Error(`${e.reason}: ${e.message}`) : undefined;
}

/**
 * Text that compresses about as well as application logs do (gzip ~3x, lz4 ~2x), unlike the
 * single-letter values of the uncompressed rows (~80x): words drawn from a 512-word vocabulary by
 * a seeded generator, so every run sends the same bytes.
 */
function textCorpus(bytes) {
  let seed = 12345;
  const next = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8);
  const words = Array.from({ length: 512 }, () => Array.from({ length: 3 + (next() % 8) }, () => String.fromCharCode(97 + (next() % 26))).join(''));
  const parts = [];
  let n = 0;
  while (n < bytes) {
    const w = next() % 16 === 0 ? `${next() % 100000} ` : `${words[next() % words.length]} `;
    parts.push(w);
    n += w.length;
  }
  return Buffer.from(parts.join('').slice(0, bytes));
}

/**
 * Produces for `durationMs` as fast as the broker acknowledges, with at most `inflight` requests
 * unanswered, cycling through 4 pre-encoded requests of `recordsPerBatch` records each. With
 * `compression` (a CompressionCodec) the values are log-like text and each batch is compressed
 * (once, up front: the client's compression is not what is measured; the broker's check is).
 */
export async function skeinProduce({ address, topic, partition = 0, recordBytes, recordsPerBatch, acks, inflight, durationMs, compression }) {
  const corpus = compression ? textCorpus(1 << 20) : undefined;
  const value = (b, i) => (corpus ? corpus.subarray(((b * recordsPerBatch + i) * 997) % (corpus.length - recordBytes)).subarray(0, recordBytes) : Buffer.alloc(recordBytes, 97 + ((b + i) % 26)));
  const requests = Array.from({ length: 4 }, (_, b) => encodeRequest(topic, partition, acks, buildRecordBatch(
    Array.from({ length: recordsPerBatch }, (_, i) => ({ key: null, value: value(b, i), timestampMs: Date.now() })),
    compression ? { compression } : {},
  )));
  const c = client(address);
  const stream = produceStream(c);
  let sent = 0;
  let acked = 0;
  const u0 = process.cpuUsage();
  const t0 = performance.now();
  let stopAt = t0 + durationMs;
  try {
    await new Promise((resolve, reject) => {
      stream.on('error', reject);
      const pump = () => {
        while (sent - acked < inflight && performance.now() < stopAt) stream.write(requests[sent++ % requests.length]);
        if (acked === sent) resolve();
      };
      stream.on('data', (r) => {
        const e = partitionError(r);
        if (e) return reject(e);
        acked++;
        pump();
      });
      pump();
    });
  } finally {
    stopAt = 0;
    stream.end();
    c.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  const records = acked * recordsPerBatch;
  return { records, bytes: records * recordBytes, seconds, clientCpuSeconds: cpuSince(u0) };
}

// A few lines of protobuf wire reading, so the throughput consumer touches only what it counts.
function varint(buf, pos) {
  let v = 0;
  let mul = 1;
  for (;;) {
    const b = buf[pos++];
    v += (b & 0x7f) * mul;
    if (b < 0x80) return [v, pos];
    mul *= 128;
  }
}

function fields(buf, start, end, visit) {
  let pos = start;
  while (pos < end) {
    let tag;
    [tag, pos] = varint(buf, pos);
    const field = tag >>> 3;
    const wire = tag & 7;
    if (wire === 0) {
      let v;
      [v, pos] = varint(buf, pos);
      visit(field, v, -1, -1);
    } else if (wire === 2) {
      let len;
      [len, pos] = varint(buf, pos);
      visit(field, -1, pos, pos + len);
      pos += len;
    } else if (wire === 5) pos += 4;
    else if (wire === 1) pos += 8;
    else throw new Error(`unexpected wire type ${wire}`);
  }
}

/** Calls `onBatch(baseOffset, recordCount, batchStart, batchEnd)` for each batch of a SubscribeResponse. */
function eachFetchedBatch(buf, onBatch) {
  fields(buf, 0, buf.length, (f, _v, s, e) => {
    if (f !== 3) return;
    let baseOffset = 0;
    let count = 0;
    let bs = -1;
    let be = -1;
    fields(buf, s, e, (f2, v2, s2, e2) => {
      if (f2 === 1) baseOffset = v2;
      else if (f2 === 3) {
        bs = s2;
        be = e2;
        fields(buf, s2, e2, (f3, v3) => {
          if (f3 === 3) count = v3;
        });
      }
    });
    onBatch(baseOffset, count, bs, be);
  });
}

function subscribe(c, topic, partition, offset, maxBytes) {
  const req = SubscribeRequest.encode({ topic, partition, offset: BigInt(offset), maxBytes, currentLeaderEpoch: -1 }).finish();
  return c.makeServerStreamRequest('/skein.broker.v1.BrokerService/Subscribe', id, id, Buffer.from(req));
}

/** Reads [fromOffset, untilOffset) with Subscribe (catch-up read of a backlog), or stops at `maxDurationMs`. */
export async function skeinConsume({ address, topic, partition = 0, fromOffset = 0, untilOffset, recordBytes, maxBytes = 4 << 20, maxDurationMs = 60_000 }) {
  const c = client(address);
  const u0 = process.cpuUsage();
  const t0 = performance.now();
  let records = 0;
  let timedOut = false;
  try {
    await new Promise((resolve, reject) => {
      const s = subscribe(c, topic, partition, fromOffset, maxBytes);
      const timer = setTimeout(() => { timedOut = true; s.cancel(); resolve(); }, maxDurationMs);
      s.on('data', (buf) => {
        let next = 0;
        eachFetchedBatch(buf, (base, count) => {
          // The first batch may start before fromOffset.
          records += Math.min(count, base + count - fromOffset);
          next = base + count;
        });
        if (next >= untilOffset) {
          clearTimeout(timer);
          s.cancel();
          resolve();
        }
      });
      s.on('error', (e) => (e.code === grpc.status.CANCELLED ? undefined : reject(e)));
    });
  } finally {
    c.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  return { records, bytes: records * recordBytes, seconds, timedOut, clientCpuSeconds: cpuSince(u0) };
}

/**
 * Fixed-rate producer for the latency runs: every record is stamped with its intended send time;
 * whatever is due is sent as one batch (at most `maxBatchRecords`), with at most `inflight`
 * requests unanswered. A producer held back by the window stamps late records with their
 * schedule time, not the time it finally sent them.
 */
export async function skeinFixedRate({ address, topic, partition = 0, recordBytes, ratePerS, durationMs, warmupMs, acks, inflight, lingerMs = 0, maxBatchRecords = 1000 }) {
  const c = client(address);
  const stream = produceStream(c);
  const template = Buffer.alloc(Math.max(recordBytes, HEADER_BYTES), 120);
  const sched = schedule(ratePerS, durationMs + warmupMs, warmupMs);
  let k = 0;
  let sent = 0;
  let acked = 0;
  const u0 = process.cpuUsage();
  try {
    await new Promise((resolve, reject) => {
      let timer;
      stream.on('error', reject);
      const step = () => {
        timer = undefined;
        const due = sched.dueNow();
        // Linger as the Skein client does: a batch leaves lingerMs after its first record was due,
        // or at once when full.
        const wait = k < due && due - k < maxBatchRecords ? lingerMs - sched.msSince(k) : 0;
        if (wait > 0) {
          timer = setTimeout(step, wait);
          return;
        }
        while (k < due && sent - acked < inflight) {
          const n = Math.min(due - k, maxBatchRecords);
          const now = Date.now();
          const records = [];
          for (let i = 0; i < n; i++) records.push({ key: null, value: stampValue(template, sched.intended(k + i), k + i < sched.warmupCount), timestampMs: now });
          stream.write(encodeRequest(topic, partition, acks, buildRecordBatch(records)));
          k += n;
          sent++;
        }
        if (k >= sched.total) {
          if (acked === sent) resolve();
        } else if (k >= due) timer = setTimeout(step, sched.msUntil(k));
        // else: the window is full; the next ack calls step.
      };
      stream.on('data', (r) => {
        const e = partitionError(r);
        if (e) return reject(e);
        acked++;
        if (timer === undefined) step();
      });
      step();
    });
  } finally {
    stream.end();
    c.close();
  }
  traceLoop('producer');
  return { records: sched.total, clientCpuSeconds: cpuSince(u0) };
}

/** Consumes the latency run's records as they become readable; answers the latency histogram. */
export async function skeinLatencyConsume({ address, topic, partition = 0, expected, maxDurationMs }, emit) {
  const c = client(address);
  const h = newHistogram();
  let got = 0;
  let timedOut = false;
  try {
    await new Promise((resolve, reject) => {
      const s = c.subscribe({ topic, partition, offset: 0n, maxBytes: 1 << 20, currentLeaderEpoch: -1 });
      const timer = setTimeout(() => { timedOut = true; s.cancel(); resolve(); }, maxDurationMs);
      // Reading starts at offset 0, so records produced before the call is up are not missed; the
      // warm-up period covers the start-up delay.
      setTimeout(() => emit({ ready: true }), 200);
      s.on('data', (m) => {
        const now = process.hrtime.bigint();
        for (const fb of m.batches) {
          for (const r of decodeRecordBatch(fb.batch, fb.baseOffset)) {
            got++;
            recordReceipt(h, r.value, now);
          }
        }
        if (got >= expected) {
          clearTimeout(timer);
          s.cancel();
          resolve();
        }
      });
      s.on('error', (e) => (e.code === grpc.status.CANCELLED ? undefined : reject(e)));
    });
  } finally {
    c.close();
  }
  return { received: got, timedOut, ...summarize(h) };
}
