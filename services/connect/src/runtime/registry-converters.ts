/**
 * The schema registry's converters (Kafka Connect's AvroConverter, ProtobufConverter,
 * JsonSchemaConverter): `key.converter` / `value.converter` = `avro`, `protobuf` or `jsonschema`,
 * configured under that prefix (`value.converter.schema.registry.url=...`). Writing serializes with
 * @skein/client's serializer of the format (Confluent's wire format: magic byte, schema id, payload;
 * the subject from the subject name strategy, the schema registered unless
 * `auto.register.schemas=false`, or the subject's latest version with `use.latest.version=true`);
 * reading deserializes any registry-framed record, whatever its writer's format, by its schema id.
 *
 * Connect records here carry no schema of their own (unlike Kafka Connect's Struct), so the
 * writer's schema is configuration: `<prefix>.schema` (Avro JSON, .proto text, JSON Schema), or
 * the registry's latest version of the subject.
 */
import { SchemaDeserializer, SchemaRegistryClient, SchemaSerializer, type SubjectNameStrategy } from '@skein/client';
import type { SchemaType } from '@skein/client';
import { type Converter, converter as builtIn } from '../domain/converters.js';

const TYPE: Record<string, SchemaType> = { avro: 'AVRO', protobuf: 'PROTOBUF', jsonschema: 'JSON' };

/** The converter `config[prefix]` names ('key.converter' or 'value.converter'), configured by `config[prefix + '.*']`. */
export function makeConverter(prefix: 'key.converter' | 'value.converter', config: Readonly<Record<string, string>>, fallback: string): Converter {
  const name = config[prefix] ?? fallback;
  const schemaType = TYPE[name];
  if (!schemaType) return builtIn(name);
  const get = (k: string) => config[`${prefix}.${k}`] ?? '';
  const url = get('schema.registry.url');
  if (url === '') throw new Error(`${prefix}=${name} needs ${prefix}.schema.registry.url`);
  const registry = new SchemaRegistryClient({ url });
  const useLatestVersion = get('use.latest.version') === 'true';
  const schema = get('schema');
  const isKey = prefix === 'key.converter';
  // Built on first write: a sink never needs a writer's schema.
  let serializer: SchemaSerializer | undefined;
  const deserializer = new SchemaDeserializer({ registry });
  return {
    fromConnect: (value, topic) => {
      if (value === null || value === undefined) return null;
      serializer ??= new SchemaSerializer(schemaType, {
        registry,
        ...(schema !== '' ? { schema } : {}),
        useLatestVersion,
        autoRegister: get('auto.register.schemas') !== 'false',
        subjectNameStrategy: (get('subject.name.strategy') || 'topic') as SubjectNameStrategy,
        isKey,
        ...(get('message.type') !== '' ? { messageType: get('message.type') } : {}),
      });
      return serializer.serialize(topic, value);
    },
    toConnect: (bytes) => (bytes === null ? null : deserializer.deserialize(bytes)),
  };
}
