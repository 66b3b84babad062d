/**
 * JSON Schema: validated against its meta-schema by ajv (draft-07 by default; 2019-09 and 2020-12
 * when `$schema` names them), `$ref`s to other subjects resolved from the references (the reference
 * name is the URL the `$ref` uses). Compatibility follows Confluent's JSON Schema rules (its
 * json-schema-provider `diff` package, the default strict set): a change is compatible when the
 * updated schema accepts everything the original accepted. The content model matters:
 *
 * - an *open* object (additionalProperties absent or true) may have had any property with any value,
 *   so adding a property to an open model is incompatible unless its schema is empty, and removing
 *   one from an open model is compatible;
 * - a *closed* object (additionalProperties: false) could not have had other properties, so an
 *   optional property (or a required one with a default) may be added; removing a property from a
 *   closed model is incompatible (data that had it is now refused);
 * - a *partially open* object (additionalProperties: {schema}) is judged by whether that schema
 *   covers the property added or removed;
 * - required added → incompatible (unless the property has a default), required removed → compatible;
 * - types may widen (string → [string, null], integer → number), never narrow; enums may grow;
 *   maxLength/maximum/maxItems/maxProperties may rise or go, their min counterparts may fall or go;
 *   a pattern may go; any new or tighter bound is incompatible;
 * - oneOf/anyOf may gain branches (every old branch must still be matched), allOf may lose them.
 *
 * Annotations (title, description, default, $id, examples) never matter.
 */
import { Ajv, type AnySchema } from 'ajv';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { SkeinError } from '@skein/common/errors.js';
import type { ParsedSchema, ResolvedReference, SchemaFormat } from './schema-format.js';
import type { SchemaReference } from './types.js';

type Json = boolean | { [k: string]: unknown };

export interface JsonSchemaParsed extends ParsedSchema {
  readonly schemaType: 'JSON';
  readonly json: Json;
  /** Referenced schemas by the URL `$ref`s use (the reference name). */
  readonly external: ReadonlyMap<string, Json>;
  /** Validates a value (for serializers and tests). */
  validate(value: unknown): boolean;
}

function invalid(message: string): SkeinError {
  return new SkeinError('INVALID_SCHEMA', `Invalid schema: ${message}`);
}

function newAjv(json: Json): Ajv {
  const draft = typeof json === 'object' ? String(json.$schema ?? '') : '';
  const options = { strict: false, allErrors: false, validateFormats: false } as const;
  if (draft.includes('2020-12')) return new Ajv2020(options) as unknown as Ajv;
  if (draft.includes('2019-09')) return new Ajv2019(options) as unknown as Ajv;
  return new Ajv(options);
}

function collectExternal(refs: readonly ResolvedReference[], into: Map<string, Json>, seen: Set<string>): void {
  for (const ref of refs) {
    const key = `${ref.subject}\u0000${ref.version}`;
    if (seen.has(key)) continue;
    seen.add(key);
    collectExternal(ref.resolved, into, seen);
    if (ref.record.schemaType !== 'JSON')
      throw invalid(`reference ${ref.name} (${ref.subject} version ${ref.version}) is a ${ref.record.schemaType} schema, not JSON`);
    try {
      into.set(ref.name, JSON.parse(ref.record.schema) as Json);
    } catch (err) {
      throw invalid(`reference ${ref.name} does not parse: ${(err as Error).message}`);
    }
  }
}

export function parseJsonSchema(text: string, references: readonly ResolvedReference[]): JsonSchemaParsed {
  let json: Json;
  try {
    json = JSON.parse(text) as Json;
  } catch (err) {
    throw invalid(`not JSON: ${(err as Error).message}`);
  }
  if (typeof json !== 'boolean' && (typeof json !== 'object' || json === null || Array.isArray(json))) throw invalid('a JSON Schema is an object or a boolean');
  const external = new Map<string, Json>();
  collectExternal(references, external, new Set());
  const ajv = newAjv(json);
  let validate: (v: unknown) => boolean;
  try {
    for (const [name, schema] of external) {
      const body = typeof schema === 'object' ? { ...schema, $id: undefined } : schema;
      if (typeof body === 'object') delete body.$id;
      ajv.addSchema(body as AnySchema, name);
    }
    validate = ajv.compile(json as AnySchema);
  } catch (err) {
    throw invalid((err as Error).message);
  }
  const refs: SchemaReference[] = references.map(({ name, subject, version }) => ({ name, subject, version }));
  return { schemaType: 'JSON', canonical: JSON.stringify(json), references: refs, json, external, validate: (v) => validate(v) };
}

