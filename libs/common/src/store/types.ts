/**
 * The metadata-store contract every Skein service codes against. Two backends implement it:
 * etcd (production, every multi-node test) and an embedded single-node store (so `npm start` needs
 * nothing but Node). The shape follows etcd's data model, because etcd is what we run on:
 *
 * - a flat, ordered key space of strings; values are bytes;
 * - a single, cluster-wide `revision` (bigint) that increases by one per successful write
 *   transaction; every key remembers the revision that created it (`createRevision`), last modified
 *   it (`modRevision`) and how many times it was written since creation (`version`);
 * - transactions: if every comparison holds, run the success ops, else the failure ops; atomically;
 * - leases with a TTL: keys attached to a lease are deleted when the lease expires or is revoked;
 * - watches on a prefix from a revision, delivering every change in revision order.
 *
 * Invariants a backend must keep (the contract suite checks them): revisions never go backwards;
 * a transaction's writes are seen by watchers as one batch with one revision; a key put with a
 * lease disappears (with a delete event) when the lease ends; a watch from a compacted revision
 * fails with StoreCompactedError rather than silently skipping events.
 */

export interface KeyValue {
  key: string;
  value: Buffer;
  createRevision: bigint;
  modRevision: bigint;
  version: bigint;
  /** Lease id the key is attached to, 0n when none. */
  lease: bigint;
}

export type CompareTarget = 'createRevision' | 'modRevision' | 'version' | 'value';
export type CompareOp = '=' | '!=' | '<' | '>';

/**
 * One comparison of a transaction. For a missing key, createRevision/modRevision/version are 0n and
 * value is an empty buffer (as in etcd).
 */
export type Compare =
  | { key: string; target: 'createRevision' | 'modRevision' | 'version'; op: CompareOp; value: bigint }
  | { key: string; target: 'value'; op: CompareOp; value: Buffer };

export type TxnOp =
  | { type: 'put'; key: string; value: Buffer; lease?: bigint }
  | { type: 'delete'; key: string }
  | { type: 'deletePrefix'; prefix: string };

export interface TxnRequest {
  compare: Compare[];
  success: TxnOp[];
  failure?: TxnOp[];
}

export interface TxnResult {
  succeeded: boolean;
  /** Store revision after the transaction (unchanged if it wrote nothing). */
  revision: bigint;
}

export interface RangeResult {
  kvs: KeyValue[];
  /** Store revision the range was read at. */
  revision: bigint;
}

export type WatchEvent =
  | { type: 'put'; kv: KeyValue; prevKv?: KeyValue }
  | { type: 'delete'; key: string; modRevision: bigint; prevKv?: KeyValue };

/** Events of one revision, delivered together. */
export interface WatchBatch {
  revision: bigint;
  events: WatchEvent[];
}

export interface WatchHandle {
  /** Stops the watch; no callbacks after the returned promise resolves. */
  close(): Promise<void>;
}

export interface WatchOptions {
  /** Deliver events with revision >= fromRevision. Omitted: changes after now. */
  fromRevision?: bigint;
  /** Called for each revision's events in order. Not called concurrently: the next call waits for the returned promise. */
  onBatch: (batch: WatchBatch) => void | Promise<void>;
  /**
   * Called once if the watch ends by itself (StoreCompactedError when fromRevision is gone, or a
   * connection failure the backend could not recover from). Not called after close().
   */
  onError: (err: Error) => void;
}

export interface LeaseGrant {
  leaseId: bigint;
  ttlMs: number;
}

export interface MetadataStore {
  /** Backend name for logs and the test harness: "etcd" or "embedded". */
  readonly kind: 'etcd' | 'embedded';

  get(key: string): Promise<KeyValue | undefined>;
  /** Every key starting with prefix, ordered by key. */
  range(prefix: string): Promise<RangeResult>;
  txn(request: TxnRequest): Promise<TxnResult>;

  /** Grants a lease. ttlMs is rounded up to whole seconds (etcd's granularity), minimum 1 s. */
  grantLease(ttlMs: number): Promise<LeaseGrant>;
  /** Renews a lease once. Returns the remaining TTL in ms, or undefined if the lease no longer exists. */
  keepAliveOnce(leaseId: bigint): Promise<number | undefined>;
  /** Revokes a lease, deleting its keys. Revoking an unknown lease is not an error. */
  revokeLease(leaseId: bigint): Promise<void>;

  watchPrefix(prefix: string, options: WatchOptions): Promise<WatchHandle>;

  close(): Promise<void>;
}

/** The requested watch revision was compacted away; the caller must re-read a snapshot. */
export class StoreCompactedError extends Error {
  constructor(
    readonly requestedRevision: bigint,
    readonly compactRevision: bigint,
  ) {
    super(`revision ${requestedRevision} is compacted (oldest available ${compactRevision})`);
    this.name = 'StoreCompactedError';
  }
}

/** The backend could not be reached or answered with an error; retriable. */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

/**
 * Time as the store sees it. The embedded backend expires leases on this clock, so tests can move
 * time by hand instead of sleeping.
 */
export interface Clock {
  nowMs(): number;
  setTimeout(fn: () => void, ms: number): { cancel(): void };
}

export const systemClock: Clock = {
  nowMs: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return { cancel: () => clearTimeout(t) };
  },
};
