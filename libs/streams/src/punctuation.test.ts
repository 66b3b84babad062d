// Punctuation schedules (pure): due times, at most one firing per check, skipped boundaries, cancel.
import { describe, expect, it } from 'vitest';
import { nextDue, PunctuationQueue } from './punctuation.js';

describe('PunctuationQueue', () => {
  it('stream time: aligned to 0, fires when stream time reaches each boundary, once per check however far it jumped', () => {
    const q = new PunctuationQueue('stream-time');
    const fired: number[] = [];
    q.schedule(10, (t) => fired.push(t));
    expect(q.mayPunctuate(-1)).toBe(0); // unknown stream time: nothing
    expect(q.mayPunctuate(3)).toBe(1); // due at 0
    expect(q.mayPunctuate(9)).toBe(0);
    expect(q.mayPunctuate(10)).toBe(1);
    expect(q.mayPunctuate(47)).toBe(1); // 20, 30 and 40 skipped: one firing, next due at 50
    expect(q.mayPunctuate(49)).toBe(0);
    expect(q.mayPunctuate(50)).toBe(1);
    expect(fired).toEqual([3, 10, 47, 50]);
  });

  it('wall clock: first one interval after schedule(), then every interval from there', () => {
    const q = new PunctuationQueue('wall-clock');
    const fired: number[] = [];
    q.schedule(100, (t) => fired.push(t), 1_000);
    expect(q.nextDue()).toBe(1_100);
    expect(q.mayPunctuate(1_099)).toBe(0);
    expect(q.mayPunctuate(1_105)).toBe(1);
    expect(q.nextDue()).toBe(1_200);
    expect(q.mayPunctuate(1_550)).toBe(1); // a stalled timer: one firing, then the next boundary
    expect(q.nextDue()).toBe(1_600);
    expect(fired).toEqual([1_105, 1_550]);
  });

  it('fires in due order; cancel stops a punctuator, also from inside another one in the same check', () => {
    const q = new PunctuationQueue('wall-clock');
    const order: string[] = [];
    const b = q.schedule(20, () => order.push('b'), 0);
    q.schedule(
      10,
      () => {
        order.push('a');
        b.cancel();
      },
      0,
    );
    const c = q.schedule(30, () => order.push('c'), 0);
    q.mayPunctuate(100);
    expect(order).toEqual(['a', 'c']); // b was due too but cancelled by a
    c.cancel();
    q.mayPunctuate(1_000);
    expect(order).toEqual(['a', 'c', 'a']);
    expect(q.size).toBe(1);
  });

  it('a punctuator may cancel itself; one scheduled by a callback waits for the next check', () => {
    const q = new PunctuationQueue('stream-time');
    let n = 0;
    const self = q.schedule(5, () => {
      n++;
      self.cancel();
      q.schedule(5, () => (n += 100));
    });
    expect(q.mayPunctuate(0)).toBe(1);
    expect(n).toBe(1);
    expect(q.mayPunctuate(0)).toBe(1); // the new one, due at 0
    expect(n).toBe(101);
    expect(q.mayPunctuate(100)).toBe(1);
    expect(n).toBe(201);
  });

  it('refuses bad intervals and callbacks', () => {
    const q = new PunctuationQueue('stream-time');
    expect(() => q.schedule(0, () => {})).toThrow(/interval/);
    expect(() => q.schedule(1.5, () => {})).toThrow(/interval/);
    expect(() => q.schedule(Number.NaN, () => {})).toThrow(/interval/);
    expect(() => q.schedule(10, undefined as unknown as () => void)).toThrow(/function/);
  });

  it('nextDue skips missed boundaries', () => {
    expect(nextDue(0, 10, 5)).toBe(10);
    expect(nextDue(0, 10, 10)).toBe(20);
    expect(nextDue(0, 10, 39)).toBe(40);
    expect(nextDue(100, 7, 120)).toBe(121);
  });
});
