import { describe, expect, it } from 'vitest';
import { SkeinError } from '@skein/common/errors.js';
import { fetchErrorAction } from './consumer.js';
import { invalidRecord } from './producer.js';

const err = (reason: string, retriable: boolean) => Object.assign(new Error(reason), { reason, retriable });

describe('what a consumer does after a fetch fails', () => {
  it('follows autoOffsetReset for an out-of-range position; none holds the partition', () => {
    const oor = new SkeinError('OFFSET_OUT_OF_RANGE', 'deleted by retention');
    expect(fetchErrorAction(oor, 'earliest', 0)).toEqual({ action: 'reset', to: 'earliest' });
    expect(fetchErrorAction(oor, 'latest', 3)).toEqual({ action: 'reset', to: 'latest' });
    expect(fetchErrorAction(oor, 'none', 0)).toEqual({ action: 'hold' });
  });

  it('holds the partition on errors about the data at the position; backs off on the rest with a growing, capped delay', () => {
    expect(fetchErrorAction(err('CORRUPT_MESSAGE', false), 'earliest', 0)).toEqual({ action: 'hold' });
    expect(fetchErrorAction(err('MESSAGE_TOO_LARGE', false), 'latest', 0)).toEqual({ action: 'hold' });
    expect(fetchErrorAction(err('UNSUPPORTED_COMPRESSION_TYPE', false), 'latest', 0)).toEqual({ action: 'hold' });
    const delays = [0, 1, 2, 3, 10, 40].map((n) => (fetchErrorAction(err('NOT_LEADER_OR_FOLLOWER', true), 'earliest', n, () => 0.999) as { delayMs: number }).delayMs);
    expect(delays).toEqual([...delays].sort((a, b) => a - b));
    expect(Math.max(...delays)).toBeLessThanOrEqual(5000);
    // Not about the data: a restarting broker, a deleted topic, an unexpected INTERNAL may pass.
    for (const reason of ['UNKNOWN_TOPIC_OR_PARTITION', 'UNKNOWN_TOPIC', 'INTERNAL']) expect(fetchErrorAction(err(reason, false), 'none', 0).action).toBe('backoff');
  });
});

describe('what a producer accepts', () => {
  it('accepts records without a timestamp and refuses ones its batch builder would choke on', () => {
    expect(invalidRecord({ key: 'k', value: 'v' })).toBeUndefined();
    expect(invalidRecord({ value: null, timestampMs: 5n, headers: [{ key: 'h', value: Buffer.from('x') }] })).toBeUndefined();
    expect(invalidRecord({ value: 42 })).toMatch(/value/);
    expect(invalidRecord({ value: 'v', key: 7 })).toMatch(/key/);
    expect(invalidRecord({ value: 'v', timestampMs: 1.5 })).toMatch(/timestampMs/);
    expect(invalidRecord({ value: 'v', headers: [{}] })).toMatch(/header/);
    expect(invalidRecord(null)).toBeDefined();
  });
});
