/**
 * Per-topic log settings, parsed from the topic's config map (the metadata service validated the
 * values; defaults here match its defaults). Pure.
 */
export interface LogConfig {
  segmentBytes: number;
  segmentMs: number;
  indexIntervalBytes: number;
  /** -1 keeps forever. */
  retentionMs: number;
  /** -1 disables. */
  retentionBytes: number;
  cleanupDelete: boolean;
  cleanupCompact: boolean;
  deleteRetentionMs: number;
  minCompactionLagMs: number;
  maxMessageBytes: number;
  /** fsync after this many records; Infinity leaves it to the OS. */
  flushMessages: number;
  /** fsync when unflushed data is this old; Infinity leaves it to the OS. */
  flushMs: number;
  /** key.schema.validation: produced keys must carry a schema id registered under `<topic>-key`. */
  keySchemaValidation: boolean;
  /** value.schema.validation: produced values must carry a schema id registered under `<topic>-value`. */
  valueSchemaValidation: boolean;
}

const INT64_MAX = '9223372036854775807';

export const DEFAULT_LOG_CONFIG: LogConfig = {
  segmentBytes: 1073741824,
  segmentMs: 604800000,
  indexIntervalBytes: 4096,
  retentionMs: 604800000,
  retentionBytes: -1,
  cleanupDelete: true,
  cleanupCompact: false,
  deleteRetentionMs: 86400000,
  minCompactionLagMs: 0,
  maxMessageBytes: 1048588,
  flushMessages: Infinity,
  flushMs: Infinity,
  keySchemaValidation: false,
  valueSchemaValidation: false,
};

function num(raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  if (raw === INT64_MAX) return Infinity;
  const n = Number(raw);
  if (!Number.isFinite(n)) throw new RangeError(`not a number: ${raw}`);
  // Values beyond 2^53 (only int64-max-like sentinels in practice) mean "never".
  return n > Number.MAX_SAFE_INTEGER ? Infinity : n;
}

function bool(raw: string | undefined, fallback: boolean): boolean {
  return raw === undefined ? fallback : raw === 'true';
}

export function parseLogConfig(configs: Readonly<Record<string, string>>, defaults: LogConfig = DEFAULT_LOG_CONFIG): LogConfig {
  const policy = (configs['cleanup.policy'] ?? (defaults.cleanupCompact ? (defaults.cleanupDelete ? 'compact,delete' : 'compact') : 'delete'))
    .split(',')
    .map((s) => s.trim());
  return {
    segmentBytes: num(configs['segment.bytes'], defaults.segmentBytes),
    segmentMs: num(configs['segment.ms'], defaults.segmentMs),
    indexIntervalBytes: num(configs['index.interval.bytes'], defaults.indexIntervalBytes),
    retentionMs: num(configs['retention.ms'], defaults.retentionMs),
    retentionBytes: num(configs['retention.bytes'], defaults.retentionBytes),
    cleanupDelete: policy.includes('delete'),
    cleanupCompact: policy.includes('compact'),
    deleteRetentionMs: num(configs['delete.retention.ms'], defaults.deleteRetentionMs),
    minCompactionLagMs: num(configs['min.compaction.lag.ms'], defaults.minCompactionLagMs),
    maxMessageBytes: num(configs['max.message.bytes'], defaults.maxMessageBytes),
    flushMessages: num(configs['flush.messages'], defaults.flushMessages),
    flushMs: num(configs['flush.ms'], defaults.flushMs),
    keySchemaValidation: bool(configs['key.schema.validation'], defaults.keySchemaValidation),
    valueSchemaValidation: bool(configs['value.schema.validation'], defaults.valueSchemaValidation),
  };
}