export type JsonChange = string;

const COMPATIBLE = new Set<JsonChange>([
  'TYPE_EXTENDED',
  'MAX_LENGTH_INCREASED',
  'MAX_LENGTH_REMOVED',
  'MIN_LENGTH_DECREASED',
  'MIN_LENGTH_REMOVED',
  'PATTERN_REMOVED',
  'MAXIMUM_INCREASED',
  'MAXIMUM_REMOVED',
  'MINIMUM_DECREASED',
  'MINIMUM_REMOVED',
  'EXCLUSIVE_MAXIMUM_INCREASED',
  'EXCLUSIVE_MAXIMUM_REMOVED',
  'EXCLUSIVE_MINIMUM_DECREASED',
  'EXCLUSIVE_MINIMUM_REMOVED',
  'MULTIPLE_OF_REDUCED',
  'MULTIPLE_OF_REMOVED',
  'REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED',
  'REQUIRED_ATTRIBUTE_REMOVED',
  'MAX_PROPERTIES_INCREASED',
  'MAX_PROPERTIES_REMOVED',
  'MIN_PROPERTIES_DECREASED',
  'MIN_PROPERTIES_REMOVED',
  'ADDITIONAL_PROPERTIES_ADDED',
  'ADDITIONAL_PROPERTIES_EXTENDED',
  'PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL',
  'REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL',
  'OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL',
  'PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL',
  'PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL',
  'PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL',
  'PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL',
  'MAX_ITEMS_INCREASED',
  'MAX_ITEMS_REMOVED',
  'MIN_ITEMS_DECREASED',
  'MIN_ITEMS_REMOVED',
  'UNIQUE_ITEMS_REMOVED',
  'ADDITIONAL_ITEMS_ADDED',
  'ADDITIONAL_ITEMS_EXTENDED',
  'ENUM_ARRAY_EXTENDED',
  'ENUM_REMOVED',
  'CONST_REMOVED',
  'SUM_TYPE_EXTENDED',
  'PRODUCT_TYPE_NARROWED',
  'NOT_TYPE_REMOVED',
  'SCHEMA_REMOVED',
]);

export interface JsonDifference {
  change: JsonChange;
  path: string;
}

const ALL_TYPES = ['array', 'boolean', 'integer', 'null', 'number', 'object', 'string'];

class JsonDiff {
  readonly differences: JsonDifference[] = [];
  private readonly visiting = new Set<string>();

  constructor(
    private readonly original: JsonSchemaParsed,
    private readonly update: JsonSchemaParsed,
  ) {}

  private add(change: JsonChange, path: string): void {
    this.differences.push({ change, path });
  }

  /** Follows `$ref`s (local JSON pointers and referenced schemas); returns the schema itself otherwise. */
  private deref(schema: Json, side: JsonSchemaParsed, depth = 0): Json {
    if (typeof schema !== 'object' || typeof schema.$ref !== 'string' || depth > 32) return schema;
    const ref = schema.$ref;
    const [base, pointer = ''] = ref.split('#');
    let doc: Json | undefined = base ? side.external.get(base) : side.json;
    if (doc === undefined) return schema;
    for (const part of pointer.split('/').filter(Boolean)) {
      if (typeof doc !== 'object') return schema;
      doc = doc[decodeURIComponent(part).replace(/~1/g, '/').replace(/~0/g, '~')] as Json | undefined;
      if (doc === undefined) return schema;
    }
    return this.deref(doc, side, depth + 1);
  }

  compare(o: Json | undefined, u: Json | undefined, path: string): void {
    if (o === undefined && u === undefined) return;
    if (u === undefined || u === true || (typeof u === 'object' && Object.keys(u).length === 0)) {
      if (!(o === undefined || o === true || (typeof o === 'object' && Object.keys(o).length === 0))) this.add('SCHEMA_REMOVED', path);
      return;
    }
    if (o === false) return;
    if (u === false) {
      this.add('SCHEMA_ADDED', path);
      return;
    }
    if (o === undefined || o === true) {
      this.add('SCHEMA_ADDED', path);
      return;
    }
    const key = `${JSON.stringify(o)}\u0000${JSON.stringify(u)}`;
    if (this.visiting.has(key)) return;
    this.visiting.add(key);
    try {
      const od = this.deref(o, this.original);
      const ud = this.deref(u, this.update);
      if (typeof od !== 'object' || typeof ud !== 'object') return this.compare(od, ud, path);
      this.body(od, ud, path);
    } finally {
      this.visiting.delete(key);
    }
  }

