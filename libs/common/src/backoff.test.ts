import { describe, expect, it } from 'vitest';
import { backoffDelayMs, retry } from './backoff.js';
import { ManualTimers } from './timers.js';

/** Lets the retry's awaits settle so it reaches its next sleep (no real time passes). */
const settle = () => new Promise<void>((r) => setImmediate(r));

describe('backoffDelayMs', () => {
  const policy = { initialMs: 100, maxMs: 1000 };

  it('doubles from initialMs up to maxMs', () => {
    const top = () => 1 - Number.EPSILON;
    expect([0, 1, 2, 3, 4, 10, 1e6].map((a) => Math.round(backoffDelayMs(policy, a, top)))).toEqual([100, 200, 400, 800, 1000, 1000, 1000]);
  });

  it('spreads each delay over [d * (1 - jitter), d)', () => {
    expect(backoffDelayMs(policy, 2, () => 0)).toBe(200);
    expect(backoffDelayMs({ ...policy, jitter: 1 }, 2, () => 0)).toBe(0);
    expect(backoffDelayMs({ ...policy, jitter: 0 }, 2, () => 0.3)).toBe(400);
    expect(backoffDelayMs({ ...policy, jitter: 0.2 }, 2, () => 0.5)).toBeCloseTo(360, 9);
  });
});

describe('retry', () => {
  it('retries failures after each backoff delay until the operation succeeds', async () => {
    const timers = new ManualTimers();
    const seen: Array<{ attempt: number; delayMs: number }> = [];
    let calls = 0;
    const result = retry(async (attempt) => {
      calls++;
      if (attempt < 3) throw new Error(`fail ${attempt}`);
      return 'done';
    }, { initialMs: 100, maxMs: 250, jitter: 0, timers, onRetry: (_err, attempt, delayMs) => seen.push({ attempt, delayMs }) });

    await settle();
    expect(calls).toBe(1);
    expect(timers.pendingDelaysMs).toEqual([100]);
    timers.advance(99);
    await settle();
    expect(calls).toBe(1); // not before the delay
    timers.advance(1);
    await settle();
    expect(timers.pendingDelaysMs).toEqual([200]);
    timers.advance(200);
    await settle();
    expect(timers.pendingDelaysMs).toEqual([250]); // capped
    timers.advance(250);
    expect(await result).toBe('done');
    expect(calls).toBe(4);
    expect(seen).toEqual([{ attempt: 0, delayMs: 100 }, { attempt: 1, delayMs: 200 }, { attempt: 2, delayMs: 250 }]);
  });

  it('throws the last failure after maxAttempts, and at once what retryIf refuses', async () => {
    const timers = new ManualTimers();
    let calls = 0;
    const bounded = retry(async () => { calls++; throw new Error(`failure ${calls}`); }, { initialMs: 10, maxMs: 10, maxAttempts: 2, timers });
    const outcome = bounded.catch((e: Error) => e.message);
    await settle();
    timers.advance(10);
    expect(await outcome).toBe('failure 2');

    const fatal = Object.assign(new Error('bad request'), { retriable: false });
    await expect(retry(async () => { throw fatal; }, { initialMs: 10, maxMs: 10, timers, retryIf: (e) => (e as { retriable?: boolean }).retriable !== false })).rejects.toBe(fatal);
    expect(timers.pendingDelaysMs).toEqual([]);
  });

  it('gives up quietly, resolving undefined, once stopped() says the process is stopping', async () => {
    const timers = new ManualTimers();
    let stopped = false;
    let calls = 0;
    const result = retry(async () => { calls++; throw new Error('unreachable'); }, { initialMs: 10, maxMs: 10, timers, stopped: () => stopped });
    await settle();
    stopped = true;
    timers.advance(10);
    expect(await result).toBeUndefined();
    expect(calls).toBe(1);
  });
});

describe('ManualTimers', () => {
  it('runs timers and intervals due by the time it advances to, in order, and not cancelled ones', () => {
    const timers = new ManualTimers(1000);
    const ran: string[] = [];
    timers.setTimeout(() => ran.push(`b@${timers.nowMs()}`), 20);
    timers.setTimeout(() => ran.push(`a@${timers.nowMs()}`), 10);
    const cancel = timers.setTimeout(() => ran.push('cancelled'), 5);
    const stopTicking = timers.setInterval(() => ran.push(`tick@${timers.nowMs()}`), 15);
    cancel();
    expect(timers.advance(30)).toBe(4);
    expect(ran).toEqual(['a@1010', 'tick@1015', 'b@1020', 'tick@1030']);
    stopTicking();
    expect(timers.advance(100)).toBe(0);
    expect(timers.nowMs()).toBe(1130);
  });
});
