#!/usr/bin/env node
/**
 * The group coordinator process: stateless; group state and offsets live in the metadata store.
 * Started by the one service shell (TLS, limits, health, reflection, metrics, shutdown).
 */
import * as grpc from '@grpc/grpc-js';
import { fromServiceError, SkeinError } from '@skein/common/errors.js';
import { runService } from '@skein/common/service-shell.js';
import { openMetadataStore, storeOptionsFromConfig } from '@skein/common/store/open-store.js';
import { startServiceRegistration } from '@skein/common/service-registration.js';
import { hostname } from 'node:os';
import { MetadataServiceClient, ServiceRole, type ClusterMetadata } from '@skein/proto/skein/metadata/v1/metadata.js';
import { BrokerServiceClient, OffsetSpec } from '@skein/proto/skein/broker/v1/broker.js';
import { coordinatorConfigSchema } from './config.js';
import { followAclsFromMetadata } from '@skein/common/security/acl-cache.js';
import { groupAuthorizeMap, txnAuthorizeMap } from './grpc/group-authz.js';
import { CoordinatorMetrics } from './runtime/coordinator-metrics.js';
import { instrumentStore } from '@skein/common/store/instrumented-store.js';
import { GROUP_SERVICE_NAME, GroupCoordinatorServiceService, groupServiceHandlers, SessionRegistry, sweepGroups } from './grpc/group-service.js';
import { TransactionCoordinator, TransactionCoordinatorServiceService, TXN_SERVICE_NAME, txnServiceHandlers } from './grpc/txn-service.js';
import { GrpcTxnBrokerGateway } from './runtime/txn-brokers.js';
import { ProducerIdBlocks } from './runtime/producer-ids.js';

