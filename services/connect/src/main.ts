#!/usr/bin/env node
/**
 * A Connect worker: shares the connectors and tasks of its group (--group-id) with the other
 * workers, through task slots assigned by the group coordinator (domain/assignment.ts); serves
 * skein.connect.v1.ConnectService; registers with the metadata service so the CLI finds it.
 * Started by the one service shell (TLS, limits, health, reflection, metrics, shutdown).
 */
import { hostname } from 'node:os';
import { SkeinClient } from '@skein/client';
import { followAclsFromMetadata } from '@skein/common/security/acl-cache.js';
import { runService } from '@skein/common/service-shell.js';
import { startServiceRegistration } from '@skein/common/service-registration.js';
import { ServiceRole } from '@skein/proto/skein/metadata/v1/metadata.js';
import { connectConfigSchema } from './config.js';
import { builtInPlugins } from './connectors/index.js';
import { connectAuthorizeMap } from './grpc/connect-authz.js';
import { CONNECT_SERVICE_NAME, ConnectServiceService, connectServiceHandlers } from './grpc/connect-service.js';
import { PluginRegistry } from './runtime/plugins.js';
import { Worker } from './runtime/worker.js';

await runService({
  name: 'connect',
  description: 'a Connect worker: runs connectors and tasks shared with the other workers of its group',
  schema: connectConfigSchema,
  async start({ config, logger, serve, clientCredentials, authorization }) {
    const workerId = config.instanceId || `${hostname()}-${process.pid}`;
    const plugins = new PluginRegistry(builtInPlugins);
    for (const m of config.pluginModules) await plugins.load(m);
    const client = new SkeinClient({ metadata: config.metadataAddresses, credentials: clientCredentials });
    const worker = new Worker({
      client,
      workerId,
      groupId: config.groupId,
      configTopic: config.configTopic,
      offsetsTopic: config.offsetsTopic,
      offsetsPartitions: config.offsetsPartitions,
      statusTopic: config.statusTopic,
      slotsTopic: config.slotsTopic,
      taskSlots: config.taskSlots,
      replicationFactor: config.internalReplicationFactor,
      exactlyOnceSourceSupport: config.exactlyOnceSourceSupport,
      plugins,
      logger: logger.child({ component: 'worker' }),
      coordinator: config.coordinatorAddresses,
    });
    await worker.start();
    const server = await serve({
      services: [
        {
          name: CONNECT_SERVICE_NAME,
          definition: ConnectServiceService,
          authorize: connectAuthorizeMap,
          implementation: connectServiceHandlers(worker, logger.child({ component: 'connect-service' })),
        },
      ],
    });
    logger.info({ port: server.port, workerId, groupId: config.groupId, plugins: plugins.list().map((p) => p.connectorClass) }, 'connect worker listening');
    // This worker's copy of the ACLs, fed by the metadata service (--authorizer-enabled).
    const aclFollower = authorization.enabled
      ? followAclsFromMetadata(authorization.acls, {
          metadataAddresses: config.metadataAddresses,
          credentials: clientCredentials,
          logger: logger.child({ component: 'acls' }),
        })
      : undefined;
    const registration = startServiceRegistration({
      metadataAddresses: config.metadataAddresses,
      role: ServiceRole.SERVICE_ROLE_CONNECT,
      instanceId: workerId,
      endpoint: { host: config.advertisedHost || config.host, port: server.port },
      credentials: clientCredentials,
      logger: logger.child({ component: 'registration' }),
    });
    return {
      stop: async () => {
        aclFollower?.close();
        await registration.stop();
        await worker.stop();
        await server.shutdown(config.shutdownGraceMs);
        client.close();
      },
    };
  },
});
