/**
 * The keys every connector has, whatever its plugin (Kafka Connect's ConnectorConfig,
 * SinkConnectorConfig and the errors.* keys of KIP-298), and the whole validation of a connector
 * configuration: these keys, the plugin's own, the transforms. Pure.
 */

import { type ConfigKeyDef, splitList, validateConfig, type ValidationResult } from './config-def.js';
import { CONVERTERS, REGISTRY_CONVERTERS } from './converters.js';
import { buildTransformChain } from './transforms.js';

/** The keys of the schema registry's converters, under `key.converter.` or `value.converter.` (as Kafka Connect's). */
function registryConverterKeys(prefix: string): ConfigKeyDef[] {
  return [
    {
      name: `${prefix}.schema.registry.url`,
      type: 'string',
      default: '',
      doc: `The registry's REST URL(s), comma-separated (avro, protobuf, jsonschema ${prefix}s)`,
    },
    {
      name: `${prefix}.auto.register.schemas`,
      type: 'boolean',
      default: 'true',
      doc: "Register the writer's schema under its subject when it is not there yet",
    },
    { name: `${prefix}.use.latest.version`, type: 'boolean', default: 'false', doc: "Write with the subject's latest registered schema instead of .schema" },
    {
      name: `${prefix}.schema`,
      type: 'string',
      default: '',
      doc: "The writer's schema (Avro JSON, .proto text, JSON Schema); sources, unless use.latest.version",
    },
    {
      name: `${prefix}.subject.name.strategy`,
      type: 'string',
      default: 'topic',
      choices: ['topic', 'record', 'topic-record'],
      doc: "Subject of a topic's schema: <topic>-key/-value, the record's name, or <topic>-<name>",
    },
    { name: `${prefix}.message.type`, type: 'string', default: '', doc: 'protobuf: the message written (full name); default the first' },
  ];
}

export const COMMON_CONFIG: readonly ConfigKeyDef[] = [
  { name: 'connector.class', type: 'string', doc: 'The plugin (skein connect plugins lists them)' },
  { name: 'tasks.max', type: 'int', default: '1', min: 1, max: 1000, doc: 'Most tasks the connector is split into' },
  {
    name: 'key.converter',
    type: 'string',
    default: 'string',
    choices: CONVERTERS,
    doc: "How record keys become bytes and back: json, string, bytes, or the schema registry's avro, protobuf, jsonschema",
  },
  {
    name: 'value.converter',
    type: 'string',
    default: 'json',
    choices: CONVERTERS,
    doc: "How record values become bytes and back: json, string, bytes, or the schema registry's avro, protobuf, jsonschema",
  },
  ...registryConverterKeys('key.converter'),
  ...registryConverterKeys('value.converter'),
  { name: 'transforms', type: 'list', default: '', doc: 'Aliases of single message transforms applied in order (transforms.<alias>.type=...)' },
  {
    name: 'errors.tolerance',
    type: 'string',
    default: 'none',
    choices: ['none', 'all'],
    doc: 'none: a record that fails conversion, a transform or the task fails the task; all: it is skipped (and sent to the dead-letter topic when one is set)',
  },
  {
    name: 'errors.retry.timeout.ms',
    type: 'int',
    default: '0',
    min: -1,
    doc: 'How long a failing operation (a sink put) is retried before the tolerance decides; -1 forever',
  },
  { name: 'errors.retry.delay.max.ms', type: 'int', default: '60000', min: 1, doc: 'Largest delay between retries (exponential with jitter from 100 ms)' },
  {
    name: 'errors.deadletterqueue.topic.name',
    type: 'string',
    default: '',
    doc: 'Sink connectors: topic failed records go to, with errors.tolerance=all (created if missing)',
  },
  {
    name: 'errors.deadletterqueue.context.headers.enable',
    type: 'boolean',
    default: 'true',
    doc: 'Add __connect.errors.* headers (topic, partition, offset, stage, exception) to dead-letter records',
  },
  {
    name: 'offset.flush.interval.ms',
    type: 'int',
    default: '1000',
    min: 10,
    max: 600_000,
    doc: 'How often a source task commits its offsets (one transaction per interval with exactly-once sources) and a sink task flushes and commits',
  },
];

