/**
 * Schema-registry serializers and deserializers for Avro (avsc), Protobuf (protobufjs) and JSON
 * Schema (ajv), in Confluent's wire format (wire-format.ts), so records interoperate with
 * Confluent's serializers in any language.
 *
 * Serializing: the schema's id comes from the registry, found by the subject name strategy —
 * `topic` (TopicNameStrategy, the default: "<topic>-value" / "<topic>-key"), `record`
 * (RecordNameStrategy: the record's full name) or `topic-record` ("<topic>-<full name>"). With
 * `autoRegister` (default) the schema is registered (idempotent: the same schema gets the same id);
 * with `useLatestVersion` the subject's latest version is used instead (schemas managed elsewhere).
 * Deserializing reads the id, fetches the writer's schema once (cached by id) and decodes; Avro
 * resolves it against a reader schema when one is given (schema evolution).
 */
import avro from 'avsc';
import protobuf from 'protobufjs';
import { Ajv, type ValidateFunction } from 'ajv';
import type { RegisteredSchema, SchemaReference, SchemaRegistryClient, SchemaType } from './registry-client.js';
import { decodeHeader, decodeMessageIndexes, encodeHeader, encodeMessageIndexes, type IndexEncoding } from './wire-format.js';

export type SubjectNameStrategy = 'topic' | 'record' | 'topic-record' | ((topic: string, isKey: boolean, recordName: string | undefined) => string);

export function subjectName(strategy: SubjectNameStrategy, topic: string, isKey: boolean, recordName: string | undefined): string {
  if (typeof strategy === 'function') return strategy(topic, isKey, recordName);
  if (strategy === 'topic') return `${topic}-${isKey ? 'key' : 'value'}`;
  if (!recordName)
    throw new Error(`the ${strategy} subject name strategy needs a named record schema (an Avro record, a Protobuf message, a JSON Schema with a title)`);
  return strategy === 'record' ? recordName : `${topic}-${recordName}`;
}

export interface SerializerOptions {
  registry: SchemaRegistryClient;
  /** The writer's schema text (Avro JSON, .proto text, JSON Schema); omitted with useLatestVersion. */
  schema?: string;
  references?: SchemaReference[];
  /** Protobuf: the message type to write (full name); default the file's first message. */
  messageType?: string;
  /** Register the schema if needed (default true). */
  autoRegister?: boolean;
  /** Use the subject's latest registered version as the writer's schema (default false). */
  useLatestVersion?: boolean;
  subjectNameStrategy?: SubjectNameStrategy;
  /** Serializes keys (subject "<topic>-key" with the topic strategy). */
  isKey?: boolean;
  /** JSON Schema: validate each value before writing (default true). */
  validate?: boolean;
  /** Protobuf message index varints: Java's zigzag (default) or old Python clients' unsigned. */
  indexEncoding?: IndexEncoding;
}

export interface DeserializerOptions {
  registry: SchemaRegistryClient;
  /** Avro: the reader's schema (JSON text); records are resolved from the writer's schema to it. */
  readerSchema?: string;
  indexEncoding?: IndexEncoding;
}

/** A parsed schema, ready to encode and decode values. */
interface Codec {
  recordName: string | undefined;
  encode(value: unknown): Buffer;
  decode(payload: Buffer): unknown;
}

