#!/usr/bin/env node
// Schema registry figures (not run by the tests): registrations/s and lookups by id per second
// through the Confluent REST API, cached (the id is in the instance's memory) and uncached (the
// instance started with --schema-cache-size 0, so every lookup reads the metadata store), on the
// embedded store and on a real etcd (when the machine has one).
//   npm run build && node bench/schema-registry.js [--schemas 400] [--seconds 3] [--concurrency 32]
import { parseArgs } from 'node:util';
import { freePort } from '../test/dist/ports.js';
import { startEtcd } from '../test/dist/etcd.js';
import { available } from '../test/dist/requirements.js';
import { startService, stopAll } from '../test/dist/services.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const { values } = parseArgs({
  options: { schemas: { type: 'string', default: '400' }, seconds: { type: 'string', default: '3' }, concurrency: { type: 'string', default: '32' } },
});
const entry = new URL('../services/schema-registry/dist/main.js', import.meta.url).pathname;
const CT = { 'Content-Type': 'application/vnd.schemaregistry.v1+json' };
const n = Number(values.schemas);
const seconds = Number(values.seconds);
const concurrency = Number(values.concurrency);

async function registry(store, cacheSize) {
  const rest = await freePort();
  const proc = await startService({
    name: `registry-${cacheSize}`,
    entry,
    args: [...store, '--rest-port', String(rest), '--schema-cache-size', String(cacheSize), '--log-level', 'warn'],
  });
  return { proc, url: `http://127.0.0.1:${rest}` };
}

/** Registers `n` distinct Avro schemas under `n` subjects, 8 at a time; returns { perSecond, ids }. */
async function register(url, tag) {
  const ids = [];
  let next = 0;
  const t = performance.now();
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < n) {
        const i = next++;
        const schema = JSON.stringify({
          type: 'record',
          name: `Bench${tag}${i}`,
          fields: [
            { name: 'id', type: 'string' },
            { name: `f${i}`, type: 'long' },
          ],
        });
        const res = await fetch(`${url}/subjects/bench-${tag}-${i}-value/versions`, { method: 'POST', headers: CT, body: JSON.stringify({ schema }) });
        if (!res.ok) throw new Error(`register: ${res.status} ${await res.text()}`);
        ids.push((await res.json()).id);
      }
    }),
  );
  return { perSecond: n / ((performance.now() - t) / 1000), ids };
}

/** GET /schemas/ids/{id} over `ids` with `concurrency` requests in flight for `seconds`. */
async function lookups(url, ids) {
  let done = 0;
  const end = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      let i = w;
      while (performance.now() < end) {
        const res = await fetch(`${url}/schemas/ids/${ids[i++ % ids.length]}`);
        if (!res.ok) throw new Error(`lookup: ${res.status}`);
        await res.arrayBuffer();
        done++;
      }
    }),
  );
  return done / seconds;
}

const results = [];
async function measure(kind, storeArgs, restartable) {
  // Uncached first: an instance that never caches; then (same store) one that does.
  const a = await registry(storeArgs, 0);
  const reg = await register(a.url, kind);
  const uncached = await lookups(a.url, reg.ids);
  if (restartable) await a.proc.stop();
  const b = await registry(storeArgs, 10_000);
  await lookups(b.url, reg.ids); // warm the cache
  const cached = await lookups(b.url, reg.ids);
  results.push({
    store: kind,
    registrationsPerSecond: Math.round(reg.perSecond),
    lookupsPerSecondUncached: Math.round(uncached),
    lookupsPerSecondCached: Math.round(cached),
  });
  await stopAll();
}

const dir = mkdtempSync(join(tmpdir(), 'skein-bench-registry-'));
try {
  // Embedded: one process owns the file, so the cached instance starts after the uncached one stops.
  await measure('embedded', ['--store', `embedded:${join(dir, 'store.db')}`], true);
  if (available('etcd')) {
    const etcd = await startEtcd({ members: 1 });
    try {
      await measure('etcd', ['--store', `etcd://${etcd.endpoints.join(',')}`, '--prefix', `/bench-${Date.now()}/`], false);
    } finally {
      await etcd.stop();
    }
  }
} finally {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}
console.log(`schema registry, REST, ${n} Avro schemas registered 8 at a time, lookups by id with ${concurrency} in flight for ${seconds} s each:`);
console.table(results);