export const SINK_CONFIG: readonly ConfigKeyDef[] = [
  { name: 'topics', type: 'list', default: '', doc: 'Topics to consume (or topics.regex)' },
  { name: 'topics.regex', type: 'string', default: '', doc: 'Consume every topic whose name matches' },
  {
    name: 'consumer.auto.offset.reset',
    type: 'string',
    default: 'earliest',
    choices: ['earliest', 'latest'],
    doc: 'Where a partition without committed offset starts',
  },
  {
    name: 'consumer.isolation.level',
    type: 'string',
    default: 'read_committed',
    choices: ['read_committed', 'read_uncommitted'],
    doc: 'read_committed: only committed transactions (exactly-once sources) are delivered',
  },
];

export const SOURCE_CONFIG: readonly ConfigKeyDef[] = [
  {
    name: 'topic.creation.default.partitions',
    type: 'int',
    default: '1',
    min: 1,
    max: 10_000,
    doc: 'Partitions of a topic the task writes to that does not exist yet (created on first use)',
  },
  {
    name: 'topic.creation.default.replication.factor',
    type: 'int',
    default: '-1',
    min: -1,
    max: 16,
    doc: 'Replication factor of such a topic; -1: the cluster default',
  },
  {
    name: 'exactly.once.support',
    type: 'string',
    default: 'requested',
    choices: ['requested', 'required', 'disabled'],
    doc: 'requested/required: records and offsets in one transaction per commit interval with a transactional id per task (KIP-618), when the worker has exactly-once sources enabled (required fails otherwise); disabled: at least once',
  },
];

/** Validates common, type-specific and plugin keys, and builds the transform chain once to check it. */
export function validateConnectorConfig(
  type: 'source' | 'sink',
  pluginDefs: readonly ConfigKeyDef[],
  config: Readonly<Record<string, string>>,
  extra: Array<{ key: string; error: string }> = [],
): ValidationResult {
  const defs = [...COMMON_CONFIG, ...(type === 'sink' ? SINK_CONFIG : SOURCE_CONFIG), ...pluginDefs];
  const result = validateConfig(defs, config);
  const add = (key: string, error: string) => {
    const k = result.keys.find((x) => x.def.name === key);
    if (k) k.errors.push(error);
    else result.keys.push({ def: { name: key, type: 'string', doc: '' }, value: config[key], errors: [error] });
    result.errorCount++;
  };
  if (type === 'sink') {
    const topics = splitList(config.topics ?? '');
    const regex = config['topics.regex'] ?? '';
    if (topics.length === 0 && regex === '') add('topics', 'a sink needs topics or topics.regex');
    if (topics.length > 0 && regex !== '') add('topics', 'topics and topics.regex exclude each other');
    if ((config['errors.deadletterqueue.topic.name'] ?? '') !== '' && topics.includes(config['errors.deadletterqueue.topic.name']!))
      add('errors.deadletterqueue.topic.name', 'the dead-letter topic cannot be one the sink reads');
  }
  for (const prefix of ['key.converter', 'value.converter']) {
    if (!(REGISTRY_CONVERTERS as readonly string[]).includes(config[prefix] ?? '')) continue;
    const url = config[`${prefix}.schema.registry.url`] ?? '';
    if (url === '') add(`${prefix}.schema.registry.url`, `${prefix}=${config[prefix]} needs the registry's URL`);
    else if (url.split(',').some((u) => !/^https?:\/\/[^/\s]+/.test(u.trim()))) add(`${prefix}.schema.registry.url`, `not http(s) URLs: ${url}`);
    // A source writes: it needs a schema, its own or the subject's latest.
    if (type === 'source' && (config[`${prefix}.schema`] ?? '') === '' && config[`${prefix}.use.latest.version`] !== 'true')
      add(`${prefix}.schema`, `a source with ${prefix}=${config[prefix]} needs ${prefix}.schema or ${prefix}.use.latest.version=true`);
  }
  try {
    buildTransformChain(config);
  } catch (err) {
    add('transforms', (err as Error).message);
  }
  for (const e of extra) add(e.key, e.error);
  return result;
}
