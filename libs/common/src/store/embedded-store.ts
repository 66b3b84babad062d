/**
 * A single-node MetadataStore with etcd's semantics, so `npm start` needs nothing but Node. Never
 * a cluster: production and every multi-node test use etcd.
 *
 * On disk: `<path>` is an append-only log of JSON lines, one per committed change (transaction,
 * lease grant/revoke/expiry), each written and fdatasync'd before the change is acknowledged;
 * `<path>.snap` is a snapshot written atomically (tmp + fsync + rename) when the log grows past a
 * threshold. Opening loads the snapshot, then replays log lines newer than it; a torn last line
 * (crash mid-write) is ignored. Leases survive a restart with their TTL reset at open.
 *
 * Time comes from an injected Clock, so tests expire leases by moving a fake clock.
 */

import { closeSync, existsSync, fdatasyncSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  type Clock,
  type Compare,
  type KeyValue,
  type LeaseGrant,
  type MetadataStore,
  type RangeResult,
  type TxnOp,
  type TxnRequest,
  type TxnResult,
  type WatchBatch,
  type WatchEvent,
  type WatchHandle,
  type WatchOptions,
  StoreCompactedError,
  systemClock,
} from './types.js';

interface StoredKv { k: string; v: string; c: string; m: string; ver: string; l: string }
type LogLine =
  | { t: 'txn'; rev: string; ops: Array<{ put: string; v: string; l?: string } | { del: string }> }
  | { t: 'grant'; id: string; ttlMs: number }
  | { t: 'revoke'; id: string };

interface Snapshot { revision: string; nextLeaseId: string; kvs: StoredKv[]; leases: Array<{ id: string; ttlMs: number }> }

interface Lease { id: bigint; ttlMs: number; keys: Set<string>; timer?: { cancel(): void } }

interface Watcher {
  prefix: string;
  options: WatchOptions;
  queue: WatchBatch[];
  draining: boolean;
  closed: boolean;
}

const COMPACT_LOG_BYTES = 4 * 1024 * 1024;
/** Per event in the watch history, beyond its key and values: the objects and revisions (an estimate). */
const HISTORY_EVENT_OVERHEAD_BYTES = 200;

export class EmbeddedStore implements MetadataStore {
  readonly kind = 'embedded' as const;
  private readonly kvs = new Map<string, KeyValue>();
  private readonly leases = new Map<bigint, Lease>();
  private revision = 0n;
  private nextLeaseId = 1n;
  /**
   * Recent revisions, for watches that start in the past (etcd keeps them until compacted). Bounded
   * by count and by bytes: a batch can be large (a group commit writes up to --max-txn-ops keys),
   * so a count alone would let a busy store hold gigabytes. Older revisions are compacted away: a
   * watch from one fails with StoreCompactedError and the watcher re-reads a snapshot.
   */
  private readonly history: Array<{ batch: WatchBatch; bytes: number }> = [];
  private historyBytes = 0;
  private compactRevision = 0n;
  private readonly watchers = new Set<Watcher>();
  private fd: number | undefined;
  private logBytes = 0;
  private closed = false;

  private constructor(private readonly path: string | undefined, private readonly clock: Clock, private readonly historyLimit: number, private readonly historyMaxBytes: number) {}

  /**
   * Opens (or creates) the store at `path`; without a path it is in memory only (tests). Watch
   * history keeps at most `historyLimit` revisions (10,000) and `historyMaxBytes` of keys and
   * values (64 MiB), whichever is reached first.
   */
  static async open(options: { path?: string; clock?: Clock; historyLimit?: number; historyMaxBytes?: number } = {}): Promise<EmbeddedStore> {
    const store = new EmbeddedStore(options.path, options.clock ?? systemClock, options.historyLimit ?? 10_000, options.historyMaxBytes ?? 64 * 1024 * 1024);
    store.load();
    return store;
  }

