// Avro compatibility cases from the Avro specification's "Schema Resolution" section and Confluent's
// documented evolution rules (docs "Schema Evolution and Compatibility": add a field with a default,
// remove a field, rename with aliases, promote types, grow an enum).
import { describe, expect, it } from 'vitest';
import { avroFormat, parseAvro } from './avro.js';

const parse = (s: unknown) => parseAvro(JSON.stringify(s), []);
const rec = (fields: unknown[], extra: Record<string, unknown> = {}) => ({ type: 'record', name: 'User', namespace: 'com.example', fields, ...extra });
const canRead = (reader: unknown, writer: unknown) => avroFormat.readerIssues(parse(reader), parse(writer));

describe('Avro schema resolution (reader ← writer)', () => {
  it('a reader field with a default may be missing from the writer; without one it may not', () => {
    const v1 = rec([{ name: 'name', type: 'string' }]);
    expect(
      canRead(
        rec([
          { name: 'name', type: 'string' },
          { name: 'age', type: 'int', default: 0 },
        ]),
        v1,
      ),
    ).toEqual([]);
    const issues = canRead(
      rec([
        { name: 'name', type: 'string' },
        { name: 'age', type: 'int' },
      ]),
      v1,
    );
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatch(/age has no default/);
  });

  it('writer fields the reader lacks are skipped (removing a field is backward compatible)', () => {
    expect(
      canRead(
        rec([{ name: 'name', type: 'string' }]),
        rec([
          { name: 'name', type: 'string' },
          { name: 'age', type: 'int' },
        ]),
      ),
    ).toEqual([]);
  });

  it('a renamed field matches through the reader field aliases, not otherwise', () => {
    const writer = rec([{ name: 'name', type: 'string' }]);
    expect(canRead(rec([{ name: 'fullName', type: 'string', aliases: ['name'] }]), writer)).toEqual([]);
    expect(canRead(rec([{ name: 'fullName', type: 'string' }]), writer)).not.toEqual([]);
  });

  it('promotions: int→long/float/double, long→float/double, float→double, string↔bytes; never narrowing', () => {
    for (const [reader, writer] of [
      ['long', 'int'],
      ['float', 'int'],
      ['double', 'int'],
      ['float', 'long'],
      ['double', 'long'],
      ['double', 'float'],
      ['string', 'bytes'],
      ['bytes', 'string'],
    ]) {
      expect(canRead(reader, writer), `${reader} <- ${writer}`).toEqual([]);
    }
    for (const [reader, writer] of [
      ['int', 'long'],
      ['long', 'float'],
      ['float', 'double'],
      ['int', 'string'],
      ['boolean', 'int'],
    ]) {
      expect(canRead(reader, writer), `${reader} <- ${writer}`).not.toEqual([]);
    }
  });

  it('promotion applies inside a field, an array and a map', () => {
    expect(canRead(rec([{ name: 'n', type: 'long' }]), rec([{ name: 'n', type: 'int' }]))).toEqual([]);
    expect(canRead({ type: 'array', items: 'double' }, { type: 'array', items: 'int' })).toEqual([]);
    expect(canRead({ type: 'map', values: 'int' }, { type: 'map', values: 'long' })).not.toEqual([]);
  });

  it('enums: every writer symbol must be a reader symbol unless the reader enum has a default', () => {
    const e = (symbols: string[], def?: string) => ({ type: 'enum', name: 'Suit', symbols, ...(def ? { default: def } : {}) });
    expect(canRead(e(['SPADES', 'HEARTS', 'CLUBS']), e(['SPADES', 'HEARTS']))).toEqual([]);
    expect(canRead(e(['SPADES']), e(['SPADES', 'HEARTS']))[0]).toMatch(/lacks writer symbols HEARTS/);
    expect(canRead(e(['UNKNOWN', 'SPADES'], 'UNKNOWN'), e(['SPADES', 'HEARTS']))).toEqual([]);
  });

  it('named types match by unqualified name or by a reader alias of the writer full name', () => {
    const writer = { type: 'record', name: 'a.Old', fields: [] };
    expect(canRead({ type: 'record', name: 'b.Old', fields: [] }, writer)).toEqual([]);
    expect(canRead({ type: 'record', name: 'a.New', fields: [] }, writer)).not.toEqual([]);
    expect(canRead({ type: 'record', name: 'a.New', aliases: ['a.Old'], fields: [] }, writer)).toEqual([]);
  });

  it('fixed: same name and size', () => {
    expect(canRead({ type: 'fixed', name: 'F', size: 16 }, { type: 'fixed', name: 'F', size: 16 })).toEqual([]);
    expect(canRead({ type: 'fixed', name: 'F', size: 16 }, { type: 'fixed', name: 'F', size: 8 })[0]).toMatch(/size/);
  });

  it('unions: every writer branch must be readable; a non-union writer needs one matching reader branch', () => {
    expect(canRead(['null', 'string', 'int'], ['null', 'string'])).toEqual([]);
    expect(canRead(['null', 'string'], ['null', 'string', 'int'])).not.toEqual([]);
    expect(canRead(['null', 'long'], 'int')).toEqual([]);
    expect(canRead('string', ['null', 'string'])).not.toEqual([]);
    // Making a field nullable (with a null default) is both backward and forward compatible for values.
    expect(canRead(rec([{ name: 'n', type: ['null', 'string'], default: null }]), rec([{ name: 'n', type: 'string' }]))).toEqual([]);
  });

  it('recursive types terminate', () => {
    const list = {
      type: 'record',
      name: 'Node',
      fields: [
        { name: 'value', type: 'int' },
        { name: 'next', type: ['null', 'Node'], default: null },
      ],
    };
    const list2 = {
      type: 'record',
      name: 'Node',
      fields: [
        { name: 'value', type: 'long' },
        { name: 'next', type: ['null', 'Node'], default: null },
      ],
    };
    expect(canRead(list2, list)).toEqual([]);
    expect(canRead(list, list2)).not.toEqual([]);
  });

  it('logical types are judged by their underlying type', () => {
    expect(canRead({ type: 'long', logicalType: 'timestamp-millis' }, { type: 'int', logicalType: 'date' })).toEqual([]);
  });

  it('refuses what is not Avro: bad JSON, unknown type names, bad defaults', () => {
    expect(() => parseAvro('{', [])).toThrow(expect.objectContaining({ reason: 'INVALID_SCHEMA' }));
    expect(() => parse({ type: 'record', name: 'R', fields: [{ name: 'a', type: 'Nope' }] })).toThrow(expect.objectContaining({ reason: 'INVALID_SCHEMA' }));
    expect(() => parse(rec([{ name: 'a', type: 'int', default: 'x' }]))).toThrow(expect.objectContaining({ reason: 'INVALID_SCHEMA' }));
  });

  it('resolves named types from references (a type defined in another subject)', () => {
    const address = { type: 'record', name: 'com.example.Address', fields: [{ name: 'city', type: 'string' }] };
    const ref = {
      name: 'com.example.Address',
      subject: 'address',
      version: 1,
      record: { schemaType: 'AVRO' as const, schema: JSON.stringify(address), references: [] },
      resolved: [],
    };
    const user = { type: 'record', name: 'com.example.User', fields: [{ name: 'home', type: 'com.example.Address' }] };
    expect(() => parse(user)).toThrow(expect.objectContaining({ reason: 'INVALID_SCHEMA' }));
    const parsed = parseAvro(JSON.stringify(user), [ref]);
    expect(parsed.references).toEqual([{ name: 'com.example.Address', subject: 'address', version: 1 }]);
    expect(parsed.canonical).toBe(JSON.stringify(user));
  });
});
