/**
 * The group coordinator's operator metrics (prom-client), created once per process on the service
 * shell's registry.
 *
 * Counters and the rebalance histogram come from what this instance's handlers and sweep report
 * (GroupEvent). Coordinators are stateless and several may serve one group, so each instance
 * counts the group epoch bumps it wrote; a rebalance is timed from a bump this instance wrote until
 * a state it wrote is reconciled (domain/group.ts isReconciled).
 *
 * Groups, members and committed offsets are read from the store at scrape time, at most once per
 * `statsIntervalMs` (a range read of the group keys and one of each group's offsets): every
 * instance reports the same cluster-wide values, so aggregate them with max(), not sum().
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { MetadataStore } from '@skein/common/store/types.js';
import { isReconciled, type GroupState } from '../domain/group.js';
import { GroupStore } from '../store/group-store.js';

/** What the group service reports for metrics (the group service's handlers and sweep); nothing there depends on who listens. */
export type GroupEvent =
  /** A group state this instance wrote (heartbeat, leave, sweep expiry). */
  | { type: 'group-saved'; before: GroupState | undefined; after: GroupState; nowMs: number }
  /** A CommitOffsets request answered: `reason` is the error's reason when it failed. */
  | { type: 'commit'; reason?: string };

interface GroupStats {
  groups: number;
  members: number;
  /** group → topic → sum of committed offsets. */
  committed: Map<string, Map<string, bigint>>;
}

/** Rebalances tracked at once; past it the oldest is forgotten (its duration not observed). */
const MAX_TRACKED_REBALANCES = 10_000;

export class CoordinatorMetrics {
  readonly rebalances: Counter;
  readonly rebalanceSeconds: Histogram;
  readonly commits: Counter;
  readonly commitErrors: Counter<'reason'>;
  private readonly rebalancing = new Map<string, number>();
  private stats: { at: number; value: Promise<GroupStats> } | undefined;
  private last: GroupStats = { groups: 0, members: 0, committed: new Map() };

  constructor(registry: Registry, private readonly source: { store: MetadataStore; prefix: string; nowMs?: () => number; statsIntervalMs?: number }) {
    const registers = [registry];
    const self = this;
    this.rebalances = new Counter({ name: 'skein_coordinator_rebalances_total', help: 'Group epoch bumps (a member joined, left, expired or changed its subscription) written by this instance', registers });
    this.rebalanceSeconds = new Histogram({
      name: 'skein_coordinator_rebalance_duration_seconds', help: 'Time from a group epoch bump until every member owns exactly its target partitions',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300], registers,
    });
    this.commits = new Counter({ name: 'skein_coordinator_offset_commits_total', help: 'CommitOffsets requests that committed', registers });
    this.commitErrors = new Counter({ name: 'skein_coordinator_offset_commit_errors_total', help: 'CommitOffsets requests refused or failed, by reason', labelNames: ['reason'], registers });
    new Gauge({
      name: 'skein_coordinator_groups', help: 'Consumer groups in the store (every instance reports all: use max())', registers,
      async collect() { this.set((await self.groupStats()).groups); },
    });
    new Gauge({
      name: 'skein_coordinator_members', help: 'Members of all consumer groups (every instance reports all: use max())', registers,
      async collect() { this.set((await self.groupStats()).members); },
    });
    new Gauge({
      name: 'skein_coordinator_committed_offset_sum', help: 'Per group and topic, the sum of its committed offsets (a topic\'s skein_broker_high_watermark_sum minus this is the group\'s lag)', labelNames: ['group', 'topic'], registers,
      async collect() {
        const s = await self.groupStats();
        this.reset();
        for (const [group, topics] of s.committed) for (const [topic, sum] of topics) this.set({ group, topic }, Number(sum));
      },
    });
  }

  record(e: GroupEvent): void {
    if (e.type === 'commit') {
      if (e.reason === undefined) this.commits.inc();
      else this.commitErrors.inc({ reason: e.reason });
      return;
    }
    const id = e.after.groupId;
    if (e.after.groupEpoch > (e.before?.groupEpoch ?? 0)) {
      this.rebalances.inc();
      if (!this.rebalancing.has(id)) {
        if (this.rebalancing.size >= MAX_TRACKED_REBALANCES) this.rebalancing.delete(this.rebalancing.keys().next().value!);
        this.rebalancing.set(id, e.nowMs);
      }
    }
    const started = this.rebalancing.get(id);
    if (started !== undefined && isReconciled(e.after)) {
      this.rebalancing.delete(id);
      this.rebalanceSeconds.observe(Math.max(0, e.nowMs - started) / 1000);
    }
  }

  /** The store-derived figures, refreshed at most once per interval; the last good ones if the store fails. */
  private groupStats(): Promise<GroupStats> {
    const now = (this.source.nowMs ?? Date.now)();
    if (!this.stats || now - this.stats.at >= (this.source.statsIntervalMs ?? 5_000)) {
      this.stats = { at: now, value: this.readStats().then((s) => (this.last = s), () => this.last) };
    }
    return this.stats.value;
  }

  private async readStats(): Promise<GroupStats> {
    const groups = new GroupStore(this.source.store, this.source.prefix);
    const list = await groups.listGroups();
    const committed = new Map<string, Map<string, bigint>>();
    let members = 0;
    for (const g of list) {
      members += Object.keys(g.members).length;
      const byTopic = new Map<string, bigint>();
      for (const o of await groups.fetchOffsets(g.groupId)) byTopic.set(o.topic, (byTopic.get(o.topic) ?? 0n) + o.offset);
      if (byTopic.size > 0) committed.set(g.groupId, byTopic);
    }
    return { groups: list.length, members, committed };
  }
}