  private load(): void {
    if (!this.path) return;
    mkdirSync(dirname(this.path), { recursive: true });
    const snapPath = `${this.path}.snap`;
    if (existsSync(snapPath)) {
      const snap = JSON.parse(readFileSync(snapPath, 'utf8')) as Snapshot;
      this.revision = BigInt(snap.revision);
      this.nextLeaseId = BigInt(snap.nextLeaseId);
      for (const s of snap.kvs) this.kvs.set(s.k, { key: s.k, value: Buffer.from(s.v, 'base64'), createRevision: BigInt(s.c), modRevision: BigInt(s.m), version: BigInt(s.ver), lease: BigInt(s.l) });
      for (const l of snap.leases) this.leases.set(BigInt(l.id), { id: BigInt(l.id), ttlMs: l.ttlMs, keys: new Set() });
    }
    if (existsSync(this.path)) {
      const lines = readFileSync(this.path, 'utf8').split('\n');
      for (const line of lines) {
        if (line.trim() === '') continue;
        let parsed: LogLine;
        try {
          parsed = JSON.parse(line) as LogLine;
        } catch {
          break; // a torn tail from a crash mid-append: everything before it is intact
        }
        this.replayLine(parsed);
      }
    }
    for (const kv of this.kvs.values()) if (kv.lease !== 0n) this.leases.get(kv.lease)?.keys.add(kv.key);
    this.compactRevision = this.revision;
    // Rewrite a clean snapshot and an empty log: drops any torn tail so new appends start clean.
    this.writeSnapshot();
    this.fd = openSync(this.path, 'a');
    for (const lease of this.leases.values()) this.armLease(lease);
  }

  private replayLine(line: LogLine): void {
    if (line.t === 'grant') {
      const id = BigInt(line.id);
      this.leases.set(id, { id, ttlMs: line.ttlMs, keys: new Set() });
      if (id >= this.nextLeaseId) this.nextLeaseId = id + 1n;
    } else if (line.t === 'revoke') {
      this.leases.delete(BigInt(line.id));
    } else {
      const rev = BigInt(line.rev);
      if (rev <= this.revision) return; // already in the snapshot
      this.revision = rev;
      for (const op of line.ops) {
        if ('put' in op) this.applyPut(op.put, Buffer.from(op.v, 'base64'), op.l ? BigInt(op.l) : 0n, rev);
        else this.kvs.delete(op.del);
      }
    }
  }

