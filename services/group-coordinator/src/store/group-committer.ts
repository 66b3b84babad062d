/**
 * Group commit, the I/O shell: offset commits arriving at this coordinator instance, from any
 * member of any group, wait in one queue; a flush takes the queue (up to `maxFlushWrites` offsets),
 * and while it runs the next commits queue up, so under load each flush carries many commits and
 * the store sees a few transactions per flush instead of one per commit. An idle coordinator
 * flushes a lone commit at once (on the next turn of the event loop).
 *
 * One flush at a time: commits to one offset key are applied in arrival order, and a commit is
 * answered only once its offsets are durable in the store.
 *
 * A flush (see commit-batch.ts for the rules):
 *   1. guards: each group's state and the group key's revision, from a cache of guards read
 *      earlier or from the store. A cached guard may be stale: that can only make a transaction
 *      lose its compare (never let a fenced commit through); and before a commit is refused on a
 *      cached guard, the guard is read again, so refusals are decided on the store's current state.
 *   2. validate every commit; refuse the fenced ones (STALE_MEMBER_EPOCH, UNKNOWN_MEMBER,
 *      GROUP_NOT_EMPTY) one by one;
 *   3. pack the rest into transactions within the store's limits; run them concurrently;
 *   4. answer each commit whose offsets all landed; for a transaction that lost its compare, read
 *      its groups again, isolate the ones whose key did change, and queue its commits again, ahead
 *      of newer ones (at most `maxAttempts` times, then CONCURRENT_MODIFICATION, retriable).
 *
 * A store error in a transaction fails the commits with offsets in it (with that error, as a lone
 * commit would); a failed guard read fails the whole flush.
 */
import { SkeinError } from '@skein/common/errors.js';
import { emptyGroup, trackEmptiness, type GroupState } from '../domain/group.js';
import { planTxns, validateBatch, writeTooLarge, type GroupGuard, type KeyWrite, type PlannedTxn, type QueuedCommit, type TxnLimits } from './commit-batch.js';
import type { CommittedOffset, GroupStore } from './group-store.js';

export interface GroupCommitterOptions {
  limits: TxnLimits;
  nowMs: () => number;
  /** Offsets one flush takes from the queue at most (it then runs several transactions at once). Default 32 × maxTxnOps. */
  maxFlushWrites?: number;
  /** Flushes a commit may take part in before it is answered CONCURRENT_MODIFICATION. Default 10. */
  maxAttempts?: number;
  /** Groups whose guard is remembered between flushes (least recently used forgotten first). Default 10,000. */
  maxCachedGroups?: number;
  /** Runs the flush soon; setImmediate by default, so commits decoded in one turn share it. */
  schedule?: (fn: () => void) => void;
}

export interface CommitRequest {
  groupId: string;
  memberId: string;
  memberEpoch: number;
  offsets: readonly CommittedOffset[];
}

/** Counts since start, for tests and the benchmark. */
export interface GroupCommitterStats {
  /** Commits answered OK. */
  committed: number;
  /** Commits refused on their group's state (fenced). */
  refused: number;
  flushes: number;
  /** Store transactions run, and how many of them lost a compare. */
  txns: number;
  lostCompares: number;
  /** Guards read from the store (a get of a group key each). */
  guardReads: number;
}

interface Pending extends QueuedCommit {
  attempts: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

type Outcome =
  | { kind: 'ok' }
  /** Lost a compare (or did not run because a transaction it depends on did not succeed). */
  | { kind: 'lost'; compared: ReadonlyArray<{ groupId: string; revision: bigint }> }
  | { kind: 'error'; error: unknown };

export class GroupCommitter {
  readonly stats: GroupCommitterStats = { committed: 0, refused: 0, flushes: 0, txns: 0, lostCompares: 0, guardReads: 0 };
  private readonly limits: TxnLimits;
  private readonly maxFlushWrites: number;
  private readonly maxAttempts: number;
  private readonly maxCachedGroups: number;
  private readonly schedule: (fn: () => void) => void;
  private queue: Pending[] = [];
  private flushing = false;
  private seq = 0;
  /** groupId → guard, in least-recently-used order. */
  private readonly cache = new Map<string, GroupGuard>();
  /** Groups whose key changed under a transaction: they get transactions of their own until one succeeds. */
  private readonly isolate = new Set<string>();

