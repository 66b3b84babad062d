/**
 * `skein schemas ...` (the schema registry through its Confluent REST API) and the schema options of
 * `produce` and `consume`: records given as JSON lines are written as Avro, Protobuf or JSON Schema
 * in Confluent's wire format (magic byte, schema id, payload), and read back to JSON.
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { type Command, CommanderError, Option } from 'commander';
import { SchemaDeserializer, type SchemaReference, SchemaRegistryClient, SchemaSerializer, type SchemaType, type SubjectNameStrategy } from '@skein/client';

export const DEFAULT_REGISTRY_URL = 'http://127.0.0.1:8081';

export interface SchemaCliHelpers {
  /** The --schema-registry URL (flag or SKEIN_SCHEMA_REGISTRY). */
  registryUrl(): string;
  json(): boolean;
  print(value: unknown, table: () => void): void;
}

const TYPES = ['AVRO', 'PROTOBUF', 'JSON'] as const;

/** The schema type of a file: --type, else by extension (.avsc Avro, .proto Protobuf, .json JSON Schema). */
export function schemaTypeOf(file: string, type: string | undefined): SchemaType {
  if (type) {
    const t = type.toUpperCase();
    if (!(TYPES as readonly string[]).includes(t)) throw new CommanderError(2, 'skein.usage', `unknown schema type ${type}: use AVRO, PROTOBUF or JSON`);
    return t as SchemaType;
  }
  const ext = extname(file).toLowerCase();
  if (ext === '.proto') return 'PROTOBUF';
  if (ext === '.avsc') return 'AVRO';
  if (ext === '.json') return 'JSON';
  throw new CommanderError(2, 'skein.usage', `cannot tell the schema type of ${file} from its extension (.avsc, .proto, .json): give --type`);
}

