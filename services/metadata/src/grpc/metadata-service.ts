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
import type { Logger } from 'pino';
import { aclFilterFromProto, aclFromProto, aclToProto } from '@skein/common/security/acl-codec.js';
import type { AclStore } from '@skein/common/security/acl-store.js';
import type { AclBinding } from '@skein/common/security/authorizer.js';
import { principalString } from '@skein/common/security/authorizer.js';
import { requestAuth } from '@skein/common/security/enforcement.js';

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
  /** The ACLs in the store (CreateAcls, DescribeAcls, DeleteAcls) and their live feed (WatchAcls). */
  acls?: { store: AclStore; feed: AclFeed; audit: Logger };
}

/** The latest ACL set of the store watch, and who wants the next ones (WatchAcls streams). */
export class AclFeed {
  private latest: { acls: AclBinding[]; revision: bigint } | undefined;
  private readonly listeners = new Set<(acls: AclBinding[], revision: bigint) => void>();

  publish(acls: AclBinding[], revision: bigint): void {
    this.latest = { acls, revision };
    for (const l of this.listeners) l(acls, revision);
  }

  /** Calls `fn` with the current set (when there is one) and every later one, until unsubscribed. */
  subscribe(fn: (acls: AclBinding[], revision: bigint) => void): () => void {
    this.listeners.add(fn);
    if (this.latest) fn(this.latest.acls, this.latest.revision);
    return () => this.listeners.delete(fn);
  }
}

/** Most ACLs one CreateAcls may carry, and most filters one DeleteAcls. */
const MAX_ACLS_PER_REQUEST = 1000;

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
  const aclsDeps = () => {
    if (!deps.acls) throw new SkeinError('INTERNAL', 'ACLs are not served by this instance');
    return deps.acls;
  };
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
    listTopics: unary(async (_req, call) => {
      const image = view.current;
      // Only the topics the caller may describe (all of them with the authorizer off).
      const auth = requestAuth(call);
      const topics = [...image.topics.values()]
        .filter((t) => auth.allowed({ resourceType: 'topic', resourceName: t.record.name, operation: 'describe' }))
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

    getClusterMetadata: unary(async (req, call) => {
      refuse(getClusterMetadataProblem(req));
      const metadata = view.current.clusterView(req.topics);
      const auth = requestAuth(call);
      return { metadata: { ...metadata, topics: metadata.topics.filter((t) => auth.allowed({ resourceType: 'topic', resourceName: t.name, operation: 'describe' })) } };
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
    createAcls: unary(async (req, call) => {
      const acls = aclsDeps().store;
      if (req.acls.length === 0) throw new SkeinError('INVALID_REQUEST', 'acls must not be empty');
      if (req.acls.length > MAX_ACLS_PER_REQUEST) throw new SkeinError('INVALID_REQUEST', `at most ${MAX_ACLS_PER_REQUEST} ACLs per request, got ${req.acls.length}`);
      const bindings = req.acls.map(aclFromProto);
      const created = await acls.create(bindings);
      aclsDeps().audit.info({ event: 'acls_created', principal: principalString(requestAuth(call).principal), acls: created }, 'ACLs created');
      return { created: created.length };
    }),
    describeAcls: unary(async (req) => {
      const { acls } = await aclsDeps().store.list(aclFilterFromProto(req.filter));
      return { acls: acls.map(aclToProto) };
    }),
    deleteAcls: unary(async (req, call) => {
      if (req.filters.length === 0) throw new SkeinError('INVALID_REQUEST', 'filters must not be empty (an empty filter selects every ACL)');
      if (req.filters.length > MAX_ACLS_PER_REQUEST) throw new SkeinError('INVALID_REQUEST', `at most ${MAX_ACLS_PER_REQUEST} filters per request, got ${req.filters.length}`);
      const deleted = await aclsDeps().store.delete(req.filters.map(aclFilterFromProto));
      aclsDeps().audit.info({ event: 'acls_deleted', principal: principalString(requestAuth(call).principal), acls: deleted }, 'ACLs deleted');
      return { deleted: deleted.map(aclToProto) };
    }),
    watchAcls: serverStreaming(async (call) => {
      const feed = aclsDeps().feed;
      await new Promise<void>((resolve) => {
        // A whole set per message: a client that falls behind only ever needs the newest one.
        let pending: { acls: AclBinding[]; revision: bigint } | undefined;
        let blocked = false;
        const flush = () => {
          while (pending && !blocked && !call.cancelled && !call.destroyed) {
            const next = pending;
            pending = undefined;
            blocked = !call.write({ acls: next.acls.map(aclToProto), revision: next.revision });
          }
        };
        call.on('drain', () => {
          blocked = false;
          flush();
        });
        const unsubscribe = feed.subscribe((acls, revision) => {
          pending = { acls, revision };
          flush();
        });
        const end = () => {
          unsubscribe();
          resolve();
        };
        call.on('cancelled', end);
        call.on('close', end);
        call.on('error', end);
      });
    }),

    allocateProducerIds: unary(async (req) => {
      const { first, count } = await admin.allocateProducerIds(req.brokerId, req.count);
      return { firstProducerId: first, count };
    }),
  };
}
