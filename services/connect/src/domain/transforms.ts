/**
 * Single message transforms (Kafka Connect's SMTs), configured on a connector as
 *
 *   transforms=mask,route
 *   transforms.mask.type=MaskField        transforms.mask.fields=ssn,card
 *   transforms.route.type=RegexRouter     transforms.route.regex=(.*)   transforms.route.replacement=copy-$1
 *
 * and applied in order to every record: on a source, after the task returns it and before the
 * converter; on a sink, after the converter and before the task gets it. A transform returns the
 * new record or null to drop it. Field transforms work on object values (a JSON value converted
 * back); a record whose value is not an object passes them unchanged (a tombstone, say).
 *
 * Types: InsertField (static.field/static.value, topic.field, timestamp.field, offset.field),
 * RenameField (renames=a:b,c:d), MaskField (fields, replacement), RegexRouter (regex,
 * replacement), TimestampRouter (topic.format with ${topic} and ${timestamp}, timestamp.format
 * with yyyy MM dd HH mm ss), Filter (drops what a predicate matches: predicate=TopicNameMatches
 * with pattern, HasHeaderKey with name, RecordIsTombstone; negate=true keeps only those).
 *
 * Pure: each transform is built once from the config (errors name the key) and is a function.
 */

import { splitList } from './config-def.js';

export interface TransformableRecord {
  topic: string;
  partition?: number;
  key: unknown;
  value: unknown;
  headers: Array<{ key: string; value: Buffer }>;
  timestampMs?: number;
  offset?: bigint;
}

export type Transform = <R extends TransformableRecord>(record: R) => R | null;

export const TRANSFORM_TYPES = ['InsertField', 'RenameField', 'MaskField', 'RegexRouter', 'TimestampRouter', 'Filter'] as const;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** Formats a time with Java's SimpleDateFormat letters most used in topic names (UTC). */
export function formatTimestamp(ms: number, format: string): string {
  const d = new Date(ms);
  return format
    .replace(/yyyy/g, String(d.getUTCFullYear()))
    .replace(/MM/g, pad(d.getUTCMonth() + 1))
    .replace(/dd/g, pad(d.getUTCDate()))
    .replace(/HH/g, pad(d.getUTCHours()))
    .replace(/mm/g, pad(d.getUTCMinutes()))
    .replace(/ss/g, pad(d.getUTCSeconds()));
}

function maskValueFor(v: unknown, replacement: string | undefined): unknown {
  if (replacement !== undefined) return replacement;
  if (typeof v === 'number') return 0;
  if (typeof v === 'boolean') return false;
  if (typeof v === 'string') return '';
  if (Array.isArray(v)) return [];
  if (isObject(v)) return {};
  return null;
}

/** Builds one transform from its `transforms.<alias>.*` keys; throws naming the key on bad config. */
export function buildTransform(alias: string, config: Readonly<Record<string, string>>): Transform {
  const p = `transforms.${alias}.`;
  const get = (k: string) => config[p + k];
  const need = (k: string) => {
    const v = get(k);
    if (v === undefined || v === '') throw new Error(`${p}${k} is required`);
    return v;
  };
  const type = need('type');
  switch (type) {
    case 'InsertField': {
      const staticField = get('static.field');
      const staticValue = get('static.value');
      const topicField = get('topic.field');
      const timestampField = get('timestamp.field');
      const offsetField = get('offset.field');
      return (r) => {
        if (!isObject(r.value)) return r;
        const value: Record<string, unknown> = { ...r.value };
        if (staticField) value[staticField] = staticValue ?? null;
        if (topicField) value[topicField] = r.topic;
        if (timestampField && r.timestampMs !== undefined) value[timestampField] = r.timestampMs;
        if (offsetField && r.offset !== undefined) value[offsetField] = r.offset.toString();
        return { ...r, value };
      };
    }
    case 'RenameField': {
      const renames = splitList(need('renames')).map((pair) => {
        const [from, to] = pair.split(':');
        if (!from || !to) throw new Error(`${p}renames: "${pair}" is not from:to`);
        return [from, to] as const;
      });
      return (r) => {
        if (!isObject(r.value)) return r;
        const value: Record<string, unknown> = {};
        const map = new Map(renames);
        for (const [k, v] of Object.entries(r.value)) value[map.get(k) ?? k] = v;
        return { ...r, value };
      };
    }
    case 'MaskField': {
      const fields = splitList(need('fields'));
      const replacement = get('replacement');
      return (r) => {
        if (!isObject(r.value)) return r;
        const value: Record<string, unknown> = { ...r.value };
        for (const f of fields) if (f in value) value[f] = maskValueFor(value[f], replacement);
        return { ...r, value };
      };
    }
    case 'RegexRouter': {
      let regex: RegExp;
      try {
        regex = new RegExp(`^(?:${need('regex')})$`);
      } catch (err) {
        throw new Error(`${p}regex: ${(err as Error).message}`);
      }
      const replacement = need('replacement');
      return (r) => (regex.test(r.topic) ? { ...r, topic: r.topic.replace(regex, replacement) } : r);
    }
    case 'TimestampRouter': {
      // Kafka's placeholders, literally: not a template string.
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Kafka's TimestampRouter default format
      const topicFormat = get('topic.format') ?? '${topic}-${timestamp}';
      const timestampFormat = get('timestamp.format') ?? 'yyyyMMdd';
      return (r) => {
        if (r.timestampMs === undefined) return r;
        return { ...r, topic: topicFormat.replace(/\$\{topic\}/g, r.topic).replace(/\$\{timestamp\}/g, formatTimestamp(r.timestampMs, timestampFormat)) };
      };
    }
    case 'Filter': {
      const predicate = need('predicate');
      const negate = get('negate') === 'true';
      let matches: (r: TransformableRecord) => boolean;
      if (predicate === 'TopicNameMatches') {
        const re = new RegExp(`^(?:${need('pattern')})$`);
        matches = (r) => re.test(r.topic);
      } else if (predicate === 'HasHeaderKey') {
        const name = need('name');
        matches = (r) => r.headers.some((h) => h.key === name);
      } else if (predicate === 'RecordIsTombstone') {
        matches = (r) => r.value === null || r.value === undefined;
      } else {
        throw new Error(`${p}predicate: "${predicate}" is not TopicNameMatches, HasHeaderKey or RecordIsTombstone`);
      }
      return (r) => (matches(r) !== negate ? null : r);
    }
    default:
      throw new Error(`${p}type: "${type}" is not one of ${TRANSFORM_TYPES.join(', ')}`);
  }
}

/** The connector's transform chain (`transforms=a,b`), as one function. */
export function buildTransformChain(config: Readonly<Record<string, string>>): Transform {
  const chain = splitList(config.transforms ?? '').map((alias) => buildTransform(alias, config));
  return <R extends TransformableRecord>(record: R): R | null => {
    let r: R | null = record;
    for (const t of chain) {
      if (r === null) return null;
      r = t(r);
    }
    return r;
  };
}
