/**
 * Byte-rate quotas on one broker (Kafka's ClientQuotaManager, KIP-219). Pure: time is passed in.
 *
 * Each budget (the quota entity a caller resolves to, client-quotas.ts) keeps its bytes in
 * `samples` windows of `windowMs` (Kafka: quota.window.num 11 x quota.window.size.seconds 1). The
 * rate is the bytes of the retained windows over the time they span, never less than all but the
 * newest window (so a first burst is measured against the whole span, not a few ms). Recording
 * bytes that take the rate over the quota returns the throttle time Kafka computes: how long the
 * caller must then stay silent for the rate over the span to fall back to the quota,
 * (rate - quota) / quota x span, capped at the span. The caller's budget is then muted until that
 * time: the broker answers at once with throttle_time_ms, and holds back (`delayMs`) a request the
 * caller sends before it is over (a client that ignores the field gains nothing).
 */
import { type ClientQuota, QuotaIndex, type QuotaKind } from '@skein/common/quota/client-quotas.js';

export interface QuotaManagerOptions {
  windowMs?: number;
  samples?: number;
  /** Budgets remembered at most (idle ones are forgotten first). */
  maxBudgets?: number;
}

interface Budget {
  /** Start of each sample window (ms) and its bytes, oldest first. */
  starts: number[];
  bytes: number[];
  mutedUntilMs: number;
  lastUsedMs: number;
}

export interface Recorded {
  /** How long the caller must wait before its next request (0: within its quota or no quota). */
  throttleMs: number;
  /** The quota that applied (bytes/s), if any. */
  bytesPerSecond?: number;
}

export class QuotaManager {
  private index = new QuotaIndex();
  private readonly budgets = new Map<string, Budget>();
  private readonly windowMs: number;
  private readonly samples: number;
  private readonly maxBudgets: number;

  constructor(options: QuotaManagerOptions = {}) {
    this.windowMs = options.windowMs ?? 1000;
    this.samples = options.samples ?? 11;
    this.maxBudgets = options.maxBudgets ?? 100_000;
  }

  /** The quotas changed (WatchClientQuotas): applies to the next request; rates measured so far are kept. */
  update(quotas: readonly ClientQuota[]): void {
    this.index = new QuotaIndex(quotas);
  }

  get quotaCount(): number {
    return this.index.size;
  }

  /** How long a request of this caller must wait before it is served (its budget is muted); 0 when it may go now. */
  delayMs(kind: QuotaKind, user: string, clientId: string, nowMs: number): number {
    const applied = this.index.resolve(kind, user, clientId);
    if (!applied) return 0;
    const b = this.budgets.get(`${kind}\u0000${applied.entityKey}`);
    return b ? Math.max(0, b.mutedUntilMs - nowMs) : 0;
  }

  /** Records `bytes` produced or fetched by the caller; returns its throttle time. */
  record(kind: QuotaKind, user: string, clientId: string, bytes: number, nowMs: number): Recorded {
    const applied = this.index.resolve(kind, user, clientId);
    if (!applied) return { throttleMs: 0 };
    const key = `${kind}\u0000${applied.entityKey}`;
    let b = this.budgets.get(key);
    if (!b) {
      if (this.budgets.size >= this.maxBudgets) this.forgetOldest();
      b = { starts: [], bytes: [], mutedUntilMs: 0, lastUsedMs: nowMs };
      this.budgets.set(key, b);
    }
    b.lastUsedMs = nowMs;
    const current = b.starts[b.starts.length - 1];
    if (current === undefined || nowMs >= current + this.windowMs) {
      // A new window, aligned to the window size; windows older than the retained span go.
      b.starts.push(nowMs - (nowMs % this.windowMs));
      b.bytes.push(0);
      while (b.starts.length > this.samples) {
        b.starts.shift();
        b.bytes.shift();
      }
    }
    b.bytes[b.bytes.length - 1]! += bytes;
    const oldest = b.starts[0]!;
    while (b.starts.length > 0 && b.starts[0]! + this.samples * this.windowMs <= nowMs) {
      b.starts.shift();
      b.bytes.shift();
    }
    const total = b.bytes.reduce((s, x) => s + x, 0);
    const spanMs = Math.max(nowMs - (b.starts[0] ?? oldest), (this.samples - 1) * this.windowMs);
    const rate = (total * 1000) / spanMs;
    const quota = applied.bytesPerSecond;
    const throttleMs = rate <= quota ? 0 : Math.min(Math.ceil(((rate - quota) / quota) * spanMs), this.samples * this.windowMs);
    if (throttleMs > 0) b.mutedUntilMs = Math.max(b.mutedUntilMs, nowMs + throttleMs);
    return { throttleMs, bytesPerSecond: quota };
  }

  private forgetOldest(): void {
    let oldestKey: string | undefined;
    let oldest = Infinity;
    for (const [k, b] of this.budgets) {
      if (b.lastUsedMs < oldest) {
        oldest = b.lastUsedMs;
        oldestKey = k;
      }
    }
    if (oldestKey !== undefined) this.budgets.delete(oldestKey);
  }
}