  constructor(private readonly groups: GroupStore, private readonly options: GroupCommitterOptions) {
    if (!(options.limits.maxTxnOps >= 2)) throw new Error(`maxTxnOps must be at least 2 (a group's creation and one offset), got ${options.limits.maxTxnOps}`);
    this.limits = options.limits;
    this.maxFlushWrites = options.maxFlushWrites ?? 32 * options.limits.maxTxnOps;
    this.maxAttempts = options.maxAttempts ?? 10;
    this.maxCachedGroups = options.maxCachedGroups ?? 10_000;
    this.schedule = options.schedule ?? ((fn) => void setImmediate(fn));
  }

  /**
   * Resolves once every offset is stored, guarded by the group state it was validated against;
   * rejects with the reason a lone commit would get (INVALID_REQUEST for an offset too large to
   * store at all).
   */
  commit(request: CommitRequest): Promise<void> {
    const writes = request.offsets.map((o) => this.groups.offsetWrite(request.groupId, o));
    const groupKey = this.groups.groupKeyOf(request.groupId);
    let create: KeyWrite | undefined;
    for (const [i, w] of writes.entries()) {
      // A write under a quarter of the bound always fits beside its group's compare and creation
      // (group ids are at most 255 characters): skip building the creation for the usual small offset.
      if (w.key.length + w.value.length < this.limits.maxTxnBytes / 4) continue;
      create ??= this.createWrite(request.groupId).write;
      const problem = writeTooLarge(this.limits, groupKey, create, w);
      const o = request.offsets[i]!;
      if (problem) return Promise.reject(new SkeinError('INVALID_REQUEST', `${o.topic}-${o.partition}: ${problem}`, { metadata: { topic: o.topic, partition: String(o.partition) } }));
    }
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ ...request, seq: this.seq++, writes, remaining: new Set(writes.map((w) => w.key)), attempts: 0, resolve, reject });
      if (!this.flushing) {
        this.flushing = true;
        this.schedule(() => void this.flush());
      }
    });
  }

  private createWrite(groupId: string): { state: GroupState; write: KeyWrite } {
    const state = trackEmptiness(emptyGroup(groupId), this.options.nowMs());
    return { state, write: this.groups.groupWrite(groupId, state) };
  }

  private async flush(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.take();
        this.stats.flushes++;
        try {
          await this.round(batch);
        } catch (err) {
          // Only a failed guard read gets here, before any commit of the batch was answered or queued again.
          for (const c of batch) c.reject(err);
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  /** The oldest commits, up to maxFlushWrites offsets (at least one commit). */
  private take(): Pending[] {
    let writes = 0;
    let n = 0;
    while (n < this.queue.length && (n === 0 || writes + this.queue[n]!.remaining.size <= this.maxFlushWrites)) writes += this.queue[n++]!.remaining.size;
    return this.queue.splice(0, n);
  }

  private remember(groupId: string, guard: GroupGuard): void {
    this.cache.delete(groupId);
    this.cache.set(groupId, guard);
    if (this.cache.size > this.maxCachedGroups) this.cache.delete(this.cache.keys().next().value!);
  }

  /** Reads the guards of `ids` from the store into `into` (and the cache). */
  private async read(ids: readonly string[], into: Map<string, GroupGuard>, fresh: Set<string>): Promise<void> {
    this.stats.guardReads += ids.length;
    const loaded = await Promise.all(ids.map((id) => this.groups.loadState(id)));
    ids.forEach((id, i) => {
      into.set(id, loaded[i]!);
      fresh.add(id);
      this.remember(id, loaded[i]!);
    });
  }

  private async round(batch: Pending[]): Promise<void> {
    const ids = [...new Set(batch.map((c) => c.groupId))];
    const guards = new Map<string, GroupGuard>();
    const fresh = new Set<string>();
    for (const id of ids) {
      const cached = this.cache.get(id);
      if (cached) guards.set(id, cached);
    }
    await this.read(ids.filter((id) => !guards.has(id)), guards, fresh);
    let decision = validateBatch(batch, guards);
    // Refuse only on a guard read now: a cached one may predate the member's newer epoch.
    const doubtful = [...new Set(decision.rejected.map((r) => r.commit.groupId).filter((id) => !fresh.has(id)))];
    if (doubtful.length > 0) {
      await this.read(doubtful, guards, fresh);
      decision = validateBatch(batch, guards);
    }
    for (const { commit, problem } of decision.rejected) {
      this.stats.refused++;
      commit.reject(new SkeinError(problem.reason, problem.message, { metadata: problem.metadata }));
    }
    if (decision.accepted.length === 0) return;

    const created = new Map<string, GroupState>();
    const plan = planTxns(decision.accepted, guards, {
      limits: this.limits,
      isolate: this.isolate,
      groupKey: (id) => this.groups.groupKeyOf(id),
      createWrite: (id) => {
        const { state, write } = this.createWrite(id);
        created.set(id, state);
        return write;
      },
    });
    const outcomes = await this.run(plan, guards, created);

    const landed = new Set<string>();
    const failed = new Map<string, unknown>();
    const lost = new Map<string, bigint>(); // group → the revision a losing transaction compared
    plan.forEach((t, i) => {
      const outcome = outcomes[i]!;
      if (outcome.kind === 'ok') {
        for (const w of t.writes) landed.add(w.key);
        for (const g of t.groups) this.isolate.delete(g);
      } else if (outcome.kind === 'error') {
        for (const w of t.writes) failed.set(w.key, outcome.error);
      } else {
        for (const c of outcome.compared) lost.set(c.groupId, c.revision);
      }
    });
    if (lost.size > 0) {
      // Find who moved: a group whose key changed is fenced off from the others' transactions next time.
      const reread = new Map<string, GroupGuard>();
      await this.read([...lost.keys()], reread, new Set()).catch(() => {
        for (const id of lost.keys()) this.cache.delete(id); // read again at the next flush
      });
      for (const [id, revision] of lost) if (reread.has(id) && reread.get(id)!.revision !== revision) this.isolate.add(id);
      if (this.isolate.size > this.maxCachedGroups) this.isolate.clear();
    }

    const retry: Pending[] = [];
    for (const commit of decision.accepted) {
      for (const w of commit.writes) if (landed.has(w.key)) commit.remaining.delete(w.key);
      const error = [...commit.remaining].map((k) => failed.get(k)).find((e) => e !== undefined);
      if (commit.remaining.size === 0) {
        this.stats.committed++;
        commit.resolve();
      } else if (error !== undefined) {
        commit.reject(error);
      } else if (++commit.attempts >= this.maxAttempts) {
        commit.reject(new SkeinError('CONCURRENT_MODIFICATION', `group ${commit.groupId} kept changing during the commit; retry`, { metadata: { group_id: commit.groupId } }));
      } else {
        retry.push(commit);
      }
    }
    this.queue.unshift(...retry);
  }

  /** Runs the planned transactions at once, each after the ones creating a group it also guards. */
  private run(plan: readonly PlannedTxn[], guards: ReadonlyMap<string, GroupGuard>, created: ReadonlyMap<string, GroupState>): Promise<Outcome[]> {
    const revisions = new Map([...guards].map(([id, g]) => [id, g.revision]));
    const results: Array<Promise<Outcome>> = [];
    for (const t of plan) {
      results.push((async (): Promise<Outcome> => {
        const comparing = () => t.groups.map((groupId) => ({ groupId, revision: revisions.get(groupId)! }));
        if (t.after.length > 0 && (await Promise.all(t.after.map((j) => results[j]!))).some((o) => o.kind !== 'ok')) return { kind: 'lost', compared: comparing() };
        const compared = comparing();
        this.stats.txns++;
        try {
          const res = await this.groups.guardedPut(compared, t.writes);
          if (!res.succeeded) {
            this.stats.lostCompares++;
            return { kind: 'lost', compared };
          }
          for (const id of t.creates) {
            revisions.set(id, res.revision);
            this.remember(id, { group: created.get(id), revision: res.revision });
          }
          return { kind: 'ok' };
        } catch (error) {
          return { kind: 'error', error };
        }
      })());
    }
    return Promise.all(results);
  }
}
