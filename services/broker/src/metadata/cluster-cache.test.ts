import { describe, expect, it } from 'vitest';
import type { PartitionState, Topic, WatchMetadataResponse } from '@skein/proto/skein/metadata/v1/metadata.js';
import { ClusterCache } from './cluster-cache.js';

const state = (partition: number, replicas: number[], leaderId = replicas[0]!, leaderEpoch = 0): PartitionState => ({
  partition, replicas, leaderId, leaderEpoch, isr: replicas, partitionEpoch: 0,
});
const topic = (name: string, topicId: string, partitions: PartitionState[]): Topic => ({ name, topicId, configs: {}, partitions, replicationFactor: partitions[0]?.replicas.length ?? 1 });
const snapshot = (topics: Topic[], revision = 10n): WatchMetadataResponse => ({
  snapshot: { clusterId: 'c', brokers: [{ brokerId: 1, endpoint: { host: 'h1', port: 1 }, rack: '' }], controller: undefined, topics, revision },
  changes: [],
  revision,
});

describe('ClusterCache', () => {
  it('reports the replicas a snapshot assigns to this broker', () => {
    const cache = new ClusterCache(1);
    const delta = cache.apply(snapshot([topic('a', 'ida', [state(0, [1, 2]), state(1, [2, 3])])]));
    expect(delta.upserts.map((u) => [u.topic, u.partition])).toEqual([['a', 0]]);
    expect(delta.deletes).toEqual([]);
    expect(cache.revision).toBe(10n);
  });

  it('follows partition changes, reassignment away, and topic deletion', () => {
    const cache = new ClusterCache(1);
    cache.apply(snapshot([topic('a', 'ida', [state(0, [1, 2])])]));
    const moved = cache.apply({ snapshot: undefined, revision: 11n, changes: [{ change: { $case: 'partitionChanged', value: { topic: 'a', topicId: 'ida', state: state(0, [1, 2], 2, 1) } } }] });
    expect(moved.upserts[0]!.state.leaderId).toBe(2);
    const away = cache.apply({ snapshot: undefined, revision: 12n, changes: [{ change: { $case: 'partitionChanged', value: { topic: 'a', topicId: 'ida', state: state(0, [2, 3], 2, 2) } } }] });
    expect(away.deletes).toEqual([{ topic: 'a', topicId: 'ida', partition: 0 }]);
    cache.apply({ snapshot: undefined, revision: 13n, changes: [{ change: { $case: 'partitionChanged', value: { topic: 'a', topicId: 'ida', state: state(0, [1, 3], 1, 3) } } }] });
    const deleted = cache.apply({ snapshot: undefined, revision: 14n, changes: [{ change: { $case: 'topicDeleted', value: { name: 'a', topicId: 'ida' } } }] });
    expect(deleted.deletes).toEqual([{ topic: 'a', topicId: 'ida', partition: 0 }]);
    expect(cache.clusterView().topics).toEqual([]);
    expect(cache.revision).toBe(14n);
  });

  it('treats a re-created topic as new: old replicas deleted, new ones created', () => {
    const cache = new ClusterCache(1);
    cache.apply(snapshot([topic('a', 'old', [state(0, [1])])]));
    const delta = cache.apply(snapshot([topic('a', 'new', [state(0, [1])])], 20n));
    expect(delta.deletes).toEqual([{ topic: 'a', topicId: 'old', partition: 0 }]);
    expect(delta.upserts.map((u) => u.topicId)).toEqual(['new']);
  });

  it('ignores changes for a topic id it does not know', () => {
    const cache = new ClusterCache(1);
    cache.apply(snapshot([topic('a', 'ida', [state(0, [1])])]));
    const delta = cache.apply({ snapshot: undefined, revision: 11n, changes: [{ change: { $case: 'partitionChanged', value: { topic: 'a', topicId: 'other', state: state(0, [1], 1, 5) } } }] });
    expect(delta).toEqual({ upserts: [], deletes: [] });
    expect(cache.partition('a', 0)!.state.leaderEpoch).toBe(0);
  });

  it('gives a leader hint with the leader endpoint', () => {
    const cache = new ClusterCache(2);
    cache.apply(snapshot([topic('a', 'ida', [state(0, [1, 2])])]));
    expect(cache.leaderHint('a', 0)).toEqual({ leaderId: 1, leaderEndpoint: { host: 'h1', port: 1 }, leaderEpoch: 0 });
    expect(cache.leaderHint('a', 9)).toBeUndefined();
  });
});
