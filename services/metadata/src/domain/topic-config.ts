/**
 * Topic configuration keys users know from Kafka, their validation and cluster defaults. Values are
 * stored and returned as strings (as Kafka does) after normalisation, so `describe` shows exactly
 * what the broker will read. Pure: no I/O, no logging.
 */

export type ConfigProblem = { key: string; problem: string };

interface ConfigKeySpec {
  /** Kafka's default, used when neither the topic nor the cluster overrides it. */
  defaultValue: string;
  /** Returns the normalised value, or a problem description. */
  parse(raw: string): { value: string } | { problem: string };
  doc: string;
}

const INT64_MAX = 9223372036854775807n;
const INT32_MAX = 2147483647n;

function integer(min: bigint, max: bigint) {
  return (raw: string): { value: string } | { problem: string } => {
    const trimmed = raw.trim();
    if (!/^-?\d+$/.test(trimmed)) return { problem: `must be an integer, got "${raw}"` };
    const n = BigInt(trimmed);
    if (n < min || n > max) return { problem: `must be between ${min} and ${max}, got ${n}` };
    return { value: n.toString() };
  };
}

function oneOf(...allowed: string[]) {
  return (raw: string): { value: string } | { problem: string } => {
    const v = raw.trim();
    return allowed.includes(v) ? { value: v } : { problem: `must be one of ${allowed.join(', ')}, got "${raw}"` };
  };
}

function boolean(raw: string): { value: string } | { problem: string } {
  const v = raw.trim().toLowerCase();
  if (v === 'true' || v === 'false') return { value: v };
  return { problem: `must be true or false, got "${raw}"` };
}

function cleanupPolicy(raw: string): { value: string } | { problem: string } {
  const parts = raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (parts.length === 0 || parts.some((p) => p !== 'delete' && p !== 'compact')) {
    return { problem: `must be delete, compact, or compact,delete, got "${raw}"` };
  }
  return { value: [...new Set(parts)].sort().join(',') };
}

export const TOPIC_CONFIG_KEYS: Readonly<Record<string, ConfigKeySpec>> = {
  'retention.ms': { defaultValue: '604800000', parse: integer(-1n, INT64_MAX), doc: 'Delete segments older than this; -1 keeps forever.' },
  'retention.bytes': { defaultValue: '-1', parse: integer(-1n, INT64_MAX), doc: 'Delete oldest segments while a partition is larger; -1 disables.' },
  'segment.bytes': { defaultValue: '1073741824', parse: integer(1024n, INT32_MAX), doc: 'Roll a new segment at this size.' },
  'segment.ms': { defaultValue: '604800000', parse: integer(1n, INT64_MAX), doc: 'Roll a new segment after this age.' },
  'cleanup.policy': { defaultValue: 'delete', parse: cleanupPolicy, doc: 'delete (retention), compact (latest per key), or both.' },
  'delete.retention.ms': { defaultValue: '86400000', parse: integer(0n, INT64_MAX), doc: 'How long compaction keeps tombstones.' },
  'min.compaction.lag.ms': { defaultValue: '0', parse: integer(0n, INT64_MAX), doc: 'Minimum age before a record may be compacted.' },
  'min.insync.replicas': { defaultValue: '1', parse: integer(1n, INT32_MAX), doc: 'ISR size required for acks=all writes.' },
  'max.message.bytes': { defaultValue: '1048588', parse: integer(0n, INT32_MAX), doc: 'Largest record batch accepted, in bytes.' },
  'unclean.leader.election.enable': { defaultValue: 'false', parse: boolean, doc: 'Allow a non-ISR replica to lead (may lose data).' },
  'flush.messages': { defaultValue: INT64_MAX.toString(), parse: integer(1n, INT64_MAX), doc: 'fsync after this many records.' },
  'flush.ms': { defaultValue: INT64_MAX.toString(), parse: integer(0n, INT64_MAX), doc: 'fsync when the oldest unflushed record is this old.' },
  'index.interval.bytes': { defaultValue: '4096', parse: integer(0n, INT32_MAX), doc: 'Bytes between offset index entries.' },
  'message.timestamp.type': { defaultValue: 'CreateTime', parse: oneOf('CreateTime', 'LogAppendTime'), doc: 'Use the producer time or the broker append time.' },
  // Broker-side schema validation (docs/schemas.md): Confluent Server's confluent.*.schema.validation.
  'key.schema.validation': {
    defaultValue: 'false',
    parse: boolean,
    doc: 'Refuse records whose key does not carry a schema id (magic byte 0, 4-byte id) registered under <topic>-key in the schema registry; null keys pass.',
  },
  'value.schema.validation': {
    defaultValue: 'false',
    parse: boolean,
    doc: 'Refuse records whose value does not carry a schema id (magic byte 0, 4-byte id) registered under <topic>-value in the schema registry; tombstones pass.',
  },
};

export function isKnownConfigKey(key: string): boolean {
  return Object.hasOwn(TOPIC_CONFIG_KEYS, key);
}

/**
 * Validates overrides as a whole. Unknown keys and invalid values are all reported (each naming its
 * key), so a user fixes everything in one round trip.
 */
export function validateTopicConfigs(
  overrides: Readonly<Record<string, string>>,
  context: { replicationFactor: number },
): { configs: Record<string, string>; problems: ConfigProblem[] } {
  const configs: Record<string, string> = {};
  const problems: ConfigProblem[] = [];
  for (const [key, raw] of Object.entries(overrides)) {
    const spec = TOPIC_CONFIG_KEYS[key];
    if (!spec) {
      problems.push({ key, problem: 'unknown config key' });
      continue;
    }
    const parsed = spec.parse(raw);
    if ('problem' in parsed) problems.push({ key, problem: parsed.problem });
    else configs[key] = parsed.value;
  }
  const minIsr = configs['min.insync.replicas'];
  // Kafka accepts min.insync.replicas > replication factor and then refuses every acks=all write;
  // refusing it up front saves users that debugging session.
  if (minIsr !== undefined && Number(minIsr) > context.replicationFactor) {
    problems.push({
      key: 'min.insync.replicas',
      problem: `must not exceed the replication factor (${context.replicationFactor}), got ${minIsr}`,
    });
  }
  return { configs, problems };
}

/** Every known key with its effective value: topic override, else cluster default, else Kafka's default. */
export function effectiveConfigs(
  overrides: Readonly<Record<string, string>>,
  clusterDefaults: Readonly<Record<string, string>>,
): Array<{ name: string; value: string; isDefault: boolean }> {
  return Object.keys(TOPIC_CONFIG_KEYS)
    .sort()
    .map((name) => {
      const override = overrides[name];
      if (override !== undefined) return { name, value: override, isDefault: false };
      return { name, value: clusterDefaults[name] ?? TOPIC_CONFIG_KEYS[name]!.defaultValue, isDefault: true };
    });
}

/** Kafka's topic name rule: 1-249 characters of [a-zA-Z0-9._-], and not "." or "..". */
export function topicNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'topic name must not be empty';
  if (name.length > 249) return `topic name is ${name.length} characters; the limit is 249`;
  if (name === '.' || name === '..') return `topic name must not be "${name}"`;
  if (!/^[a-zA-Z0-9._-]+$/.test(name)) return 'topic name may contain only ASCII letters, digits, ".", "_" and "-"';
  return undefined;
}
