// NATS JetStream loads through the official Node client (npm `nats` 2.x), run inside bench worker
// processes. Publishing is JetStream's asynchronous publish: a core publish with a reply subject,
// the PubAck arriving on one shared inbox subscription, at most `inflight` messages unacknowledged
// (what the Go client's PublishAsync does; nats.js 2.x has no such call, and its js.publish() keeps
// one request, promise and timer per message: `natsProduceOfficial` measures that as well).
// Every PubAck is checked for an error. Consumers are ordered consumers (pull-based, flow
// controlled by `max_messages` outstanding).
import { connect, createInbox } from 'nats';
import { HEADER_BYTES, newHistogram, recordReceipt, schedule, stampValue, summarize } from './latency.js';
import { cpuSince } from './procstat.js';

const OPEN_BRACE_E = 0x65; // '{"error":...}' has 'e' at index 2; '{"stream":...}' has 's'

function checkAck(m) {
  if (m.data.length < 3 || m.data[2] === OPEN_BRACE_E) {
    return new Error(`JetStream publish failed: ${m.data.length ? new TextDecoder().decode(m.data) : `status ${m.headers?.code} ${m.headers?.description}`}`);
  }
  return undefined;
}

/** Publishes for `durationMs` as fast as PubAcks come back, at most `inflight` unacknowledged. */
export async function natsProduce({ servers, subject, recordBytes, inflight, durationMs }) {
  const nc = await connect({ servers });
  const payloads = Array.from({ length: 4 }, (_, b) => Buffer.alloc(recordBytes, 97 + b));
  const inbox = createInbox();
  let sent = 0;
  let acked = 0;
  const u0 = process.cpuUsage();
  const t0 = performance.now();
  try {
    await new Promise((resolve, reject) => {
      const pump = () => {
        while (sent - acked < inflight && performance.now() - t0 < durationMs) nc.publish(subject, payloads[sent++ & 3], { reply: inbox });
        if (acked === sent) resolve();
      };
      nc.subscribe(inbox, {
        callback: (err, m) => {
          const e = err ?? checkAck(m);
          if (e) return reject(e);
          acked++;
          // Refill in chunks, not per ack: a write per message would dominate the client's time.
          if (sent - acked <= inflight / 2 || acked === sent) pump();
        },
      });
      pump();
    });
  } finally {
    await nc.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  return { records: acked, bytes: acked * recordBytes, seconds, clientCpuSeconds: cpuSince(u0) };
}

/** The same with the client's own js.publish() (a promise per message), for reference. */
export async function natsProduceOfficial({ servers, subject, recordBytes, inflight, durationMs }) {
  const nc = await connect({ servers });
  const js = nc.jetstream();
  const payload = Buffer.alloc(recordBytes, 97);
  let sent = 0;
  let acked = 0;
  const u0 = process.cpuUsage();
  const t0 = performance.now();
  try {
    await new Promise((resolve, reject) => {
      const pump = () => {
        while (sent - acked < inflight && performance.now() - t0 < durationMs) {
          sent++;
          js.publish(subject, payload).then(() => {
            acked++;
            if (sent - acked <= inflight / 2 || acked === sent) pump();
          }, reject);
        }
        if (acked === sent) resolve();
      };
      pump();
    });
  } finally {
    await nc.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  return { records: acked, bytes: acked * recordBytes, seconds, clientCpuSeconds: cpuSince(u0) };
}

/** Catch-up read of a stream's backlog with an ordered consumer. */
export async function natsConsume({ servers, stream, expected, recordBytes, maxMessages = 4096, maxDurationMs = 60_000 }) {
  const nc = await connect({ servers });
  const js = nc.jetstream();
  let records = 0;
  let timedOut = false;
  const u0 = process.cpuUsage();
  const t0 = performance.now();
  try {
    const c = await js.consumers.get(stream);
    await new Promise((resolve, reject) => {
      let messages;
      const timer = setTimeout(() => { timedOut = true; messages?.stop(); resolve(); }, maxDurationMs);
      c.consume({
        max_messages: maxMessages,
        callback: () => {
          if (++records >= expected) {
            clearTimeout(timer);
            messages.stop();
            resolve();
          }
        },
      }).then((m) => { messages = m; }, reject);
    });
  } finally {
    await nc.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  return { records, bytes: records * recordBytes, seconds, timedOut, clientCpuSeconds: cpuSince(u0) };
}

/**
 * Fixed-rate publisher for the latency runs: each message stamped with its intended send time,
 * every due message published at once, at most `inflight` unacknowledged.
 */
export async function natsFixedRate({ servers, subject, recordBytes, ratePerS, durationMs, warmupMs, inflight }) {
  const nc = await connect({ servers });
  const template = Buffer.alloc(Math.max(recordBytes, HEADER_BYTES), 120);
  const sched = schedule(ratePerS, durationMs + warmupMs, warmupMs);
  const inbox = createInbox();
  let k = 0;
  let acked = 0;
  const u0 = process.cpuUsage();
  try {
    await new Promise((resolve, reject) => {
      let timer;
      const step = () => {
        timer = undefined;
        const due = sched.dueNow();
        while (k < due && k - acked < inflight) {
          nc.publish(subject, stampValue(template, sched.intended(k), k < sched.warmupCount), { reply: inbox });
          k++;
        }
        if (k >= sched.total) {
          if (acked === k) resolve();
        } else if (k >= due) timer = setTimeout(step, sched.msUntil(k));
      };
      nc.subscribe(inbox, {
        callback: (err, m) => {
          const e = err ?? checkAck(m);
          if (e) return reject(e);
          acked++;
          if (timer === undefined) step();
        },
      });
      step();
    });
  } finally {
    await nc.close();
  }
  return { records: sched.total, clientCpuSeconds: cpuSince(u0) };
}

/** Ordered consumer for the latency runs; answers the latency histogram. */
export async function natsLatencyConsume({ servers, stream, expected, maxDurationMs, maxMessages = 1024 }, emit) {
  const nc = await connect({ servers });
  const js = nc.jetstream();
  const h = newHistogram();
  let got = 0;
  let timedOut = false;
  try {
    const c = await js.consumers.get(stream);
    await new Promise((resolve, reject) => {
      let messages;
      const timer = setTimeout(() => { timedOut = true; messages?.stop(); resolve(); }, maxDurationMs);
      c.consume({
        max_messages: maxMessages,
        callback: (m) => {
          recordReceipt(h, Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength), process.hrtime.bigint());
          if (++got >= expected) {
            clearTimeout(timer);
            messages.stop();
            resolve();
          }
        },
      }).then((m) => {
        messages = m;
        setTimeout(() => emit({ ready: true }), 200);
      }, reject);
    });
  } finally {
    await nc.close();
  }
  return { received: got, timedOut, ...summarize(h) };
}