  private types(s: Record<string, unknown>): string[] | undefined {
    if (typeof s.type === 'string') return [s.type];
    if (Array.isArray(s.type)) return s.type as string[];
    return undefined;
  }

  private body(o: Record<string, unknown>, u: Record<string, unknown>, path: string): void {
    // Combined types first: a schema that is a oneOf/anyOf/allOf is judged branch by branch.
    for (const kw of ['oneOf', 'anyOf', 'allOf'] as const) {
      const ob = o[kw] as Json[] | undefined;
      const ub = u[kw] as Json[] | undefined;
      if (ob || ub) return this.combined(kw, o, u, path);
    }
    const ot = this.types(o);
    const ut = this.types(u);
    const oTypes = ot ?? ALL_TYPES;
    const uTypes = ut ?? ALL_TYPES;
    const covers = (set: string[], t: string) => set.includes(t) || (t === 'integer' && set.includes('number'));
    if (oTypes.some((t) => !covers(uTypes, t))) this.add('TYPE_NARROWED', `${path}/type`);
    else if (uTypes.some((t) => !covers(oTypes, t))) this.add('TYPE_EXTENDED', `${path}/type`);

    this.bound(o.maxLength, u.maxLength, 'MAX_LENGTH', 'max', path);
    this.bound(o.minLength, u.minLength, 'MIN_LENGTH', 'min', path);
    this.bound(o.maximum, u.maximum, 'MAXIMUM', 'max', path);
    this.bound(o.minimum, u.minimum, 'MINIMUM', 'min', path);
    this.bound(o.exclusiveMaximum, u.exclusiveMaximum, 'EXCLUSIVE_MAXIMUM', 'max', path);
    this.bound(o.exclusiveMinimum, u.exclusiveMinimum, 'EXCLUSIVE_MINIMUM', 'min', path);
    this.bound(o.maxItems, u.maxItems, 'MAX_ITEMS', 'max', path);
    this.bound(o.minItems, u.minItems, 'MIN_ITEMS', 'min', path);
    this.bound(o.maxProperties, u.maxProperties, 'MAX_PROPERTIES', 'max', path);
    this.bound(o.minProperties, u.minProperties, 'MIN_PROPERTIES', 'min', path);
    if (o.multipleOf !== u.multipleOf) {
      if (u.multipleOf === undefined) this.add('MULTIPLE_OF_REMOVED', path);
      else if (o.multipleOf === undefined) this.add('MULTIPLE_OF_ADDED', path);
      else if (Number(o.multipleOf) % Number(u.multipleOf) === 0) this.add('MULTIPLE_OF_REDUCED', path);
      else this.add('MULTIPLE_OF_CHANGED', path);
    }
    if (o.pattern !== u.pattern) this.add(u.pattern === undefined ? 'PATTERN_REMOVED' : o.pattern === undefined ? 'PATTERN_ADDED' : 'PATTERN_CHANGED', path);
    if (o.uniqueItems !== u.uniqueItems) {
      if (u.uniqueItems === true) this.add('UNIQUE_ITEMS_ADDED', path);
      else if (o.uniqueItems === true) this.add('UNIQUE_ITEMS_REMOVED', path);
    }
    this.enumeration(o, u, path);
    if ('not' in o || 'not' in u) {
      if (!('not' in u)) this.add('NOT_TYPE_REMOVED', path);
      else if (!('not' in o)) this.add('NOT_TYPE_ADDED', path);
      else if (JSON.stringify(o.not) !== JSON.stringify(u.not)) this.add('NOT_TYPE_CHANGED', path);
    }
    if (covers(uTypes, 'object') || o.properties || u.properties) this.objects(o, u, path);
    if (covers(uTypes, 'array') || o.items || u.items) this.arrays(o, u, path);
  }

