/**
 * The broker's configuration, validated once at start-up. Sources: environment (`SKEIN_*`), then
 * defaults. An invalid value stops start-up with a message naming the key.
 * (To move onto libs/common's config loader once it lands; the schema stays the same.)
 */
export interface BrokerConfig {
  /** Stable broker id (e.g. the StatefulSet ordinal). SKEIN_BROKER_ID. */
  brokerId: number;
  /** Where partition logs live. SKEIN_DATA_DIR. */
  dataDir: string;
  /** Address to listen on. SKEIN_HOST (default 127.0.0.1). */
  host: string;
  /** gRPC port; 0 picks a free one. SKEIN_PORT (default 9092). */
  port: number;
  /** Host advertised to clients and other brokers. SKEIN_ADVERTISED_HOST (default host). */
  advertisedHost: string;
  /** Metadata service addresses, host:port, comma-separated. SKEIN_METADATA_ADDRESSES. */
  metadataAddresses: string[];
  /** Rack or zone. SKEIN_RACK. */
  rack: string;
  /** Metadata session TTL. SKEIN_SESSION_TTL_MS (default 10000). */
  sessionTtlMs: number;
  /** Retention, flush.ms and checkpoint pass interval. SKEIN_LOG_BACKGROUND_INTERVAL_MS (default 5000). */
  backgroundIntervalMs: number;
  /** Producer ids fetched per AllocateProducerIds call. SKEIN_PRODUCER_ID_BLOCK_SIZE (default 1000). */
  producerIdBlockSize: number;
  /** Cap on FetchRequest.max_bytes. SKEIN_FETCH_MAX_BYTES (default 52428800). */
  fetchMaxBytes: number;
}

export class ConfigError extends Error {
  constructor(readonly key: string, message: string) {
    super(`${key}: ${message}`);
  }
}

function int(env: Record<string, string | undefined>, key: string, fallback: number | undefined, min: number, max: number): number {
  const raw = env[key];
  if (raw === undefined || raw === '') {
    if (fallback === undefined) throw new ConfigError(key, 'is required');
    return fallback;
  }
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(key, `must be an integer in [${min}, ${max}], got "${raw}"`);
  return n;
}

export function loadBrokerConfig(env: Record<string, string | undefined> = process.env): Readonly<BrokerConfig> {
  const dataDir = env['SKEIN_DATA_DIR'];
  if (!dataDir) throw new ConfigError('SKEIN_DATA_DIR', 'is required');
  const host = env['SKEIN_HOST'] || '127.0.0.1';
  const metadataAddresses = (env['SKEIN_METADATA_ADDRESSES'] ?? '').split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  for (const a of metadataAddresses) {
    if (!/^[^:]+:\d+$/.test(a)) throw new ConfigError('SKEIN_METADATA_ADDRESSES', `"${a}" is not host:port`);
  }
  return Object.freeze({
    brokerId: int(env, 'SKEIN_BROKER_ID', undefined, 0, 0x7fffffff),
    dataDir,
    host,
    port: int(env, 'SKEIN_PORT', 9092, 0, 65535),
    advertisedHost: env['SKEIN_ADVERTISED_HOST'] || host,
    metadataAddresses,
    rack: env['SKEIN_RACK'] ?? '',
    sessionTtlMs: int(env, 'SKEIN_SESSION_TTL_MS', 10_000, 1_000, 600_000),
    backgroundIntervalMs: int(env, 'SKEIN_LOG_BACKGROUND_INTERVAL_MS', 5_000, 10, 3_600_000),
    producerIdBlockSize: int(env, 'SKEIN_PRODUCER_ID_BLOCK_SIZE', 1000, 1, 1_000_000),
    fetchMaxBytes: int(env, 'SKEIN_FETCH_MAX_BYTES', 50 * 1024 * 1024, 1024, 0x7fffffff),
  });
}
