/**
 * Punctuation: callbacks a processor schedules on its task's stream time or on the wall clock
 * (Kafka Streams' `ProcessorContext.schedule`). Pure: the task says what time it is; nothing here
 * reads a clock or sets a timer.
 *
 * Semantics are Kafka's (PunctuationQueue / PunctuationSchedule):
 *  - stream-time: the first punctuation is due at 0 (aligned to 0, so it fires at the first check
 *    with a known stream time), then at each multiple of the interval. Stream time only moves with
 *    records, so a punctuator fires only when a record moves stream time to or past its next
 *    boundary.
 *  - wall-clock: the first punctuation is due one interval after schedule(), then every interval
 *    from there.
 *  - Either way a punctuator fires AT MOST ONCE per check, however many boundaries were skipped
 *    (a jump in stream time, a stalled timer); the next one is due at the first boundary after the
 *    current time. The callback gets the current time (stream time or wall-clock time), not the
 *    boundary.
 *  - cancel() stops future firings, also from inside a callback (its own or another's); a
 *    punctuator cancelled earlier in the same check does not fire.
 *  - Punctuators scheduled by a callback wait for the next check.
 * The schedule is not rolled back by an aborted transaction (Kafka's is not either): a punctuation
 * whose outputs were aborted is not repeated.
 */

export type PunctuationType = 'stream-time' | 'wall-clock';

export type Punctuator = (timestamp: number) => void;

/** What schedule() returns: cancel() stops further punctuations. */
export interface Cancellable {
  cancel(): void;
}

interface Entry {
  readonly seq: number;
  readonly intervalMs: number;
  readonly callback: Punctuator;
  /** Time at or after which it fires next. */
  due: number;
  cancelled: boolean;
}

/** Most punctuators one queue holds: each costs work on every check. */
export const MAX_PUNCTUATORS = 1000;

/** One task's punctuators of one type, ordered by due time (then by scheduling order). */
export class PunctuationQueue {
  private entries: Entry[] = [];
  private seq = 0;

  constructor(readonly type: PunctuationType) {}

  /**
   * Schedules `callback` every `intervalMs`. `nowMs` is the wall-clock time for a wall-clock
   * punctuator (its first firing is one interval later); ignored for stream time (aligned to 0).
   */
  schedule(intervalMs: number, callback: Punctuator, nowMs = 0): Cancellable {
    if (!Number.isSafeInteger(intervalMs) || intervalMs < 1) throw new RangeError(`punctuation interval must be a whole number of ms >= 1, got ${intervalMs}`);
    if (typeof callback !== 'function') throw new TypeError('punctuation callback must be a function');
    this.entries = this.entries.filter((e) => !e.cancelled);
    if (this.entries.length >= MAX_PUNCTUATORS) throw new RangeError(`a task holds at most ${MAX_PUNCTUATORS} ${this.type} punctuators`);
    const entry: Entry = { seq: this.seq++, intervalMs, callback, due: this.type === 'stream-time' ? 0 : nowMs + intervalMs, cancelled: false };
    this.entries.push(entry);
    return {
      cancel: () => {
        entry.cancelled = true;
      },
    };
  }

  /** When the earliest live punctuator is due (undefined: none). */
  nextDue(): number | undefined {
    let min: number | undefined;
    for (const e of this.entries) if (!e.cancelled && (min === undefined || e.due < min)) min = e.due;
    return min;
  }

  get size(): number {
    return this.entries.filter((e) => !e.cancelled).length;
  }

  /**
   * Fires every punctuator due at `now` (due <= now), each once, in due order; returns how many
   * fired. A callback's exception propagates (the task fails, as for a processing error); the
   * punctuators not reached stay due.
   */
  mayPunctuate(now: number): number {
    if (!Number.isFinite(now) || now < 0) return 0; // stream time is unknown until the first record
    const due = this.entries.filter((e) => !e.cancelled && e.due <= now).sort((a, b) => a.due - b.due || a.seq - b.seq);
    let fired = 0;
    for (const e of due) {
      if (e.cancelled) continue;
      e.due = nextDue(e.due, e.intervalMs, now);
      fired++;
      e.callback(now);
    }
    if (due.length > 0) this.entries = this.entries.filter((e) => !e.cancelled);
    return fired;
  }
}

/** The first boundary `due + k * interval` (k >= 1) after `now`: missed boundaries are skipped, not replayed. */
export function nextDue(due: number, intervalMs: number, now: number): number {
  const next = due + intervalMs;
  if (now < next) return next;
  return due + (Math.floor((now - due) / intervalMs) + 1) * intervalMs;
}
