/**
 * Schema-registry serdes for streams: @skein/client's Avro, Protobuf and JSON Schema serializers
 * (Confluent's wire format: magic byte, schema id, payload) as streams serdes for keys and values.
 *
 * Why not make processing await: a record goes through the whole graph in one synchronous call
 * (task.ts), and a store write, its changelog record and the outputs of one record must not
 * interleave with another's. The registry is only needed for two things, and both can be done
 * before a record is processed:
 *  - writing: the schema id of the subject (register or look up). A registry serde is bound to
 *    the topic it writes (its subject, with the topic name strategy), and `prepare()` resolves
 *    the id once; the runtime awaits `prepare()` of every source and sink serde in `start()`.
 *  - reading: the writer's schema of each schema id met. The runtime calls `prefetch(bytes)` on
 *    every fetched record's key and value before processing the batch; it answers a promise only
 *    for an id not fetched yet (once per id, then cached), so the steady state costs no microtask.
 * A serde used elsewhere (a store's value serde, a TopologyTestDriver) must be prepared by the
 * caller: `await serde.prepare()`. Deserializing bytes whose schema was never fetched throws,
 * naming the id, rather than blocking.
 */
import {
  type DeserializerOptions,
  SchemaDeserializer,
  type SchemaRegistryClient,
  SchemaSerializer,
  type SchemaType,
  type SerializerOptions,
} from '@skein/client';
import type { Serde } from './serdes.js';

export interface RegistrySerdeOptions extends Omit<SerializerOptions, 'registry' | 'schema'>, Pick<DeserializerOptions, 'readerSchema'> {
  registry: SchemaRegistryClient;
  /** The writer's schema text (Avro JSON, .proto text, JSON Schema); needed to serialize unless useLatestVersion. */
  schema?: string;
  /** The topic this serde writes: names the subject (`${topic}-value`, or `-key` with isKey). Needed to serialize. */
  topic?: string;
}

export class RegistrySerde<T> implements Serde<T> {
  private readonly serializer: SchemaSerializer | undefined;
  private readonly deserializer: SchemaDeserializer;

  constructor(
    readonly schemaType: SchemaType,
    private readonly options: RegistrySerdeOptions,
  ) {
    const { topic, readerSchema, ...rest } = options;
    const writes = options.schema !== undefined || options.useLatestVersion === true;
    if (writes && !topic) throw new Error('a registry serde that writes needs the topic it writes (it names the subject)');
    this.serializer = writes ? new SchemaSerializer(schemaType, rest) : undefined;
    this.deserializer = new SchemaDeserializer({ registry: options.registry, readerSchema, indexEncoding: options.indexEncoding });
  }

  /** Resolves the schema id this serde writes (registering it if allowed) and readies reading it back (stores, repartition topics). */
  async prepare(): Promise<void> {
    if (!this.serializer) return;
    const id = await this.serializer.schemaId(this.options.topic!);
    await this.deserializer.prepareId(id);
  }

  /** A promise only when these bytes name a schema id not fetched yet. */
  prefetch(bytes: Buffer | null): Promise<void> | undefined {
    if (bytes === null || bytes.length === 0) return undefined;
    const id = this.deserializer.unresolvedId(bytes);
    return id === undefined ? undefined : this.deserializer.prepareId(id);
  }

  serialize(value: T | null): Buffer | null {
    if (value === null || value === undefined) return null;
    if (!this.serializer) throw new Error(`this ${this.schemaType} serde only reads: give it a schema (or useLatestVersion) and a topic to write`);
    return this.serializer.serializeResolved(this.options.topic!, value);
  }

  deserialize(bytes: Buffer | null): T | null {
    if (bytes === null) return null;
    return this.deserializer.deserializeResolved(bytes) as T;
  }
}

/** Registry serdes by schema type (the streams counterpart of @skein/client's avroSerializer etc.). */
export const RegistrySerdes = {
  Avro: <T = unknown>(options: RegistrySerdeOptions): RegistrySerde<T> => new RegistrySerde<T>('AVRO', options),
  Protobuf: <T = unknown>(options: RegistrySerdeOptions): RegistrySerde<T> => new RegistrySerde<T>('PROTOBUF', options),
  JsonSchema: <T = unknown>(options: RegistrySerdeOptions): RegistrySerde<T> => new RegistrySerde<T>('JSON', options),
};

/** Awaits prepare() of every serde that has one (each once). */
export async function prepareSerdes(serdes: Iterable<Serde<unknown>>): Promise<void> {
  const seen = new Set<Serde<unknown>>();
  for (const s of serdes) {
    if (seen.has(s) || !s.prepare) continue;
    seen.add(s);
    await s.prepare();
  }
}

/** Fetches the writer schemas a batch's keys and values name that the source's serdes do not have yet; undefined when there are none. */
export function prefetchSchemas(
  keySerde: Serde<unknown>,
  valueSerde: Serde<unknown>,
  records: ReadonlyArray<{ key: Buffer; value: Buffer | null }>,
): Promise<void> | undefined {
  if (!keySerde.prefetch && !valueSerde.prefetch) return undefined;
  const pending: Array<Promise<void>> = [];
  for (const r of records) {
    const k = keySerde.prefetch?.(r.key);
    if (k) pending.push(k);
    const v = valueSerde.prefetch?.(r.value);
    if (v) pending.push(v);
  }
  return pending.length ? Promise.all(pending).then(() => undefined) : undefined;
}
