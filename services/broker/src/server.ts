/**
 * Wiring only: builds the replica manager, the producer-id manager and the BrokerService handlers,
 * and starts/stops them in order. The metadata side (registration, WatchMetadata → assignments,
 * the cluster cache behind GetMetadata and leader hints, AllocateProducerIds) is passed in, so
 * tests run a broker in-process against fakes.
 */
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { type GrpcServerHandle, type ServiceRegistration, startGrpcServer } from '@skein/common/grpc-server.js';
import type { ServeOptions } from '@skein/common/service-shell.js';
import { type BrokerConfig, brokerConfigSchema } from './config.js';
import { brokerServiceDefinition, type BrokerMetadataView, createBrokerServiceHandlers } from './grpc/broker-service.js';
import type { LogConfig } from './log/log-config.js';
import { ProducerIdManager, type ProducerIdSource } from './producer-id-manager.js';
import { ReplicaManager } from './replica-manager.js';
import { encodeReplicaFetchResponse } from './grpc/wire-codec.js';
import { createReplicaServiceHandlers, ReplicaServiceService } from './replication/replica-service.js';
import { BrokerTxnServiceService } from '@skein/proto/skein/broker/v1/broker.js';
import { BROKER_TXN_SERVICE_NAME, createTxnServiceHandlers } from './grpc/txn-service.js';
import { type Clock, systemClock, systemTimers, type Timers } from './runtime/timers.js';
import type { BrokerMetrics } from './runtime/broker-metrics.js';
import type { QuotaManager } from './quota/quota-manager.js';
import type { SchemaValidator } from './runtime/schema-validation.js';
import { DEFAULT_BROKER_PRINCIPAL_PATTERN } from '@skein/common/security/enforcement.js';
import { brokerAuthorizeMap, brokerTxnAuthorizeMap, replicaAuthorizeMap } from './grpc/broker-authz.js';

export interface BrokerServerOptions {
  config: Pick<BrokerConfig, 'brokerId' | 'dataDir' | 'host' | 'port' | 'backgroundIntervalMs' | 'producerIdBlockSize' | 'fetchMaxBytes'> & Partial<Pick<BrokerConfig, 'replicaLogReadEnabled' | 'subscribeMaxBytes' | 'maxPartitionsPerRequest' | 'http2WindowBytes'>>;
  logger: Logger;
  metadata: BrokerMetadataView;
  producerIdSource: ProducerIdSource;
  clock?: Clock;
  timers?: Timers;
  defaultLogConfig?: LogConfig;
  /** Refuse the data path until `replicas.markReady()` (the broker process; see ReplicaManager). */
  awaitMetadata?: boolean;
  /** The process's broker metrics (on the shell's registry); none in most in-process tests. */
  metrics?: BrokerMetrics;
  /** Maps an internal principal to the broker id it may replicate as (--broker-principal-pattern). */
  brokerPrincipalPattern?: RegExp;
  /** Produce and fetch byte-rate quotas, kept current by the process (followQuotasFromMetadata); none: no throttling. */
  quotas?: QuotaManager;
  /** Broker-side schema validation (key/value.schema.validation topics); none: such topics refuse batches. */
  schemaValidation?: SchemaValidator;
}

/** The broker's services, as the service shell registers them. */
export const BROKER_SERVICE_NAME = 'skein.broker.v1.BrokerService';
export const REPLICA_SERVICE_NAME = 'skein.broker.v1.ReplicaService';
/**
 * A health entry of its own: NOT_SERVING while any partition log on this broker is offline after a
 * storage error (the broker keeps serving its other partitions, so '' and BrokerService stay up).
 */
export const PARTITIONS_HEALTH = 'skein.broker.v1.BrokerService/partitions';
/** Produce requests and fetch answers carry batches: larger than the shell's 4 MiB default. */
export const BROKER_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/** How the gRPC server is started: the service shell's `serve` in the process, a plain one in tests. */
export type Serve = (options: ServeOptions) => Promise<GrpcServerHandle>;

export class BrokerServer {
  readonly replicas: ReplicaManager;
  private readonly services: ServiceRegistration[];
  private handle: GrpcServerHandle | undefined;

