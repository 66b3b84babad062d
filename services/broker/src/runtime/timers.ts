/**
 * Time, injected. Domain code and the data path ask a Clock for the time and a Timers for delays,
 * so tests can run them on a manual clock and production on the real one.
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