/** Fetches referenced schemas (and theirs) from the registry, depth first. */
async function fetchReferences(
  registry: SchemaRegistryClient,
  refs: readonly SchemaReference[],
  seen = new Set<string>(),
): Promise<Array<{ name: string; schema: RegisteredSchema }>> {
  const out: Array<{ name: string; schema: RegisteredSchema }> = [];
  for (const ref of refs) {
    const key = `${ref.subject}\u0000${ref.version}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const v = await registry.version(ref.subject, ref.version === -1 ? 'latest' : ref.version);
    out.push(...(await fetchReferences(registry, v.references, seen)), { name: ref.name, schema: v });
  }
  return out;
}

function avroCodec(text: string, refs: Array<{ name: string; schema: RegisteredSchema }>, readerText?: string): Codec {
  const shared: Record<string, avro.Type> = {};
  for (const r of refs) avro.Type.forSchema(JSON.parse(r.schema.schema) as avro.Schema, { registry: shared });
  // Writer and reader define the same names differently: each parses into its own registry.
  const writer = avro.Type.forSchema(JSON.parse(text) as avro.Schema, { registry: { ...shared } });
  const reader = readerText ? avro.Type.forSchema(JSON.parse(readerText) as avro.Schema, { registry: { ...shared } }) : writer;
  const resolver = reader === writer ? undefined : reader.createResolver(writer);
  return {
    recordName: writer.name,
    encode: (value) => writer.toBuffer(value),
    decode: (payload) => (resolver ? reader.fromBuffer(payload, resolver) : writer.fromBuffer(payload)),
  };
}

const WELL_KNOWN = new Set(Object.keys(protobuf.common).filter((k) => k.endsWith('.proto')));

function protobufRoot(text: string, refs: Array<{ name: string; schema: RegisteredSchema }>): { root: protobuf.Root; topLevel: protobuf.Type[] } {
  const root = new protobuf.Root();
  const parsed = protobuf.parse(text, root, { keepCase: true });
  const ns = parsed.package ? root.lookup(parsed.package) : root;
  // Taken before imports are added: message indexes count only this file's messages.
  const topLevel = ((ns as protobuf.Namespace | null)?.nestedArray ?? []).filter((n): n is protobuf.Type => n instanceof protobuf.Type);
  for (const r of refs) protobuf.parse(r.schema.schema, root, { keepCase: true });
  for (const file of parsed.imports ?? []) {
    if (refs.some((r) => r.name === file) || !WELL_KNOWN.has(file)) continue;
    const json = protobuf.common.get(file) as protobuf.INamespace | null;
    if (json?.nested) root.addJSON(json.nested);
  }
  root.resolveAll();
  return { root, topLevel };
}

/** The position path of a message in its file (Confluent's message indexes). */
export function messageIndexesOf(topLevel: readonly protobuf.Type[], type: protobuf.Type): number[] {
  const search = (types: readonly protobuf.Type[]): number[] | undefined => {
    for (let i = 0; i < types.length; i++) {
      const t = types[i]!;
      if (t === type) return [i];
      const inner = search(t.nestedArray.filter((n): n is protobuf.Type => n instanceof protobuf.Type));
      if (inner) return [i, ...inner];
    }
    return undefined;
  };
  const found = search(topLevel);
  if (!found) throw new Error(`message ${type.fullName} is not defined in this schema's file`);
  return found;
}

function messageAt(topLevel: readonly protobuf.Type[], indexes: readonly number[]): protobuf.Type {
  let types = topLevel;
  let t: protobuf.Type | undefined;
  for (const i of indexes) {
    t = types[i];
    if (!t) throw new Error(`message indexes [${indexes.join(', ')}] name no message of the schema`);
    types = t.nestedArray.filter((n): n is protobuf.Type => n instanceof protobuf.Type);
  }
  return t!;
}

const TO_OBJECT: protobuf.IConversionOptions = { longs: String, enums: String, bytes: String, defaults: true, oneofs: true };

function protobufWriter(
  text: string,
  refs: Array<{ name: string; schema: RegisteredSchema }>,
  messageType: string | undefined,
  encoding: IndexEncoding,
): Codec {
  const { root, topLevel } = protobufRoot(text, refs);
  const type = messageType ? root.lookupType(messageType) : topLevel[0];
  if (!type) throw new Error('the Protobuf schema defines no message');
  const prefix = encodeMessageIndexes(messageIndexesOf(topLevel, type), encoding);
  return {
    recordName: type.fullName.replace(/^\./, ''),
    encode(value) {
      // fromObject converts JSON-style values (int64 as strings, enums by name, bytes as base64)
      // and throws on a value of the wrong shape.
      return Buffer.concat([prefix, type.encode(type.fromObject(value as Record<string, unknown>)).finish()]);
    },
    decode: () => {
      throw new Error('use a deserializer');
    },
  };
}

function jsonCodec(text: string, refs: Array<{ name: string; schema: RegisteredSchema }>, validate: boolean): Codec {
  const json = JSON.parse(text) as Record<string, unknown> | boolean;
  let check: ValidateFunction | undefined;
  if (validate) {
    const ajv = new Ajv({ strict: false, validateFormats: false });
    for (const r of refs) ajv.addSchema(JSON.parse(r.schema.schema) as object, r.name);
    check = ajv.compile(json as object);
  }
  return {
    recordName: typeof json === 'object' && typeof json.title === 'string' ? json.title : undefined,
    encode(value) {
      if (check && !check(value))
        throw new Error(`value does not match the JSON Schema: ${check.errors?.map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ')}`);
      return Buffer.from(JSON.stringify(value), 'utf8');
    },
    decode: (payload) => JSON.parse(payload.toString('utf8')),
  };
}

/** Serializes values of one schema type for any topic. */
export class SchemaSerializer {
  private codec?: Promise<Codec>;
  private readonly ids = new Map<string, Promise<{ id: number; codec: Codec }>>();
  /** The settled entries of `ids`, for callers that cannot await (serializeResolved). */
  private readonly resolvedIds = new Map<string, { id: number; codec: Codec }>();

  constructor(
    readonly schemaType: SchemaType,
    private readonly options: SerializerOptions,
  ) {
    if (!options.schema && !options.useLatestVersion) throw new Error('a serializer needs a schema, or useLatestVersion');
  }

  private makeCodec(text: string, refs: Array<{ name: string; schema: RegisteredSchema }>): Codec {
    if (this.schemaType === 'AVRO') return avroCodec(text, refs);
    if (this.schemaType === 'PROTOBUF') return protobufWriter(text, refs, this.options.messageType, this.options.indexEncoding ?? 'zigzag');
    return jsonCodec(text, refs, this.options.validate ?? true);
  }

  private ownCodec(): Promise<Codec> {
    this.codec ??= fetchReferences(this.options.registry, this.options.references ?? []).then((refs) => this.makeCodec(this.options.schema!, refs));
    return this.codec;
  }

  private resolve(topic: string): Promise<{ id: number; codec: Codec }> {
    const { registry, isKey = false, subjectNameStrategy = 'topic' } = this.options;
    let p = this.ids.get(topic);
    if (!p) {
      p = (async () => {
        if (this.options.useLatestVersion) {
          // The record name is only known from the schema; for the topic strategy none is needed.
          const own = this.options.schema ? await this.ownCodec() : undefined;
          const subject = subjectName(subjectNameStrategy, topic, isKey, own?.recordName);
          const latest = await registry.latestVersion(subject);
          const codec = this.makeCodec(latest.schema, await fetchReferences(registry, latest.references));
          return { id: latest.id, codec };
        }
        const codec = await this.ownCodec();
        const subject = subjectName(subjectNameStrategy, topic, isKey, codec.recordName);
        const schema: RegisteredSchema = { schemaType: this.schemaType, schema: this.options.schema!, references: this.options.references ?? [] };
        const id = this.options.autoRegister === false ? (await registry.lookup(subject, schema)).id : await registry.register(subject, schema);
        return { id, codec };
      })();
      this.ids.set(topic, p);
      p.then(
        (r) => this.resolvedIds.set(topic, r),
        () => this.ids.delete(topic),
      );
    }
    return p;
  }

  /**
   * serialize() for callers that cannot await (stream processors run synchronously): works once
   * schemaId(topic) has resolved, and throws until then.
   */
  serializeResolved(topic: string, value: unknown): Buffer {
    const r = this.resolvedIds.get(topic);
    if (!r) throw new Error(`no schema id resolved for topic ${topic} yet: await schemaId(${JSON.stringify(topic)}) first`);
    return Buffer.concat([encodeHeader(r.id), r.codec.encode(value)]);
  }

  /** The record bytes: magic byte, schema id, (Protobuf message indexes,) payload. */
  async serialize(topic: string, value: unknown): Promise<Buffer> {
    const { id, codec } = await this.resolve(topic);
    return Buffer.concat([encodeHeader(id), codec.encode(value)]);
  }

  /** The schema id this serializer writes for a topic (registering the schema if it may). */
  async schemaId(topic: string): Promise<number> {
    return (await this.resolve(topic)).id;
  }
}

/** Deserializes records written by any schema-registry serializer: the type comes from the schema id. */
export class SchemaDeserializer {
  private readonly readers = new Map<number, Promise<{ schemaType: SchemaType; decode(rest: Buffer): unknown }>>();
  /** The settled entries of `readers`, for callers that cannot await (deserializeResolved). */
  private readonly resolvedReaders = new Map<number, { schemaType: SchemaType; decode(rest: Buffer): unknown }>();

  constructor(private readonly options: DeserializerOptions) {}

  private reader(id: number) {
    let p = this.readers.get(id);
    if (!p) {
      p = (async () => {
        const { registry } = this.options;
        const writer = await registry.schemaById(id);
        const refs = await fetchReferences(registry, writer.references);
        if (writer.schemaType === 'AVRO') {
          const codec = avroCodec(writer.schema, refs, this.options.readerSchema);
          return { schemaType: writer.schemaType, decode: (rest: Buffer) => codec.decode(rest) };
        }
        if (writer.schemaType === 'JSON') {
          const codec = jsonCodec(writer.schema, refs, false);
          return { schemaType: writer.schemaType, decode: (rest: Buffer) => codec.decode(rest) };
        }
        const { topLevel } = protobufRoot(writer.schema, refs);
        const encoding = this.options.indexEncoding ?? 'zigzag';
        return {
          schemaType: writer.schemaType,
          decode: (rest: Buffer) => {
            const { indexes, rest: payload } = decodeMessageIndexes(rest, encoding);
            const type = messageAt(topLevel, indexes);
            return type.toObject(type.decode(payload), TO_OBJECT);
          },
        };
      })();
      this.readers.set(id, p);
      p.then(
        (r) => this.resolvedReaders.set(id, r),
        () => this.readers.delete(id),
      );
    }
    return p;
  }

  /** Fetches (once) the writer's schema of a schema id, so deserializeResolved can decode its records. */
  async prepareId(schemaId: number): Promise<void> {
    await this.reader(schemaId);
  }

  /** The schema id of a record when its writer's schema is not fetched yet (await prepareId with it); undefined when it is. */
  unresolvedId(bytes: Uint8Array): number | undefined {
    const { schemaId } = decodeHeader(bytes);
    return this.resolvedReaders.has(schemaId) ? undefined : schemaId;
  }

  /** deserialize() for callers that cannot await: the writer's schema must be fetched already (prepareId), else it throws. */
  deserializeResolved(bytes: Uint8Array): unknown {
    const { schemaId, rest } = decodeHeader(bytes);
    const r = this.resolvedReaders.get(schemaId);
    if (!r) throw new Error(`the writer's schema ${schemaId} is not fetched yet: await prepareId(${schemaId}) first`);
    return r.decode(rest);
  }

  async deserialize(bytes: Uint8Array): Promise<unknown> {
    const { schemaId, rest } = decodeHeader(bytes);
    return (await this.reader(schemaId)).decode(rest);
  }

  /** The schema id and type of a record, without decoding it. */
  async describe(bytes: Uint8Array): Promise<{ schemaId: number; schemaType: SchemaType }> {
    const { schemaId } = decodeHeader(bytes);
    return { schemaId, schemaType: (await this.reader(schemaId)).schemaType };
  }
}

export const avroSerializer = (options: SerializerOptions) => new SchemaSerializer('AVRO', options);
export const protobufSerializer = (options: SerializerOptions) => new SchemaSerializer('PROTOBUF', options);
export const jsonSchemaSerializer = (options: SerializerOptions) => new SchemaSerializer('JSON', options);
