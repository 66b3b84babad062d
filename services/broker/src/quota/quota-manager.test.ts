import { describe, expect, it } from 'vitest';
import { QuotaManager } from './quota-manager.js';

/** A caller sending `bytes` whenever allowed, honouring every throttle: what it gets through. */
function simulate(m: QuotaManager, user: string, bytes: number, untilMs: number): { sent: number; throttles: number } {
  let now = 0;
  let sent = 0;
  let throttles = 0;
  while (now < untilMs) {
    now += m.delayMs('producer_byte_rate', user, '', now);
    const { throttleMs } = m.record('producer_byte_rate', user, '', bytes, now);
    sent += bytes;
    if (throttleMs > 0) throttles++;
    now += Math.max(throttleMs, 1);
  }
  return { sent, throttles };
}

describe('QuotaManager', () => {
  it('throttles a caller over its byte rate so that it averages the quota; others are untouched', () => {
    const m = new QuotaManager({ windowMs: 1000, samples: 11 });
    m.update([{ entity: { user: 'alice' }, producerByteRate: 10_000 }]);
    const alice = simulate(m, 'alice', 4000, 60_000);
    // 60 s at 10 kB/s, plus at most one span's head start (11 windows).
    expect(alice.sent / 60).toBeGreaterThan(10_000 * 0.9);
    expect(alice.sent / 60).toBeLessThan(10_000 * 1.25);
    expect(alice.throttles).toBeGreaterThan(10);
    expect(m.record('producer_byte_rate', 'bob', '', 10_000_000, 60_000)).toEqual({ throttleMs: 0 });
  });

  it('answers with the throttle time and mutes the budget until then', () => {
    const m = new QuotaManager({ windowMs: 1000, samples: 11 });
    m.update([{ entity: { user: 'alice' }, producerByteRate: 1000 }]);
    // 20 kB at once against 1 kB/s measured over 10 s: (2000 - 1000) / 1000 x 10 s = 10 s.
    const r = m.record('producer_byte_rate', 'alice', '', 20_000, 0);
    expect(r).toEqual({ throttleMs: 10_000, bytesPerSecond: 1000 });
    expect(m.delayMs('producer_byte_rate', 'alice', 'any-client', 4000)).toBe(6000);
    expect(m.delayMs('producer_byte_rate', 'alice', 'any-client', 10_000)).toBe(0);
    // The fetch quota is separate.
    expect(m.delayMs('consumer_byte_rate', 'alice', '', 4000)).toBe(0);
  });

  it('applies a quota change to the next request and forgets a removed one', () => {
    const m = new QuotaManager();
    expect(m.record('consumer_byte_rate', 'carol', 'c', 1e9, 0).throttleMs).toBe(0);
    m.update([{ entity: { clientId: 'c' }, consumerByteRate: 1000 }]);
    expect(m.record('consumer_byte_rate', 'carol', 'c', 1e6, 1).throttleMs).toBeGreaterThan(0);
    m.update([]);
    expect(m.delayMs('consumer_byte_rate', 'carol', 'c', 2)).toBe(0);
  });
});
