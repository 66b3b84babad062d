/**
 * Wiring only: open the store, build the view and the admin writer, bind the gRPC server, then
 * start the controller (it advertises the bound address), and stop in the reverse order. The view
 * holds a snapshot before the server answers, so no RPC ever sees an empty cluster by mistake.
 */

import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { type GrpcServerHandle, limitsFromConfig, startGrpcServer } from '@skein/common/grpc-server.js';
import { type ServeOptions, tlsFromConfig } from '@skein/common/service-shell.js';
import { openMetadataStore, storeOptionsFromConfig } from '@skein/common/store/open-store.js';
import { instrumentStore } from '@skein/common/store/instrumented-store.js';
import type { MetadataStore } from '@skein/common/store/types.js';
import type { MetricsRegistry } from '@skein/common/metrics.js';
import { MetadataKeys } from './domain/records.js';
import { AclFeed, METADATA_SERVICE_NAME, type MetadataServiceDeps, MetadataServiceService, metadataServiceHandlers } from './grpc/metadata-service.js';
import { metadataAuthorizeMap } from './grpc/metadata-authz.js';
import { AclStore } from '@skein/common/security/acl-store.js';
import { QuotaStore } from '@skein/common/quota/quota-store.js';
import { ClientQuotaServiceService, QUOTA_SERVICE_NAME, quotaAuthorizeMap, QuotaFeed, quotaServiceHandlers } from './grpc/quota-service.js';
import type { ServiceAuthorization } from '@skein/common/security/authorization-config.js';
import { DEFAULT_BROKER_PRINCIPAL_PATTERN } from '@skein/common/security/enforcement.js';
import { MetadataAdmin } from './runtime/admin.js';
import { Controller } from './runtime/controller.js';
import { MetadataMetrics } from './runtime/metadata-metrics.js';
import { MetadataView } from './runtime/metadata-view.js';
import { ServiceInstances } from './runtime/service-instances.js';
import type { MetadataConfig } from './config.js';

export interface MetadataServer {
  port: number;
  clusterId: string;
  store: MetadataStore;
  controller: Controller;
  stop(graceMs?: number): Promise<void>;
}

/** How the gRPC server is started: the service shell's `serve` in the process, a plain one in tests. */
export type Serve = (options: ServeOptions) => Promise<GrpcServerHandle>;

export async function startMetadataServer(config: MetadataConfig, logger: Logger, metrics?: MetricsRegistry, serve?: Serve, authorization?: ServiceAuthorization): Promise<MetadataServer> {
  // Every store request is timed (skein_store_request_duration_seconds) when the process has metrics.
  const opened = await openMetadataStore(config.store, storeOptionsFromConfig(config));
  const store = metrics ? instrumentStore(opened, metrics.storeRequests()) : opened;
  const metadataMetrics = metrics ? new MetadataMetrics(metrics.registry) : undefined;
  logger.info({ backend: store.kind, prefix: config.prefix }, 'metadata store opened');
  const keys = new MetadataKeys(config.prefix);
  const view = new MetadataView(store, keys, logger.child({ component: 'view' }));
  await view.start();
  const admin = new MetadataAdmin(store, keys, view, {
    defaultPartitions: config.defaultPartitions,
    defaultReplicationFactor: config.defaultReplicationFactor,
    brokerSessionTtlMs: config.brokerSessionTtlMs,
    minBrokerSessionTtlMs: 1000,
    maxBrokerSessionTtlMs: 300_000,
  }, logger.child({ component: 'admin' }));
  const clusterId = await admin.ensureClusterId();
  await view.waitForRevision((await store.range(keys.clusterId())).revision);

  const serviceInstances = new ServiceInstances(store, config.prefix, config.brokerSessionTtlMs, logger.child({ component: 'service-instances' }));
  // ACLs: this service owns their keys. One store watch feeds WatchAcls streams (every other
  // service's cache) and this instance's own authorizer; it holds the set before the server answers.
  const aclStore = new AclStore(store, config.prefix);
  const aclFeed = new AclFeed();
  const aclWatch = await aclStore.watch((acls, revision) => {
    aclFeed.publish(acls, revision);
    authorization?.acls.update(acls, revision);
  }, logger.child({ component: 'acls' }));
  const audit = authorization?.audit ?? logger.child({ component: 'audit' });
  // Client quotas: the same shape (a store watch feeding every broker's WatchClientQuotas stream).
  const quotaStore = new QuotaStore(store, config.prefix);
  const quotaFeed = new QuotaFeed();
  const quotaWatch = await quotaStore.watch((quotas, revision) => quotaFeed.publish(quotas, revision), logger.child({ component: 'quotas' }));
  const deps: MetadataServiceDeps = { admin, view, serviceInstances, controller: undefined, clusterDefaults: parseDefaults(config.topicConfigDefaults), acls: { store: aclStore, feed: aclFeed, audit } };
  const services = [{
    name: METADATA_SERVICE_NAME,
    definition: MetadataServiceService,
    implementation: metadataServiceHandlers(deps),
    authorize: metadataAuthorizeMap(authorization?.brokerPrincipalPattern ?? new RegExp(DEFAULT_BROKER_PRINCIPAL_PATTERN)),
  }, {
    name: QUOTA_SERVICE_NAME,
    definition: ClientQuotaServiceService,
    implementation: quotaServiceHandlers({ store: quotaStore, feed: quotaFeed, audit }),
    authorize: quotaAuthorizeMap,
  }];
  const server = serve
    ? await serve({ services })
    : await startGrpcServer({ host: config.host, port: config.port, services, tls: tlsFromConfig(config), logger, metrics, limits: limitsFromConfig(config) });
  const controller = new Controller(store, keys, view, {
    instanceId: config.instanceId || defaultInstanceId(),
    advertisedHost: config.advertisedHost || config.host,
    advertisedPort: server.port,
    sessionTtlMs: config.controllerSessionTtlMs,
    onEvent: metadataMetrics && ((e) => metadataMetrics.record(e)),
  }, logger.child({ component: 'controller' }));
  metadataMetrics?.watch({ isController: () => controller.isLeader, image: () => view.current });
  deps.controller = controller;
  controller.start();
  logger.info({ port: server.port, clusterId }, 'metadata service listening');

  return {
    port: server.port,
    clusterId,
    store,
    controller,
    async stop(graceMs = config.shutdownGraceMs) {
      server.setServing('', false);
      await controller.stop();
      await server.shutdown(graceMs);
      await aclWatch.close();
      await quotaWatch.close();
      await view.close();
      await store.close();
    },
  };
}

export function parseDefaults(entries: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of entries) {
    const i = e.indexOf('=');
    if (i > 0) out[e.slice(0, i)] = e.slice(i + 1);
  }
  return out;
}

export const defaultInstanceId = (): string => `${hostname()}-${process.pid}`;
