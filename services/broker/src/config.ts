/**
 * The broker's configuration: flags `--kebab-case` and environment `SKEIN_*` through libs/common's
 * loader, validated once at start-up; an invalid value stops start-up with a message naming the key.
 */
import { type ConfigOf, ConfigError as CommonConfigError, loadConfig } from '@skein/common/config.js';
import { serviceShellConfigSchema } from '@skein/common/service-shell.js';

export const brokerConfigSchema = {
  ...serviceShellConfigSchema,
  // Produce requests carry batches (max.message.bytes up to 64 MiB per partition batch).
  maxReceiveMessageBytes: { ...serviceShellConfigSchema.maxReceiveMessageBytes, default: 64 * 1024 * 1024 },
  // Produce and replication streams carry MiBs per message: with Node's 64 KiB window a sender
  // waits a round trip per 64 KiB (bench/PROFILE.md: 153 MB/s with it, 439 MB/s with 8 MiB).
  http2WindowBytes: { ...serviceShellConfigSchema.http2WindowBytes, default: 8 * 1024 * 1024 },
  port: { type: 'int', default: 9092, min: 0, max: 65535, doc: 'gRPC port (0 picks a free one)' },
  brokerId: { type: 'int', default: -1, min: -1, max: 0x7fffffff, doc: 'Stable broker id (required), e.g. the StatefulSet ordinal' },
  dataDir: { type: 'string', default: '', doc: 'Directory holding the partition logs (required)' },
  metadataAddresses: { type: 'list', default: ['127.0.0.1:9090'], doc: 'Metadata service addresses host:port,...' },
  rack: { type: 'string', default: '', doc: 'Rack or zone, for rack-aware replica placement' },
  sessionTtlMs: { type: 'int', default: 9000, min: 1000, max: 300_000, doc: 'Broker session TTL at the metadata service' },
  backgroundIntervalMs: { type: 'int', default: 5000, min: 10, max: 3_600_000, doc: 'Retention, flush.ms and checkpoint pass interval' },
  producerIdBlockSize: { type: 'int', default: 1000, min: 1, max: 1_000_000, doc: 'Producer ids fetched per AllocateProducerIds call' },
  replicaLagTimeMaxMs: { type: 'int', default: 30_000, min: 100, max: 600_000, doc: 'A follower not caught up for this long leaves the ISR (Kafka: replica.lag.time.max.ms, 30 s since KIP-537)' },
  // Responses must stay below the gRPC send limit (64 MiB, server.ts), hence the 60 MiB maximum.
  fetchMaxBytes: { type: 'int', default: 50 * 1024 * 1024, min: 1024, max: 60 * 1024 * 1024, doc: 'Cap on FetchRequest.max_bytes (and ReadReplicaLogRequest.max_bytes)' },
  // A stream whose reader stalls holds about one message, so this also bounds a stalled stream's memory.
  subscribeMaxBytes: { type: 'int', default: 8 * 1024 * 1024, min: 1024, max: 60 * 1024 * 1024, doc: 'Cap on SubscribeRequest.max_bytes (bytes of batches per stream message)' },
  maxPartitionsPerRequest: { type: 'int', default: 10_000, min: 1, max: 1_000_000, doc: 'Most partition entries one Produce, ProduceStream, Fetch or ListOffsets request may list' },
  // Client quotas (skein quotas; docs/security.md): rates are measured over samples x window, Kafka's quota.window.num x quota.window.size.seconds.
  quotaWindowMs: { type: 'int', default: 1000, min: 10, max: 60_000, doc: 'Length of one sample window of the client byte-rate quotas (Kafka: quota.window.size.seconds)' },
  quotaWindowSamples: { type: 'int', default: 11, min: 2, max: 100, doc: 'Sample windows a client quota rate is measured over (Kafka: quota.window.num)' },
  // Off by default: ReadReplicaLog reads any replica (followers too, above the high watermark) and
  // there is no authorization yet, so only operators and tests that ask for it get it.
  replicaLogReadEnabled: { type: 'bool', default: false, doc: 'Serve ReadReplicaLog (operator read of this broker\'s replicas, byte for byte); off until authorization exists' },
  // Broker-side schema validation (topics with key/value.schema.validation; docs/schemas.md).
  schemaRegistryAddresses: {
    type: 'list',
    default: [],
    doc: 'Schema registry gRPC addresses host:port,... for topics with key/value.schema.validation; empty: the instances registered with the metadata service',
  },
  schemaValidationCacheTtlMs: {
    type: 'int',
    default: 60_000,
    min: 0,
    max: 86_400_000,
    doc: 'How long a registry answer allowing a schema id under a subject is trusted (a version deleted since is accepted until then)',
  },
  schemaValidationNegativeCacheTtlMs: {
    type: 'int',
    default: 1_000,
    min: 0,
    max: 3_600_000,
    doc: 'How long an unknown schema id (or one not under the subject) is refused without asking the registry again',
  },
} as const;

export type BrokerConfig = ConfigOf<typeof brokerConfigSchema>;
export class ConfigError extends CommonConfigError {}

export function loadBrokerConfig(env: NodeJS.ProcessEnv = process.env, argv: string[] = []): BrokerConfig {
  const config = loadConfig(brokerConfigSchema, { env, argv });
  validateBrokerConfig(config);
  return config;
}

/** The checks one key alone cannot express; throws ConfigError naming the key. */
export function validateBrokerConfig(config: BrokerConfig): void {
  if (config.brokerId < 0) throw new ConfigError('--broker-id / SKEIN_BROKER_ID is required (0 or greater)');
  if (config.dataDir === '') throw new ConfigError('--data-dir / SKEIN_DATA_DIR is required');
  for (const a of config.schemaRegistryAddresses) {
    if (!/^[^:]+:\d+$/.test(a)) throw new ConfigError(`invalid --schema-registry-addresses / SKEIN_SCHEMA_REGISTRY_ADDRESSES: "${a}" is not host:port`);
  }
  for (const a of config.metadataAddresses) {
    if (!/^[^:]+:\d+$/.test(a)) throw new ConfigError(`invalid --metadata-addresses / SKEIN_METADATA_ADDRESSES: "${a}" is not host:port`);
  }
}
