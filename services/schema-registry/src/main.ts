#!/usr/bin/env node
/**
 * The schema registry process: stateless over the metadata store (etcd in production; the embedded
 * store for one instance). Two front doors on the same Registry: gRPC (skein.schema.v1, through the
 * one service shell: TLS, limits, health, reflection, metrics, shutdown) and the Confluent REST API
 * on its own port (default 8081), so Confluent's serializers work unchanged.
 */
import { hostname } from 'node:os';
import { runService } from '@skein/common/service-shell.js';
import { startServiceRegistration } from '@skein/common/service-registration.js';
import { instrumentStore } from '@skein/common/store/instrumented-store.js';
import { openMetadataStore, storeOptionsFromConfig } from '@skein/common/store/open-store.js';
import { ServiceRole } from '@skein/proto/skein/metadata/v1/metadata.js';
import { registryConfigSchema } from './config.js';
import { SCHEMA_SERVICE_NAME, SchemaRegistryServiceService, schemaServiceHandlers } from './grpc/schema-service.js';
import { startRestServer } from './rest/rest-server.js';
import { Registry } from './runtime/registry.js';
import { RegistryMetrics } from './runtime/registry-metrics.js';
import { RegistryStore } from './store/registry-store.js';

await runService({
  name: 'schema-registry',
  description: 'schema subjects, versions and ids (Avro, Protobuf, JSON Schema) with compatibility; gRPC and the Confluent REST API',
  schema: registryConfigSchema,
  async start({ config, logger, metrics, serve, clientCredentials }) {
    const store = instrumentStore(
      await openMetadataStore(config.etcdEndpoints.length > 0 ? `etcd://${config.etcdEndpoints.join(',')}` : config.store, storeOptionsFromConfig(config)),
      metrics.storeRequests(),
    );
    // Authorization hook: the ACL authorizer (issue 14) plugs in as Registry's `authorize`
    // (resource type 'subject'); until then every caller may do everything, as on other services
    // started without --authorizer-enabled.
    const registry = new Registry({ store: new RegistryStore(store, config.prefix), cacheSize: config.schemaCacheSize });
    await registry.start();
    const registryMetrics = new RegistryMetrics(metrics.registry, registry.stats);
    const server = await serve({
      services: [{ name: SCHEMA_SERVICE_NAME, definition: SchemaRegistryServiceService, implementation: schemaServiceHandlers(registry) }],
    });
    logger.info({ port: server.port }, 'schema registry gRPC listening');
    const restHost = config.restHost || config.host;
    const rest =
      config.restPort >= 0
        ? await startRestServer({
            registry,
            host: restHost,
            port: config.restPort,
            logger: logger.child({ component: 'rest' }),
            maxBodyBytes: config.restMaxBodyBytes,
            onRequest: (route, status) => registryMetrics.restRequest(route, status),
          })
        : undefined;
    if (rest) logger.info({ port: rest.port, url: `http://${restHost}:${rest.port}` }, 'schema registry REST API listening');
    const registration =
      config.metadataAddresses.length > 0
        ? startServiceRegistration({
            metadataAddresses: config.metadataAddresses,
            role: ServiceRole.SERVICE_ROLE_SCHEMA_REGISTRY,
            instanceId: config.instanceId || `${hostname()}-${process.pid}`,
            endpoint: { host: config.advertisedHost || config.host, port: server.port },
            credentials: clientCredentials,
            logger: logger.child({ component: 'registration' }),
          })
        : undefined;
    return {
      stop: async () => {
        // Unlisted first, so no client finds this instance while it drains.
        await registration?.stop();
        await rest?.close();
        await server.shutdown(config.shutdownGraceMs);
        await registry.close();
        await store.close();
      },
    };
  },
});
