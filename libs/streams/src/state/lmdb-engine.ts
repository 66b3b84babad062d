/**
 * Task state on local disk in LMDB (the `lmdb` package): one LMDB environment per task directory,
 * one named database per store plus `skein-meta` (checkpoints, stream time).
 *
 * Why LMDB: a B+tree in one memory-mapped file with ACID transactions, so a store's writes and its
 * checkpoint commit together and a SIGKILL leaves the last committed transaction intact (no
 * recovery step, no WAL to replay); reads are synchronous and cheap (processors run synchronously,
 * one record through the whole graph per call); and `lmdb` ships prebuilt binaries as optional
 * packages, so it installs without running its install script (allowScripts: lmdb false). RocksDB
 * (Kafka Streams' choice) has no maintained Node binding; classic-level (LevelDB) reads only
 * asynchronously.
 *
 * Keys are stored with a one-byte prefix: LMDB refuses empty keys, and a store key may be empty
 * (an empty string key).
 */
import { mkdirSync, rmSync } from 'node:fs';
import { open, type Database, type RootDatabase } from 'lmdb';
import type { EngineWrite, StoreEngine } from './store-engine.js';

const PREFIX = Buffer.from([0x01]);
const withPrefix = (k: Buffer) => Buffer.concat([PREFIX, k]);

export class LmdbEngine implements StoreEngine {
  private root: RootDatabase;
  private readonly dbs = new Map<string, Database<Buffer, Buffer>>();
  private metaDb: Database<string, string>;

  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    this.root = this.openRoot();
    this.metaDb = this.root.openDB<string, string>({ name: 'skein-meta', encoding: 'string' });
  }

  private openRoot(): RootDatabase {
    return open({ path: this.dir, maxDbs: 256, compression: false });
  }

  private db(store: string): Database<Buffer, Buffer> {
    let d = this.dbs.get(store);
    if (!d) this.dbs.set(store, (d = this.root.openDB<Buffer, Buffer>({ name: `store-${store}`, keyEncoding: 'binary', encoding: 'binary' })));
    return d;
  }

  get(store: string, key: Buffer): Buffer | undefined {
    return this.db(store).get(withPrefix(key)) ?? undefined;
  }

  range(store: string, from: Buffer, to?: Buffer): Array<[Buffer, Buffer]> {
    const out: Array<[Buffer, Buffer]> = [];
    // Every key carries PREFIX, so [PREFIX + 1] bounds them all when there is no `to`.
    const end = to ? withPrefix(to) : Buffer.from([PREFIX[0]! + 1]);
    for (const { key, value } of this.db(store).getRange({ start: withPrefix(from), end })) out.push([Buffer.from(key).subarray(1), Buffer.from(value)]);
    return out;
  }

  write(writes: readonly EngineWrite[], meta: Readonly<Record<string, string>>): void {
    for (const w of writes) this.db(w.store); // opening a database inside the transaction would nest one
    this.root.transactionSync(() => {
      for (const w of writes) {
        const d = this.db(w.store);
        if (w.value === null) d.removeSync(withPrefix(w.key));
        else d.putSync(withPrefix(w.key), w.value);
      }
      for (const [k, v] of Object.entries(meta)) this.metaDb.putSync(k, v);
    });
  }

  meta(name: string): string | undefined {
    return this.metaDb.get(name) ?? undefined;
  }

  async wipe(): Promise<void> {
    await this.root.close();
    this.dbs.clear();
    rmSync(this.dir, { recursive: true, force: true });
    mkdirSync(this.dir, { recursive: true });
    this.root = this.openRoot();
    this.metaDb = this.root.openDB<string, string>({ name: 'skein-meta', encoding: 'string' });
  }

  async close(): Promise<void> {
    await this.root.close();
  }
}
