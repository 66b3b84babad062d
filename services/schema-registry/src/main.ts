#!/usr/bin/env node
/**
 * The schema registry process: stateless over the metadata store (etcd in production; the embedded
 * store for one instance). Two front doors on the same Registry: gRPC (skein.schema.v1, through the
 * one service shell: TLS, limits, health, reflection, metrics, shutdown) and the Confluent REST API
 * on its own port (default 8081), so Confluent's serializers work unchanged.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { ConfigError } from '@skein/common/config.js';
import { followAclsFromMetadata } from '@skein/common/security/acl-cache.js';
import { runService } from '@skein/common/service-shell.js';
import { startServiceRegistration } from '@skein/common/service-registration.js';
import { instrumentStore } from '@skein/common/store/instrumented-store.js';
import { openMetadataStore, storeOptionsFromConfig } from '@skein/common/store/open-store.js';
import { ServiceRole } from '@skein/proto/skein/metadata/v1/metadata.js';
import { registryConfigSchema } from './config.js';
import { SCHEMA_SERVICE_NAME, SchemaRegistryServiceService, schemaAuthorizeMap, schemaServiceHandlers } from './grpc/schema-service.js';
import { startRestServer } from './rest/rest-server.js';
import { Registry } from './runtime/registry.js';
import { RegistryMetrics } from './runtime/registry-metrics.js';
import { aclSubjectAuthorizer, restCaller } from './runtime/subject-authorization.js';
import { RegistryStore } from './store/registry-store.js';

await runService({
  name: 'schema-registry',
  description: 'schema subjects, versions and ids (Avro, Protobuf, JSON Schema) with compatibility; gRPC and the Confluent REST API',
  schema: registryConfigSchema,
  validate(config) {
    if (config.restTls && config.tlsCertFile === '')
      throw new ConfigError('--rest-tls needs --tls-cert-file / SKEIN_TLS_CERT_FILE (the REST listener serves the same certificate)');
    // The ACLs come from the metadata service's WatchAcls; without it only super-users and internal principals could do anything.
    if (config.authorizerEnabled && config.metadataAddresses.length === 0)
      throw new ConfigError('--authorizer-enabled needs --metadata-addresses (the ACLs come from the metadata service)');
  },
  async start({ config, logger, metrics, serve, clientCredentials, authorization, authenticator }) {
    const store = instrumentStore(
      await openMetadataStore(config.etcdEndpoints.length > 0 ? `etcd://${config.etcdEndpoints.join(',')}` : config.store, storeOptionsFromConfig(config)),
      metrics.storeRequests(),
    );
    // With --authorizer-enabled every operation is checked against the ACLs on its subjects
    // (runtime/subject-authorization.ts), for gRPC and REST alike; without it everyone may do everything.
    const registry = new Registry({
      store: new RegistryStore(store, config.prefix),
      cacheSize: config.schemaCacheSize,
      authorize: authorization.enabled ? aclSubjectAuthorizer(authorization.acls, authorization.audit) : undefined,
    });
    await registry.start();
    const registryMetrics = new RegistryMetrics(metrics.registry, registry.stats);
    const server = await serve({
      services: [
        { name: SCHEMA_SERVICE_NAME, definition: SchemaRegistryServiceService, implementation: schemaServiceHandlers(registry), authorize: schemaAuthorizeMap },
      ],
    });
    logger.info({ port: server.port }, 'schema registry gRPC listening');
    const restHost = config.restHost || config.host;
    // --authentication-required holds on REST where a request can authenticate (HTTPS with client
    // certificates, or bearer tokens); plain HTTP without a token verifier has no way to, so it
    // stays open to anonymous callers (the ACLs still apply with --authorizer-enabled): said at start.
    const restAuthRequired = authenticator.required && ((config.restTls && config.tlsCaFile !== '') || authorization.jwt !== undefined);
    if (authenticator.required && !restAuthRequired && config.restPort >= 0)
      logger.warn(
        '--authentication-required does not cover the plain-HTTP REST API (no --rest-tls with --tls-ca-file, no --jwt-jwks-*): REST callers are anonymous',
      );
    const rest =
      config.restPort >= 0
        ? await startRestServer({
            registry,
            host: restHost,
            port: config.restPort,
            logger: logger.child({ component: 'rest' }),
            maxBodyBytes: config.restMaxBodyBytes,
            onRequest: (route, status) => registryMetrics.restRequest(route, status),
            // As on gRPC: callers are identified whenever any security is on (a token sent to a
            // service that cannot verify it is refused), and on an mTLS listener.
            identify:
              authorization.enabled || authorization.jwt || authenticator.required || config.restTls
                ? (req, route) => restCaller(req, { authenticator, jwt: authorization.jwt, audit: authorization.audit, required: restAuthRequired }, route)
                : undefined,
            tls: config.restTls
              ? {
                  cert: readFileSync(config.tlsCertFile),
                  key: readFileSync(config.tlsKeyFile),
                  ca: config.tlsCaFile ? readFileSync(config.tlsCaFile) : undefined,
                  requireClientCert: config.tlsRequireClientCert,
                }
              : undefined,
          })
        : undefined;
    if (rest) logger.info({ port: rest.port, url: `${config.restTls ? 'https' : 'http'}://${restHost}:${rest.port}` }, 'schema registry REST API listening');
    // This instance's copy of the ACLs, fed by the metadata service (--authorizer-enabled).
    const aclFollower = authorization.enabled
      ? followAclsFromMetadata(authorization.acls, {
          metadataAddresses: config.metadataAddresses,
          credentials: clientCredentials,
          logger: logger.child({ component: 'acls' }),
        })
      : undefined;
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
        aclFollower?.close();
        await rest?.close();
        await server.shutdown(config.shutdownGraceMs);
        await registry.close();
        await store.close();
      },
    };
  },
});
