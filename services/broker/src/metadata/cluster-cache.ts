/**
 * The broker's copy of the cluster metadata, fed by the metadata service's WatchMetadata stream
 * (a snapshot, then changes in revision order). It answers cluster-metadata requests (so any broker
 * is a bootstrap address) and tells the broker which partition replicas it must host: `apply`
 * returns the local assignment changes caused by a message. Pure: no I/O.
 */

import type {
  Broker,
  ClusterMetadata,
  ControllerInfo,
  MetadataChange,
  PartitionState,
  WatchMetadataResponse,
} from '@skein/proto/skein/metadata/v1/metadata.js';

export interface CachedTopic {
  name: string;
  topicId: string;
  configs: Record<string, string>;
  replicationFactor: number;
  partitions: Map<number, PartitionState>;
}

export interface LocalReplica {
  topic: string;
  topicId: string;
  partition: number;
  state: PartitionState;
  configs: Record<string, string>;
}

export interface AssignmentDelta {
  /** Replicas this broker hosts whose state or configs changed (or that are new). */
  upserts: LocalReplica[];
  /** Replicas this broker no longer hosts (topic deleted, or reassigned away). */
  deletes: Array<{ topic: string; topicId: string; partition: number }>;
}

export class ClusterCache {
  clusterId = '';
  revision = 0n;
  controller: ControllerInfo | undefined;
  readonly brokers = new Map<number, Broker>();
  readonly topics = new Map<string, CachedTopic>();

  constructor(readonly brokerId: number) {}

  apply(message: WatchMetadataResponse): AssignmentDelta {
    if (message.snapshot) {
      const before = this.localReplicas();
      this.load(message.snapshot);
      const after = this.localReplicas();
      const deletes = [...before.values()].filter((r) => {
        const now = after.get(replicaKey(r));
        return !now || now.topicId !== r.topicId;
      });
      const delta: AssignmentDelta = { upserts: [...after.values()], deletes: deletes.map(({ topic, topicId, partition }) => ({ topic, topicId, partition })) };
      this.revision = message.revision;
      for (const change of message.changes) this.merge(delta, this.applyChange(change));
      return delta;
    }
    const delta: AssignmentDelta = { upserts: [], deletes: [] };
    for (const change of message.changes) this.merge(delta, this.applyChange(change));
    if (message.revision > this.revision) this.revision = message.revision;
    return delta;
  }

  private merge(into: AssignmentDelta, from: AssignmentDelta): void {
    // Loops, not push(...array): a change can carry more replicas than the call stack holds arguments.
    for (const u of from.upserts) into.upserts.push(u);
    for (const d of from.deletes) into.deletes.push(d);
  }

  private load(snapshot: ClusterMetadata): void {
    this.clusterId = snapshot.clusterId;
    this.controller = snapshot.controller;
    this.brokers.clear();
    for (const b of snapshot.brokers) this.brokers.set(b.brokerId, b);
    this.topics.clear();
    for (const t of snapshot.topics) {
      this.topics.set(t.name, {
        name: t.name,
        topicId: t.topicId,
        configs: { ...t.configs },
        replicationFactor: t.replicationFactor,
        partitions: new Map(t.partitions.filter((p) => p.partitionEpoch >= 0).map((p) => [p.partition, p])),
      });
    }
  }

