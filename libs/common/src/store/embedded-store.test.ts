// The embedded store's watch history is bounded by bytes as well as by revisions: large batches
// (a group commit writes up to --max-txn-ops keys at once) must not let it grow without limit.
import { describe, expect, it } from 'vitest';
import { EmbeddedStore } from './embedded-store.js';
import { StoreCompactedError, type WatchBatch } from './types.js';

describe('EmbeddedStore watch history', () => {
  it('compacts revisions past historyMaxBytes: a watch from one fails, a watch from a kept one replays it', async () => {
    const store = await EmbeddedStore.open({ historyMaxBytes: 64 * 1024 }); // far below the 10,000-revision count bound
    try {
      const value = Buffer.alloc(4096, 'x');
      const revisions: bigint[] = [];
      for (let i = 0; i < 100; i++) revisions.push((await store.txn({ compare: [], success: [{ type: 'put', key: `/h/k${i % 10}`, value }] })).revision);
      // 100 puts of 4 KiB (each with a 4 KiB previous value from the 11th on): about 15 fit in 64 KiB.
      await expect(store.watchPrefix('/h/', { fromRevision: revisions[0]!, onBatch: () => {}, onError: () => {} })).rejects.toBeInstanceOf(StoreCompactedError);
      await expect(store.watchPrefix('/h/', { fromRevision: revisions[80]!, onBatch: () => {}, onError: () => {} })).rejects.toBeInstanceOf(
        StoreCompactedError,
      );
      const seen: WatchBatch[] = [];
      const handle = await store.watchPrefix('/h/', { fromRevision: revisions[95]!, onBatch: (b) => void seen.push(b), onError: () => {} });
      await expect.poll(() => seen.length).toBe(5);
      expect(seen.map((b) => b.revision)).toEqual(revisions.slice(95));
      await handle.close();
    } finally {
      await store.close();
    }
  });

  it('keeps the newest revision even when it alone is over the bound', async () => {
    const store = await EmbeddedStore.open({ historyMaxBytes: 1024 });
    try {
      const { revision } = await store.txn({ compare: [], success: [{ type: 'put', key: '/big', value: Buffer.alloc(8192) }] });
      const seen: WatchBatch[] = [];
      const handle = await store.watchPrefix('/', { fromRevision: revision, onBatch: (b) => void seen.push(b), onError: () => {} });
      await expect.poll(() => seen.map((b) => b.revision)).toEqual([revision]);
      await handle.close();
    } finally {
      await store.close();
    }
  });
});
