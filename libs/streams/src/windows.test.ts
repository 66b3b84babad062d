import { describe, expect, it } from 'vitest';
import { slidingWindowsFor, TimeWindows, windowClosed } from './windows.js';

describe('TimeWindows', () => {
  it('tumbling: one window per record, aligned to the size', () => {
    const w = TimeWindows.ofSizeWithNoGrace(10);
    expect(w.windowsFor(0)).toEqual([{ start: 0, end: 10 }]);
    expect(w.windowsFor(9)).toEqual([{ start: 0, end: 10 }]);
    expect(w.windowsFor(10)).toEqual([{ start: 10, end: 20 }]);
  });

  it('hopping: every window of size starting at a multiple of advance that contains the record, none before 0', () => {
    const w = TimeWindows.ofSizeAndGrace(10, 0).advanceBy(5);
    expect(w.windowsFor(12)).toEqual([
      { start: 5, end: 15 },
      { start: 10, end: 20 },
    ]);
    expect(w.windowsFor(3)).toEqual([{ start: 0, end: 10 }]);
    // Property: for random times, exactly the windows with start <= t < end.
    for (let t = 0; t < 200; t += 7) {
      const got = w.windowsFor(t);
      for (const x of got) expect(x.start <= t && t < x.end && x.start % 5 === 0).toBe(true);
      const expected = [];
      for (let s = 0; s <= t; s += 5) if (t < s + 10) expected.push(s);
      expect(got.map((x) => x.start)).toEqual(expected);
    }
  });

  it('rejects bad sizes and advances', () => {
    expect(() => TimeWindows.ofSizeWithNoGrace(0)).toThrow(RangeError);
    expect(() => TimeWindows.ofSizeWithNoGrace(10).advanceBy(11)).toThrow(RangeError);
    expect(() => TimeWindows.ofSizeAndGrace(10, -1)).toThrow(RangeError);
  });
});

describe('window close', () => {
  it('a window is closed once stream time reaches end + grace', () => {
    expect(windowClosed(10, 5, 14)).toBe(false);
    expect(windowClosed(10, 5, 15)).toBe(true);
  });
});

describe('sliding windows', () => {
  it('windows containing the new record, ending at it or starting right after an earlier record', () => {
    // size 10, records at 0 and 5, new one at 8: [−2→0..]: [0-? ] windows [−2,8]→clipped? start must be >= 0
    const ws = slidingWindowsFor(8, 10, [0, 5]);
    for (const w of ws) expect(w.start <= 8 && 8 <= w.end && w.end - w.start === 10).toBe(true);
    expect(ws.map((w) => w.start)).toEqual([0, 1, 6]);
  });
});
