/**
 * Pausing a service process (SIGSTOP) and resuming it (SIGCONT), by pid. A paused process keeps its
 * sockets and its metadata session (until the TTL) but does nothing: the way to model a stalled
 * broker (GC pause, stuck disk) without the failure detector noticing at once. `resumeAll` continues
 * whatever is still paused (call it in afterAll before stopping, so SIGTERM can be handled);
 * SIGKILL works on a paused process too.
 */
import type { ServiceProcess } from './services.js';

const paused = new Set<number>();

export function pauseProcess(p: ServiceProcess): void {
  process.kill(p.pid, 'SIGSTOP');
  paused.add(p.pid);
}

export function resumeProcess(p: ServiceProcess): void {
  paused.delete(p.pid);
  process.kill(p.pid, 'SIGCONT');
}

export function isPaused(p: ServiceProcess): boolean {
  return paused.has(p.pid);
}

/** Continues every process this file paused and has not resumed (already exited ones are skipped). */
export function resumeAll(): void {
  for (const pid of [...paused]) {
    paused.delete(pid);
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // already gone
    }
  }
}
