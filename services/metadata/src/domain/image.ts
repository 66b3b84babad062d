/**
 * The metadata image: an in-memory view of everything under the metadata prefix, rebuilt from a
 * store range and then kept current by replaying watch events in revision order (Kafka's
 * MetadataImage/MetadataDelta idea, with the store's revision as the offset). Only `replay*`
 * changes it; readers get protobuf views. Pure: no I/O.
 */

import type { Broker, ClusterMetadata, ControllerInfo, MetadataChange, PartitionState, Topic } from '@skein/proto/skein/metadata/v1/metadata.js';
import type { PartitionRecord } from './partition-state.js';
import {
  type BrokerDirectoryRecord,
  type BrokerRecord,
  type ControllerRecord,
  type MetadataKeys,
  type TopicRecord,
  decodeBroker,
  decodeBrokerDirectory,
  decodeController,
  decodePartition,
  decodeTopic,
} from './records.js';

export interface StoredKv {
  key: string;
  value: Buffer;
  createRevision: bigint;
  modRevision: bigint;
}

export interface Versioned<T> {
  record: T;
  modRevision: bigint;
}

export interface ControllerView {
  record: ControllerRecord;
  /** Create revision of the controller's election key: the controller epoch. */
  epoch: bigint;
  candidateKey: string;
}

export class MetadataImage {
  clusterId = '';
  revision = 0n;
  readonly brokers = new Map<number, Versioned<BrokerRecord>>();
  /** Durable per-broker data directory records (not leased: they outlive sessions). */
  readonly directories = new Map<number, Versioned<BrokerDirectoryRecord>>();
  readonly topics = new Map<string, Versioned<TopicRecord>>();
  readonly partitions = new Map<string, Map<number, Versioned<PartitionRecord>>>();
  private readonly candidates = new Map<string, { record: ControllerRecord; createRevision: bigint }>();

  constructor(private readonly keys: MetadataKeys) {}

  static fromSnapshot(keys: MetadataKeys, kvs: readonly StoredKv[], revision: bigint): MetadataImage {
    const image = new MetadataImage(keys);
    for (const kv of kvs) image.replayPut(kv);
    image.revision = revision;
    return image;
  }

  get controller(): ControllerView | undefined {
    let best: ControllerView | undefined;
    for (const [candidateKey, c] of this.candidates) {
      if (!best || c.createRevision < best.epoch) best = { record: c.record, epoch: c.createRevision, candidateKey };
    }
    return best;
  }

  liveBrokerIds(): Set<number> {
    return new Set(this.brokers.keys());
  }

  /** Partitions of the topic's assignment that have no state key yet (see TopicRecord.assignment). */
  missingPartitionStates(topic: string): number[] {
    const record = this.topics.get(topic)?.record;
    if (!record) return [];
    const states = this.partitionsOf(topic);
    const missing: number[] = [];
    for (let p = 0; p < record.assignment.length; p++) if (!states.has(p)) missing.push(p);
    return missing;
  }

  partitionsOf(topic: string): Map<number, Versioned<PartitionRecord>> {
    return this.partitions.get(topic) ?? new Map();
  }

  /** Applies a put; returns the client-visible changes it causes. */
  replayPut(kv: StoredKv): MetadataChange[] {
    if (kv.modRevision > this.revision) this.revision = kv.modRevision;
    if (kv.key === this.keys.clusterId()) {
      this.clusterId = kv.value.toString('utf8');
      return [];
    }
    const parsed = this.keys.parse(kv.key);
    if (!parsed) return [];
    switch (parsed.kind) {
      case 'broker': {
        const record = decodeBroker(kv.value);
        this.brokers.set(parsed.brokerId, { record, modRevision: kv.modRevision });
        return [{ change: { $case: 'brokerRegistered', value: brokerView(record) } }];
      }
      case 'directory':
        // Internal to the controller: no client-visible change.
        this.directories.set(parsed.brokerId, { record: decodeBrokerDirectory(kv.value), modRevision: kv.modRevision });
        return [];
      case 'topic': {
        const record = decodeTopic(kv.value);
        this.topics.set(parsed.name, { record, modRevision: kv.modRevision });
        if (!this.partitions.has(parsed.name)) this.partitions.set(parsed.name, new Map());
        return [{ change: { $case: 'topicChanged', value: this.topicView(parsed.name, false)! } }];
      }
      case 'partition': {
        const record = decodePartition(kv.value);
        let map = this.partitions.get(parsed.topic);
        if (!map) this.partitions.set(parsed.topic, (map = new Map()));
        map.set(parsed.partition, { record, modRevision: kv.modRevision });
        return [{
          change: {
            $case: 'partitionChanged',
            value: { topic: parsed.topic, topicId: record.topicId, state: partitionView(parsed.partition, record) },
          },
        }];
      }
      case 'election': {
        const before = this.controller;
        this.candidates.set(kv.key, { record: decodeController(kv.value), createRevision: kv.createRevision });
        return this.controllerChange(before);
      }
      default:
        return [];
    }
  }

