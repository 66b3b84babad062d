/**
 * Live progress of long produce and consume runs: one line on stderr, redrawn in place at most
 * four times a second (records, records/s, MB/s, MB in total), for a person watching a terminal.
 * Nothing at all when no one is: a script, a pipe or a file sees the same output as before
 * (records on stdout, the final summary on stderr). The decision and the line are pure functions;
 * `Progress` is the small shell that owns the timer and the terminal.
 */

export interface ProgressContext {
  /** process.stderr.isTTY: where the line would be drawn. */
  stderrIsTTY: boolean;
  /** process.stdout.isTTY. */
  stdoutIsTTY: boolean;
  /** Whether the command prints records on stdout (consume) or not (produce). */
  recordsOnStdout: boolean;
  /** --no-progress. */
  disabled: boolean;
  /** TERM; "dumb" terminals cannot redraw a line. */
  term: string | undefined;
}

/**
 * Shown only on a terminal that can redraw a line, never when switched off, and for a command
 * that prints records only when those go elsewhere (`skein consume t > file`): records scrolling
 * on the terminal are their own progress, and a redrawn line would be torn between them.
 */
export function shouldShowProgress(ctx: ProgressContext): boolean {
  if (ctx.disabled || !ctx.stderrIsTTY || ctx.term === 'dumb') return false;
  return !(ctx.recordsOnStdout && ctx.stdoutIsTTY);
}

/** Redraws at most this often (ms). */
export const PROGRESS_INTERVAL_MS = 250;

const count = (n: number) => Math.round(n).toLocaleString('en-US');
const mb = (bytes: number) => (bytes / 1e6).toFixed(1);

/** "12,345 records  2,469 records/s  1.3 MB/s  6.4 MB" for `verb`ed records over `elapsedMs`. */
export function formatProgress(verb: string, records: number, bytes: number, elapsedMs: number): string {
  const seconds = Math.max(elapsedMs, 1) / 1000;
  return `${count(records)} records ${verb}  ${count(records / seconds)} records/s  ${mb(bytes / seconds)} MB/s  ${mb(bytes)} MB`;
}

/** Erase the current terminal line (carriage return, then ANSI "erase to end of line"). */
const CLEAR_LINE = '\r\x1b[K';

export class Progress {
  private records = 0;
  private bytes = 0;
  private readonly startMs: number;
  private readonly timer: NodeJS.Timeout | undefined;
  private drawn = false;

  constructor(
    private readonly verb: string,
    enabled: boolean,
    private readonly out: { write(s: string): unknown } = process.stderr,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.startMs = now();
    if (enabled) {
      this.timer = setInterval(() => this.draw(), PROGRESS_INTERVAL_MS);
      // Never what keeps the command alive.
      this.timer.unref();
    }
  }

  add(records: number, bytes: number): void {
    this.records += records;
    this.bytes += bytes;
  }

  private draw(): void {
    this.out.write(CLEAR_LINE + formatProgress(this.verb, this.records, this.bytes, this.now() - this.startMs));
    this.drawn = true;
  }

  /** Stops redrawing and erases the line, so the command's final summary starts on a clean line. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.drawn) this.out.write(CLEAR_LINE);
    this.drawn = false;
  }
}

/** The context of this process, for `shouldShowProgress`. */
export function processProgressContext(recordsOnStdout: boolean, disabled: boolean): ProgressContext {
  return { stderrIsTTY: process.stderr.isTTY === true, stdoutIsTTY: process.stdout.isTTY === true, recordsOnStdout, disabled, term: process.env.TERM };
}
