#!/usr/bin/env node
/**
 * The broker process: binds the gRPC server (BrokerService, health, reflection), registers with the
 * metadata service and follows its WatchMetadata stream, turning assignment changes into replica
 * manager calls. Health is NOT_SERVING until the broker is registered and has opened the
 * partitions of its first metadata snapshot (recovery included). SIGTERM unregisters first, so the
 * controller moves leadership away, then drains calls and closes the logs.
 */
import * as grpc from '@grpc/grpc-js';
import { retry } from '@skein/common/backoff.js';
import { fromServiceError } from '@skein/common/errors.js';
import { runService } from '@skein/common/service-shell.js';
import { followAclsFromMetadata } from '@skein/common/security/acl-cache.js';
import { followQuotasFromMetadata } from '@skein/common/quota/quota-follower.js';
import { QuotaManager } from './quota/quota-manager.js';
import { MetadataServiceClient, ServiceRole } from '@skein/proto/skein/metadata/v1/metadata.js';
import { GrpcSchemaUsageSource } from './runtime/schema-registry-source.js';
import { SchemaValidator } from './runtime/schema-validation.js';
import { brokerConfigSchema, validateBrokerConfig } from './config.js';
import { MetadataFollower } from './metadata/metadata-follower.js';
import { BrokerServer, PARTITIONS_HEALTH } from './server.js';
import { ReplicaStreamManager } from './replication/replica-streams.js';
import { type AlterPartitionRequest, IsrManager } from './replication/isr-manager.js';
import { ensureDirectoryId } from './log/data-dir.js';
import { systemClock, systemTimers } from './runtime/timers.js';
import { BrokerMetrics } from './runtime/broker-metrics.js';
import { PartitionState } from '@skein/proto/skein/metadata/v1/metadata.js';

