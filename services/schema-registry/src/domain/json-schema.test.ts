// JSON Schema compatibility by Confluent's rules (json-schema-provider diff, strict set; cases after
// its SchemaDiffTest and the open/closed content-model examples in Confluent's docs).
import { describe, expect, it } from 'vitest';
import { jsonSchemaFormat, parseJsonSchema } from './json-schema.js';

const parse = (s: unknown) => parseJsonSchema(JSON.stringify(s), []);
/** Incompatible changes from `before` to `after` (BACKWARD: `after` must accept all `before` accepted). */
const breaking = (before: unknown, after: unknown) => jsonSchemaFormat.readerIssues(parse(after), parse(before));
const obj = (properties: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ type: 'object', properties, ...extra });

describe('JSON Schema compatibility (Confluent rules)', () => {
  it('open content model: removing a property is compatible, adding one is not (old data may carry it with any value)', () => {
    const v1 = obj({ name: { type: 'string' }, age: { type: 'integer' } });
    expect(breaking(v1, obj({ name: { type: 'string' } }))).toEqual([]);
    expect(breaking(v1, obj({ name: { type: 'string' }, age: { type: 'integer' }, email: { type: 'string' } }))).toEqual([
      'PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL at #/properties/email',
    ]);
    // ...unless the new property accepts anything.
    expect(breaking(v1, obj({ name: { type: 'string' }, age: { type: 'integer' }, extra: {} }))).toEqual([]);
  });

  it('closed content model: adding an optional property is compatible, removing one is not', () => {
    const v1 = obj({ name: { type: 'string' } }, { additionalProperties: false });
    expect(breaking(v1, obj({ name: { type: 'string' }, email: { type: 'string' } }, { additionalProperties: false }))).toEqual([]);
    expect(breaking(obj({ name: { type: 'string' }, email: { type: 'string' } }, { additionalProperties: false }), v1)).toEqual([
      'PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL at #/properties/email',
    ]);
  });

  it('required properties: adding one breaks unless it has a default; removing one is compatible', () => {
    const closed = (props: Record<string, unknown>, required: string[]) => obj(props, { additionalProperties: false, required });
    expect(breaking(closed({ a: { type: 'string' } }, []), closed({ a: { type: 'string' }, b: { type: 'string' } }, ['b']))).toEqual([
      'REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL at #/properties/b',
    ]);
    expect(breaking(closed({ a: { type: 'string' } }, []), closed({ a: { type: 'string' }, b: { type: 'string', default: 'x' } }, ['b']))).toEqual([]);
    expect(breaking(closed({ a: { type: 'string' } }, []), closed({ a: { type: 'string' } }, ['a']))).toEqual(['REQUIRED_ATTRIBUTE_ADDED at #/required/a']);
    expect(breaking(closed({ a: { type: 'string' } }, ['a']), closed({ a: { type: 'string' } }, []))).toEqual([]);
  });

  it('additionalProperties: opening a closed model is compatible, closing an open one is not', () => {
    const props = { a: { type: 'string' } };
    expect(breaking(obj(props, { additionalProperties: false }), obj(props))).toEqual([]);
    expect(breaking(obj(props), obj(props, { additionalProperties: false }))).toEqual(['ADDITIONAL_PROPERTIES_REMOVED at #/additionalProperties']);
  });

  it('partially open model: a property added or removed must be covered by the additionalProperties schema', () => {
    const v1 = obj({ a: { type: 'string' } }, { additionalProperties: { type: 'string' } });
    expect(breaking(v1, obj({ a: { type: 'string' }, b: { type: 'string' } }, { additionalProperties: { type: 'string' } }))).toEqual([]);
    expect(breaking(v1, obj({ a: { type: 'string' }, b: { type: 'integer' } }, { additionalProperties: { type: 'string' } }))).toEqual([
      'PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL at #/properties/b',
    ]);
  });

  it('types may widen but not narrow; integer widens to number', () => {
    expect(breaking({ type: 'string' }, { type: ['string', 'null'] })).toEqual([]);
    expect(breaking({ type: ['string', 'null'] }, { type: 'string' })).toEqual(['TYPE_NARROWED at #/type']);
    expect(breaking({ type: 'integer' }, { type: 'number' })).toEqual([]);
    expect(breaking({ type: 'number' }, { type: 'integer' })).toEqual(['TYPE_NARROWED at #/type']);
  });

  it('bounds may loosen or go, not tighten or appear', () => {
    expect(breaking({ type: 'string', maxLength: 10 }, { type: 'string', maxLength: 20 })).toEqual([]);
    expect(breaking({ type: 'string', maxLength: 10 }, { type: 'string' })).toEqual([]);
    expect(breaking({ type: 'string', maxLength: 10 }, { type: 'string', maxLength: 5 })).toEqual(['MAX_LENGTH_DECREASED at #']);
    expect(breaking({ type: 'string' }, { type: 'string', pattern: '^a' })).toEqual(['PATTERN_ADDED at #']);
    expect(breaking({ type: 'number', minimum: 0 }, { type: 'number', minimum: -5 })).toEqual([]);
    expect(breaking({ type: 'number', minimum: 0 }, { type: 'number', minimum: 5 })).toEqual(['MINIMUM_INCREASED at #']);
    expect(breaking({ type: 'array', items: { type: 'string' } }, { type: 'array', items: { type: 'string' }, maxItems: 3 })).toEqual(['MAX_ITEMS_ADDED at #']);
  });

  it('enums may grow, not shrink', () => {
    expect(breaking({ enum: ['a', 'b'] }, { enum: ['a', 'b', 'c'] })).toEqual([]);
    expect(breaking({ enum: ['a', 'b'] }, { enum: ['a'] })).toEqual(['ENUM_ARRAY_CHANGED at #/enum']);
  });

  it('nested objects and array items are compared recursively', () => {
    const v1 = obj({ addr: obj({ city: { type: 'string' } }) });
    expect(breaking(v1, obj({ addr: obj({ city: { type: 'integer' } }) }))).toEqual(['TYPE_NARROWED at #/properties/addr/properties/city/type']);
    expect(breaking({ type: 'array', items: { type: 'integer' } }, { type: 'array', items: { type: 'number' } })).toEqual([]);
  });

  it('oneOf may gain branches, not lose them', () => {
    expect(breaking({ oneOf: [{ type: 'string' }] }, { oneOf: [{ type: 'string' }, { type: 'integer' }] })).toEqual([]);
    expect(breaking({ oneOf: [{ type: 'string' }, { type: 'integer' }] }, { oneOf: [{ type: 'string' }] })).toEqual(['SUM_TYPE_NARROWED at #/oneOf']);
    expect(breaking({ type: 'string' }, { oneOf: [{ type: 'string' }, { type: 'null' }] })).toEqual([]);
  });

  it('local $refs are followed', () => {
    const v = (t: string) => ({ definitions: { Name: { type: t } }, type: 'object', properties: { n: { $ref: '#/definitions/Name' } } });
    expect(breaking(v('string'), v('string'))).toEqual([]);
    expect(breaking(v('string'), v('integer'))).toEqual(['TYPE_NARROWED at #/properties/n/type']);
  });

  it('annotations never matter', () => {
    expect(breaking({ type: 'string', title: 'a', description: 'x' }, { type: 'string', title: 'b', description: 'y', default: 'z' })).toEqual([]);
  });

  it('refuses invalid schemas and resolves $refs to other subjects through references', () => {
    expect(() => parseJsonSchema('{"type": 12}', [])).toThrow(expect.objectContaining({ reason: 'INVALID_SCHEMA' }));
    expect(() => parseJsonSchema('[1]', [])).toThrow(expect.objectContaining({ reason: 'INVALID_SCHEMA' }));
    const address = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };
    const ref = {
      name: 'address.json',
      subject: 'address',
      version: 1,
      record: { schemaType: 'JSON' as const, schema: JSON.stringify(address), references: [] },
      resolved: [],
    };
    const user = parseJsonSchema(JSON.stringify(obj({ home: { $ref: 'address.json' } })), [ref]);
    expect(user.validate({ home: { city: 'Oslo' } })).toBe(true);
    expect(user.validate({ home: {} })).toBe(false);
  });
});
