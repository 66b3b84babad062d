/**
 * Task status records (Kafka Connect's KafkaStatusBackingStore): the worker running a task writes
 * its state to the compacted status topic under `status-task-<connector>/<task>` whenever it
 * changes (RUNNING, PAUSED, FAILED with the error's trace, UNASSIGNED when it stops the task
 * because the task moved or was deleted). Every worker replays the topic to answer
 * GetConnectorStatus. A worker that dies leaves its last word (RUNNING) until the next owner
 * writes: `generation`-free last-writer-wins, as in Kafka Connect, with `updatedAtMs` to tell.
 *
 * Pure.
 */

import type { ClusterState, ConnectorRecord } from './cluster-state.js';

export type TaskState = 'UNASSIGNED' | 'RUNNING' | 'PAUSED' | 'FAILED';

export interface TaskStatusRecord {
  connector: string;
  task: number;
  state: TaskState;
  workerId: string;
  trace: string;
  updatedAtMs: number;
}

export const STATUS_TASK_PREFIX = 'status-task-';

export function taskStatusKey(connector: string, task: number): string {
  return `${STATUS_TASK_PREFIX}${connector}/${task}`;
}

export function encodeStatus(s: TaskStatusRecord): Buffer {
  return Buffer.from(JSON.stringify({ v: 1, ...s }));
}

export type StatusMap = ReadonlyMap<string, TaskStatusRecord>;

export function replayStatus(state: StatusMap, key: string, value: Buffer | null): StatusMap {
  if (!key.startsWith(STATUS_TASK_PREFIX)) return state;
  const next = new Map(state);
  if (value === null) {
    next.delete(key);
    return next;
  }
  try {
    const o = JSON.parse(value.toString('utf8')) as TaskStatusRecord & { v?: number };
    if (o.v !== 1) return state;
    next.set(key, { connector: o.connector, task: o.task, state: o.state, workerId: o.workerId, trace: o.trace ?? '', updatedAtMs: o.updatedAtMs ?? 0 });
  } catch {
    return state;
  }
  return next;
}

export interface ConnectorStatus {
  state: TaskState;
  tasks: TaskStatusRecord[];
}

/**
 * A connector's status: each task's last record (UNASSIGNED when none), and the connector's state
 * from them: PAUSED when paused, FAILED when any task failed, RUNNING when every task runs.
 */
export function connectorStatus(record: ConnectorRecord, statuses: StatusMap): ConnectorStatus {
  const tasks = record.tasks.map((_, task): TaskStatusRecord => {
    const s = statuses.get(taskStatusKey(record.name, task));
    return s ?? { connector: record.name, task, state: 'UNASSIGNED', workerId: '', trace: '', updatedAtMs: 0 };
  });
  let state: TaskState;
  if (tasks.some((t) => t.state === 'FAILED')) state = 'FAILED';
  else if (record.paused) state = 'PAUSED';
  else if (tasks.length > 0 && tasks.every((t) => t.state === 'RUNNING')) state = 'RUNNING';
  else state = 'UNASSIGNED';
  return { state, tasks };
}

/** Status keys of connectors that no longer exist (or tasks beyond their count): to tombstone. */
export function staleStatusKeys(state: ClusterState, statuses: StatusMap): string[] {
  const out: string[] = [];
  for (const [key, s] of statuses) {
    const r = state.get(s.connector);
    if (!r || s.task >= r.tasks.length) out.push(key);
  }
  return out;
}
