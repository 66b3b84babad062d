/**
 * Converters (Kafka Connect's key.converter / value.converter): how a record's key and value are
 * turned into the bytes stored in a topic, and back. Chosen per connector with `key.converter` and
 * `value.converter`:
 *
 * - `json`: JSON text (UTF-8). bigint values are written as decimal strings (JSON has no 64-bit
 *   integers); Buffers as base64 strings. Reading parses JSON: invalid JSON fails the record, which
 *   the error tolerance then handles (dead-letter topic or task failure).
 * - `string`: UTF-8 text; non-string values are JSON-encoded first.
 * - `bytes`: the bytes as they are (Buffer, Uint8Array or a string's UTF-8); reading gives a Buffer.
 *
 * - `avro`, `protobuf`, `jsonschema`: the schema registry's formats, in Confluent's wire format,
 *   through @skein/client's serializers (registry-converters.ts). These answer promises.
 *
 * null stays null both ways (a tombstone value). The first three are pure.
 */

export type ConverterName = 'json' | 'string' | 'bytes' | 'avro' | 'protobuf' | 'jsonschema';
export const REGISTRY_CONVERTERS: readonly ConverterName[] = ['avro', 'protobuf', 'jsonschema'];
export const CONVERTERS: readonly ConverterName[] = ['json', 'string', 'bytes', ...REGISTRY_CONVERTERS];

/**
 * The built-in converters answer at once; the registry's answer promises (a schema lookup the first
 * time). The runners await only what is a promise, so the plain converters cost no microtask.
 */
export interface Converter {
  fromConnect(value: unknown, topic: string): Buffer | null | Promise<Buffer | null>;
  toConnect(bytes: Buffer | null, topic: string): unknown;
}

function jsonReplacer(_key: string, v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data)) {
    return Buffer.from((v as { data: number[] }).data).toString('base64');
  }
  return v;
}

const json: Converter = {
  fromConnect: (value) => (value === null || value === undefined ? null : Buffer.from(JSON.stringify(value, jsonReplacer), 'utf8')),
  toConnect: (bytes) => (bytes === null ? null : JSON.parse(bytes.toString('utf8'))),
};

const string: Converter = {
  fromConnect: (value) => {
    if (value === null || value === undefined) return null;
    return Buffer.from(typeof value === 'string' ? value : Buffer.isBuffer(value) ? value.toString('utf8') : JSON.stringify(value, jsonReplacer), 'utf8');
  },
  toConnect: (bytes) => (bytes === null ? null : bytes.toString('utf8')),
};

const bytes: Converter = {
  fromConnect: (value) => {
    if (value === null || value === undefined) return null;
    if (Buffer.isBuffer(value)) return value;
    if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    if (typeof value === 'string') return Buffer.from(value, 'utf8');
    throw new Error(`the bytes converter takes Buffer, Uint8Array or string values, got ${typeof value}`);
  },
  toConnect: (b) => b,
};

/** The built-in converters; the registry's come from registry-converters.ts. */
export function converter(name: string): Converter {
  switch (name) {
    case 'json':
      return json;
    case 'string':
      return string;
    case 'bytes':
      return bytes;
    default:
      throw new Error(`unknown converter "${name}" (one of json, string, bytes)`);
  }
}