  private writeSnapshot(): void {
    if (!this.path) return;
    const snap: Snapshot = {
      revision: this.revision.toString(),
      nextLeaseId: this.nextLeaseId.toString(),
      kvs: [...this.kvs.values()].map((kv) => ({ k: kv.key, v: kv.value.toString('base64'), c: kv.createRevision.toString(), m: kv.modRevision.toString(), ver: kv.version.toString(), l: kv.lease.toString() })),
      leases: [...this.leases.values()].map((l) => ({ id: l.id.toString(), ttlMs: l.ttlMs })),
    };
    const tmp = `${this.path}.snap.tmp`;
    const fd = openSync(tmp, 'w');
    writeSync(fd, JSON.stringify(snap));
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, `${this.path}.snap`);
    if (this.fd !== undefined) closeSync(this.fd);
    writeFileSync(`${this.path}.tmp`, '');
    renameSync(`${this.path}.tmp`, this.path);
    this.fd = openSync(this.path, 'a');
    this.logBytes = 0;
  }

  private persist(line: LogLine): void {
    if (this.fd === undefined) return;
    const text = `${JSON.stringify(line)}\n`;
    writeSync(this.fd, text);
    fdatasyncSync(this.fd);
    this.logBytes += text.length;
    if (this.logBytes > COMPACT_LOG_BYTES) this.writeSnapshot();
  }

  private applyPut(key: string, value: Buffer, lease: bigint, rev: bigint): { kv: KeyValue; prev?: KeyValue } {
    const prev = this.kvs.get(key);
    if (prev && prev.lease !== 0n) this.leases.get(prev.lease)?.keys.delete(key);
    const kv: KeyValue = { key, value, createRevision: prev?.createRevision ?? rev, modRevision: rev, version: (prev?.version ?? 0n) + 1n, lease };
    this.kvs.set(key, kv);
    if (lease !== 0n) this.leases.get(lease)?.keys.add(key);
    return { kv, prev };
  }

  private checkOpen(): void {
    if (this.closed) throw new Error('store is closed');
  }

  async get(key: string): Promise<KeyValue | undefined> {
    this.checkOpen();
    return this.kvs.get(key);
  }

  async range(prefix: string): Promise<RangeResult> {
    this.checkOpen();
    const kvs = [...this.kvs.values()].filter((kv) => kv.key.startsWith(prefix)).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return { kvs, revision: this.revision };
  }

  private holds(c: Compare): boolean {
    const kv = this.kvs.get(c.key);
    if (c.target === 'value') {
      const cmp = Buffer.compare(kv?.value ?? Buffer.alloc(0), c.value);
      return c.op === '=' ? cmp === 0 : c.op === '!=' ? cmp !== 0 : c.op === '<' ? cmp < 0 : cmp > 0;
    }
    const actual = kv ? kv[c.target] : 0n;
    return c.op === '=' ? actual === c.value : c.op === '!=' ? actual !== c.value : c.op === '<' ? actual < c.value : actual > c.value;
  }

  async txn(request: TxnRequest): Promise<TxnResult> {
    this.checkOpen();
    const succeeded = request.compare.every((c) => this.holds(c));
    const ops = succeeded ? request.success : request.failure ?? [];
    for (const op of ops) {
      if (op.type === 'put' && op.lease !== undefined && op.lease !== 0n && !this.leases.has(op.lease)) {
        throw new Error(`lease ${op.lease} not found`);
      }
    }
    const writes = this.expand(ops);
    if (writes.length === 0) return { succeeded, revision: this.revision };
    return { succeeded, revision: this.commit(writes) };
  }

  private expand(ops: TxnOp[]): Array<{ put: string; value: Buffer; lease: bigint } | { del: string }> {
    const out: Array<{ put: string; value: Buffer; lease: bigint } | { del: string }> = [];
    for (const op of ops) {
      if (op.type === 'put') out.push({ put: op.key, value: op.value, lease: op.lease ?? 0n });
      else if (op.type === 'delete') { if (this.kvs.has(op.key)) out.push({ del: op.key }); }
      else for (const key of this.kvs.keys()) if (key.startsWith(op.prefix)) out.push({ del: key });
    }
    return out;
  }

  /** Applies writes at one new revision, persists them, and notifies watchers. */
  private commit(writes: Array<{ put: string; value: Buffer; lease: bigint } | { del: string }>): bigint {
    const rev = this.revision + 1n;
    this.persist({
      t: 'txn',
      rev: rev.toString(),
      ops: writes.map((w) => ('put' in w ? { put: w.put, v: w.value.toString('base64'), ...(w.lease !== 0n ? { l: w.lease.toString() } : {}) } : { del: w.del })),
    });
    this.revision = rev;
    const events: WatchEvent[] = [];
    for (const w of writes) {
      if ('put' in w) {
        const { kv, prev } = this.applyPut(w.put, w.value, w.lease, rev);
        events.push({ type: 'put', kv, prevKv: prev });
      } else {
        const prev = this.kvs.get(w.del);
        if (!prev) continue;
        this.kvs.delete(w.del);
        if (prev.lease !== 0n) this.leases.get(prev.lease)?.keys.delete(w.del);
        events.push({ type: 'delete', key: w.del, modRevision: rev, prevKv: prev });
      }
    }
    const batch: WatchBatch = { revision: rev, events };
    const bytes = events.reduce((n, e) => n + HISTORY_EVENT_OVERHEAD_BYTES + (e.type === 'put' ? e.kv.key.length + e.kv.value.length : e.key.length) + (e.prevKv?.value.length ?? 0), 0);
    this.history.push({ batch, bytes });
    this.historyBytes += bytes;
    // The newest revision always stays, however large: a watch from it must see it.
    while (this.history.length > 1 && (this.history.length > this.historyLimit || this.historyBytes > this.historyMaxBytes)) {
      const dropped = this.history.shift()!;
      this.historyBytes -= dropped.bytes;
      this.compactRevision = dropped.batch.revision;
    }
    for (const w of this.watchers) this.enqueue(w, batch);
    return rev;
  }

  private armLease(lease: Lease): void {
    lease.timer?.cancel();
    lease.timer = this.clock.setTimeout(() => this.expireLease(lease.id), lease.ttlMs);
  }

  private expireLease(id: bigint): void {
    const lease = this.leases.get(id);
    if (!lease || this.closed) return;
    this.dropLease(lease);
  }

  private dropLease(lease: Lease): void {
    lease.timer?.cancel();
    this.persist({ t: 'revoke', id: lease.id.toString() });
    this.leases.delete(lease.id);
    const dels = [...lease.keys].filter((k) => this.kvs.get(k)?.lease === lease.id).map((del) => ({ del }));
    if (dels.length > 0) this.commit(dels);
  }

  async grantLease(ttlMs: number): Promise<LeaseGrant> {
    this.checkOpen();
    const seconds = Math.max(1, Math.ceil(ttlMs / 1000));
    const id = this.nextLeaseId++;
    const lease: Lease = { id, ttlMs: seconds * 1000, keys: new Set() };
    this.persist({ t: 'grant', id: id.toString(), ttlMs: lease.ttlMs });
    this.leases.set(id, lease);
    this.armLease(lease);
    return { leaseId: id, ttlMs: lease.ttlMs };
  }

  async keepAliveOnce(leaseId: bigint): Promise<number | undefined> {
    this.checkOpen();
    const lease = this.leases.get(leaseId);
    if (!lease) return undefined;
    this.armLease(lease);
    return lease.ttlMs;
  }

  async revokeLease(leaseId: bigint): Promise<void> {
    this.checkOpen();
    const lease = this.leases.get(leaseId);
    if (lease) this.dropLease(lease);
  }

  async watchPrefix(prefix: string, options: WatchOptions): Promise<WatchHandle> {
    this.checkOpen();
    const from = options.fromRevision;
    if (from !== undefined && from <= this.compactRevision && from <= this.revision) {
      throw new StoreCompactedError(from, this.compactRevision + 1n);
    }
    const watcher: Watcher = { prefix, options, queue: [], draining: false, closed: false };
    if (from !== undefined) for (const { batch } of this.history) if (batch.revision >= from) this.enqueue(watcher, batch);
    this.watchers.add(watcher);
    return {
      close: async () => {
        watcher.closed = true;
        this.watchers.delete(watcher);
      },
    };
  }

  private enqueue(w: Watcher, batch: WatchBatch): void {
    const events = batch.events.filter((e) => (e.type === 'put' ? e.kv.key : e.key).startsWith(w.prefix));
    if (events.length === 0) return;
    w.queue.push({ revision: batch.revision, events });
    if (!w.draining) void this.drain(w);
  }

  private async drain(w: Watcher): Promise<void> {
    w.draining = true;
    // Deliver asynchronously so a writer's txn() resolves before watchers run (as over a network).
    await Promise.resolve();
    while (w.queue.length > 0 && !w.closed) {
      const batch = w.queue.shift()!;
      try {
        await w.options.onBatch(batch);
      } catch {
        // A watcher's own failure must not stop deliveries to it or others.
      }
    }
    w.draining = false;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const l of this.leases.values()) l.timer?.cancel();
    this.watchers.clear();
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