/** --reference name=subject:version (repeatable). */
export function parseReferences(list: string[] | undefined): SchemaReference[] {
  return (list ?? []).map((r) => {
    const m = /^([^=]+)=(.+):(-?\d+|latest)$/.exec(r);
    if (!m) throw new CommanderError(2, 'skein.usage', `--reference ${r}: use name=subject:version`);
    return { name: m[1]!, subject: m[2]!, version: m[3] === 'latest' ? -1 : Number(m[3]) };
  });
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

export function addSchemaCommands(program: Command, h: SchemaCliHelpers, run: <T>(fn: () => Promise<T>) => Promise<T>): void {
  const registry = () => new SchemaRegistryClient({ url: h.registryUrl() });
  const schemas = program
    .command('schemas')
    .description('register, get, list, check, delete and configure schemas in the schema registry (Confluent REST API, --schema-registry)');
  const version = (v: string | undefined) => (v === undefined || v === 'latest' ? 'latest' : Number(v));

  schemas
    .command('list')
    .description('list subjects')
    .option('--prefix <prefix>', 'only subjects starting with this')
    .option('--deleted', 'include soft-deleted subjects')
    .action((o: { prefix?: string; deleted?: boolean }) =>
      run(async () => {
        const subjects = await registry().subjects({ prefix: o.prefix, deleted: o.deleted });
        h.print(subjects, () => {
          for (const s of subjects) console.log(s);
        });
      }),
    );

  schemas
    .command('register <subject> <file>')
    .description('register the schema in <file> under <subject> (the same schema keeps its id); refused when incompatible')
    .option('-t, --type <type>', 'AVRO, PROTOBUF or JSON (default: from the file extension)')
    .option('-r, --reference <name=subject:version>', 'a schema it references (repeatable)', collect)
    .action((subject: string, file: string, o: { type?: string; reference?: string[] }) =>
      run(async () => {
        const schemaType = schemaTypeOf(file, o.type);
        const id = await registry().register(subject, { schemaType, schema: readFileSync(file, 'utf8'), references: parseReferences(o.reference) });
        h.print({ subject, id }, () => console.log(`registered under ${subject}: schema id ${id}`));
      }),
    );

  schemas
    .command('get [subject] [version]')
    .description('a version of a subject (default the latest), or a schema by --id')
    .option('--id <id>', 'the schema with this global id')
    .action((subject: string | undefined, v: string | undefined, o: { id?: string }) =>
      run(async () => {
        const r = registry();
        if (o.id !== undefined) {
          const s = await r.schemaById(Number(o.id));
          return h.print({ id: Number(o.id), ...s }, () => console.log(s.schema));
        }
        if (!subject) throw new CommanderError(2, 'skein.usage', 'give a subject, or --id');
        const s = await r.version(subject, version(v));
        h.print(s, () => {
          console.error(`${s.subject} version ${s.version}, id ${s.id}, ${s.schemaType}`);
          console.log(s.schema);
        });
      }),
    );

  schemas
    .command('versions <subject>')
    .description("a subject's version numbers")
    .option('--deleted', 'include soft-deleted versions')
    .action((subject: string, o: { deleted?: boolean }) =>
      run(async () => {
        const versions = await registry().versions(subject, { deleted: o.deleted });
        h.print(versions, () => console.log(versions.join(' ')));
      }),
    );

  schemas
    .command('check <subject> <file>')
    .description("test the schema in <file> against the subject's compatibility level (exit 1 when incompatible)")
    .option('-t, --type <type>', 'AVRO, PROTOBUF or JSON (default: from the file extension)')
    .option('-r, --reference <name=subject:version>', 'a schema it references (repeatable)', collect)
    .option('--version <v>', "a version to check against, or 'all' for what the level checks", 'all')
    .action((subject: string, file: string, o: { type?: string; reference?: string[]; version: string }) =>
      run(async () => {
        const schema = { schemaType: schemaTypeOf(file, o.type), schema: readFileSync(file, 'utf8'), references: parseReferences(o.reference) };
        const res = await registry().testCompatibility(subject, schema, o.version === 'all' ? 'all' : version(o.version));
        h.print(res, () => {
          console.log(res.compatible ? 'compatible' : 'INCOMPATIBLE');
          for (const m of res.messages) console.log(`  ${m}`);
        });
        if (!res.compatible) process.exitCode = 1;
      }),
    );

  schemas
    .command('delete <subject> [version]')
    .description('soft-delete a subject or one version; --permanent after a soft delete removes it for good')
    .option('--permanent', 'permanent delete (needs a soft delete first)')
    .action((subject: string, v: string | undefined, o: { permanent?: boolean }) =>
      run(async () => {
        const r = registry();
        if (v === undefined) {
          const versions = await r.deleteSubject(subject, o.permanent);
          return h.print({ subject, versions }, () => console.log(`deleted ${subject} versions ${versions.join(' ')}${o.permanent ? ' (permanent)' : ''}`));
        }
        const deleted = await r.deleteVersion(subject, version(v), o.permanent);
        h.print({ subject, version: deleted }, () => console.log(`deleted ${subject} version ${deleted}${o.permanent ? ' (permanent)' : ''}`));
      }),
    );

  schemas
    .command('config [subject]')
    .description('the compatibility level of a subject (or the global one); --set changes it')
    .addOption(
      new Option('--set <level>', 'new level').choices(['NONE', 'BACKWARD', 'BACKWARD_TRANSITIVE', 'FORWARD', 'FORWARD_TRANSITIVE', 'FULL', 'FULL_TRANSITIVE']),
    )
    .action((subject: string | undefined, o: { set?: string }) =>
      run(async () => {
        const r = registry();
        const level = o.set ? await r.setCompatibility(o.set, subject) : await r.compatibility(subject);
        h.print({ subject: subject ?? null, compatibility: level }, () => console.log(level));
      }),
    );
}

/** The schema options `produce` gains. */
export function addProduceSchemaOptions(cmd: Command): Command {
  return cmd
    .option(
      '--value-schema <file>',
      'each line (the value after --key-separator) is JSON, written with this schema (.avsc, .proto, .json) in the schema registry wire format',
    )
    .option('--key-schema <file>', 'the key is JSON, written with this schema')
    .option('--schema-type <type>', 'AVRO, PROTOBUF or JSON for --value-schema/--key-schema (default: from the extension)')
    .option('--message-type <name>', 'Protobuf: the message to write (default: the first in the file)')
    .addOption(new Option('--subject-name-strategy <strategy>', 'how the subject is named').choices(['topic', 'record', 'topic-record']).default('topic'));
}

export interface ProduceSchemaOptions {
  valueSchema?: string;
  keySchema?: string;
  schemaType?: string;
  messageType?: string;
  subjectNameStrategy?: string;
}

/** Converts key and value text to registry-encoded bytes, or leaves them as text without schemas. */
export function produceCodec(o: ProduceSchemaOptions, registryUrl: string) {
  if (!o.valueSchema && !o.keySchema) return undefined;
  const registry = new SchemaRegistryClient({ url: registryUrl });
  const make = (file: string | undefined, isKey: boolean) =>
    file
      ? new SchemaSerializer(schemaTypeOf(file, o.schemaType), {
          registry,
          schema: readFileSync(file, 'utf8'),
          messageType: o.messageType,
          isKey,
          subjectNameStrategy: (o.subjectNameStrategy ?? 'topic') as SubjectNameStrategy,
        })
      : undefined;
  const value = make(o.valueSchema, false);
  const key = make(o.keySchema, true);
  const parse = (text: string, what: string) => {
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      throw new Error(`the ${what} is not JSON (--${what}-schema expects one JSON document per record): ${(err as Error).message}: ${text.slice(0, 80)}`);
    }
  };
  return {
    async encode(topic: string, k: string | undefined, v: string): Promise<{ key: Buffer | string | undefined; value: Buffer | string }> {
      return {
        key: key && k !== undefined ? await key.serialize(topic, parse(k, 'key')) : k,
        value: value ? await value.serialize(topic, parse(v, 'value')) : v,
      };
    },
  };
}

/** The schema options `consume` gains. */
export function addConsumeSchemaOptions(cmd: Command): Command {
  return cmd
    .option('--value-schema [readerSchemaFile]', 'values are schema-registry encoded: print them as JSON (an Avro reader schema file resolves evolution)')
    .option('--key-schema [readerSchemaFile]', 'keys are schema-registry encoded: print them as JSON');
}

/** Turns registry-encoded keys and values back into JSON text for printing. */
export function consumeCodec(o: { valueSchema?: string | boolean; keySchema?: string | boolean }, registryUrl: string) {
  if (!o.valueSchema && !o.keySchema) return undefined;
  const registry = new SchemaRegistryClient({ url: registryUrl });
  const reader = (opt: string | boolean | undefined) =>
    opt ? new SchemaDeserializer({ registry, readerSchema: typeof opt === 'string' ? readFileSync(opt, 'utf8') : undefined }) : undefined;
  const value = reader(o.valueSchema);
  const key = reader(o.keySchema);
  const text = async (d: SchemaDeserializer | undefined, b: Buffer | null) =>
    d && b && b.length > 0 ? Buffer.from(JSON.stringify(await d.deserialize(b), bigintJson)) : b;
  return {
    async decode<R extends { key: Buffer; value: Buffer | null }>(r: R): Promise<R> {
      return { ...r, key: (await text(key, r.key)) ?? r.key, value: await text(value, r.value) };
    },
  };
}

const bigintJson = (_k: string, v: unknown) => (typeof v === 'bigint' ? v.toString() : v);
