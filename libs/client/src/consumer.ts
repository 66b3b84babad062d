/**
 * A consumer in a group: heartbeats to the group coordinator (server-side assignment), releases
 * partitions it is told to give up (committing their positions first), starts reading newly
 * assigned ones from the group's committed offsets, and hands records to `eachMessage`. Offsets
 * are committed after the handler returns (at-least-once) on an interval and on revocation; pass
 * `autoCommit: false` and call `commit()` yourself for other guarantees.
 */
import * as grpc from '@grpc/grpc-js';
import { fromServiceError } from '@skein/common/errors.js';
import type { ConsumedRecord } from '@skein/common/records/record-batch.js';
import { OffsetSpec } from '@skein/proto/skein/broker/v1/broker.js';
import { GroupCoordinatorServiceClient, type TopicPartitions } from '@skein/proto/skein/group/v1/group.js';
import type { SkeinClient } from './client.js';

export interface ConsumerOptions {
  groupId: string;
  coordinator: string[];
  topics?: string[];
  topicRegex?: string;
  assignor?: 'uniform' | 'range' | 'roundrobin';
  /** Where to start when the group has no committed offset: 'earliest' (default) or 'latest'. */
  fromBeginning?: boolean;
  autoCommit?: boolean;
  autoCommitIntervalMs?: number;
  clientId?: string;
  onAssigned?: (partitions: string[]) => void;
  onRevoked?: (partitions: string[]) => void;
}

export interface Message extends ConsumedRecord {
  topic: string;
  partition: number;
}

const key = (topic: string, partition: number) => `${topic}:${partition}`;
const split = (k: string): [string, number] => {
  const i = k.lastIndexOf(':');
  return [k.slice(0, i), Number(k.slice(i + 1))];
};

export class GroupConsumer {
  private readonly coordinators: GroupCoordinatorServiceClient[];
  private memberId = '';
  private memberEpoch = 0;
  private owned = new Set<string>();
  private readonly positions = new Map<string, bigint>();
  private readonly committed = new Map<string, bigint>();
  private stopped = false;
  private next = 0;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private commitTimer: NodeJS.Timeout | undefined;
  private loop: Promise<void> | undefined;

  constructor(private readonly client: SkeinClient, private readonly options: ConsumerOptions) {
    this.coordinators = options.coordinator.map((a) => new GroupCoordinatorServiceClient(a, grpc.credentials.createInsecure()));
  }

  private call<Res>(method: string, req: object): Promise<Res> {
    // Any coordinator instance serves any group; rotate on failure.
    const c = this.coordinators[this.next % this.coordinators.length]!;
    return new Promise<Res>((resolve, reject) => {
      (c as unknown as Record<string, Function>)[method]!.call(c, req, new grpc.Metadata(), { deadline: Date.now() + 5000 }, (e: grpc.ServiceError | null, r: Res) => {
        if (e) { this.next++; reject(fromServiceError(e)); } else resolve(r);
      });
    });
  }

  private ownedPartitions(): TopicPartitions[] {
    const byTopic = new Map<string, number[]>();
    for (const k of this.owned) {
      const [t, p] = split(k);
      byTopic.set(t, [...(byTopic.get(t) ?? []), p]);
    }
    return [...byTopic.entries()].map(([topic, partitions]) => ({ topic, partitions }));
  }

