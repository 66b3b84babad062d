// What the examples share: the client from SKEIN_METADATA (default: `npm start`'s address), topics
// made if missing, a reader for a demo's output, and a clean shutdown on SIGTERM/SIGINT.
import { OffsetSpec, SkeinClient } from '@skein/client';

export const client = new SkeinClient({ metadata: (process.env.SKEIN_METADATA ?? '127.0.0.1:9090').split(',') });
export const coordinator = process.env.SKEIN_COORDINATORS ? process.env.SKEIN_COORDINATORS.split(',') : undefined;
export const demo = process.argv.includes('--demo');

export async function ensureTopic(name, partitions) {
  try {
    await client.createTopic(name, { partitions, replicationFactor: 1 });
  } catch (err) {
    if (err.reason !== 'TOPIC_ALREADY_EXISTS') throw err;
  }
  for (let i = 0; i < 100; i++) {
    const t = await client.topic(name, true).catch(() => undefined);
    if (t?.partitions.every((p) => p.leaderId > 0)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`topic ${name} has no leaders`);
}

/** Every record of a topic so far: [{ partition, key (Buffer), value (Buffer|null), timestamp }]. */
export async function readTopic(topic) {
  const out = [];
  for (const p of (await client.topic(topic, true)).partitions) {
    const end = await client.listOffset(topic, p.partition, OffsetSpec.OFFSET_SPEC_LATEST);
    let at = 0n;
    while (at < end) {
      const res = await client.fetch(topic, p.partition, at);
      for (const r of res.records) out.push({ partition: p.partition, key: r.key, value: r.value, timestamp: Number(r.timestampMs) });
      const next = res.nextOffset ?? (res.records.length ? res.records[res.records.length - 1].offset + 1n : at);
      if (next <= at) break;
      at = next;
    }
  }
  return out;
}

/** Polls `check` (a demo waiting for its output) until it returns true or `ms` pass. */
export async function until(check, ms = 30_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('the demo output did not appear in time');
}

/** Closes the app (commits, gives its tasks up, leaves the group) on SIGTERM or Ctrl-C. */
export function closeOnSignal(app) {
  const stop = async () => {
    await app.close();
    client.close();
    process.exit(0);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
