/**
 * gRPC handlers for skein.metadata.v1.MetadataService: decode and check the request shape, call
 * the admin writer, the controller or the view, and map the result. Errors are SkeinErrors with
 * reasons; the server bootstrap turns them into statuses with details.
 */

import { SkeinError } from '@skein/common/errors.js';
import { serverStreaming, unary } from '@skein/common/grpc-server.js';
import type * as grpc from '@grpc/grpc-js';
import {
  type MetadataServiceServer,
  type TopicPartitions,
  type WatchMetadataRequest,
  type WatchMetadataResponse,
  MetadataServiceService,
} from '@skein/proto/skein/metadata/v1/metadata.js';
import { effectiveConfigs } from '../domain/topic-config.js';
import { partitionView } from '../domain/image.js';
import type { TopicRecord } from '../domain/records.js';
import {
  alterPartitionProblem, configsProblem, electPreferredLeadersProblem, getClusterMetadataProblem, type LimitProblem,
  reassignPartitionsProblem, registerBrokerProblem, topicNameLimitProblem,
} from '../domain/request-limits.js';
import type { MetadataAdmin } from '../runtime/admin.js';
import type { Controller } from '../runtime/controller.js';
import type { ChangeBatch, MetadataView } from '../runtime/metadata-view.js';
import type { ServiceInstances } from '../runtime/service-instances.js';

export interface MetadataServiceDeps {
  admin: MetadataAdmin;
  /** Set once the server is bound (the controller advertises the bound port). */
  controller: Controller | undefined;
  view: MetadataView;
  /** Registered instances of the other roles (service discovery). */
  serviceInstances: ServiceInstances;
  clusterDefaults: Record<string, string>;
  /** How many changes a slow WatchMetadata client may have queued before it is cut off. */
  maxQueuedWatchMessages?: number;
}

export const METADATA_SERVICE_NAME = 'skein.metadata.v1.MetadataService';
export { MetadataServiceService };

/** Request bounds (domain/request-limits.ts) are checked before any work; over one is INVALID_ARGUMENT. */
function refuse(problem: LimitProblem | undefined): void {
  if (problem) throw new SkeinError(problem.reason, problem.message);
}

function requireTopicName(name: string): void {
  if (name === '') throw new SkeinError('INVALID_TOPIC_NAME', 'topic name is required');
  refuse(topicNameLimitProblem(name));
}

