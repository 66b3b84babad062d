/**
 * Window definitions and their arithmetic, pure (no I/O, no clock: "now" is always stream time,
 * the largest record timestamp a task has seen, as in Kafka Streams).
 *
 * A record is LATE for a window once stream time has passed the window's end plus its grace
 * period: `end + grace <= streamTime` means the window is closed, and a record that would only
 * update closed windows is dropped (and counted). Suppression emits a window's final result once
 * it is closed.
 */
import type { Window } from './serdes.js';

/** Tumbling (advance = size) and hopping (advance < size) windows: [start, start + size), starts at multiples of advance. */
export class TimeWindows {
  private constructor(
    readonly sizeMs: number,
    readonly advanceMs: number,
    readonly graceMs: number,
  ) {}

  static ofSizeWithNoGrace(sizeMs: number): TimeWindows {
    return TimeWindows.ofSizeAndGrace(sizeMs, 0);
  }

  static ofSizeAndGrace(sizeMs: number, graceMs: number): TimeWindows {
    if (!(sizeMs > 0) || !Number.isInteger(sizeMs)) throw new RangeError(`window size must be a positive integer of ms, got ${sizeMs}`);
    if (!(graceMs >= 0) || !Number.isInteger(graceMs)) throw new RangeError(`grace must be a non-negative integer of ms, got ${graceMs}`);
    return new TimeWindows(sizeMs, sizeMs, graceMs);
  }

  /** Hopping windows: a new window every `advanceMs` (0 < advance <= size). */
  advanceBy(advanceMs: number): TimeWindows {
    if (!(advanceMs > 0) || advanceMs > this.sizeMs || !Number.isInteger(advanceMs)) throw new RangeError(`advance must be in (0, size], got ${advanceMs}`);
    return new TimeWindows(this.sizeMs, advanceMs, this.graceMs);
  }

  /** Every window that contains `timestamp`, oldest first (windows start at 0 or later). */
  windowsFor(timestamp: number): Window[] {
    const out: Window[] = [];
    const lastStart = timestamp - (timestamp % this.advanceMs);
    for (let start = lastStart; start > timestamp - this.sizeMs && start >= 0; start -= this.advanceMs) out.unshift({ start, end: start + this.sizeMs });
    return out;
  }
}

/** Session windows: records of a key closer than `gapMs` to each other share a session [first, last]. */
export class SessionWindows {
  private constructor(
    readonly gapMs: number,
    readonly graceMs: number,
  ) {}

  static ofInactivityGapWithNoGrace(gapMs: number): SessionWindows {
    return SessionWindows.ofInactivityGapAndGrace(gapMs, 0);
  }

  static ofInactivityGapAndGrace(gapMs: number, graceMs: number): SessionWindows {
    if (!(gapMs > 0) || !Number.isInteger(gapMs)) throw new RangeError(`inactivity gap must be a positive integer of ms, got ${gapMs}`);
    if (!(graceMs >= 0) || !Number.isInteger(graceMs)) throw new RangeError(`grace must be a non-negative integer of ms, got ${graceMs}`);
    return new SessionWindows(gapMs, graceMs);
  }
}

/**
 * Sliding windows (Kafka's KIP-450): every window of `sizeMs` (both ends inclusive) that starts or
 * ends at a record of the key; an aggregate per distinct set of records in any such window.
 */
export class SlidingWindows {
  private constructor(
    readonly sizeMs: number,
    readonly graceMs: number,
  ) {}

  static ofTimeDifferenceAndGrace(sizeMs: number, graceMs: number): SlidingWindows {
    if (!(sizeMs > 0) || !Number.isInteger(sizeMs)) throw new RangeError(`time difference must be a positive integer of ms, got ${sizeMs}`);
    if (!(graceMs >= 0) || !Number.isInteger(graceMs)) throw new RangeError(`grace must be a non-negative integer of ms, got ${graceMs}`);
    return new SlidingWindows(sizeMs, graceMs);
  }

  static ofTimeDifferenceWithNoGrace(sizeMs: number): SlidingWindows {
    return SlidingWindows.ofTimeDifferenceAndGrace(sizeMs, 0);
  }
}

/** Stream-stream join windows: records join when their timestamps differ by at most `beforeMs`/`afterMs`. */
export class JoinWindows {
  private constructor(
    readonly beforeMs: number,
    readonly afterMs: number,
    readonly graceMs: number,
  ) {}

  static ofTimeDifferenceAndGrace(differenceMs: number, graceMs: number): JoinWindows {
    if (!(differenceMs >= 0) || !Number.isInteger(differenceMs))
      throw new RangeError(`time difference must be a non-negative integer of ms, got ${differenceMs}`);
    if (!(graceMs >= 0) || !Number.isInteger(graceMs)) throw new RangeError(`grace must be a non-negative integer of ms, got ${graceMs}`);
    return new JoinWindows(differenceMs, differenceMs, graceMs);
  }

  static ofTimeDifferenceWithNoGrace(differenceMs: number): JoinWindows {
    return JoinWindows.ofTimeDifferenceAndGrace(differenceMs, 0);
  }
}

/** Whether a window ending at `end` is closed at `streamTime` (late records for it are dropped). */
export const windowClosed = (end: number, graceMs: number, streamTime: number): boolean => end + graceMs <= streamTime;

/**
 * Sliding windows touched by a record at `t` among the key's other record timestamps `others`
 * (all within reach), per Kafka's KIP-450: the window ending at t ([t - size, t]); a window
 * starting just after each earlier record within reach whose window would contain t
 * ([r + 1, r + 1 + size] for r in [t - size, t)); and the window starting at t + 1 if some later
 * record falls within (t, t + 1 + size] — plus the windows ending at later records that now
 * contain t. Returned de-duplicated and sorted by start.
 */
export function slidingWindowsFor(t: number, sizeMs: number, others: readonly number[]): Window[] {
  const all = [...others, t];
  const wins = new Map<number, Window>();
  const add = (from: number) => {
    // Near time 0 the window ending at a record is [0, size], as in Kafka.
    const start = Math.max(0, from);
    if (start <= t && t <= start + sizeMs) wins.set(start, { start, end: start + sizeMs });
  };
  // Windows ending at each record (the window of records up to it), and starting right after each
  // record (the window of records after it); only those containing t change.
  for (const r of all) {
    add(r - sizeMs);
    add(r + 1);
  }
  // A window is only worth keeping if some record lies in it.
  return [...wins.values()].filter((w) => all.some((r) => r >= w.start && r <= w.end)).sort((a, b) => a.start - b.start);
}