  private applyChange(change: MetadataChange): AssignmentDelta {
    const delta: AssignmentDelta = { upserts: [], deletes: [] };
    const c = change.change;
    if (!c) return delta;
    switch (c.$case) {
      case 'brokerRegistered':
        this.brokers.set(c.value.brokerId, c.value);
        break;
      case 'brokerUnregistered':
        this.brokers.delete(c.value);
        break;
      case 'controllerChanged':
        this.controller = c.value;
        break;
      case 'topicChanged': {
        const existing = this.topics.get(c.value.name);
        if (existing && existing.topicId !== c.value.topicId) {
          // Re-created under the same name: the old incarnation's replicas go.
          for (const p of existing.partitions.values()) {
            if (p.replicas.includes(this.brokerId)) delta.deletes.push({ topic: existing.name, topicId: existing.topicId, partition: p.partition });
          }
        }
        const topic: CachedTopic = existing && existing.topicId === c.value.topicId
          ? { ...existing, configs: { ...c.value.configs } }
          : { name: c.value.name, topicId: c.value.topicId, configs: { ...c.value.configs }, replicationFactor: c.value.replicationFactor, partitions: new Map() };
        this.topics.set(topic.name, topic);
        for (const p of topic.partitions.values()) {
          if (p.replicas.includes(this.brokerId)) delta.upserts.push(this.local(topic, p));
        }
        break;
      }
      case 'topicDeleted': {
        const topic = this.topics.get(c.value.name);
        if (!topic || topic.topicId !== c.value.topicId) break;
        this.topics.delete(c.value.name);
        for (const p of topic.partitions.values()) {
          if (p.replicas.includes(this.brokerId)) delta.deletes.push({ topic: topic.name, topicId: topic.topicId, partition: p.partition });
        }
        break;
      }
      case 'partitionChanged': {
        const topic = this.topics.get(c.value.topic);
        const state = c.value.state;
        if (!topic || !state || topic.topicId !== c.value.topicId) break;
        const previous = topic.partitions.get(state.partition);
        topic.partitions.set(state.partition, state);
        if (state.replicas.includes(this.brokerId)) delta.upserts.push(this.local(topic, state));
        else if (previous?.replicas.includes(this.brokerId)) delta.deletes.push({ topic: topic.name, topicId: topic.topicId, partition: state.partition });
        break;
      }
    }
    return delta;
  }

  private local(topic: CachedTopic, state: PartitionState): LocalReplica {
    return { topic: topic.name, topicId: topic.topicId, partition: state.partition, state, configs: topic.configs };
  }

  private localReplicas(): Map<string, LocalReplica> {
    const out = new Map<string, LocalReplica>();
    for (const topic of this.topics.values()) {
      for (const p of topic.partitions.values()) {
        if (p.replicas.includes(this.brokerId)) {
          const r = this.local(topic, p);
          out.set(replicaKey(r), r);
        }
      }
    }
    return out;
  }

  partition(topic: string, partition: number): { topic: CachedTopic; state: PartitionState } | undefined {
    const t = this.topics.get(topic);
    const state = t?.partitions.get(partition);
    return t && state ? { topic: t, state } : undefined;
  }

  /** The leader hint for not-leader errors. */
  leaderHint(topic: string, partition: number) {
    const found = this.partition(topic, partition);
    if (!found) return undefined;
    const broker = this.brokers.get(found.state.leaderId);
    return { leaderId: found.state.leaderId, leaderEndpoint: broker?.endpoint, leaderEpoch: found.state.leaderEpoch };
  }

  clusterView(topicFilter: readonly string[] = []): ClusterMetadata {
    const names = [...this.topics.keys()].sort();
    // A Set: the filter can list thousands of names (GetMetadata), checked against every topic.
    const filter = new Set(topicFilter);
    const wanted = topicFilter.length > 0 ? names.filter((n) => filter.has(n)) : names;
    return {
      clusterId: this.clusterId,
      brokers: [...this.brokers.values()].sort((a, b) => a.brokerId - b.brokerId),
      controller: this.controller,
      topics: wanted.map((name) => {
        const t = this.topics.get(name)!;
        return {
          name,
          topicId: t.topicId,
          configs: { ...t.configs },
          replicationFactor: t.replicationFactor,
          partitions: [...t.partitions.values()].sort((a, b) => a.partition - b.partition),
        };
      }),
      revision: this.revision,
    };
  }
}

function replicaKey(r: { topic: string; partition: number }): string {
  return `${r.topic}\u0000${r.partition}`;
}