  private bound(o: unknown, u: unknown, name: string, dir: 'max' | 'min', path: string): void {
    if (o === u) return;
    if (u === undefined) return this.add(`${name}_REMOVED`, path);
    if (o === undefined) return this.add(`${name}_ADDED`, path);
    const loosened = dir === 'max' ? Number(u) > Number(o) : Number(u) < Number(o);
    this.add(`${name}_${dir === 'max' ? (loosened ? 'INCREASED' : 'DECREASED') : loosened ? 'DECREASED' : 'INCREASED'}`, path);
  }

  private enumeration(o: Record<string, unknown>, u: Record<string, unknown>, path: string): void {
    const oe = o.enum as unknown[] | undefined;
    const ue = u.enum as unknown[] | undefined;
    if (oe || ue) {
      if (!ue) this.add('ENUM_REMOVED', `${path}/enum`);
      else if (!oe) this.add('ENUM_ADDED', `${path}/enum`);
      else {
        const us = new Set(ue.map((v) => JSON.stringify(v)));
        const os = new Set(oe.map((v) => JSON.stringify(v)));
        if ([...os].some((v) => !us.has(v))) this.add('ENUM_ARRAY_CHANGED', `${path}/enum`);
        else if (us.size > os.size) this.add('ENUM_ARRAY_EXTENDED', `${path}/enum`);
      }
    }
    if ('const' in o || 'const' in u) {
      if (!('const' in u)) this.add('CONST_REMOVED', `${path}/const`);
      else if (!('const' in o)) this.add('CONST_ADDED', `${path}/const`);
      else if (JSON.stringify(o.const) !== JSON.stringify(u.const)) this.add('CONST_CHANGED', `${path}/const`);
    }
  }

  /** Whether every value `o` accepts is accepted by `u` (a nested diff with no incompatible change). */
  private covered(o: Json | undefined, u: Json | undefined, path: string): boolean {
    const sub = new JsonDiff(this.original, this.update);
    for (const k of this.visiting) sub.visiting.add(k);
    sub.compare(o, u, path);
    return sub.differences.every((d) => COMPATIBLE.has(d.change));
  }

  private objects(o: Record<string, unknown>, u: Record<string, unknown>, path: string): void {
    const op = (o.properties ?? {}) as Record<string, Json>;
    const up = (u.properties ?? {}) as Record<string, Json>;
    const oAdd = o.additionalProperties as Json | undefined;
    const uAdd = u.additionalProperties as Json | undefined;
    const isOpen = (a: Json | undefined) => a === undefined || a === true || (typeof a === 'object' && Object.keys(a).length === 0);
    const isClosed = (a: Json | undefined) => a === false;
    const oRequired = new Set((o.required ?? []) as string[]);
    const uRequired = new Set((u.required ?? []) as string[]);
    const hasDefault = (s: Json | undefined) => typeof s === 'object' && s !== null && 'default' in s;
    for (const name of Object.keys(op)) {
      const p = `${path}/properties/${name}`;
      if (name in up) {
        this.compare(op[name], up[name], p);
        continue;
      }
      if (op[name] === false) this.add('PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL', p);
      else if (isOpen(uAdd)) this.add('PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL', p);
      else if (isClosed(uAdd)) this.add('PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL', p);
      else
        this.add(
          this.covered(op[name], uAdd, p)
            ? 'PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL'
            : 'PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL',
          p,
        );
    }
    for (const name of Object.keys(up)) {
      if (name in op) continue;
      const p = `${path}/properties/${name}`;
      const schema = up[name];
      const empty = schema === true || (typeof schema === 'object' && Object.keys(schema).length === 0);
      if (isOpen(oAdd)) this.add(empty ? 'PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL' : 'PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL', p);
      else if (isClosed(oAdd)) {
        if (!uRequired.has(name)) this.add('OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL', p);
        else
          this.add(hasDefault(schema) ? 'REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL' : 'REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL', p);
      } else
        this.add(
          this.covered(oAdd, schema, p)
            ? 'PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL'
            : 'PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL',
          p,
        );
    }
    // Required names of properties both sides know (a new property's requiredness was judged above).
    for (const name of uRequired) {
      if (oRequired.has(name) || (name in up && !(name in op))) continue;
      this.add(hasDefault(up[name]) ? 'REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED' : 'REQUIRED_ATTRIBUTE_ADDED', `${path}/required/${name}`);
    }
    for (const name of oRequired) if (!uRequired.has(name)) this.add('REQUIRED_ATTRIBUTE_REMOVED', `${path}/required/${name}`);
    if (JSON.stringify(oAdd) !== JSON.stringify(uAdd)) {
      const p = `${path}/additionalProperties`;
      if (isOpen(uAdd)) this.add(isClosed(oAdd) ? 'ADDITIONAL_PROPERTIES_ADDED' : 'ADDITIONAL_PROPERTIES_EXTENDED', p);
      else if (isClosed(uAdd)) this.add('ADDITIONAL_PROPERTIES_REMOVED', p);
      else if (isClosed(oAdd)) this.add('ADDITIONAL_PROPERTIES_ADDED', p);
      else this.add(this.covered(isOpen(oAdd) ? true : oAdd, uAdd, p) ? 'ADDITIONAL_PROPERTIES_EXTENDED' : 'ADDITIONAL_PROPERTIES_NARROWED', p);
    }
  }

