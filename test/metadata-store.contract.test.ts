// One contract suite for every MetadataStore backend: the embedded store and a real etcd process.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedStore } from '@skein/common/store/embedded-store.js';
import { EtcdStore } from '@skein/common/store/etcd-store.js';
import { Election } from '@skein/common/store/election.js';
import { StoreSession } from '@skein/common/store/session.js';
import { StoreCompactedError, type MetadataStore, type WatchBatch } from '@skein/common/store/types.js';
import { startEtcd, type EtcdCluster } from './harness/etcd.js';
import { skipUnless } from './harness/requirements.js';
import { waitFor } from './harness/wait.js';

// The embedded backend runs everywhere; the etcd backend needs an etcd.
const skipEtcd = skipUnless({ url: import.meta.url, part: 'the etcd backend' }, 'etcd');
let etcd: EtcdCluster;
const dirs: string[] = [];
beforeAll(async () => { if (!skipEtcd) etcd = await startEtcd({ members: 1 }); });
afterAll(async () => {
  await etcd?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const backends: Array<[string, () => Promise<MetadataStore>]> = [
  ['embedded', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skein-store-'));
    dirs.push(dir);
    return EmbeddedStore.open({ path: join(dir, 'store.db'), historyLimit: 50 });
  }],
  ...(skipEtcd ? [] : [['etcd', () => EtcdStore.connect({ endpoints: etcd.endpoints })] as [string, () => Promise<MetadataStore>]]),
];

let seq = 0;
const uniquePrefix = () => `/contract-${process.pid}-${Date.now()}-${seq++}/`;
const b = (s: string) => Buffer.from(s);

describe.each(backends)('MetadataStore contract: %s', (_name, open) => {
  let store: MetadataStore;
  beforeAll(async () => { store = await open(); });
  afterAll(async () => { await store?.close(); });

  it('puts, gets and ranges in key order with revisions that only go up', async () => {
    const p = uniquePrefix();
    const r1 = await store.txn({ compare: [], success: [{ type: 'put', key: `${p}b`, value: b('2') }] });
    const r2 = await store.txn({ compare: [], success: [{ type: 'put', key: `${p}a`, value: b('1') }, { type: 'put', key: `${p}b`, value: b('3') }] });
    expect(r2.revision).toBeGreaterThan(r1.revision);
    const bkv = (await store.get(`${p}b`))!;
    expect(bkv.value.toString()).toBe('3');
    expect(bkv.createRevision).toBe(r1.revision);
    expect(bkv.modRevision).toBe(r2.revision);
    expect(bkv.version).toBe(2n);
    const range = await store.range(p);
    expect(range.kvs.map((kv) => kv.key)).toEqual([`${p}a`, `${p}b`]);
    expect(range.revision).toBeGreaterThanOrEqual(r2.revision);
    expect(await store.get(`${p}missing`)).toBeUndefined();
  });

  it('runs success ops only when every compare holds, failure ops otherwise; missing keys compare as 0', async () => {
    const p = uniquePrefix();
    const create = () => store.txn({ compare: [{ key: `${p}k`, target: 'createRevision', op: '=', value: 0n }], success: [{ type: 'put', key: `${p}k`, value: b('first') }], failure: [{ type: 'put', key: `${p}lost`, value: b('x') }] });
    expect((await create()).succeeded).toBe(true);
    expect((await create()).succeeded).toBe(false);
    expect((await store.get(`${p}k`))!.value.toString()).toBe('first');
    expect((await store.get(`${p}lost`))!.value.toString()).toBe('x');
    const kv = (await store.get(`${p}k`))!;
    const stale = await store.txn({ compare: [{ key: `${p}k`, target: 'modRevision', op: '=', value: kv.modRevision - 1n }], success: [{ type: 'delete', key: `${p}k` }] });
    expect(stale.succeeded).toBe(false);
    const byValue = await store.txn({ compare: [{ key: `${p}k`, target: 'value', op: '=', value: b('first') }], success: [{ type: 'deletePrefix', prefix: p }] });
    expect(byValue.succeeded).toBe(true);
    expect((await store.range(p)).kvs).toEqual([]);
  });

  it('watches from a revision: one batch per transaction, in order, with deletes', async () => {
    const p = uniquePrefix();
    const start = await store.txn({ compare: [], success: [{ type: 'put', key: `${p}x`, value: b('0') }] });
    const batches: WatchBatch[] = [];
    const handle = await store.watchPrefix(p, { fromRevision: start.revision, onBatch: (batch) => { batches.push(batch); }, onError: () => {} });
    const multi = await store.txn({ compare: [], success: [{ type: 'put', key: `${p}y`, value: b('1') }, { type: 'put', key: `${p}z`, value: b('2') }] });
    const del = await store.txn({ compare: [], success: [{ type: 'delete', key: `${p}x` }] });
    await store.txn({ compare: [], success: [{ type: 'put', key: '/elsewhere/key', value: b('no') }] });
    await waitFor(() => batches.some((x) => x.revision === del.revision), { timeoutMs: 5000, message: 'delete delivered' });
    await handle.close();
    expect(batches.map((x) => x.revision)).toEqual([start.revision, multi.revision, del.revision]);
    expect(batches[1]!.events.map((e) => (e.type === 'put' ? e.kv.key : ''))).toEqual([`${p}y`, `${p}z`]);
    expect(batches[2]!.events[0]).toMatchObject({ type: 'delete', key: `${p}x` });
  });

  it('deletes leased keys when the lease is revoked; keepAliveOnce reports a missing lease', async () => {
    const p = uniquePrefix();
    const lease = await store.grantLease(1500);
    expect(lease.ttlMs).toBe(2000);
    await store.txn({ compare: [], success: [{ type: 'put', key: `${p}leased`, value: b('v'), lease: lease.leaseId }] });
    expect((await store.get(`${p}leased`))!.lease).toBe(lease.leaseId);
    expect(await store.keepAliveOnce(lease.leaseId)).toBeGreaterThan(0);
    const deletes: string[] = [];
    const handle = await store.watchPrefix(p, { onBatch: (batch) => { for (const e of batch.events) if (e.type === 'delete') deletes.push(e.key); }, onError: () => {} });
    await store.revokeLease(lease.leaseId);
    expect(await store.get(`${p}leased`)).toBeUndefined();
    await waitFor(() => deletes.includes(`${p}leased`), { timeoutMs: 5000, message: 'delete event for the leased key' });
    await handle.close();
    expect(await store.keepAliveOnce(lease.leaseId)).toBeUndefined();
  });

  it('expires a lease that is not kept alive', async () => {
    const p = uniquePrefix();
    const lease = await store.grantLease(1000);
    await store.txn({ compare: [], success: [{ type: 'put', key: `${p}ephemeral`, value: b('v'), lease: lease.leaseId }] });
    await waitFor(async () => (await store.get(`${p}ephemeral`)) === undefined, { timeoutMs: 8000, message: 'the leased key expires' });
  });

  it('elects one leader at a time; a deposed leader cannot write with its guard', async () => {
    const p = uniquePrefix();
    const s1 = await StoreSession.create(store, { ttlMs: 2000 });
    const s2 = await StoreSession.create(store, { ttlMs: 2000 });
    const first = await new Election(store, s1, p).campaign(b('one'));
    let secondWon = false;
    const second = new Election(store, s2, p).campaign(b('two')).then((l) => { secondWon = true; return l; });
    await new Promise((r) => setTimeout(r, 200));
    expect(secondWon).toBe(false);
    expect((await new Election(store, s2, p).leader())!.value.toString()).toBe('one');
    await s1.close(); // revokes the lease: as if the leader's session ended
    const next = await second;
    expect(next.revision).toBeGreaterThan(first.revision);
    const deposed = await store.txn({ compare: [first.guard()], success: [{ type: 'put', key: `${p}state`, value: b('stale') }] });
    expect(deposed.succeeded).toBe(false);
    const current = await store.txn({ compare: [next.guard()], success: [{ type: 'put', key: `${p}state`, value: b('fresh') }] });
    expect(current.succeeded).toBe(true);
    await s2.close();
  });

  it('reports session loss when its lease is gone', async () => {
    const s = await StoreSession.create(store, { ttlMs: 1000 });
    let lost = false;
    s.onLost(() => { lost = true; });
    await store.revokeLease(s.leaseId);
    await waitFor(() => lost, { timeoutMs: 5000, message: 'session loss reported' });
    await s.close();
  });
});

describe('MetadataStore contract: compaction', () => {
  it('embedded: a watch from a revision older than the kept history fails with StoreCompactedError', async () => {
    const store = await EmbeddedStore.open({ historyLimit: 5 });
    const first = await store.txn({ compare: [], success: [{ type: 'put', key: '/c/0', value: b('0') }] });
    for (let i = 1; i < 10; i++) await store.txn({ compare: [], success: [{ type: 'put', key: `/c/${i}`, value: b(String(i)) }] });
    await expect(store.watchPrefix('/c/', { fromRevision: first.revision, onBatch: () => {}, onError: () => {} })).rejects.toBeInstanceOf(StoreCompactedError);
    await store.close();
  });

  it.skipIf(skipEtcd)('etcd: a watch from a compacted revision fails with StoreCompactedError', async () => {
    const store = await EtcdStore.connect({ endpoints: etcd.endpoints });
    const p = uniquePrefix();
    const first = await store.txn({ compare: [], success: [{ type: 'put', key: `${p}0`, value: b('0') }] });
    const last = await store.txn({ compare: [], success: [{ type: 'put', key: `${p}1`, value: b('1') }] });
    await fetch(`http://${etcd.endpoints[0]}/v3/kv/compaction`, { method: 'POST', body: JSON.stringify({ revision: last.revision.toString(), physical: true }) });
    const error = await new Promise<Error>((resolve) => {
      store.watchPrefix(p, { fromRevision: first.revision, onBatch: () => {}, onError: resolve }).catch(resolve);
    });
    expect(error).toBeInstanceOf(StoreCompactedError);
    await store.close();
  });
});

describe('EmbeddedStore persistence', () => {
  it('keeps data across reopen and ignores a torn last line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skein-store-'));
    dirs.push(dir);
    const path = join(dir, 'store.db');
    const s1 = await EmbeddedStore.open({ path });
    const r = await s1.txn({ compare: [], success: [{ type: 'put', key: '/p/a', value: b('1') }] });
    await s1.close();
    const { appendFileSync } = await import('node:fs');
    appendFileSync(path, '{"t":"txn","rev":"99","ops":[{"put":"/p/torn"');
    const s2 = await EmbeddedStore.open({ path });
    expect((await s2.get('/p/a'))!.modRevision).toBe(r.revision);
    expect(await s2.get('/p/torn')).toBeUndefined();
    const r2 = await s2.txn({ compare: [], success: [{ type: 'put', key: '/p/b', value: b('2') }] });
    expect(r2.revision).toBe(r.revision + 1n);
    await s2.close();
  });
});
