// Protobuf compatibility by Confluent's rules (protobuf-provider diff; cases after its
// ProtobufSchemaTest / SchemaDiffTest and the "Protobuf" section of Confluent's compatibility docs):
// wire compatibility, not buf's source compatibility.
import { describe, expect, it } from 'vitest';
import { messageIndexes, parseProtobuf, protobufDiff, protobufFormat } from './protobuf.js';

const p = (body: string, header = 'syntax = "proto3";\npackage acme;') => parseProtobuf(`${header}\n${body}`, []);
/** Changes from `before` to `after` that Confluent counts as incompatible. */
const breaking = (before: string, after: string, header?: string) => protobufFormat.readerIssues(p(after, header), p(before, header));
const changes = (before: string, after: string) => protobufDiff(p(before), p(after)).map((d) => d.change);

describe('Protobuf compatibility (Confluent rules)', () => {
  const base = 'message Order { string id = 1; int64 amount = 2; }';

  it('adding and removing fields is compatible (unknown fields are skipped on the wire)', () => {
    expect(breaking(base, 'message Order { string id = 1; int64 amount = 2; string note = 3; }')).toEqual([]);
    expect(breaking(base, 'message Order { string id = 1; }')).toEqual([]);
  });

  it('renaming a field is compatible (the wire carries numbers); renumbering it is not a rename', () => {
    expect(changes(base, 'message Order { string order_id = 1; int64 amount = 2; }')).toEqual(['FIELD_NAME_CHANGED']);
    expect(breaking(base, 'message Order { string order_id = 1; int64 amount = 2; }')).toEqual([]);
    // Moving amount from 2 to 3 is a removal plus an addition: compatible by the rules, and the old
    // number's data is dropped. Changing a number's type is what breaks.
    expect(changes(base, 'message Order { string id = 1; int64 amount = 3; }').sort()).toEqual(['FIELD_ADDED', 'FIELD_REMOVED']);
    expect(breaking(base, 'message Order { string id = 1; string amount = 2; }')).toEqual(['FIELD_SCALAR_KIND_CHANGED at #/Order/2']);
  });

  it('scalar changes within a wire group are compatible, across groups they are not', () => {
    const f = (t: string) => `message M { ${t} v = 1; }`;
    for (const [a, b] of [
      ['int32', 'int64'],
      ['uint32', 'bool'],
      ['sint32', 'sint64'],
      ['fixed32', 'sfixed32'],
      ['fixed64', 'sfixed64'],
      ['string', 'bytes'],
    ]) {
      expect(breaking(f(a), f(b)), `${a} -> ${b}`).toEqual([]);
    }
    for (const [a, b] of [
      ['int32', 'sint32'],
      ['int32', 'fixed32'],
      ['float', 'double'],
      ['int64', 'string'],
      ['fixed32', 'fixed64'],
    ]) {
      expect(breaking(f(a), f(b)), `${a} -> ${b}`).toEqual(['FIELD_SCALAR_KIND_CHANGED at #/M/1']);
    }
  });

  it('an enum field counts as a general number; a message field changed to a scalar changes kind', () => {
    expect(breaking('enum E { A = 0; } message M { E e = 1; }', 'enum E { A = 0; } message M { int32 e = 1; }')).toEqual([]);
    expect(breaking('message N { int32 x = 1; } message M { N n = 1; }', 'message N { int32 x = 1; } message M { int32 n = 1; }')).toEqual([
      'FIELD_KIND_CHANGED at #/M/1',
    ]);
  });

  it('repeated ↔ singular breaks numbers but not strings/bytes (proto2 labels)', () => {
    const h = 'syntax = "proto2";';
    expect(breaking('message M { optional int32 v = 1; }', 'message M { repeated int32 v = 1; }', h)).toEqual(['FIELD_NUMERIC_LABEL_CHANGED at #/M/1']);
    expect(breaking('message M { optional string v = 1; }', 'message M { repeated string v = 1; }', h)).toEqual([]);
  });

  it('required fields added or removed break (proto2)', () => {
    const h = 'syntax = "proto2";';
    expect(breaking('message M { optional int32 a = 1; }', 'message M { optional int32 a = 1; required int32 b = 2; }', h)).toEqual([
      'REQUIRED_FIELD_ADDED at #/M/2',
    ]);
    expect(breaking('message M { optional int32 a = 1; required int32 b = 2; }', 'message M { optional int32 a = 1; }', h)).toEqual([
      'REQUIRED_FIELD_REMOVED at #/M/2',
    ]);
  });

  it('messages: adding or reordering is compatible, removing is not; the package may not change', () => {
    expect(breaking(base, `${base} message Extra { int32 x = 1; }`)).toEqual([]);
    expect(breaking(`message A { int32 x = 1; } ${base}`, `${base} message A { int32 x = 1; }`)).toEqual([]);
    expect(breaking(`${base} message Extra { int32 x = 1; }`, base)).toEqual(['MESSAGE_REMOVED at #/Extra']);
    expect(breaking(base, base, 'syntax = "proto3";\npackage other;')).toEqual([]);
    expect(protobufFormat.readerIssues(p(base, 'syntax = "proto3";\npackage other;'), p(base))).toContain('PACKAGE_CHANGED at #/');
  });

  it('enum values may be added, removed or renamed', () => {
    expect(breaking('enum E { A = 0; B = 1; }', 'enum E { A = 0; C = 1; D = 2; }')).toEqual([]);
    expect(breaking('enum E { A = 0; B = 1; }', 'enum E { A = 0; }')).toEqual([]);
  });

  it('oneofs: adding a field to one or moving one out is compatible; removing a member or merging fields into one is not', () => {
    const before = 'message M { oneof choice { string a = 1; int32 b = 2; } int32 c = 3; int32 d = 4; }';
    expect(breaking(before, 'message M { oneof choice { string a = 1; int32 b = 2; bool e = 5; } int32 c = 3; int32 d = 4; }')).toEqual([]);
    expect(breaking(before, 'message M { oneof choice { string a = 1; } int32 b = 2; int32 c = 3; int32 d = 4; }')).toEqual([]);
    expect(breaking(before, 'message M { oneof choice { string a = 1; } int32 c = 3; int32 d = 4; }')).toEqual(['ONEOF_FIELD_REMOVED at #/M/choice/2']);
    expect(breaking(before, 'message M { oneof choice { string a = 1; int32 b = 2; int32 c = 3; } int32 d = 4; }')).toEqual([
      'FIELD_MOVED_TO_EXISTING_ONEOF at #/M/choice',
    ]);
    expect(breaking(before, 'message M { oneof choice { string a = 1; int32 b = 2; } oneof other { int32 c = 3; int32 d = 4; } }')).toEqual([
      'MULTIPLE_FIELDS_MOVED_TO_ONEOF at #/M/other',
    ]);
    // Removing a whole oneof (none of its members survive) is compatible.
    expect(breaking(before, 'message M { int32 c = 3; int32 d = 4; }')).toEqual([]);
  });

  it('a proto3 optional field is not a oneof', () => {
    expect(breaking('message M { int32 a = 1; }', 'message M { optional int32 a = 1; }')).toEqual([]);
  });

  it('nested and message-typed fields are compared by name and content', () => {
    const before = 'message M { message Inner { int32 x = 1; } Inner i = 1; }';
    expect(breaking(before, 'message M { message Inner { int32 x = 1; string y = 2; } Inner i = 1; }')).toEqual([]);
    expect(breaking(before, 'message M { message Inner { string x = 1; } Inner i = 1; }')).toContain('FIELD_SCALAR_KIND_CHANGED at #/M.Inner/1');
    expect(
      breaking(
        'message A { int32 x = 1; } message B { int32 x = 1; } message M { A f = 1; }',
        'message A { int32 x = 1; } message B { int32 x = 1; } message M { B f = 1; }',
      ),
    ).toEqual(['FIELD_NAMED_TYPE_CHANGED at #/M/1']);
  });

  it('maps compare key and value types', () => {
    expect(breaking('message M { map<string, int32> m = 1; }', 'message M { map<string, int64> m = 1; }')).toEqual([]);
    expect(breaking('message M { map<string, int32> m = 1; }', 'message M { map<string, string> m = 1; }')).toEqual(['FIELD_SCALAR_KIND_CHANGED at #/M/1']);
    expect(breaking('message M { map<string, int32> m = 1; }', 'message M { int32 m = 1; }')).toEqual(['FIELD_KIND_CHANGED at #/M/1']);
  });

  it('imports: well-known types without references, other files only through references', () => {
    expect(() => p('message M { google.protobuf.Timestamp at = 1; }', 'syntax = "proto3";\nimport "google/protobuf/timestamp.proto";')).not.toThrow();
    expect(() => p('message M { other.Thing t = 1; }', 'syntax = "proto3";\nimport "other.proto";')).toThrow(
      expect.objectContaining({ reason: 'INVALID_SCHEMA' }),
    );
    const ref = {
      name: 'other.proto',
      subject: 'other',
      version: 1,
      record: { schemaType: 'PROTOBUF' as const, schema: 'syntax = "proto3"; package other; message Thing { int32 x = 1; }', references: [] },
      resolved: [],
    };
    const parsed = parseProtobuf('syntax = "proto3";\nimport "other.proto";\nmessage M { other.Thing t = 1; }', [ref]);
    expect(parsed.topLevel.map((t) => t.name)).toEqual(['M']);
  });

  it('refuses text that is not a .proto file', () => {
    expect(() => p('message M { int32 = 1; }')).toThrow(expect.objectContaining({ reason: 'INVALID_SCHEMA' }));
    expect(() => p('message M { Unknown u = 1; }')).toThrow(expect.objectContaining({ reason: 'INVALID_SCHEMA' }));
  });

  it('message indexes: the path of message positions from the top level, enums not counted', () => {
    const parsed = p('message A { int32 x = 1; } enum E { Z = 0; } message B { message C { int32 y = 1; } message D { message F { int32 z = 1; } } }');
    expect(messageIndexes(parsed, 'acme.A')).toEqual([0]);
    expect(messageIndexes(parsed, 'acme.B')).toEqual([1]);
    expect(messageIndexes(parsed, 'acme.B.D.F')).toEqual([1, 1, 0]);
  });
});
