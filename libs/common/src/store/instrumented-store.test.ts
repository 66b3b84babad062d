import { describe, expect, it } from 'vitest';
import { EmbeddedStore } from './embedded-store.js';
import { instrumentStore, type StoreOperation } from './instrumented-store.js';
import type { MetadataStore } from './types.js';

describe('instrumentStore', () => {
  it('reports every request with its operation, duration and outcome, and passes results and errors through', async () => {
    const inner = await EmbeddedStore.open(); // in memory
    const seen: Array<{ op: StoreOperation; seconds: number; ok: boolean }> = [];
    let tick = 0n;
    // A clock that moves 2 ms per reading: each request takes exactly 2 ms.
    const store = instrumentStore(
      inner,
      (op, seconds, ok) => seen.push({ op, seconds, ok }),
      () => (tick += 2_000_000n),
    );
    expect(store.kind).toBe('embedded');
    const put = await store.txn({ compare: [], success: [{ type: 'put', key: 'a', value: Buffer.from('1') }] });
    expect(put.succeeded).toBe(true);
    expect((await store.get('a'))?.value.toString()).toBe('1');
    expect((await store.range('')).kvs).toHaveLength(1);
    const lease = await store.grantLease(1000);
    await store.revokeLease(lease.leaseId);
    expect(seen).toEqual(['txn', 'get', 'range', 'grantLease', 'revokeLease'].map((op) => ({ op, seconds: 0.002, ok: true })));

    const failing = instrumentStore(
      { ...inner, kind: 'embedded', get: () => Promise.reject(new Error('down')) } as MetadataStore,
      (op, seconds, ok) => seen.push({ op, seconds, ok }),
      () => (tick += 1_000_000n),
    );
    await expect(failing.get('a')).rejects.toThrow('down');
    expect(seen.at(-1)).toEqual({ op: 'get', seconds: 0.001, ok: false });
    await store.close();
  });
});