export function metadataServiceHandlers(deps: MetadataServiceDeps): MetadataServiceServer {
  const { admin, view } = deps;
  const controller = (): Controller => {
    if (!deps.controller) throw new SkeinError('NOT_CONTROLLER', 'this instance is still starting');
    return deps.controller;
  };
  const topicView = (record: TopicRecord) => view.current.topicView(record.name) ?? {
    name: record.name,
    topicId: record.topicId,
    configs: record.configs,
    replicationFactor: record.replicationFactor,
    partitions: record.assignment.map((replicas, p) => ({ partition: p, replicas, leaderId: replicas[0] ?? -1, leaderEpoch: 0, isr: replicas, partitionEpoch: 0, targetReplicas: [] })),
  };

  return {
    registerBroker: unary(async (req) => {
      if (!req.endpoint) throw new SkeinError('INVALID_REQUEST', 'endpoint is required');
      refuse(registerBrokerProblem({ host: req.endpoint.host, rack: req.rack }));
      const { sessionId, sessionTtlMs } = await admin.registerBroker({
        brokerId: req.brokerId, host: req.endpoint.host, port: req.endpoint.port, rack: req.rack, sessionTtlMs: req.sessionTtlMs, directoryId: req.directoryId,
      });
      return { sessionId, sessionTtlMs, heartbeatIntervalMs: Math.max(100, Math.floor(sessionTtlMs / 3)), clusterId: view.current.clusterId };
    }),
    brokerHeartbeat: unary(async (req) => ({ sessionTtlMs: await admin.heartbeat(req.brokerId, req.sessionId) })),
    unregisterBroker: unary(async (req) => {
      await admin.unregister(req.brokerId, req.sessionId);
      return {};
    }),

    createTopic: unary(async (req) => {
      refuse(topicNameLimitProblem(req.name) ?? configsProblem('configs', req.configs));
      const record = await admin.createTopic({ name: req.name, partitions: req.partitions, replicationFactor: req.replicationFactor, configs: req.configs, validateOnly: req.validateOnly });
      return { topic: req.validateOnly ? { name: record.name, topicId: '', configs: record.configs, replicationFactor: record.replicationFactor, partitions: record.assignment.map((replicas, p) => ({ partition: p, replicas, leaderId: -1, leaderEpoch: -1, isr: [], partitionEpoch: -1, targetReplicas: [] })) } : topicView(record) };
    }),
    deleteTopic: unary(async (req) => {
      requireTopicName(req.name);
      return { topicId: await admin.deleteTopic(req.name) };
    }),
    listTopics: unary(async () => {
      const image = view.current;
      const topics = [...image.topics.values()]
        .map((t) => ({ name: t.record.name, topicId: t.record.topicId, partitionCount: t.record.partitionCount, replicationFactor: t.record.replicationFactor }))
        .sort((a, b) => (a.name < b.name ? -1 : 1));
      return { topics };
    }),
    describeTopic: unary(async (req) => {
      requireTopicName(req.name);
      const topic = view.current.topicView(req.name);
      if (!topic) throw new SkeinError('UNKNOWN_TOPIC', `topic ${req.name} does not exist`, { metadata: { topic: req.name.slice(0, 300) } });
      return { topic, configs: effectiveConfigs(topic.configs, deps.clusterDefaults) };
    }),
    alterTopicConfigs: unary(async (req) => {
      requireTopicName(req.name);
      refuse(configsProblem('set/remove', req.set, req.remove));
      const record = await admin.alterConfigs(req.name, req.set, req.remove, req.validateOnly);
      return { topic: req.validateOnly ? { ...topicView(record), configs: record.configs } : topicView(record) };
    }),
    createPartitions: unary(async (req) => {
      requireTopicName(req.name);
      const record = await admin.createPartitions(req.name, req.totalCount, req.validateOnly);
      return { topic: topicView(record) };
    }),

    registerServiceInstance: unary(async (req) => {
      const { sessionId, sessionTtlMs } = await deps.serviceInstances.register({
        role: req.role, instanceId: req.instanceId, host: req.endpoint?.host ?? '', port: req.endpoint?.port ?? 0, sessionTtlMs: req.sessionTtlMs,
      });
      return { sessionId, sessionTtlMs, heartbeatIntervalMs: Math.max(100, Math.floor(sessionTtlMs / 3)), clusterId: view.current.clusterId };
    }),
    serviceInstanceHeartbeat: unary(async (req) => ({ sessionTtlMs: await deps.serviceInstances.heartbeat(req.role, req.instanceId, req.sessionId) })),
    unregisterServiceInstance: unary(async (req) => {
      await deps.serviceInstances.unregister(req.role, req.instanceId, req.sessionId);
      return {};
    }),
    findServiceInstances: unary(async (req) => ({ instances: await deps.serviceInstances.find(req.role) })),

    getClusterMetadata: unary(async (req) => {
      refuse(getClusterMetadataProblem(req));
      return { metadata: view.current.clusterView(req.topics) };
    }),

    watchMetadata: serverStreaming(async (call: grpc.ServerWritableStream<WatchMetadataRequest, WatchMetadataResponse>) => {
      const maxQueued = deps.maxQueuedWatchMessages ?? 10_000;
      await new Promise<void>((resolve) => {
        let queued = 0;
        const send = (msg: WatchMetadataResponse) => {
          if (call.cancelled || call.destroyed) return;
          if (!call.write(msg)) {
            queued++;
            if (queued > maxQueued) {
              // A follower that cannot keep up is cut off; it resumes from its last revision.
              call.destroy(new SkeinError('REQUEST_TIMED_OUT', 'watch client is too slow; reconnect with from_revision'));
              return;
            }
            call.once('drain', () => { queued = 0; });
          }
        };
        const sendSnapshot = () => {
          const snapshot = view.current.clusterView();
          send({ snapshot, changes: [], revision: snapshot.revision });
        };
        const onBatch = (batch: ChangeBatch) => {
          if (batch.resync) sendSnapshot();
          else if (batch.changes.length > 0) send({ snapshot: undefined, changes: batch.changes, revision: batch.revision });
        };
        const from = call.request.fromRevision;
        if (from < 0n) {
          call.destroy(new SkeinError('INVALID_REQUEST', `from_revision must be 0 or greater, got ${from}`));
          resolve();
          return;
        }
        let sub = from > 0n ? view.subscribe(onBatch, from) : undefined;
        if (!sub?.resumed) {
          sub?.unsubscribe();
          sendSnapshot();
          sub = view.subscribe(onBatch);
        }
        const end = () => {
          sub?.unsubscribe();
          resolve();
        };
        call.on('cancelled', end);
        call.on('close', end);
        call.on('error', end);
      });
    }),

    alterPartition: unary(async (req) => {
      requireTopicName(req.topic);
      refuse(alterPartitionProblem(req));
      const record = await controller().alterPartition({
        brokerId: req.brokerId, topic: req.topic, topicId: req.topicId, partition: req.partition,
        leaderEpoch: req.leaderEpoch, partitionEpoch: req.partitionEpoch, newIsr: req.newIsr, leaderReplicaOffline: req.leaderReplicaOffline,
      });
      return { state: partitionView(req.partition, record) };
    }),
    electPreferredLeaders: unary(async (req) => {
      refuse(electPreferredLeadersProblem(req));
      const elected = await controller().electPreferredLeaders(req.partitions.map((p: TopicPartitions) => ({ topic: p.topic, partitions: p.partitions })));
      return { elected: elected.map((e) => ({ topic: e.topic, topicId: e.topicId, state: partitionView(e.partition, e.record) })) };
    }),
    reassignPartitions: unary(async (req) => {
      if (req.reassignments.length === 0) throw new SkeinError('INVALID_REQUEST', 'reassignments must not be empty');
      refuse(reassignPartitionsProblem(req));
      const started = await controller().reassign(req.reassignments.map((r) => ({ topic: r.topic, partition: r.partition, targetReplicas: r.targetReplicas })));
      return { started: started.map((e) => ({ topic: e.topic, topicId: e.topicId, state: partitionView(e.partition, e.record) })) };
    }),
    allocateProducerIds: unary(async (req) => {
      const { first, count } = await admin.allocateProducerIds(req.brokerId, req.count);
      return { firstProducerId: first, count };
    }),
  };
}
