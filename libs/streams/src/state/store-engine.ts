/**
 * Where a task's state stores live, and the write cache in front of them.
 *
 * Invariant: the engine holds, for each store, exactly the state as of its checkpoint (the
 * changelog offset up to which the store's writes are in the engine), written in ONE atomic step
 * with that checkpoint. Writes of the current commit interval stay in the cache (CachedStore) and
 * reach the engine only after the interval committed (outputs and changelog acknowledged; under
 * exactly-once, the transaction committed). So after a crash the engine is at its last checkpoint,
 * and restoring replays the changelog from there (only the missing tail); an aborted
 * transaction's writes never reach it (KIP-892's transactional state stores, by buffering).
 */
import type { KeyValueStore } from '../topology.js';

export interface EngineWrite {
  store: string;
  key: Buffer;
  value: Buffer | null;
}

export interface StoreEngine {
  get(store: string, key: Buffer): Buffer | undefined;
  /** from <= key < to (unbounded without `to`), ascending by bytes. */
  range(store: string, from: Buffer, to?: Buffer): Array<[Buffer, Buffer]>;
  /** Applies the writes and the metadata entries atomically. */
  write(writes: readonly EngineWrite[], meta: Readonly<Record<string, string>>): void;
  meta(name: string): string | undefined;
  /** Drops every store's contents and metadata (a task whose local state cannot be trusted). */
  wipe(): Promise<void>;
  close(): Promise<void>;
}

/** An engine in memory: for tests and for stores that need no persistence. */
export class MemoryEngine implements StoreEngine {
  private readonly data = new Map<string, Map<string, Buffer>>();
  private readonly metaData = new Map<string, string>();

  get(store: string, key: Buffer): Buffer | undefined {
    return this.data.get(store)?.get(key.toString('latin1'));
  }

  range(store: string, from: Buffer, to?: Buffer): Array<[Buffer, Buffer]> {
    const lo = from.toString('latin1');
    const hi = to?.toString('latin1');
    return [...(this.data.get(store) ?? new Map<string, Buffer>()).entries()]
      .filter(([k]) => k >= lo && (hi === undefined || k < hi))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => [Buffer.from(k, 'latin1'), v]);
  }

  write(writes: readonly EngineWrite[], meta: Readonly<Record<string, string>>): void {
    for (const w of writes) {
      let m = this.data.get(w.store);
      if (!m) this.data.set(w.store, (m = new Map()));
      if (w.value === null) m.delete(w.key.toString('latin1'));
      else m.set(w.key.toString('latin1'), w.value);
    }
    for (const [k, v] of Object.entries(meta)) this.metaData.set(k, v);
  }

  meta(name: string): string | undefined {
    return this.metaData.get(name);
  }

  async wipe(): Promise<void> {
    this.data.clear();
    this.metaData.clear();
  }

  async close(): Promise<void> {}
}

/**
 * A store as processors see it: reads the cache, then the engine; writes go to the cache and are
 * remembered as dirty until the runtime sends them to the changelog. Keys compare as bytes (the
 * cache keys them as latin1 strings, whose code units are the bytes, so string order is byte order).
 */
export class CachedStore implements KeyValueStore {
  private cache = new Map<string, Buffer | null>();
  private dirty = new Set<string>();

  constructor(
    readonly name: string,
    private readonly engine: StoreEngine,
  ) {}

  get(key: Buffer): Buffer | undefined {
    const k = key.toString('latin1');
    if (this.cache.has(k)) return this.cache.get(k) ?? undefined;
    return this.engine.get(this.name, key);
  }

  put(key: Buffer, value: Buffer | null): void {
    const k = key.toString('latin1');
    this.cache.set(k, value);
    this.dirty.add(k);
  }

  range(from: Buffer, to?: Buffer): Array<[Buffer, Buffer]> {
    const lo = from.toString('latin1');
    const hi = to?.toString('latin1');
    const merged = new Map<string, Buffer | null>();
    for (const [k, v] of this.engine.range(this.name, from, to)) merged.set(k.toString('latin1'), v);
    for (const [k, v] of this.cache) if (k >= lo && (hi === undefined || k < hi)) merged.set(k, v);
    return [...merged.entries()]
      .filter((e): e is [string, Buffer] => e[1] !== null)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => [Buffer.from(k, 'latin1'), v]);
  }

  /** Writes since the last call, latest value per key (what the changelog must get). */
  drainDirty(): Array<[Buffer, Buffer | null]> {
    const out: Array<[Buffer, Buffer | null]> = [];
    for (const k of this.dirty) out.push([Buffer.from(k, 'latin1'), this.cache.get(k) ?? null]);
    this.dirty = new Set();
    return out;
  }

  /** The cached writes, for the engine (after the interval committed); the cache is emptied. */
  takeCache(): EngineWrite[] {
    const out = [...this.cache.entries()].map(([k, value]) => ({ store: this.name, key: Buffer.from(k, 'latin1'), value }));
    this.cache = new Map();
    return out;
  }

  /** Forgets the interval's writes (an aborted transaction). */
  discard(): void {
    this.cache = new Map();
    this.dirty = new Set();
  }

  get cachedEntries(): number {
    return this.cache.size;
  }
}
