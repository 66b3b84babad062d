/**
 * Avro schemas: parsed by avsc (which also validates names and field defaults); compatibility by
 * the Avro specification's schema-resolution rules, as Avro's Java SchemaCompatibility (which
 * Confluent's registry calls) applies them:
 *
 * - same kinds: records match fields by name or by the reader field's aliases; a reader field the
 *   writer lacks needs a default; enums need every writer symbol in the reader unless the reader
 *   enum has a default; fixed sizes must be equal; arrays and maps compare their items/values;
 *   named types (record, enum, fixed) must have the same unqualified name, or the reader must list
 *   the writer's full name among its aliases;
 * - promotions: int → long, float, double; long → float, double; float → double; string ↔ bytes;
 * - unions: every branch of a writer union must be readable; a non-union writer must be readable
 *   by some branch of a reader union.
 *
 * Logical types are compared by their underlying type (as Avro does). Recursive types terminate:
 * a pair of named types already being compared is assumed compatible (Avro's memo does the same).
 */
import avro from 'avsc';
import { SkeinError } from '@skein/common/errors.js';
import type { ParsedSchema, ResolvedReference, SchemaFormat } from './schema-format.js';
import type { SchemaReference } from './types.js';

export interface AvroParsed extends ParsedSchema {
  readonly schemaType: 'AVRO';
  readonly type: avro.Type;
}

type AnyType = avro.Type & Record<string, unknown>;

function invalid(message: string): SkeinError {
  return new SkeinError('INVALID_SCHEMA', `Invalid schema: ${message}`);
}

/** Adds the named types of `refs` (depth first: a reference's own references before it) to `registry`. */
function registerReferences(refs: readonly ResolvedReference[], registry: Record<string, avro.Type>, seen: Set<string>): void {
  for (const ref of refs) {
    const key = `${ref.subject}\u0000${ref.version}`;
    if (seen.has(key)) continue;
    seen.add(key);
    registerReferences(ref.resolved, registry, seen);
    if (ref.record.schemaType !== 'AVRO')
      throw invalid(`reference ${ref.name} (${ref.subject} version ${ref.version}) is a ${ref.record.schemaType} schema, not AVRO`);
    try {
      avro.Type.forSchema(JSON.parse(ref.record.schema) as avro.Schema, { registry });
    } catch (err) {
      throw invalid(`reference ${ref.name} (${ref.subject} version ${ref.version}) does not parse: ${(err as Error).message}`);
    }
  }
}

export function parseAvro(text: string, references: readonly ResolvedReference[]): AvroParsed {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw invalid(`not JSON: ${(err as Error).message}`);
  }
  const registry: Record<string, avro.Type> = {};
  registerReferences(references, registry, new Set());
  let type: avro.Type;
  try {
    type = avro.Type.forSchema(json as avro.Schema, { registry });
  } catch (err) {
    throw invalid((err as Error).message);
  }
  const refs: SchemaReference[] = references.map(({ name, subject, version }) => ({ name, subject, version }));
  return { schemaType: 'AVRO', canonical: JSON.stringify(json), references: refs, type };
}

const PROMOTIONS: Record<string, readonly string[]> = {
  long: ['int'],
  float: ['int', 'long'],
  double: ['int', 'long', 'float'],
  string: ['bytes'],
  bytes: ['string'],
};

function kindOf(t: AnyType): string {
  const name = t.typeName;
  if (name.startsWith('union')) return 'union';
  if (name === 'error') return 'record';
  return name;
}

/** Underlying type of a logical type (avsc keeps logical types only when given implementations; be safe either way). */
function base(t: avro.Type): AnyType {
  let cur = t as AnyType;
  while (cur.typeName.startsWith('logical:') && cur.underlyingType) cur = cur.underlyingType as AnyType;
  return cur;
}

const simpleName = (full: string | undefined) => (full ?? '').slice((full ?? '').lastIndexOf('.') + 1);

function describe(t: AnyType): string {
  const k = kindOf(t);
  return t.name ? `${k} ${t.name}` : k;
}

class AvroChecker {
  readonly issues: string[] = [];

  /** `inProgress` is shared with probing children, so recursion through union branches stops too. */
  constructor(private readonly inProgress = new Set<string>()) {}

