// Every process and temp dir a benchmark makes is registered here, so that a normal end, an error,
// Ctrl-C or SIGTERM all stop the same set of pids and remove the same dirs. Children are stopped by
// pid (SIGTERM, then SIGKILL after a grace period), never by name: other engineers' processes run
// on the same machine.
import { spawn, fork } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const live = new Map(); // pid -> { child, name }
const dirs = new Set();
const cleanups = []; // async functions for things started elsewhere (etcd from the test harness)
let cleaning;
let interrupted = false;

/** True once Ctrl-C or SIGTERM arrived: callers stop starting new work. */
export function isInterrupted() {
  return interrupted;
}

export function tempDir(prefix) {
  const d = mkdtempSync(join(tmpdir(), `skein-bench-${prefix}-`));
  dirs.add(d);
  return d;
}

export function removeDir(d) {
  rmSync(d, { recursive: true, force: true });
  dirs.delete(d);
}

export function livePids() {
  return [...live.keys()];
}

export function onCleanup(fn) {
  cleanups.push(fn);
}

function track(child, name) {
  live.set(child.pid, { child, name });
  child.once('exit', () => live.delete(child.pid));
  return child;
}

/** Spawns a process with stdout/stderr going to `logFile` (read back by `tail` for failures). */
export function spawnLogged(name, command, args, { logFile, env, cwd } = {}) {
  const child = spawn(command, args, { env: { ...process.env, ...env }, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  if (logFile) {
    const out = createWriteStream(logFile, { flags: 'a' });
    child.stdout.pipe(out);
    child.stderr.pipe(out);
  } else {
    child.stdout.resume();
    child.stderr.resume();
  }
  return track(child, name);
}

/** Forks a Node module with an IPC channel (bench workers, raw-limit sinks). */
export function forkTracked(name, modulePath, args = [], { execArgv = [], env } = {}) {
  const child = fork(modulePath, args, { execArgv, env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return track(child, name);
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
export function stopChild(child, graceMs = 5000) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => killPid(child.pid, 'SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    killPid(child.pid, 'SIGTERM');
  });
}

function killPid(pid, signal) {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

export function tail(file, lines = 30) {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Stops everything still registered (in reverse start order) and removes every temp dir. */
export function cleanupAll() {
  cleaning ??= (async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => undefined);
    await Promise.all([...live.values()].reverse().map(({ child }) => stopChild(child, 3000)));
    for (const d of [...dirs]) removeDir(d);
  })();
  return cleaning;
}

// Last resort on any exit path: no await possible here, so SIGKILL by pid and remove dirs synchronously.
process.once('exit', () => {
  for (const { child } of live.values()) killPid(child.pid, 'SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** For the orchestrating process only: Ctrl-C or SIGTERM stops what was started, then exits. */
export function installSignalHandlers() {
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      interrupted = true;
      console.error(`\n[bench] ${signal}: stopping ${live.size} process(es) and removing temp dirs`);
      void cleanupAll().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
    });
  }
}
