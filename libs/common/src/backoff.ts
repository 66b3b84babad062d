/**
 * The one way Skein waits before trying again (kafkajs's retrier is the model): exponential
 * backoff with jitter, bounded by attempts, on injected timers and randomness.
 *
 * - `backoffDelayMs` is the pure rule: `initialMs` doubling per attempt up to `maxMs`, each delay
 *   scaled by a random factor in [1 - jitter, 1) (jitter 0.5 by default), so that processes that
 *   failed together (a metadata service restarting under every broker) do not retry in lockstep.
 * - `retry` runs an async operation with that rule: every failure is offered to `retryIf` and
 *   `onRetry` (where the caller logs at warn), so a retry loop is one call, not a hand-rolled
 *   `for (let attempt …)` with its own arithmetic.
 *
 * Immediate re-decisions after a lost compare-and-set (the store's optimistic concurrency) are not
 * backoff: they decide again at once on fresher state and stay plain loops.
 */
import { sleep, systemTimers, type Timers } from './timers.js';

export interface BackoffPolicy {
  /** Delay before the first retry, before jitter. */
  initialMs: number;
  /** Largest delay, before jitter. */
  maxMs: number;
  /** Random share of each delay, 0 (none) to 1; default 0.5: a delay lands in [d/2, d). */
  jitter?: number;
}

/** The delay before retry number `attempt` + 1 (`attempt` = failures so far minus one, from 0). */
export function backoffDelayMs(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const jitter = policy.jitter ?? 0.5;
  // Capping the exponent keeps 2 ** n finite for any attempt count.
  const base = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(Math.max(attempt, 0), 30));
  return base * (1 - jitter + jitter * random());
}

export interface RetryOptions extends BackoffPolicy {
  /** Attempts in all, the first included; default unbounded. The last failure is thrown. */
  maxAttempts?: number;
  /** Whether failure number `attempt` + 1 is worth another try; default yes. A no throws it. */
  retryIf?(err: unknown, attempt: number): boolean;
  /** Checked before each attempt: true gives up quietly (a stopping process), resolving undefined. */
  stopped?(): boolean;
  /** Told about each failure that will be retried, with the delay before the next attempt. */
  onRetry?(err: unknown, attempt: number, delayMs: number): void;
  timers?: Timers;
  random?: () => number;
}

/**
 * Runs `fn(attempt)` until it resolves, retrying failures after a jittered backoff. Rejects with
 * the failure `retryIf` refused or the one after `maxAttempts`; resolves undefined once `stopped()`.
 */
export async function retry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions & { stopped(): boolean }): Promise<T | undefined>;
export async function retry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T>;
export async function retry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T | undefined> {
  const timers = options.timers ?? systemTimers;
  for (let attempt = 0; ; attempt++) {
    if (options.stopped?.()) return undefined;
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt + 1 >= (options.maxAttempts ?? Infinity)) throw err;
      if (options.retryIf && !options.retryIf(err, attempt)) throw err;
      const delayMs = backoffDelayMs(options, attempt, options.random);
      options.onRetry?.(err, attempt, delayMs);
      await sleep(delayMs, timers);
    }
  }
}
