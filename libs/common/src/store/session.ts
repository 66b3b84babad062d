/**
 * A session: a lease kept alive every ttl/3. Loss is reported within one TTL of the last
 * successful renewal (etcd3's own lease object reports it only after two), so a leader steps down
 * before anyone else can have been elected in its place.
 */

import { type Clock, type MetadataStore, systemClock } from './types.js';

export class StoreSession {
  private lostCallbacks: Array<() => void> = [];
  private lost = false;
  private closed = false;
  private lastRenewedMs: number;
  private timer: { cancel(): void } | undefined;
  private deadline: { cancel(): void } | undefined;

  private constructor(private readonly store: MetadataStore, readonly leaseId: bigint, readonly ttlMs: number, private readonly clock: Clock) {
    this.lastRenewedMs = clock.nowMs();
  }

  static async create(store: MetadataStore, options: { ttlMs: number; clock?: Clock }): Promise<StoreSession> {
    const clock = options.clock ?? systemClock;
    const grant = await store.grantLease(options.ttlMs);
    const session = new StoreSession(store, grant.leaseId, grant.ttlMs, clock);
    session.armDeadline();
    session.schedule();
    return session;
  }

  get isLost(): boolean {
    return this.lost;
  }

  onLost(cb: () => void): void {
    if (this.lost) cb();
    else this.lostCallbacks.push(cb);
  }

  private armDeadline(): void {
    this.deadline?.cancel();
    // Measured from the renewal request's start: the lease may expire ttl after that at the latest.
    this.deadline = this.clock.setTimeout(() => this.markLost(), Math.max(1, this.ttlMs - (this.clock.nowMs() - this.lastRenewedMs)));
  }

  private schedule(): void {
    if (this.closed || this.lost) return;
    this.timer = this.clock.setTimeout(() => void this.renew(), Math.max(100, Math.floor(this.ttlMs / 3)));
  }

  private async renew(): Promise<void> {
    const startedMs = this.clock.nowMs();
    try {
      const ttl = await this.store.keepAliveOnce(this.leaseId);
      if (ttl === undefined) {
        this.markLost();
        return;
      }
      this.lastRenewedMs = startedMs;
      if (!this.lost) this.armDeadline();
    } catch {
      // Transient: the deadline decides whether the session is lost.
    }
    this.schedule();
  }

  private markLost(): void {
    if (this.lost || this.closed) return;
    this.lost = true;
    this.timer?.cancel();
    this.deadline?.cancel();
    for (const cb of this.lostCallbacks.splice(0)) cb();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.timer?.cancel();
    this.deadline?.cancel();
    if (!this.lost) await this.store.revokeLease(this.leaseId).catch(() => {});
  }
}
