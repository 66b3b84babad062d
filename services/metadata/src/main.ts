#!/usr/bin/env node
import { ConfigError, configHelp, loadConfig } from '@skein/common/config.js';
import { createLogger } from '@skein/common/logger.js';
import { MetricsRegistry, startMetricsServer } from '@skein/common/metrics.js';
import { onShutdownSignal } from '@skein/common/shutdown.js';
import { validateTopicConfigs } from './domain/topic-config.js';
import { metadataConfigSchema } from './config.js';
import { parseDefaults, startMetadataServer } from './server.js';

if (process.argv.includes('--help')) {
  console.log(`skein-metadata: Skein's metadata service (membership, topics, controller)\n\nOptions (flag, environment variable):\n${configHelp(metadataConfigSchema)}`);
  process.exit(0);
}

let config;
try {
  config = loadConfig(metadataConfigSchema);
  const defaults = validateTopicConfigs(parseDefaults(config.topicConfigDefaults), { replicationFactor: Number.MAX_SAFE_INTEGER });
  if (defaults.problems.length > 0) {
    throw new ConfigError(`invalid --topic-config-defaults / SKEIN_TOPIC_CONFIG_DEFAULTS: ${defaults.problems.map((p) => `${p.key}: ${p.problem}`).join('; ')}`);
  }
  if (!config.prefix.endsWith('/')) throw new ConfigError(`invalid --prefix / SKEIN_PREFIX: must end with "/", got "${config.prefix}"`);
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(`skein-metadata: ${err.message}`);
    process.exit(2);
  }
  throw err;
}
const effective = config.etcdEndpoints.length > 0 ? { ...config, store: `etcd://${config.etcdEndpoints.join(',')}` } : config;
const logger = createLogger({ service: 'metadata', level: config.logLevel });
const metrics = new MetricsRegistry({ service: 'metadata' });
try {
  const server = await startMetadataServer(effective, logger, metrics);
  const metricsServer = config.metricsPort >= 0 ? await startMetricsServer({ host: config.host, port: config.metricsPort, metrics }) : undefined;
  if (metricsServer) logger.info({ port: metricsServer.port }, 'metrics on /metrics');
  onShutdownSignal(logger, async () => {
    await server.stop();
    await metricsServer?.close();
  });
} catch (err) {
  logger.fatal({ err }, 'metadata service failed to start');
  process.exit(1);
}
