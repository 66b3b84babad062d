/**
 * Leader election over any MetadataStore, as etcd's Go `concurrency/election.go` does it: each
 * candidate creates `<prefix><leaseId hex>` attached to its session lease; the candidate with the
 * lowest create revision leads; the others wait for their predecessor's key to go. The leader's
 * create revision is its epoch, and every leader write carries `guard()` — a compare that its key
 * still exists with that create revision — so a deposed leader's write always fails.
 */

import type { StoreSession } from './session.js';
import type { Compare, KeyValue, MetadataStore, WatchHandle } from './types.js';

export interface Leadership {
  key: string;
  /** Create revision of the leader key: the leader epoch. */
  revision: bigint;
  value: Buffer;
  guard(): Compare;
  resign(): Promise<void>;
}

export interface LeaderInfo {
  key: string;
  value: Buffer;
  createRevision: bigint;
}

export class Election {
  constructor(private readonly store: MetadataStore, private readonly session: StoreSession, private readonly prefix: string) {}

  async leader(): Promise<LeaderInfo | undefined> {
    const { kvs } = await this.store.range(this.prefix);
    return lowest(kvs);
  }

  async campaign(value: Buffer, signal?: AbortSignal): Promise<Leadership> {
    const key = `${this.prefix}${this.session.leaseId.toString(16)}`;
    await this.store.txn({
      compare: [{ key, target: 'createRevision', op: '=', value: 0n }],
      success: [{ type: 'put', key, value, lease: this.session.leaseId }],
      failure: [{ type: 'put', key, value, lease: this.session.leaseId }],
    });
    const mine = await this.store.get(key);
    if (!mine) throw new Error('election key vanished: session lost');
    for (;;) {
      if (signal?.aborted) throw new Error('campaign aborted');
      if (this.session.isLost) throw new Error('session lost during campaign');
      const { kvs, revision } = await this.store.range(this.prefix);
      const predecessors = kvs.filter((kv) => kv.createRevision < mine.createRevision);
      if (!kvs.some((kv) => kv.key === key)) throw new Error('election key vanished: session lost');
      if (predecessors.length === 0) {
        return {
          key,
          revision: mine.createRevision,
          value,
          guard: () => ({ key, target: 'createRevision', op: '=', value: mine.createRevision }),
          resign: async () => {
            await this.store.txn({ compare: [{ key, target: 'createRevision', op: '=', value: mine.createRevision }], success: [{ type: 'delete', key }] });
          },
        };
      }
      // Wait for the closest predecessor to go (or for anything under the prefix to change).
      await this.waitForChange(revision + 1n, signal);
    }
  }

  private waitForChange(fromRevision: bigint, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      let handle: WatchHandle | undefined;
      let done = false;
      const finish = (err?: Error) => {
        if (done) return;
        done = true;
        // A watch that fails to close (etcd unreachable) ends with its client; never a rejection.
        void handle?.close().catch(() => {});
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err); else resolve();
      };
      const onAbort = () => finish(new Error('campaign aborted'));
      signal?.addEventListener('abort', onAbort);
      this.session.onLost(() => finish(new Error('session lost during campaign')));
      this.store.watchPrefix(this.prefix, {
        fromRevision,
        onBatch: (batch) => { if (batch.events.some((e) => e.type === 'delete')) finish(); },
        onError: () => finish(),
      }).then((h) => { handle = h; if (done) void h.close().catch(() => {}); }, (err: Error) => finish(err));
    });
  }

  /** Calls `cb` with the current leader now and whenever it changes. */
  async observe(cb: (leader: LeaderInfo | undefined) => void): Promise<WatchHandle> {
    const { kvs, revision } = await this.store.range(this.prefix);
    const members = new Map(kvs.map((kv) => [kv.key, kv]));
    let current = lowest([...members.values()]);
    cb(current);
    return this.store.watchPrefix(this.prefix, {
      fromRevision: revision + 1n,
      onBatch: (batch) => {
        for (const e of batch.events) {
          if (e.type === 'put') members.set(e.kv.key, e.kv);
          else members.delete(e.key);
        }
        const next = lowest([...members.values()]);
        if (next?.key !== current?.key) {
          current = next;
          cb(current);
        }
      },
      onError: () => {},
    });
  }
}

function lowest(kvs: KeyValue[]): LeaderInfo | undefined {
  let best: KeyValue | undefined;
  for (const kv of kvs) if (!best || kv.createRevision < best.createRevision) best = kv;
  return best ? { key: best.key, value: best.value, createRevision: best.createRevision } : undefined;
}