  private arrays(o: Record<string, unknown>, u: Record<string, unknown>, path: string): void {
    const oi = o.items as Json | Json[] | undefined;
    const ui = u.items as Json | Json[] | undefined;
    if (Array.isArray(oi) || Array.isArray(ui)) {
      const oa = Array.isArray(oi) ? oi : [];
      const ua = Array.isArray(ui) ? ui : [];
      for (let i = 0; i < Math.max(oa.length, ua.length); i++) {
        if (i >= ua.length)
          this.add(u.additionalItems === false ? 'ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL' : 'ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL', `${path}/items/${i}`);
        else if (i >= oa.length)
          this.add(o.additionalItems === false ? 'ITEM_ADDED_TO_CLOSED_CONTENT_MODEL' : 'ITEM_ADDED_TO_OPEN_CONTENT_MODEL', `${path}/items/${i}`);
        else this.compare(oa[i], ua[i], `${path}/items/${i}`);
      }
      return;
    }
    if (oi !== undefined || ui !== undefined) this.compare(oi ?? true, ui ?? true, `${path}/items`);
  }

  private combined(kw: 'oneOf' | 'anyOf' | 'allOf', o: Record<string, unknown>, u: Record<string, unknown>, path: string): void {
    const ob = o[kw] as Json[] | undefined;
    const ub = u[kw] as Json[] | undefined;
    if (!ob || !ub) {
      // A plain schema turned into a oneOf/anyOf of which one branch covers it is a sum type extended.
      if (!ob && ub && kw !== 'allOf' && ub.some((b) => this.covered(o, b, path))) return this.add('SUM_TYPE_EXTENDED', `${path}/${kw}`);
      if (ob && !ub && kw === 'allOf' && ob.some((b) => this.covered(b, u, path))) return this.add('PRODUCT_TYPE_NARROWED', `${path}/${kw}`);
      return this.add('COMBINED_TYPE_CHANGED', `${path}/${kw}`);
    }
    if (kw === 'allOf') {
      // Every constraint the update keeps must have been there before.
      if (ub.every((b) => ob.some((a) => this.covered(a, b, path)))) {
        if (ub.length < ob.length) this.add('PRODUCT_TYPE_NARROWED', `${path}/${kw}`);
      } else this.add('PRODUCT_TYPE_EXTENDED', `${path}/${kw}`);
      return;
    }
    // oneOf/anyOf: every branch the original had must still be accepted by some branch of the update.
    if (ob.every((a) => ub.some((b) => this.covered(a, b, path)))) {
      if (ub.length > ob.length) this.add('SUM_TYPE_EXTENDED', `${path}/${kw}`);
    } else this.add('SUM_TYPE_NARROWED', `${path}/${kw}`);
  }
}

export function jsonSchemaDiff(original: JsonSchemaParsed, update: JsonSchemaParsed): JsonDifference[] {
  const diff = new JsonDiff(original, update);
  diff.compare(original.json, update.json, '#');
  return diff.differences;
}

export const jsonSchemaFormat: SchemaFormat<JsonSchemaParsed> = {
  schemaType: 'JSON',
  parse: parseJsonSchema,
  readerIssues: (reader, writer) =>
    jsonSchemaDiff(writer, reader)
      .filter((d) => !COMPATIBLE.has(d.change))
      .map((d) => `${d.change} at ${d.path}`),
};
