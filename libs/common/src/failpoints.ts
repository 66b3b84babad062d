/**
 * Failpoints: named places in the code where a crash test can stop, fail or stall the process at an
 * exact point instead of racing a random SIGKILL (FreeBSD's fail(9), TiKV's fail-rs, etcd's
 * gofail are the models).
 *
 * Configured once per process by `SKEIN_FAILPOINTS=name=action[,name=action...]`, read when this
 * module loads; tests that run in-process use `configureFailpoints()`. Actions:
 *   exit       SIGKILL the process at once: nothing flushes, no handler runs (a power cut for the
 *              process; the page cache survives, as after a real process crash)
 *   throw      throw a FailpointError (code FAILPOINT) from the call site
 *   sleep(ms)  block the whole thread for ms milliseconds (a stalled disk or a long GC pause:
 *              timers, sockets and leases all stall with it)
 *   off        nothing (lets a script switch one point off without editing the list)
 *
 * Cost when SKEIN_FAILPOINTS is unset: `failpoint(name)` tests one module-level boolean and returns;
 * bench/failpoints.js measured it no slower than calling an empty function (4.9 vs 5.4 ns per loop
 * iteration, loop included, 2026-12 on the 2-core CI machine). A malformed
 * SKEIN_FAILPOINTS stops the process at start-up with a message naming the bad entry, because a
 * crash test whose failpoint silently never fires passes for the wrong reason.
 */

import { writeSync } from 'node:fs';

export type FailpointAction =
  | { kind: 'off' }
  | { kind: 'exit' }
  | { kind: 'throw' }
  | { kind: 'sleep'; ms: number };

export class FailpointError extends Error {
  readonly code = 'FAILPOINT';
  constructor(readonly failpoint: string) {
    super(`failpoint ${failpoint} fired`);
    this.name = 'FailpointError';
  }
}

/** Names are dotted identifiers, `component.point` (e.g. `replica.afterAppend`). */
const NAME = /^[A-Za-z][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)+$/;
const SLEEP = /^sleep\((\d{1,9})\)$/;

/**
 * Parses `name=action[,name=action...]` (whitespace around entries ignored; a later entry for the
 * same name wins). Throws an Error naming the bad entry.
 */
export function parseFailpoints(spec: string): Map<string, FailpointAction> {
  const points = new Map<string, FailpointAction>();
  for (const raw of spec.split(',')) {
    const entry = raw.trim();
    if (entry === '') continue;
    const eq = entry.indexOf('=');
    if (eq < 0) throw new Error(`SKEIN_FAILPOINTS: "${entry}" is not name=action`);
    const name = entry.slice(0, eq).trim();
    const action = entry.slice(eq + 1).trim();
    if (!NAME.test(name)) throw new Error(`SKEIN_FAILPOINTS: "${name}" is not a failpoint name (component.point)`);
    points.set(name, parseAction(name, action));
  }
  return points;
}

function parseAction(name: string, action: string): FailpointAction {
  if (action === 'off' || action === 'exit' || action === 'throw') return { kind: action };
  const sleep = SLEEP.exec(action);
  if (sleep) return { kind: 'sleep', ms: Number(sleep[1]) };
  throw new Error(`SKEIN_FAILPOINTS: "${name}=${action}": the action must be exit, throw, sleep(ms) or off`);
}

let points: Map<string, FailpointAction> = new Map();
// The one check every call pays; true only while at least one point is not off.
let enabled = false;

/** Replaces the active failpoints (in-process tests); `''` or an empty map turns them all off. */
export function configureFailpoints(spec: string | Map<string, FailpointAction>): void {
  points = typeof spec === 'string' ? parseFailpoints(spec) : new Map(spec);
  enabled = [...points.values()].some((a) => a.kind !== 'off');
}

/** Marks a named point; does nothing unless SKEIN_FAILPOINTS (or configureFailpoints) names it. */
export function failpoint(name: string): void {
  if (!enabled) return;
  fire(name);
}

function fire(name: string): void {
  const action = points.get(name);
  if (action === undefined || action.kind === 'off') return;
  // Written synchronously to stderr so a test (and a person reading its log) sees where it stopped.
  writeSync(2, `failpoint ${name}: ${action.kind === 'sleep' ? `sleep(${action.ms})` : action.kind}\n`);
  switch (action.kind) {
    case 'exit':
      process.kill(process.pid, 'SIGKILL');
      // SIGKILL to oneself is delivered before kill(2) returns; block in case it is not yet.
      for (;;) blockFor(1000);
    case 'throw':
      throw new FailpointError(name);
    case 'sleep':
      blockFor(action.ms);
      return;
  }
}

function blockFor(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

const fromEnv = process.env.SKEIN_FAILPOINTS;
if (fromEnv !== undefined && fromEnv.trim() !== '') configureFailpoints(fromEnv);
