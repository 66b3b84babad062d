import { afterEach, describe, expect, it, vi } from 'vitest';
import { formatProgress, Progress, PROGRESS_INTERVAL_MS, shouldShowProgress, type ProgressContext } from './progress.js';

const terminal: ProgressContext = { stderrIsTTY: true, stdoutIsTTY: true, recordsOnStdout: false, disabled: false, term: 'xterm-256color' };

describe('shouldShowProgress', () => {
  it('shows progress on a terminal', () => {
    expect(shouldShowProgress(terminal)).toBe(true);
    // Produce piped from a file, stderr still on the terminal.
    expect(shouldShowProgress({ ...terminal, stdoutIsTTY: false })).toBe(true);
    // Consume redirected to a file: the records are not on screen, the progress is.
    expect(shouldShowProgress({ ...terminal, recordsOnStdout: true, stdoutIsTTY: false })).toBe(true);
  });

  it('stays quiet when stderr is piped or redirected, on a dumb terminal, or when switched off', () => {
    expect(shouldShowProgress({ ...terminal, stderrIsTTY: false })).toBe(false);
    expect(shouldShowProgress({ ...terminal, stderrIsTTY: false, stdoutIsTTY: false })).toBe(false);
    expect(shouldShowProgress({ ...terminal, term: 'dumb' })).toBe(false);
    expect(shouldShowProgress({ ...terminal, disabled: true })).toBe(false);
  });

  it('does not draw between records that scroll on the same terminal', () => {
    expect(shouldShowProgress({ ...terminal, recordsOnStdout: true, stdoutIsTTY: true })).toBe(false);
  });
});

describe('formatProgress', () => {
  it('says records, records/s, MB/s and MB in total', () => {
    expect(formatProgress('produced', 12_345, 6_400_000, 5000)).toBe('12,345 records produced  2,469 records/s  1.3 MB/s  6.4 MB');
    expect(formatProgress('consumed', 0, 0, 0)).toBe('0 records consumed  0 records/s  0.0 MB/s  0.0 MB');
  });
});

describe('Progress', () => {
  afterEach(() => vi.useRealTimers());

  it('redraws one line at most every 250 ms while enabled, and erases it on stop', () => {
    vi.useFakeTimers();
    let now = 0;
    const written: string[] = [];
    const p = new Progress('produced', true, { write: (s) => written.push(s) }, () => now);
    p.add(1000, 1_000_000);
    now = 100;
    vi.advanceTimersByTime(100);
    expect(written).toEqual([]);
    now = PROGRESS_INTERVAL_MS;
    vi.advanceTimersByTime(PROGRESS_INTERVAL_MS - 100);
    expect(written).toEqual(['\r\x1b[K1,000 records produced  4,000 records/s  4.0 MB/s  1.0 MB']);
    vi.advanceTimersByTime(10 * PROGRESS_INTERVAL_MS);
    expect(written).toHaveLength(11);
    p.stop();
    expect(written.at(-1)).toBe('\r\x1b[K');
    vi.advanceTimersByTime(10 * PROGRESS_INTERVAL_MS);
    expect(written).toHaveLength(12);
  });

  it('writes nothing at all when disabled', () => {
    vi.useFakeTimers();
    const written: string[] = [];
    const p = new Progress('consumed', false, { write: (s) => written.push(s) });
    p.add(5, 5);
    vi.advanceTimersByTime(10_000);
    p.stop();
    expect(written).toEqual([]);
  });
});