  /** Applies a delete; returns the client-visible changes it causes. */
  replayDelete(key: string, modRevision: bigint): MetadataChange[] {
    if (modRevision > this.revision) this.revision = modRevision;
    const parsed = this.keys.parse(key);
    if (!parsed) return [];
    switch (parsed.kind) {
      case 'broker':
        if (!this.brokers.delete(parsed.brokerId)) return [];
        return [{ change: { $case: 'brokerUnregistered', value: parsed.brokerId } }];
      case 'directory':
        this.directories.delete(parsed.brokerId);
        return [];
      case 'topic': {
        const topic = this.topics.get(parsed.name);
        if (!topic) return [];
        this.topics.delete(parsed.name);
        this.partitions.delete(parsed.name);
        return [{ change: { $case: 'topicDeleted', value: { name: parsed.name, topicId: topic.record.topicId } } }];
      }
      case 'partition':
        // Partitions are only deleted with their topic; the topic delete reports it.
        this.partitions.get(parsed.topic)?.delete(parsed.partition);
        return [];
      case 'election': {
        const before = this.controller;
        this.candidates.delete(key);
        return this.controllerChange(before);
      }
      default:
        return [];
    }
  }

  private controllerChange(before: ControllerView | undefined): MetadataChange[] {
    const after = this.controller;
    if (before?.candidateKey === after?.candidateKey) return [];
    if (!after) return [];
    return [{ change: { $case: 'controllerChanged', value: controllerView(after) } }];
  }

  topicView(name: string, withPartitions = true): Topic | undefined {
    const topic = this.topics.get(name);
    if (!topic) return undefined;
    const states = this.partitionsOf(name);
    // A partition whose state key is not written yet shows its assignment with no leader.
    const partitions = withPartitions
      ? topic.record.assignment.map((replicas, p) => {
          const state = states.get(p);
          return state ? partitionView(p, state.record) : { partition: p, replicas: [...replicas], leaderId: -1, leaderEpoch: -1, isr: [], partitionEpoch: -1, targetReplicas: [] };
        })
      : [];
    return {
      name,
      topicId: topic.record.topicId,
      configs: { ...topic.record.configs },
      partitions,
      replicationFactor: topic.record.replicationFactor,
    };
  }

  clusterView(topicFilter?: readonly string[]): ClusterMetadata {
    const names = [...this.topics.keys()].sort();
    const wanted = topicFilter && topicFilter.length > 0 ? names.filter((n) => topicFilter.includes(n)) : names;
    const controller = this.controller;
    return {
      clusterId: this.clusterId,
      brokers: [...this.brokers.values()].map((b) => brokerView(b.record)).sort((a, b) => a.brokerId - b.brokerId),
      controller: controller ? controllerView(controller) : undefined,
      topics: wanted.map((n) => this.topicView(n)!),
      revision: this.revision,
    };
  }
}

export function brokerView(record: BrokerRecord): Broker {
  return { brokerId: record.brokerId, endpoint: { host: record.host, port: record.port }, rack: record.rack };
}

export function partitionView(partition: number, record: PartitionRecord): PartitionState {
  return {
    partition,
    replicas: [...record.replicas],
    leaderId: record.leaderId,
    leaderEpoch: record.leaderEpoch,
    isr: [...record.isr],
    partitionEpoch: record.partitionEpoch,
    targetReplicas: [...(record.targetReplicas ?? [])],
  };
}

export function controllerView(view: ControllerView): ControllerInfo {
  return {
    controllerId: view.record.instanceId,
    endpoint: { host: view.record.host, port: view.record.port },
    controllerEpoch: view.epoch,
  };
}