  constructor(private readonly opts: BrokerServerOptions) {
    const clock = opts.clock ?? systemClock;
    const timers = opts.timers ?? systemTimers;
    this.replicas = new ReplicaManager({
      brokerId: opts.config.brokerId,
      dataDir: opts.config.dataDir,
      clock,
      timers,
      logger: opts.logger.child({ component: 'replica-manager' }),
      defaultLogConfig: opts.defaultLogConfig,
      backgroundIntervalMs: opts.config.backgroundIntervalMs,
      awaitMetadata: opts.awaitMetadata,
      onEvent: opts.metrics && ((e) => opts.metrics!.record(e)),
    });
    opts.metrics?.watch({ listPartitions: () => this.replicas.listPartitions(), nowMs: () => clock.nowMs() });
    this.services = [
      {
        name: BROKER_SERVICE_NAME,
        definition: brokerServiceDefinition,
        authorize: brokerAuthorizeMap,
        implementation: createBrokerServiceHandlers({
          replicas: this.replicas,
          metadata: opts.metadata,
          producerIds: new ProducerIdManager(opts.producerIdSource, opts.config.producerIdBlockSize),
          timers,
          logger: opts.logger.child({ component: 'broker-service' }),
          fetchMaxBytes: opts.config.fetchMaxBytes,
          subscribeMaxBytes: opts.config.subscribeMaxBytes,
          maxPartitionsPerRequest: opts.config.maxPartitionsPerRequest,
          replicaLogReadEnabled: opts.config.replicaLogReadEnabled,
          metrics: opts.metrics,
          quotas: opts.quotas,
          nowMs: () => clock.nowMs(),
          schemaValidation: opts.schemaValidation,
        }),
      },
      {
        // Replica fetch answers carry stored batches: encoded with one copy per batch (wire-codec.ts).
        name: REPLICA_SERVICE_NAME,
        internal: true,
        authorize: replicaAuthorizeMap(opts.brokerPrincipalPattern ?? new RegExp(DEFAULT_BROKER_PRINCIPAL_PATTERN)),
        definition: {
          ...ReplicaServiceService,
          replicaFetch: { ...ReplicaServiceService.replicaFetch, responseSerialize: encodeReplicaFetchResponse },
          // Leader sessions write ReplicateResponses they encoded themselves (encodeReplicateResponse).
          replicate: { ...ReplicaServiceService.replicate, responseSerialize: (b: Buffer) => b },
        } as unknown as grpc.ServiceDefinition,
        implementation: createReplicaServiceHandlers({ replicas: this.replicas, clock, timers, logger: opts.logger.child({ component: 'replica-service' }) }),
      },
      {
        // Transactions: control batches for the transaction coordinator (broker.proto, BrokerTxnService).
        name: BROKER_TXN_SERVICE_NAME,
        internal: true,
        authorize: brokerTxnAuthorizeMap,
        definition: BrokerTxnServiceService as unknown as grpc.ServiceDefinition,
        implementation: createTxnServiceHandlers({
          replicas: this.replicas,
          metadata: opts.metadata,
          logger: opts.logger.child({ component: 'txn-service' }),
          maxPartitionsPerRequest: opts.config.maxPartitionsPerRequest,
        }) as unknown as grpc.UntypedServiceImplementation,
      },
    ];
  }

  /**
   * Binds and starts serving through `serve` (the service shell) or, in tests, a plaintext server
   * with the shell's defaults; resolves with the bound port. With `awaitMetadata` the health
   * entries start NOT_SERVING until the process marks the broker ready.
   */
  async start(serve?: Serve): Promise<number> {
    const { host, port } = this.opts.config;
    const health: Record<string, 'SERVING' | 'NOT_SERVING'> = this.opts.awaitMetadata
      ? { '': 'NOT_SERVING', [BROKER_SERVICE_NAME]: 'NOT_SERVING', [PARTITIONS_HEALTH]: 'SERVING' }
      : { [PARTITIONS_HEALTH]: 'SERVING' };
    // Through the shell the configured limits apply (the broker's schema defaults to larger messages).
    this.handle = serve
      ? await serve({ services: this.services, health })
      : await startGrpcServer({ host, port, services: this.services, logger: this.opts.logger, limits: { maxReceiveMessageBytes: BROKER_MAX_MESSAGE_BYTES, http2WindowBytes: this.opts.config.http2WindowBytes ?? brokerConfigSchema.http2WindowBytes.default }, health });
    this.replicas.startBackgroundTasks();
    this.opts.logger.info({ host, port: this.handle.port, brokerId: this.opts.config.brokerId }, 'broker serving');
    return this.handle.port;
  }

  get port(): number | undefined {
    return this.handle?.port;
  }

  /** Health of the whole server ('') or one entry (see PARTITIONS_HEALTH). */
  setServing(name: string, serving: boolean): void {
    this.handle?.setServing(name, serving);
  }

  /** Stops accepting calls, lets running ones finish (up to graceMs), then closes every log. */
  async stop(graceMs = 5_000): Promise<void> {
    await this.handle?.shutdown(graceMs);
    await this.replicas.close();
  }
}
