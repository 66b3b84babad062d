/**
 * A MetadataStore decorator that times every request (get, range, txn, lease calls, opening a
 * watch) and reports it to an observer: the service shell turns that into the store latency
 * histogram. It changes nothing else: the same results, the same errors, the same order.
 */
import type { MetadataStore } from './types.js';

export type StoreOperation = 'get' | 'range' | 'txn' | 'grantLease' | 'keepAliveOnce' | 'revokeLease' | 'watch';

/** Told each request's duration and whether it succeeded; must not throw. */
export type StoreObserver = (op: StoreOperation, seconds: number, ok: boolean) => void;

export function instrumentStore(store: MetadataStore, observe: StoreObserver, now: () => bigint = process.hrtime.bigint): MetadataStore {
  const timed = <A extends unknown[], R>(op: StoreOperation, fn: (...args: A) => Promise<R>) => async (...args: A): Promise<R> => {
    const start = now();
    try {
      const result = await fn(...args);
      observe(op, Number(now() - start) / 1e9, true);
      return result;
    } catch (err) {
      observe(op, Number(now() - start) / 1e9, false);
      throw err;
    }
  };
  return {
    kind: store.kind,
    get: timed('get', (key) => store.get(key)),
    range: timed('range', (prefix) => store.range(prefix)),
    txn: timed('txn', (request) => store.txn(request)),
    grantLease: timed('grantLease', (ttlMs) => store.grantLease(ttlMs)),
    keepAliveOnce: timed('keepAliveOnce', (leaseId) => store.keepAliveOnce(leaseId)),
    revokeLease: timed('revokeLease', (leaseId) => store.revokeLease(leaseId)),
    watchPrefix: timed('watch', (prefix, options) => store.watchPrefix(prefix, options)),
    close: () => store.close(),
  };
}
