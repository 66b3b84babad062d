import { describe, expect, it } from 'vitest';
import { SkeinError } from '@skein/common/errors.js';
import { backoffMs, isRetriableError, shouldRetry } from './retry.js';

const policy = { maxAttempts: 8, maxUnknownTopicAttempts: 3 };
const brokerError = (reason: string, retriable: boolean) => Object.assign(new Error(reason), { reason, retriable });

describe('client retry policy', () => {
  it('reads retriability from the error, else from the reason table, with no list of its own', () => {
    expect(isRetriableError(brokerError('NOT_LEADER_OR_FOLLOWER', true))).toBe(true);
    // A peer that forgot the flag: the table says NOT_LEADER_OR_FOLLOWER is retriable.
    expect(isRetriableError(brokerError('NOT_LEADER_OR_FOLLOWER', false))).toBe(true);
    expect(isRetriableError(new SkeinError('PARTITION_OFFLINE', 'x'))).toBe(true);
    expect(isRetriableError(new SkeinError('CORRUPT_MESSAGE', 'x'))).toBe(false);
    expect(isRetriableError(brokerError('SOMETHING_NEW', false))).toBe(false);
    expect(isRetriableError(undefined)).toBe(false);
  });

  it('retries retriable errors up to maxAttempts, and nothing else', () => {
    const e = brokerError('NOT_LEADER_OR_FOLLOWER', true);
    expect([0, 1, 2, 3, 4, 5, 6].every((a) => shouldRetry(e, a, policy))).toBe(true);
    expect(shouldRetry(e, 7, policy)).toBe(false);
    expect(shouldRetry(brokerError('CORRUPT_MESSAGE', false), 0, policy)).toBe(false);
  });

  it('retries UNKNOWN_TOPIC_OR_PARTITION a bounded number of times, whether or not it is marked retriable', () => {
    for (const retriable of [true, false]) {
      const e = brokerError('UNKNOWN_TOPIC_OR_PARTITION', retriable);
      expect(shouldRetry(e, 0, policy)).toBe(true);
      expect(shouldRetry(e, 1, policy)).toBe(true);
      expect(shouldRetry(e, 2, policy)).toBe(false);
    }
  });

  it('backs off exponentially with jitter, capped', () => {
    expect(backoffMs(0, () => 0)).toBe(25);
    expect(backoffMs(0, () => 0.999)).toBeCloseTo(50, 0);
    expect(backoffMs(3, () => 0)).toBe(200);
    expect(backoffMs(50, () => 0.999, 2000)).toBeLessThanOrEqual(2000);
  });
});