await runService({
  name: 'group-coordinator',
  description: 'consumer groups with server-side assignment',
  schema: coordinatorConfigSchema,
  async start({ config, logger, metrics, serve, clientCredentials, authorization }) {
    // Store requests are timed (skein_store_request_duration_seconds), as on the metadata service.
    const store = instrumentStore(await openMetadataStore(config.etcdEndpoints.length > 0 ? `etcd://${config.etcdEndpoints.join(',')}` : config.store, storeOptionsFromConfig(config)), metrics.storeRequests());
    const coordinatorMetrics = new CoordinatorMetrics(metrics.registry, { store, prefix: config.prefix });
    const onEvent = coordinatorMetrics.record.bind(coordinatorMetrics);
    // Every client of this coordinator (metadata, brokers) dials with the shell's client TLS.
    const clients = config.metadataAddresses.map((a) => new MetadataServiceClient(a, clientCredentials));
    let cached: { at: number; counts: Map<string, number>; metadata: ClusterMetadata } | undefined;
    let next = 0;
    let refreshing: Promise<NonNullable<typeof cached>> | undefined;
    const refresh = async () => {
      if (cached && Date.now() - cached.at < 500) return cached;
      // One request for everyone waiting: under load, hundreds of commits find the cache stale at once.
      refreshing ??= (async () => {
        const client = clients[next++ % clients.length]!;
        const md = await new Promise<ClusterMetadata>((resolve, reject) => client.getClusterMetadata({ topics: [] }, new grpc.Metadata(), { deadline: Date.now() + 5000 }, (e, r) => (e ? reject(fromServiceError(e)) : resolve(r.metadata!))));
        cached = { at: Date.now(), counts: new Map(md.topics.map((t) => [t.name, t.partitions.length])), metadata: md };
        return cached;
      })().finally(() => {
        refreshing = undefined;
      });
      return refreshing;
    };
    const topics = async (fresh = false): Promise<Map<string, number>> => {
      // Past the cache on request, but at most once per 50 ms however many ask.
      if (fresh && cached && Date.now() - cached.at > 50) cached = undefined;
      return (await refresh()).counts;
    };
    const brokers = new Map<string, BrokerServiceClient>();
    const listOffset = async (topic: string, partition: number, spec: 'earliest' | 'latest' | 'timestamp', timestampMs = 0n): Promise<bigint> => {
      const md = (await refresh()).metadata;
      const leaderId = md.topics.find((t) => t.name === topic)?.partitions.find((p) => p.partition === partition)?.leaderId;
      const ep = md.brokers.find((b) => b.brokerId === leaderId)?.endpoint;
      if (!ep) throw new Error(`${topic}-${partition} has no live leader`);
      const address = `${ep.host}:${ep.port}`;
      let client = brokers.get(address);
      if (!client) brokers.set(address, (client = new BrokerServiceClient(address, clientCredentials)));
      const wire = spec === 'earliest' ? OffsetSpec.OFFSET_SPEC_EARLIEST : spec === 'latest' ? OffsetSpec.OFFSET_SPEC_LATEST : OffsetSpec.OFFSET_SPEC_TIMESTAMP;
      const res = await new Promise<{ topics: Array<{ partitions: Array<{ error?: { reason: string }; offset: bigint }> }> }>((resolve, reject) =>
        client!.listOffsets({ topics: [{ topic, partitions: [{ partition, spec: wire, timestampMs }] }] }, new grpc.Metadata(), { deadline: Date.now() + 5000 }, (e, r) => (e ? reject(fromServiceError(e)) : resolve(r))));
      const r = res.topics[0]!.partitions[0]!;
      if (r.error) throw new Error(r.error.reason);
      return r.offset;
    };
    // The transaction coordinator (skein.txn.v1) shares the process, store and metadata cache.
    const txnBrokers = new GrpcTxnBrokerGateway({
      async leaderAddress(topic, partition, force) {
        if (force) cached = undefined;
        const md = (await refresh()).metadata;
        const t = md.topics.find((x) => x.name === topic);
        if (!t) throw new SkeinError('UNKNOWN_TOPIC', `topic ${topic} does not exist`);
        const p = t.partitions.find((x) => x.partition === partition);
        if (!p) throw new SkeinError('UNKNOWN_PARTITION', `partition ${partition} of ${topic} does not exist`);
        const ep = md.brokers.find((b) => b.brokerId === p.leaderId)?.endpoint;
        return ep ? `${ep.host}:${ep.port}` : undefined;
      },
    }, logger.child({ component: 'txn-brokers' }), clientCredentials);
    const producerIds = new ProducerIdBlocks((count) => new Promise((resolve, reject) => {
      const client = clients[next++ % clients.length]!;
      client.allocateProducerIds({ brokerId: -1, count }, new grpc.Metadata(), { deadline: Date.now() + 5000 }, (e, r) => (e ? reject(fromServiceError(e)) : resolve({ first: r.firstProducerId, count: r.count })));
    }));
    const txnCoordinator = new TransactionCoordinator({
      store, prefix: config.prefix, logger: logger.child({ component: 'txn' }), brokers: txnBrokers, newProducerId: () => producerIds.generate(), topics,
      completionWaitMs: config.txnCompletionWaitMs, completionGraceMs: config.txnCompletionGraceMs, offsetMetadataMaxBytes: config.offsetMetadataMaxBytes,
    });
    const sessions = new SessionRegistry();
    const server = await serve({
      services: [{ name: TXN_SERVICE_NAME, definition: TransactionCoordinatorServiceService, authorize: txnAuthorizeMap, implementation: txnServiceHandlers(txnCoordinator) }, { name: GROUP_SERVICE_NAME, definition: GroupCoordinatorServiceService, authorize: groupAuthorizeMap, implementation: groupServiceHandlers({ store, prefix: config.prefix, logger, sessionTimeoutMs: config.sessionTimeoutMs, heartbeatIntervalMs: config.heartbeatIntervalMs, offsetsRetentionMs: config.offsetsRetentionMs, sessionBreakGraceMs: config.sessionBreakGraceMs, offsetMetadataMaxBytes: config.offsetMetadataMaxBytes, commitTxnLimits: { maxTxnOps: config.maxTxnOps, maxTxnBytes: config.maxTxnBytes }, sessions, topics, listOffset, onEvent }) }],
    });
    logger.info({ port: server.port }, 'group coordinator listening');
    // Clients and the CLI find coordinators from the metadata service (FindServiceInstances).
    const registration = startServiceRegistration({
      metadataAddresses: config.metadataAddresses,
      role: ServiceRole.SERVICE_ROLE_GROUP_COORDINATOR,
      instanceId: config.instanceId || `${hostname()}-${process.pid}`,
      endpoint: { host: config.advertisedHost || config.host, port: server.port },
      credentials: clientCredentials,
      logger: logger.child({ component: 'registration' }),
    });
    let sweeping: Promise<unknown> = Promise.resolve();
    // Jittered so that instances started together do not sweep in lockstep.
    const sweepTimer = setInterval(() => {
      sweeping = sweepGroups({ store, prefix: config.prefix, logger, sessionTimeoutMs: config.sessionTimeoutMs, offsetsRetentionMs: config.offsetsRetentionMs, onEvent })
        .catch((err: unknown) => logger.warn({ err }, 'group sweep failed; retrying next interval'));
    }, Math.round(config.sweepIntervalMs * (0.8 + Math.random() * 0.4)));
    let txnSweeping: Promise<unknown> = Promise.resolve();
    let txnSweepBusy = false;
    const txnSweepTimer = setInterval(() => {
      // One pass at a time: a pass waiting on an unreachable leader must not pile up behind itself.
      if (txnSweepBusy) return;
      txnSweepBusy = true;
      txnSweeping = txnCoordinator.sweep()
        .catch((err: unknown) => logger.warn({ err }, 'transaction sweep failed; retrying next interval'))
        .finally(() => (txnSweepBusy = false));
    }, Math.round(config.txnSweepIntervalMs * (0.8 + Math.random() * 0.4)));
    // Every instance keeps its own copy of the ACLs, fed by the metadata service (--authorizer-enabled).
    const aclFollower = authorization.enabled
      ? followAclsFromMetadata(authorization.acls, { metadataAddresses: config.metadataAddresses, credentials: clientCredentials, logger: logger.child({ component: 'acls' }) })
      : undefined;
    return { stop: async () => {
      aclFollower?.close();
      clearInterval(sweepTimer);
      clearInterval(txnSweepTimer);
      // Unlisted first, so no client finds this instance while it drains.
      await registration.stop();
      // Long-lived session streams would hold a graceful shutdown up: end them so members move on now.
      sessions.closeAll();
      await sweeping;
      await txnSweeping;
      await server.shutdown(config.shutdownGraceMs);
      for (const c of clients) c.close();
      for (const c of brokers.values()) c.close();
      txnBrokers.close();
      await store.close();
    } };
  },
});