  check(readerIn: avro.Type, writerIn: avro.Type, path: string): boolean {
    const reader = base(readerIn);
    const writer = base(writerIn);
    const rk = kindOf(reader);
    const wk = kindOf(writer);
    // Recursive named types: assume a pair under comparison is compatible (Avro's ReaderWriter memo).
    const memoKey = reader.name && writer.name ? `${reader.name}\u0000${writer.name}` : undefined;
    if (memoKey && this.inProgress.has(memoKey)) return true;
    if (memoKey) this.inProgress.add(memoKey);
    try {
      if (rk === wk) return this.sameKind(reader, writer, rk, path);
      if (wk === 'union') {
        let ok = true;
        for (const branch of writer.types as avro.Type[]) ok = this.check(reader, branch, path) && ok;
        return ok;
      }
      if (rk === 'union') {
        const branches = reader.types as avro.Type[];
        if (branches.some((b) => new AvroChecker(this.inProgress).check(b, writer, path))) return true;
        return this.fail(path, `reader union lacks a branch that can read writer ${describe(writer)}`);
      }
      if (PROMOTIONS[rk]?.includes(wk)) return true;
      return this.fail(path, `reader type ${describe(reader)} cannot read writer type ${describe(writer)}`);
    } finally {
      if (memoKey) this.inProgress.delete(memoKey);
    }
  }

  private fail(path: string, message: string): false {
    this.issues.push(`${path}: ${message}`);
    return false;
  }

  private namesMatch(reader: AnyType, writer: AnyType, path: string): boolean {
    if (simpleName(reader.name) === simpleName(writer.name)) return true;
    if ((reader.aliases ?? []).some((a) => a === writer.name || simpleName(a) === simpleName(writer.name))) return true;
    return this.fail(path, `reader name ${reader.name} does not match writer name ${writer.name} (and no alias names it)`);
  }

  private sameKind(reader: AnyType, writer: AnyType, kind: string, path: string): boolean {
    switch (kind) {
      case 'array':
        return this.check(reader.itemsType as avro.Type, writer.itemsType as avro.Type, `${path}/items`);
      case 'map':
        return this.check(reader.valuesType as avro.Type, writer.valuesType as avro.Type, `${path}/values`);
      case 'fixed':
        if (!this.namesMatch(reader, writer, path)) return false;
        if (reader.size !== writer.size)
          return this.fail(path, `fixed ${reader.name} size ${String(reader.size)} differs from writer size ${String(writer.size)}`);
        return true;
      case 'enum': {
        if (!this.namesMatch(reader, writer, path)) return false;
        const readerSymbols = new Set(reader.symbols as string[]);
        const missing = (writer.symbols as string[]).filter((s) => !readerSymbols.has(s));
        if (missing.length > 0 && reader.default === undefined) {
          return this.fail(path, `reader enum ${reader.name} lacks writer symbols ${missing.join(', ')} and has no default`);
        }
        return true;
      }
      case 'record': {
        if (!this.namesMatch(reader, writer, path)) return false;
        const writerFields = writer.fields as avro.types.Field[];
        let ok = true;
        for (const rf of reader.fields as avro.types.Field[]) {
          const wf = writerFields.find((f) => f.name === rf.name) ?? writerFields.find((f) => rf.aliases.includes(f.name));
          if (!wf) {
            // avsc defines defaultValue on the field itself only when the schema gave a default.
            if (!Object.hasOwn(rf, 'defaultValue'))
              ok = this.fail(`${path}/fields/${rf.name}`, `reader field ${rf.name} has no default and the writer has no such field`) && ok;
            continue;
          }
          ok = this.check(rf.type, wf.type, `${path}/fields/${rf.name}`) && ok;
        }
        return ok;
      }
      case 'union': {
        let ok = true;
        for (const branch of writer.types as avro.Type[]) ok = this.check(reader, branch, path) && ok;
        return ok;
      }
      default:
        return true; // the same primitive
    }
  }
}

/** Why `reader` cannot read data written with `writer` (empty: it can). */
export function avroReaderIssues(reader: avro.Type, writer: avro.Type): string[] {
  const checker = new AvroChecker();
  checker.check(reader, writer, '');
  return checker.issues.map((m) => (m.startsWith(': ') ? m.slice(2) : m.startsWith('/') ? m.slice(1) : m));
}

export const avroFormat: SchemaFormat<AvroParsed> = {
  schemaType: 'AVRO',
  parse: parseAvro,
  readerIssues: (reader, writer) => avroReaderIssues(reader.type, writer.type),
};
