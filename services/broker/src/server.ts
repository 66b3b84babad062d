/**
 * Wiring only: builds the replica manager, the producer-id manager and the BrokerService handlers,
 * and starts/stops them in order. The metadata side (registration, WatchMetadata → assignments,
 * the cluster cache behind GetMetadata and leader hints, AllocateProducerIds) is passed in, so
 * tests run a broker in-process against fakes.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { BrokerConfig } from './config.js';
import { brokerServiceDefinition, type BrokerMetadataView, createBrokerServiceHandlers } from './grpc/broker-service.js';
import type { LogConfig } from './log/log-config.js';
import { ProducerIdManager, type ProducerIdSource } from './producer-id-manager.js';
import { ReplicaManager } from './replica-manager.js';
import { encodeReplicaFetchResponse } from './grpc/wire-codec.js';
import { createReplicaServiceHandlers, ReplicaServiceService } from './replication/replica-service.js';
import { type Clock, systemClock, systemTimers, type Timers } from './runtime/timers.js';

export interface BrokerServerOptions {
  config: Pick<BrokerConfig, 'brokerId' | 'dataDir' | 'host' | 'port' | 'backgroundIntervalMs' | 'producerIdBlockSize' | 'fetchMaxBytes'> & Partial<Pick<BrokerConfig, 'replicaLogReadEnabled' | 'subscribeMaxBytes' | 'maxPartitionsPerRequest'>>;
  logger: Logger;
  metadata: BrokerMetadataView;
  producerIdSource: ProducerIdSource;
  clock?: Clock;
  timers?: Timers;
  defaultLogConfig?: LogConfig;
  /** Refuse the data path until `replicas.markReady()` (the broker process; see ReplicaManager). */
  awaitMetadata?: boolean;
  /** Extra services to serve on the same port (health, reflection, ...). */
  addServices?: (server: grpc.Server) => void;
}

export class BrokerServer {
  readonly replicas: ReplicaManager;
  private readonly server: grpc.Server;
  private boundPort: number | undefined;

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
    });
    this.server = new grpc.Server({
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
      'grpc.max_send_message_length': 64 * 1024 * 1024,
    });
    this.server.addService(
      brokerServiceDefinition,
      createBrokerServiceHandlers({
        replicas: this.replicas,
        metadata: opts.metadata,
        producerIds: new ProducerIdManager(opts.producerIdSource, opts.config.producerIdBlockSize),
        timers,
        logger: opts.logger.child({ component: 'broker-service' }),
        fetchMaxBytes: opts.config.fetchMaxBytes,
        subscribeMaxBytes: opts.config.subscribeMaxBytes,
        maxPartitionsPerRequest: opts.config.maxPartitionsPerRequest,
        replicaLogReadEnabled: opts.config.replicaLogReadEnabled,
      }),
    );
    // Replica fetch answers carry stored batches: encoded with one copy per batch (wire-codec.ts).
    this.server.addService(
      { ...ReplicaServiceService, replicaFetch: { ...ReplicaServiceService.replicaFetch, responseSerialize: encodeReplicaFetchResponse } },
      createReplicaServiceHandlers({ replicas: this.replicas, clock, timers, logger: opts.logger.child({ component: 'replica-service' }) }),
    );
    opts.addServices?.(this.server);
  }

  /** Binds and starts serving; resolves with the bound port. */
  async start(): Promise<number> {
    const { host, port } = this.opts.config;
    this.boundPort = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    this.replicas.startBackgroundTasks();
    this.opts.logger.info({ host, port: this.boundPort, brokerId: this.opts.config.brokerId }, 'broker serving');
    return this.boundPort;
  }

  get port(): number | undefined {
    return this.boundPort;
  }

  /** Stops accepting calls, lets running ones finish (up to graceMs), then closes every log. */
  async stop(graceMs = 5_000): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    await this.replicas.close();
  }
}
