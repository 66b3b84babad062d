/**
 * Standby tasks and local-state reporting: the client half of the `streams` assignor (KIP-1071).
 *
 * A standby task keeps a task's stores restored from their changelogs while another instance runs
 * the task, so that when it becomes this instance's active task only the tail since the last
 * fetch is replayed. It never processes input and never writes to a topic: it only fetches the
 * changelog partitions (read_committed under exactly_once, so an aborted transaction's records are
 * never applied) and writes what it read into the task's engine together with the new checkpoint,
 * in one atomic step, the same invariant as an active task's engine (state/store-engine.ts). So a
 * standby's state dir is indistinguishable from an active task's after a clean close, and a
 * restart reports it like any other local state.
 *
 * Offset sums. The coordinator places tasks where their state is: each member reports, per task it
 * holds state for, the sum of its stores' checkpoints (changelog offsets). All members read the
 * same changelogs, so a higher sum means less to restore.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { type SkeinClient, SkeinError } from '@skein/client';
import type { StoreEngine } from './state/store-engine.js';
import { checkpointKey } from './task.js';

export type StandbyEvent = { type: 'standby-assigned'; taskId: string } | { type: 'standby-revoked'; taskId: string; promoted: boolean };

export interface StandbyDeps {
  client: SkeinClient;
  isolationLevel: 'read_committed' | 'read_uncommitted';
  /** The task's changelogged stores with their changelog topics; none for a stateless or unknown task. */
  changelogs: (taskId: string) => Array<{ store: string; topic: string }>;
  openEngine: (taskId: string) => StoreEngine;
  emit: (e: StandbyEvent) => void;
  report: (err: unknown) => void;
  /** Told the offset sum a stopped (not promoted) standby leaves in its engine, before the engine closes. */
  left?: (taskId: string, sum: bigint | undefined) => void;
  /** How long a caught-up standby's fetch waits for new changelog records. */
  maxWaitMs?: number;
}

interface Standby {
  taskId: string;
  partition: number;
  engine: StoreEngine;
  stopped: boolean;
  /** Ends a backoff wait early when the standby stops. */
  wake: (() => void) | undefined;
  loop: Promise<void>;
}

const BACKOFF_MS = 500;

export const partitionOfTask = (taskId: string): number => Number(taskId.slice(taskId.lastIndexOf('_') + 1));

/** The offset sum of a task's engine: its stores' checkpoints added up; undefined when it has none. */
export function offsetSum(engine: StoreEngine, stores: readonly string[]): bigint | undefined {
  let sum: bigint | undefined;
  for (const s of stores) {
    const v = engine.meta(checkpointKey(s));
    if (v !== undefined) sum = (sum ?? 0n) + BigInt(v);
  }
  return sum;
}

/**
 * Offset sums of the task directories under `appDir` (`${stateDir}/${applicationId}`) whose names
 * are stateful task ids: read once at start, so a restarted instance is offered its old tasks.
 */
export async function scanLocalState(
  appDir: string,
  changelogs: StandbyDeps['changelogs'],
  open: (taskId: string) => StoreEngine,
): Promise<Map<string, bigint>> {
  const out = new Map<string, bigint>();
  let names: string[];
  try {
    names = readdirSync(appDir);
  } catch {
    return out; // no state yet
  }
  for (const name of names) {
    const stores = changelogs(name).map((c) => c.store);
    if (stores.length === 0) continue;
    const engine = open(name);
    try {
      const sum = offsetSum(engine, stores);
      if (sum !== undefined) out.set(name, sum);
    } finally {
      await engine.close();
    }
  }
  return out;
}

export const taskDir = (stateDir: string, applicationId: string, taskId: string) => join(stateDir, applicationId, taskId);

export class StandbyTasks {
  private readonly standbys = new Map<string, Standby>();

  constructor(private readonly deps: StandbyDeps) {}

  /** Standby task ids running now. */
  get taskIds(): string[] {
    return [...this.standbys.keys()].sort();
  }

