import { EventEmitter } from 'node:events';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { onShutdownSignal, SIGNAL_COALESCE_MS, type SignalHooks } from './shutdown.js';

/** A stand-in for `process`: signals are emitted by hand, exits are recorded. */
function fakeProcess() {
  const emitter = new EventEmitter();
  const exits: number[] = [];
  const hooks: SignalHooks = {
    on: (signal, handler) => emitter.on(signal, handler),
    exit: (code) => { exits.push(code); },
  };
  return { hooks, exits, signal: (s: NodeJS.Signals) => emitter.emit(s, s) };
}

describe('onShutdownSignal', () => {
  const logger = pino({ level: 'silent' });

  it('runs the stop once for a SIGINT and a SIGTERM together, then exits 0 when it finished', async () => {
    const proc = fakeProcess();
    let nowMs = 1_000;
    let stops = 0;
    let finish!: () => void;
    onShutdownSignal(logger, () => { stops++; return new Promise<void>((r) => { finish = r; }); }, () => nowMs, proc.hooks);

    proc.signal('SIGINT');
    nowMs += SIGNAL_COALESCE_MS - 1; // the supervisor's SIGTERM right behind Ctrl-C
    proc.signal('SIGTERM');
    expect(stops).toBe(1);
    expect(proc.exits).toEqual([]); // still stopping gracefully

    finish();
    await new Promise((r) => setImmediate(r));
    expect(proc.exits).toEqual([0]);
    expect(stops).toBe(1);
  });

  it('exits at once (code 1) on a signal later than the coalescing window while still stopping', () => {
    const proc = fakeProcess();
    let nowMs = 0;
    let stops = 0;
    onShutdownSignal(logger, () => { stops++; return new Promise<void>(() => {}); }, () => nowMs, proc.hooks);

    proc.signal('SIGTERM');
    nowMs += SIGNAL_COALESCE_MS;
    proc.signal('SIGTERM');
    expect(stops).toBe(1);
    expect(proc.exits).toEqual([1]);
  });

  it('exits 1 when the stop fails', async () => {
    const proc = fakeProcess();
    onShutdownSignal(logger, () => Promise.reject(new Error('close failed')), () => 0, proc.hooks);
    proc.signal('SIGTERM');
    await new Promise((r) => setImmediate(r));
    expect(proc.exits).toEqual([1]);
  });
});
