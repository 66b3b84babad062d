/**
 * The metadata instance's live view: one store range at start, then one prefix watch replayed into
 * the MetadataImage. Every reader of this instance (RPC handlers, WatchMetadata streams, the
 * controller) reads from here, so an instance makes one watch on etcd however many clients follow
 * it. Keeps a bounded history of recent changes so a WatchMetadata client that reconnects can
 * resume from its last revision without a new snapshot.
 */

import { retry } from '@skein/common/backoff.js';
import type { MetadataStore, WatchHandle } from '@skein/common/store/types.js';
import type { MetadataChange } from '@skein/proto/skein/metadata/v1/metadata.js';
import type { Logger } from 'pino';
import { MetadataImage } from '../domain/image.js';
import type { MetadataKeys } from '../domain/records.js';

export interface ChangeBatch {
  revision: bigint;
  changes: MetadataChange[];
  /** The view re-read a snapshot: what changed is unknown, followers must take a new snapshot. */
  resync?: boolean;
  /** A broker directory record changed (internal to the controller, so no MetadataChange shows it). */
  directoriesChanged?: boolean;
}

type Listener = (batch: ChangeBatch) => void;

export class MetadataView {
  private image!: MetadataImage;
  private watch: WatchHandle | undefined;
  private readonly listeners = new Set<Listener>();
  private readonly history: ChangeBatch[] = [];
  /** Oldest revision from which history is complete (changes after it are all kept). */
  private historyFloor = 0n;
  private readonly revisionWaiters: Array<{ revision: bigint; resolve: () => void }> = [];
  private failed: Error | undefined;
  private closed = false;

  constructor(
    private readonly store: MetadataStore,
    private readonly keys: MetadataKeys,
    private readonly logger: Logger,
    private readonly historyLimit = 10_000,
  ) {}

  async start(): Promise<void> {
    await this.resync();
  }

  /** Re-reads a snapshot and re-watches; used at start and after a compaction or watch failure. */
  private async resync(): Promise<void> {
    const snapshot = await this.store.range(this.keys.prefix);
    const previous = this.image;
    this.image = MetadataImage.fromSnapshot(this.keys, snapshot.kvs, snapshot.revision);
    this.history.length = 0;
    this.historyFloor = snapshot.revision;
    if (previous) {
      // Followers cannot tell what changed across a resync: make them take a snapshot.
      this.historyFloor = snapshot.revision + 1n;
      this.emit({ revision: snapshot.revision, changes: [], resync: true }, true);
    }
    this.watch = await this.store.watchPrefix(this.keys.prefix, {
      fromRevision: snapshot.revision + 1n,
      onBatch: (batch) => {
        const changes: MetadataChange[] = [];
        let directoriesChanged = false;
        for (const event of batch.events) {
          if (this.keys.parse(event.type === 'put' ? event.kv.key : event.key)?.kind === 'directory') directoriesChanged = true;
          try {
            if (event.type === 'put') changes.push(...this.image.replayPut(event.kv));
            else changes.push(...this.image.replayDelete(event.key, event.modRevision));
          } catch (err) {
            // A value this version cannot read is a deployment error; skip it loudly rather than stop.
            this.logger.error({ err, key: event.type === 'put' ? event.kv.key : event.key }, 'unreadable metadata record skipped');
          }
        }
        this.image.revision = batch.revision > this.image.revision ? batch.revision : this.image.revision;
        this.emit(directoriesChanged ? { revision: batch.revision, changes, directoriesChanged } : { revision: batch.revision, changes }, false);
      },
      onError: (err) => {
        if (this.closed) return;
        this.logger.warn({ err }, 'metadata watch ended; re-reading a snapshot');
        void this.resyncWithRetry();
      },
    });
    this.wakeRevisionWaiters();
  }

  private async resyncWithRetry(): Promise<void> {
    await retry(async () => {
      await this.watch?.close().catch(() => {});
      await this.resync();
    }, {
      initialMs: 100, maxMs: 5000,
      stopped: () => this.closed,
      onRetry: (err, attempt) => this.logger.warn({ err, attempt }, 'metadata resync failed; retrying'),
    });
  }

  private emit(batch: ChangeBatch, resynced: boolean): void {
    if (!resynced) {
      this.history.push(batch);
      if (this.history.length > this.historyLimit) {
        const dropped = this.history.shift()!;
        this.historyFloor = dropped.revision;
      }
    }
    for (const listener of this.listeners) {
      try {
        listener(batch);
      } catch (err) {
        this.logger.error({ err }, 'metadata listener failed');
      }
    }
    this.wakeRevisionWaiters();
  }

  private wakeRevisionWaiters(): void {
    for (let i = this.revisionWaiters.length - 1; i >= 0; i--) {
      const w = this.revisionWaiters[i]!;
      if (this.image.revision >= w.revision) {
        this.revisionWaiters.splice(i, 1);
        w.resolve();
      }
    }
  }

  get current(): MetadataImage {
    if (this.failed) throw this.failed;
    return this.image;
  }

  /** Resolves once the view reflects `revision` (read-your-writes after a store write), or after timeoutMs. */
  async waitForRevision(revision: bigint, timeoutMs = 5000): Promise<boolean> {
    if (this.image.revision >= revision) return true;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const i = this.revisionWaiters.indexOf(waiter);
        if (i >= 0) this.revisionWaiters.splice(i, 1);
        resolve(false);
      }, timeoutMs);
      const waiter = { revision, resolve: () => { clearTimeout(timer); resolve(true); } };
      this.revisionWaiters.push(waiter);
    });
  }

  /**
   * Subscribes to changes. With `fromRevision` the recent history after it is replayed first
   * (returns false when that history is gone: the caller must send a snapshot instead).
   */
  subscribe(listener: Listener, fromRevision?: bigint): { unsubscribe: () => void; resumed: boolean } {
    let resumed = false;
    if (fromRevision !== undefined && fromRevision >= this.historyFloor && fromRevision <= this.image.revision) {
      for (const batch of this.history) if (batch.revision > fromRevision) listener(batch);
      resumed = true;
    }
    this.listeners.add(listener);
    return { unsubscribe: () => this.listeners.delete(listener), resumed };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
    await this.watch?.close();
  }
}