  /** Runs exactly the `wanted` standbys: starts the new ones, stops (and closes) the others. */
  async update(wanted: readonly string[]): Promise<void> {
    const want = new Set(wanted.filter((t) => this.deps.changelogs(t).length > 0));
    for (const id of [...this.standbys.keys()]) {
      if (want.has(id)) continue;
      const s = await this.stop(id);
      if (s)
        this.deps.left?.(
          id,
          offsetSum(
            s.engine,
            this.deps.changelogs(id).map((c) => c.store),
          ),
        );
      await s?.engine.close();
      this.deps.emit({ type: 'standby-revoked', taskId: id, promoted: false });
    }
    for (const id of want) if (!this.standbys.has(id)) this.start(id);
  }

  /**
   * Stops the standby of a task that becomes active here and hands over its engine (stores at
   * their checkpoints): the active task restores only from there. Undefined if there was none.
   */
  async promote(taskId: string): Promise<StoreEngine | undefined> {
    const s = await this.stop(taskId);
    if (s) this.deps.emit({ type: 'standby-revoked', taskId, promoted: true });
    return s?.engine;
  }

  has(taskId: string): boolean {
    return this.standbys.has(taskId);
  }

  /** Offset sum per running standby. */
  offsetSums(): Map<string, bigint> {
    const out = new Map<string, bigint>();
    for (const s of this.standbys.values()) {
      const sum = offsetSum(
        s.engine,
        this.deps.changelogs(s.taskId).map((c) => c.store),
      );
      if (sum !== undefined) out.set(s.taskId, sum);
    }
    return out;
  }

  async closeAll(): Promise<void> {
    for (const id of [...this.standbys.keys()]) {
      const s = await this.stop(id);
      await s?.engine.close();
    }
  }

  private start(taskId: string): void {
    const s: Standby = {
      taskId,
      partition: partitionOfTask(taskId),
      engine: this.deps.openEngine(taskId),
      stopped: false,
      wake: undefined,
      loop: Promise.resolve(),
    };
    this.standbys.set(taskId, s);
    s.loop = this.follow(s).catch((err) => this.deps.report(err));
    this.deps.emit({ type: 'standby-assigned', taskId });
  }

  private async stop(taskId: string): Promise<Standby | undefined> {
    const s = this.standbys.get(taskId);
    if (!s) return undefined;
    this.standbys.delete(taskId);
    s.stopped = true;
    s.wake?.();
    await s.loop;
    return s;
  }

  /** Follows every changelog of the task from its checkpoint until stopped. */
  private async follow(s: Standby): Promise<void> {
    const changelogs = this.deps.changelogs(s.taskId);
    // With several stores the polls take turns, so each waits less.
    const maxWaitMs = Math.max(10, Math.floor((this.deps.maxWaitMs ?? 500) / changelogs.length));
    while (!s.stopped) {
      for (const { store, topic } of changelogs) {
        if (s.stopped) return;
        const from = BigInt(s.engine.meta(checkpointKey(store)) ?? '0');
        try {
          const res = await this.deps.client.fetch(topic, s.partition, from, { isolationLevel: this.deps.isolationLevel, maxBytes: 1 << 20, maxWaitMs });
          if (s.stopped) return;
          const last = res.records[res.records.length - 1];
          const next = res.nextOffset ?? (last ? last.offset + 1n : from);
          if (next > from)
            s.engine.write(
              res.records.map((r) => ({ store, key: r.key, value: r.value })),
              { [checkpointKey(store)]: String(next) },
            );
        } catch (err) {
          if ((err as SkeinError).reason === 'OFFSET_OUT_OF_RANGE') {
            // The changelog no longer has our position (re-created, or compacted past it): start over.
            await s.engine.wipe();
            continue;
          }
          this.deps.report(
            new SkeinError(
              (err as SkeinError).reason ?? 'INTERNAL',
              `standby ${s.taskId}: reading ${topic}-${s.partition} at ${from}: ${(err as Error).message}`,
              { cause: err },
            ),
          );
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, BACKOFF_MS);
            s.wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          s.wake = undefined;
        }
      }
    }
  }
}
