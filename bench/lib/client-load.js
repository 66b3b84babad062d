// Loads through the Skein client library (libs/client), the way an application sends and reads:
// the same work `skein perf produce` / `skein perf consume` do, run in a load worker so the figures
// sit beside the raw-broker rows of the same run (issue 15's target: the client library reaches
// ≥ 0.8 × what the broker does for a client that speaks its gRPC API directly).
import { Acks, Fetcher, OffsetSpec, SkeinClient } from '@skein/client';
import { cpuSince } from './procstat.js';

/**
 * Sends `recordBytes` records for `durationMs` through `client.producer()`: each send is
 * `recordsPerSend` records (one batch), `concurrency` sends in flight, as `skein perf produce`.
 * Each record is a new object with its own timestamp, as an application's would be.
 */
export async function clientProduce({ metadataAddress, topic, recordBytes, recordsPerSend = 1000, concurrency = 4, acks, durationMs }) {
  const client = new SkeinClient({ metadata: [metadataAddress] });
  const producer = client.producer({ acks: acks === 'all' ? Acks.ACKS_ALL : Acks.ACKS_LEADER, idempotent: false });
  const value = Buffer.alloc(recordBytes, 120);
  let records = 0;
  const u0 = process.cpuUsage();
  const t0 = performance.now();
  const stopAt = t0 + durationMs;
  try {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < stopAt) {
          const batch = Array.from({ length: recordsPerSend }, () => ({ value, timestampMs: Date.now() }));
          await producer.send(topic, batch);
          records += recordsPerSend;
        }
      }),
    );
  } finally {
    await producer.close?.();
    client.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  return { records, bytes: records * recordBytes, seconds, clientCpuSeconds: cpuSince(u0) };
}

/**
 * Reads every partition of `topic` from the earliest offset until `untilOffsets` (per partition)
 * with the client library's Fetcher (one Fetch per broker, the next in flight while this one is
 * handled), decoding every record as `skein perf consume` does.
 */
export async function clientConsume({ metadataAddress, topic, untilOffset, recordBytes, maxDurationMs = 60_000 }) {
  const client = new SkeinClient({ metadata: [metadataAddress] });
  const u0 = process.cpuUsage();
  let records = 0;
  let bytes = 0;
  let timedOut = false;
  const fetcher = new Fetcher(client, { maxBytesPerPartition: 8 << 20 });
  const t0 = performance.now();
  const timer = setTimeout(() => {
    timedOut = true;
    fetcher.close();
  }, maxDurationMs);
  try {
    const start = await client.listOffset(topic, 0, OffsetSpec.OFFSET_SPEC_EARLIEST);
    fetcher.assign(topic, 0, start);
    const target = Number(untilOffset - Number(start));
    while (records < target) {
      const chunk = await fetcher.next();
      if (!chunk) break;
      if (chunk.kind === 'error') throw chunk.error;
      for (const r of chunk.records) bytes += (r.value?.length ?? 0) + r.key.length;
      records += chunk.records.length;
    }
  } finally {
    clearTimeout(timer);
    fetcher.close();
    client.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  return { records, bytes: bytes || records * recordBytes, seconds, timedOut, clientCpuSeconds: cpuSince(u0) };
}
