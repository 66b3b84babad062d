/**
 * When the client retries a failed data-path call. Pure: the caller owns the clock and the sleep.
 *
 * Retriability comes from the error (the broker's PartitionError says it) or else from the one
 * reason table in libs/common; the client keeps no list of its own. One reason is bounded apart:
 * UNKNOWN_TOPIC_OR_PARTITION means either "this broker has not applied the topic yet" (for a short
 * while after CreateTopic, or after a broker restart) or "the topic is gone". Kafka's client
 * handles it as stale metadata: refresh and retry, but only so often, so a deleted topic fails the
 * call instead of being retried for the whole attempt budget (or, in a consumer, forever).
 */
import { backoffDelayMs } from '@skein/common/backoff.js';
import { REASONS } from '@skein/common/errors.js';

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  maxAttempts: number;
  /** Attempts in all while the answer is UNKNOWN_TOPIC_OR_PARTITION (each after a metadata refresh). */
  maxUnknownTopicAttempts: number;
}

export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = Object.freeze({ maxAttempts: 8, maxUnknownTopicAttempts: 5 });

/** Whether `reason` (or the error itself) says a retry can succeed. */
export function isRetriableError(err: unknown): boolean {
  const e = err as { reason?: unknown; retriable?: unknown } | null;
  if (e?.retriable === true) return true;
  const row = typeof e?.reason === 'string' ? (REASONS as Record<string, readonly [number, boolean]>)[e.reason] : undefined;
  return row?.[1] === true;
}

/**
 * Whether to try again after attempt number `attempt` (0-based) failed with `err`. Retries pass
 * through metadata refresh in the caller, so re-routing happens on every retry.
 */
export function shouldRetry(err: unknown, attempt: number, policy: RetryPolicy = DEFAULT_RETRY_POLICY): boolean {
  if (attempt + 1 >= policy.maxAttempts) return false;
  if ((err as { reason?: unknown } | null)?.reason === 'UNKNOWN_TOPIC_OR_PARTITION') return attempt + 1 < policy.maxUnknownTopicAttempts;
  return isRetriableError(err);
}

/**
 * Jittered exponential backoff before retry number `attempt` + 1 (libs/common backoff.ts): 50 ms
 * doubling up to `capMs`, each scaled by a random factor in [0.5, 1) so that clients retrying
 * together spread out.
 */
export function backoffMs(attempt: number, random: () => number = Math.random, capMs = 2000): number {
  return backoffDelayMs({ initialMs: 50, maxMs: capMs }, attempt, random);
}