await runService({
  name: 'broker',
  description: 'a Skein broker (partition logs, produce and fetch, replication)',
  schema: brokerConfigSchema,
  validate: validateBrokerConfig,
  async start({ config, logger: rootLogger, metrics, serve, clientCredentials, authorization }) {
    const logger = rootLogger.child({ brokerId: config.brokerId });
    let follower: MetadataFollower | undefined;
    // Every client of this broker (metadata, other brokers) dials with the shell's client TLS.
    const metadataClients = config.metadataAddresses.map((a) => new MetadataServiceClient(a, clientCredentials));
    let nextClient = 0;
    // Topics with key/value.schema.validation ask the schema registry (found through the metadata
    // service unless --schema-registry-addresses names it); nothing is dialled until one does.
    const schemaSource = new GrpcSchemaUsageSource({
      addresses: config.schemaRegistryAddresses,
      credentials: clientCredentials,
      discover: () =>
        new Promise((resolve, reject) => {
          const client = metadataClients[nextClient++ % metadataClients.length]!;
          client.findServiceInstances({ role: ServiceRole.SERVICE_ROLE_SCHEMA_REGISTRY }, new grpc.Metadata(), { deadline: Date.now() + 5000 }, (err, res) => {
            if (err) reject(fromServiceError(err));
            else resolve(res.instances.filter((i) => i.endpoint).map((i) => `${i.endpoint!.host}:${i.endpoint!.port}`));
          });
        }),
    });

    // Client byte-rate quotas, fed by the metadata service's WatchClientQuotas stream (below).
    const quotas = new QuotaManager({ windowMs: config.quotaWindowMs, samples: config.quotaWindowSamples });
    const server = new BrokerServer({
      config,
      logger,
      awaitMetadata: true,
      quotas,
      metrics: new BrokerMetrics(metrics.registry),
      brokerPrincipalPattern: authorization.brokerPrincipalPattern,
      schemaValidation: new SchemaValidator({
        source: schemaSource,
        clock: systemClock,
        positiveTtlMs: config.schemaValidationCacheTtlMs,
        negativeTtlMs: config.schemaValidationNegativeCacheTtlMs,
      }),
      metadata: {
        getMetadata: (topics) => follower!.cache.clusterView(topics),
        leaderOf: (topic, partition) => {
          const found = follower?.cache.partition(topic, partition);
          return found ? { leaderId: found.state.leaderId, leaderEpoch: found.state.leaderEpoch } : undefined;
        },
        brokerEndpoint: (brokerId) => follower?.cache.brokers.get(brokerId)?.endpoint,
        // No partition states yet (a topic just created) counts as unknown, not as zero partitions.
        partitionCount: (topic) => follower?.cache.topics.get(topic)?.partitions.size || undefined,
      },
      producerIdSource: {
        allocateProducerIds: (count) => new Promise((resolve, reject) => {
          const client = metadataClients[nextClient++ % metadataClients.length]!;
          client.allocateProducerIds({ brokerId: config.brokerId, count }, new grpc.Metadata(), { deadline: Date.now() + 5000 }, (err, res) => {
            if (err) reject(fromServiceError(err));
            else resolve({ firstProducerId: res.firstProducerId, count: res.count });
          });
        }),
      },
    });

    /** Proposes an ISR change to the controller (following NOT_CONTROLLER hints); resolves with the accepted state. */
    async function alterPartition(req: AlterPartitionRequest): Promise<PartitionState> {
      let address: string | undefined;
      // Up to 4 tries, each after a short jittered wait (a controller election settling); the
      // last NOT_CONTROLLER is thrown, and the ISR manager proposes again later.
      return retry(async () => {
        const client = address ? new MetadataServiceClient(address, clientCredentials) : metadataClients[nextClient++ % metadataClients.length]!;
        try {
          const res = await new Promise<{ state?: PartitionState }>((resolve, reject) => {
            client.alterPartition({ brokerId: config.brokerId, ...req, leaderReplicaOffline: req.leaderReplicaOffline ?? false }, new grpc.Metadata(), { deadline: Date.now() + 5000 }, (err, r) => (err ? reject(fromServiceError(err)) : resolve(r)));
          });
          return res.state!;
        } catch (err) {
          const e = err as { reason?: string; controllerHint?: { controllerEndpoint?: { host: string; port: number } } };
          if (e.reason === 'NOT_CONTROLLER') {
            const ep = e.controllerHint?.controllerEndpoint;
            address = ep ? `${ep.host}:${ep.port}` : undefined;
          }
          throw err;
        } finally {
          if (!metadataClients.includes(client)) client.close();
        }
      }, { initialMs: 50, maxMs: 1000, maxAttempts: 4, retryIf: (err) => (err as { reason?: string }).reason === 'NOT_CONTROLLER' });
    }

    const port = await server.start(serve);
    const fetchers = new ReplicaStreamManager({
      brokerId: config.brokerId,
      replicas: server.replicas,
      addressOf: (id) => {
        const b = follower?.cache.brokers.get(id);
        return b?.endpoint ? `${b.endpoint.host}:${b.endpoint.port}` : undefined;
      },
      logger: logger.child({ component: 'replication' }),
      credentials: clientCredentials,
    });
    // Leaders shrink and expand their ISR through the controller; nothing changes on their word alone.
    const isr = new IsrManager({
      replicas: server.replicas,
      clock: systemClock,
      timers: systemTimers,
      logger: logger.child({ component: 'isr' }),
      lagMs: config.replicaLagTimeMaxMs,
      alterPartition,
      onOfflinePartitions: (count) => server.setServing(PARTITIONS_HEALTH, count === 0),
    });
    isr.start();
    follower = new MetadataFollower({
      metadataAddresses: config.metadataAddresses,
      // KIP-858: the controller fences a broker whose data directory changed (log/data-dir.ts).
      directoryId: ensureDirectoryId(config.dataDir).directoryId,
      brokerId: config.brokerId,
      advertisedHost: config.advertisedHost || config.host,
      advertisedPort: port,
      rack: config.rack,
      sessionTtlMs: config.sessionTtlMs,
      credentials: clientCredentials,
      logger: logger.child({ component: 'metadata-follower' }),
      onDelta: async (delta) => {
        // A partition whose topic name the replica manager refuses as a directory (topic-dir.ts)
        // is logged and skipped; the rest of the change still applies.
        const refused = (err: unknown, topic: string, partition: number): void => {
          if ((err as { reason?: unknown }).reason !== 'INVALID_TOPIC_NAME') throw err;
          logger.error({ err, topic: JSON.stringify(topic.slice(0, 300)), partition }, 'metadata names a partition whose topic name cannot be a directory: ignored');
        };
        for (const d of delta.deletes) {
          fetchers.stopPartition(d.topic, d.partition);
          await server.replicas.deletePartition(d).catch((err: unknown) => refused(err, d.topic, d.partition));
        }
        for (const u of delta.upserts) {
          const applied = await server.replicas.applyPartitionAssignment({
            topic: u.topic, topicId: u.topicId, partition: u.partition,
            leaderId: u.state.leaderId, leaderEpoch: u.state.leaderEpoch,
            replicas: u.state.replicas, isr: u.state.isr, configs: u.configs, partitionEpoch: u.state.partitionEpoch,
          }).then(() => true, (err: unknown) => { refused(err, u.topic, u.partition); return false; });
          const p = applied ? server.replicas.getPartition(u.topic, u.partition) : undefined;
          if (p) fetchers.reconcile(p);
        }
      },
    });
    follower.start();
    void follower.ready.then(() => {
      server.replicas.markReady();
      server.setServing('', true);
      logger.info({ port }, 'broker ready');
    });
    // This broker's copy of the ACLs, fed by the metadata service (--authorizer-enabled).
    const aclFollower = authorization.enabled
      ? followAclsFromMetadata(authorization.acls, { metadataAddresses: config.metadataAddresses, credentials: clientCredentials, logger: logger.child({ component: 'acls' }) })
      : undefined;
    const quotaFollower = followQuotasFromMetadata((q) => quotas.update(q), { metadataAddresses: config.metadataAddresses, credentials: clientCredentials, logger: logger.child({ component: 'quotas' }) });
    return { stop: async () => {
      aclFollower?.close();
      quotaFollower.close();
      server.setServing('', false);
      isr.stop();
      await follower?.unregisterAndDrain(Math.min(10_000, config.shutdownGraceMs));
      await follower?.stop();
      fetchers.close();
      await server.stop(config.shutdownGraceMs);
      for (const c of metadataClients) c.close();
      schemaSource.close();
    } };
  },
});
