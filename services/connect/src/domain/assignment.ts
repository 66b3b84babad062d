/**
 * Which worker runs which task: task slots.
 *
 * The workers of a Connect cluster are the members of one consumer group (the group coordinator's
 * server-side, incremental assignment, KIP-848's model) subscribed to an internal topic whose
 * partitions are *task slots* (`connect-slots`, 32 partitions by default). A task belongs to the
 * slot `slotOf(connector, task)`; the worker that owns a slot runs every task hashed to it.
 *
 * Why slots rather than a Connect-specific rebalance protocol (Kafka's eager, then incremental
 * cooperative, KIP-415): the coordinator already gives exactly the guarantees Connect needs, and
 * they are tested there: a slot moves only after its old owner revoked it (so a task is never
 * started on a new worker while the old one still runs it, except when the old one is dead or cut
 * off, which exactly-once sources fence with transactional ids); a member whose session ends
 * (SIGKILL) loses its slots after the session grace; a new member takes a share (`uniform` is
 * sticky, so the others keep most of theirs); members whose slots do not move never stop. And the
 * hash keeps a task on its slot whatever else is created or deleted, so creating a connector never
 * moves the tasks of another. The cost: balance is by slots, not tasks (with 32 slots and a few
 * workers, close enough; raise --task-slots for many tasks), and a slot is fetched from, though it
 * stays empty (one idle long-poll per worker per fetch wait).
 *
 * Pure: FNV-1a over UTF-8, stable across processes and versions.
 */

import type { ClusterState } from './cluster-state.js';
import { taskRunKey } from './cluster-state.js';

/** 32-bit FNV-1a of a string's UTF-8 bytes. */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(text, 'utf8')) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** The slot of task `task` of `connector`, in 0 .. slots - 1. */
export function slotOf(connector: string, task: number, slots: number): number {
  return fnv1a(`${connector}/${task}`) % slots;
}

export interface DesiredTask {
  connector: string;
  task: number;
  /** Changes when the task must be restarted (new config, restart requested). */
  runKey: string;
  paused: boolean;
}

/** The tasks a worker owning `ownedSlots` should be running, by `connector/task`. */
export function desiredTasks(state: ClusterState, ownedSlots: ReadonlySet<number>, slots: number): Map<string, DesiredTask> {
  const out = new Map<string, DesiredTask>();
  for (const record of state.values()) {
    for (let task = 0; task < record.tasks.length; task++) {
      if (!ownedSlots.has(slotOf(record.name, task, slots))) continue;
      out.set(taskId(record.name, task), { connector: record.name, task, runKey: taskRunKey(record, task), paused: record.paused });
    }
  }
  return out;
}

export function taskId(connector: string, task: number): string {
  return `${connector}/${task}`;
}

export interface TaskChanges {
  /** Running tasks to stop: no longer desired, or desired with another run key. */
  stop: string[];
  /** Desired tasks not running (after the stops). */
  start: DesiredTask[];
  /** Running tasks whose pause state differs. */
  pause: string[];
  resume: string[];
}

/** What to change to get from the running tasks (id -> run key, paused) to the desired ones. */
export function reconcile(running: ReadonlyMap<string, { runKey: string; paused: boolean }>, desired: ReadonlyMap<string, DesiredTask>): TaskChanges {
  const changes: TaskChanges = { stop: [], start: [], pause: [], resume: [] };
  for (const [id, r] of running) {
    const d = desired.get(id);
    if (!d || d.runKey !== r.runKey) changes.stop.push(id);
    else if (d.paused && !r.paused) changes.pause.push(id);
    else if (!d.paused && r.paused) changes.resume.push(id);
  }
  for (const [id, d] of desired) {
    const r = running.get(id);
    if (!r || r.runKey !== d.runKey) changes.start.push(d);
  }
  return changes;
}
