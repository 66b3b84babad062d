/**
 * Time, injected: the one Clock/Timers abstraction of every service. Domain code and the data
 * path ask a Clock for the time and a Timers for delays, so tests can run them on a manual clock
 * and production on the real one. (The metadata store's `Clock` in store/types.ts predates this
 * and is kept for its backends.)
 */
export interface Clock {
  nowMs(): number;
}

export interface Timers {
  /** Calls `fn` after `ms`; returns a function that cancels it. */
  setTimeout(fn: () => void, ms: number): () => void;
  /** Calls `fn` every `ms`; returns a function that cancels it. */
  setInterval(fn: () => void, ms: number): () => void;
}

export const systemClock: Clock = { nowMs: () => Date.now() };

export const systemTimers: Timers = {
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
  setInterval(fn, ms) {
    const t = setInterval(fn, ms);
    t.unref();
    return () => clearInterval(t);
  },
};

/** Resolves after `ms` on `timers`. */
export function sleep(ms: number, timers: Timers = systemTimers): Promise<void> {
  return new Promise((resolve) => { timers.setTimeout(resolve, ms); });
}

/**
 * A clock and timers that move only when told (tests): `advance(ms)` moves time and runs every
 * timer due by then, in due order, and returns how many ran.
 */
export class ManualTimers implements Clock, Timers {
  private readonly pending: Array<{ at: number; fn: () => void; every?: number }> = [];

  constructor(private now = 0) {}

  nowMs(): number {
    return this.now;
  }

  /** Delays of the timers now pending, from now (what a retry is waiting for). */
  get pendingDelaysMs(): number[] {
    return this.pending.map((t) => t.at - this.now);
  }

  setTimeout(fn: () => void, ms: number): () => void {
    const timer = { at: this.now + Math.max(0, ms), fn };
    this.pending.push(timer);
    return () => this.cancel(timer);
  }

  setInterval(fn: () => void, ms: number): () => void {
    const timer = { at: this.now + Math.max(1, ms), fn, every: Math.max(1, ms) };
    this.pending.push(timer);
    return () => this.cancel(timer);
  }

  advance(ms: number): number {
    const until = this.now + ms;
    let ran = 0;
    for (;;) {
      const due = this.pending.filter((t) => t.at <= until).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.now = due.at;
      if (due.every) due.at += due.every;
      else this.cancel(due);
      due.fn();
      ran++;
    }
    this.now = until;
    return ran;
  }

  private cancel(timer: object): void {
    const i = this.pending.indexOf(timer as (typeof this.pending)[number]);
    if (i >= 0) this.pending.splice(i, 1);
  }
}