  private async heartbeat(leave = false): Promise<number> {
    const res = await this.call<{ memberId: string; memberEpoch: number; heartbeatIntervalMs: number; assignment: TopicPartitions[] }>('heartbeat', {
      groupId: this.options.groupId, memberId: this.memberId, memberEpoch: leave ? -1 : this.memberEpoch, clientId: this.options.clientId ?? 'skein-client',
      subscribedTopics: this.options.topics ?? [], subscribedTopicRegex: this.options.topicRegex ?? '', serverAssignor: this.options.assignor ?? 'uniform',
      ownedPartitions: this.ownedPartitions(),
    });
    if (leave) return 0;
    this.memberId = res.memberId;
    const assignment = new Set(res.assignment.flatMap((t) => t.partitions.map((p) => key(t.topic, p))));
    const revoked = [...this.owned].filter((k) => !assignment.has(k));
    if (revoked.length > 0) {
      // Commit what was processed before giving partitions up, so the next owner resumes there.
      if (this.options.autoCommit ?? true) await this.commit().catch(() => {});
      for (const k of revoked) { this.owned.delete(k); this.positions.delete(k); }
      this.options.onRevoked?.(revoked);
    }
    this.memberEpoch = res.memberEpoch;
    const added = [...assignment].filter((k) => !this.owned.has(k));
    if (added.length > 0) {
      const committed = await this.call<{ offsets: Array<{ topic: string; partition: number; offset: bigint }> }>('fetchOffsets', { groupId: this.options.groupId, partitions: [] });
      for (const k of added) {
        const [t, p] = split(k);
        const c = committed.offsets.find((o) => o.topic === t && o.partition === p);
        const start = c ? c.offset : await this.client.listOffset(t, p, this.options.fromBeginning === false ? OffsetSpec.OFFSET_SPEC_LATEST : OffsetSpec.OFFSET_SPEC_EARLIEST);
        this.positions.set(k, start);
        this.committed.set(k, start);
        this.owned.add(k);
      }
      this.options.onAssigned?.(added);
    }
    return res.heartbeatIntervalMs;
  }

  /** Commits the position of every owned partition that moved since the last commit. */
  async commit(): Promise<void> {
    const offsets = [...this.owned].filter((k) => this.positions.get(k) !== this.committed.get(k)).map((k) => {
      const [topic, partition] = split(k);
      return { topic, partition, offset: this.positions.get(k)!, metadata: '' };
    });
    if (offsets.length === 0) return;
    await this.call('commitOffsets', { groupId: this.options.groupId, memberId: this.memberId, memberEpoch: this.memberEpoch, offsets });
    for (const o of offsets) this.committed.set(key(o.topic, o.partition), o.offset);
  }

  /** Starts consuming; resolves once the first heartbeat is answered. */
  async run(eachMessage: (m: Message) => Promise<void> | void): Promise<void> {
    const interval = await this.heartbeat();
    const beat = () => {
      this.heartbeatTimer = setTimeout(() => {
        if (this.stopped) return;
        this.heartbeat().then((ms) => { if (!this.stopped) { clearTimeout(this.heartbeatTimer); this.heartbeatTimerMs = ms; beat(); } }, (err: { reason?: string }) => {
          // Fenced or forgotten (e.g. after a long pause): rejoin from scratch, as KIP-848 members do.
          if (err.reason === 'UNKNOWN_MEMBER' || err.reason === 'STALE_MEMBER_EPOCH') { this.memberEpoch = 0; this.owned.clear(); this.positions.clear(); }
          beat();
        });
      }, this.heartbeatTimerMs);
    };
    this.heartbeatTimerMs = interval;
    beat();
    if (this.options.autoCommit ?? true) this.commitTimer = setInterval(() => void this.commit().catch(() => {}), this.options.autoCommitIntervalMs ?? 1000);
    this.loop = (async () => {
      while (!this.stopped) {
        let got = 0;
        for (const k of [...this.owned]) {
          const [topic, partition] = split(k);
          const from = this.positions.get(k);
          if (from === undefined) continue;
          const { records } = await this.client.fetch(topic, partition, from, { maxWaitMs: 0 }).catch(() => ({ records: [] as ConsumedRecord[] }));
          for (const r of records) {
            if (!this.owned.has(k) || this.stopped) break;
            await eachMessage({ ...r, topic, partition });
            this.positions.set(k, r.offset + 1n);
            got++;
          }
        }
        if (got === 0) await new Promise((r) => setTimeout(r, 50));
      }
    })();
  }

  private heartbeatTimerMs = 1000;

  get assignment(): string[] {
    return [...this.owned].sort();
  }

  /** Commits, leaves the group (its partitions move at once), and stops. */
  async close(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.heartbeatTimer);
    clearInterval(this.commitTimer);
    await this.loop;
    if (this.options.autoCommit ?? true) await this.commit().catch(() => {});
    await this.heartbeat(true).catch(() => {});
    for (const c of this.coordinators) c.close();
  }
}
