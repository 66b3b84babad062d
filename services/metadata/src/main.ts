#!/usr/bin/env node
/** The metadata service process: started by the one service shell (libs/common/src/service-shell.ts). */
import { ConfigError } from '@skein/common/config.js';
import { runService } from '@skein/common/service-shell.js';
import { validateTopicConfigs } from './domain/topic-config.js';
import { metadataConfigSchema } from './config.js';
import { parseDefaults, startMetadataServer } from './server.js';

await runService({
  name: 'metadata',
  description: "Skein's metadata service (membership, topics, controller)",
  schema: metadataConfigSchema,
  validate(config) {
    const defaults = validateTopicConfigs(parseDefaults(config.topicConfigDefaults), { replicationFactor: Number.MAX_SAFE_INTEGER });
    if (defaults.problems.length > 0) {
      throw new ConfigError(`invalid --topic-config-defaults / SKEIN_TOPIC_CONFIG_DEFAULTS: ${defaults.problems.map((p) => `${p.key}: ${p.problem}`).join('; ')}`);
    }
    if (!config.prefix.endsWith('/')) throw new ConfigError(`invalid --prefix / SKEIN_PREFIX: must end with "/", got "${config.prefix}"`);
  },
  async start({ config, logger, metrics, serve, authorization }) {
    const effective = config.etcdEndpoints.length > 0 ? { ...config, store: `etcd://${config.etcdEndpoints.join(',')}` } : config;
    const server = await startMetadataServer(effective, logger, metrics, serve, authorization);
    return { stop: () => server.stop() };
  },
});
