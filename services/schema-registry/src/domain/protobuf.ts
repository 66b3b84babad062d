/**
 * Protobuf schemas: `.proto` text parsed by protobufjs (imports resolved from the references, and
 * the well-known google/protobuf/*.proto files protobufjs bundles); compatibility by Confluent's
 * rules (its protobuf-provider `diff` package), which judge wire compatibility, not source
 * compatibility as buf's breaking rules do:
 *
 * - compatible: messages added or moved, enums and enum values added/removed/renamed, fields added
 *   or removed, fields renamed (the wire carries numbers), string ↔ bytes and label changes of
 *   string/bytes fields, oneofs added or removed whole, a field added to a oneof or moved out of one;
 * - incompatible: the package changed, a message removed, a field's kind changed (scalar / message /
 *   map), a scalar changed across wire groups (int32/int64/uint32/uint64/bool/enum;
 *   sint32/sint64; fixed32/sfixed32; fixed64/sfixed64; float; double; string/bytes), a numeric
 *   field's label changed (repeated ↔ singular), a message-typed field pointing at a differently
 *   named or incompatible message, a required field added or removed (proto2), a field removed from
 *   a surviving oneof, and fields that were independent moved into one oneof.
 *
 * The comparison is directional: `diff(original, update)` lists what changed from original to
 * update; it is compatible when every change is in COMPATIBLE. BACKWARD compares (old → new),
 * FORWARD (new → old). As in Confluent, reserved ranges are not consulted.
 */
import protobuf from 'protobufjs';
import { SkeinError } from '@skein/common/errors.js';
import type { ParsedSchema, ResolvedReference, SchemaFormat } from './schema-format.js';
import type { SchemaReference } from './types.js';

export interface ProtobufParsed extends ParsedSchema {
  readonly schemaType: 'PROTOBUF';
  readonly root: protobuf.Root;
  /** The file's package ('' for none). */
  readonly packageName: string;
  readonly proto3: boolean;
  /** The file's own top-level messages and enums, in declaration order (not those of imports). */
  readonly topLevel: readonly (protobuf.Type | protobuf.Enum)[];
}

export type ProtobufChange =
  | 'PACKAGE_CHANGED'
  | 'MESSAGE_ADDED'
  | 'MESSAGE_REMOVED'
  | 'MESSAGE_MOVED'
  | 'ENUM_ADDED'
  | 'ENUM_REMOVED'
  | 'ENUM_CONST_ADDED'
  | 'ENUM_CONST_CHANGED'
  | 'ENUM_CONST_REMOVED'
  | 'FIELD_ADDED'
  | 'FIELD_REMOVED'
  | 'FIELD_NAME_CHANGED'
  | 'FIELD_KIND_CHANGED'
  | 'FIELD_SCALAR_KIND_CHANGED'
  | 'FIELD_NAMED_TYPE_CHANGED'
  | 'FIELD_NUMERIC_LABEL_CHANGED'
  | 'FIELD_STRING_OR_BYTES_LABEL_CHANGED'
  | 'REQUIRED_FIELD_ADDED'
  | 'REQUIRED_FIELD_REMOVED'
  | 'ONEOF_ADDED'
  | 'ONEOF_REMOVED'
  | 'ONEOF_FIELD_ADDED'
  | 'ONEOF_FIELD_REMOVED'
  | 'ONEOF_FIELD_MOVED_TO_TOP_LEVEL'
  | 'MULTIPLE_FIELDS_MOVED_TO_ONEOF'
  | 'FIELD_MOVED_TO_EXISTING_ONEOF';

export const COMPATIBLE_PROTOBUF_CHANGES: ReadonlySet<ProtobufChange> = new Set<ProtobufChange>([
  'MESSAGE_ADDED',
  'MESSAGE_MOVED',
  'ENUM_ADDED',
  'ENUM_REMOVED',
  'ENUM_CONST_ADDED',
  'ENUM_CONST_CHANGED',
  'ENUM_CONST_REMOVED',
  'FIELD_ADDED',
  'FIELD_REMOVED',
  'FIELD_NAME_CHANGED',
  'FIELD_STRING_OR_BYTES_LABEL_CHANGED',
  'ONEOF_ADDED',
  'ONEOF_REMOVED',
  'ONEOF_FIELD_ADDED',
  'ONEOF_FIELD_MOVED_TO_TOP_LEVEL',
]);

export interface ProtobufDifference {
  change: ProtobufChange;
  path: string;
}

function invalid(message: string): SkeinError {
  return new SkeinError('INVALID_SCHEMA', `Invalid schema: ${message}`);
}

const WELL_KNOWN = new Set(Object.keys(protobuf.common).filter((k) => k.endsWith('.proto')));

function addReferences(root: protobuf.Root, refs: readonly ResolvedReference[], seen: Set<string>): void {
  for (const ref of refs) {
    const key = `${ref.subject}\u0000${ref.version}`;
    if (seen.has(key)) continue;
    seen.add(key);
    addReferences(root, ref.resolved, seen);
    if (ref.record.schemaType !== 'PROTOBUF')
      throw invalid(`reference ${ref.name} (${ref.subject} version ${ref.version}) is a ${ref.record.schemaType} schema, not PROTOBUF`);
    try {
      const parsed = protobuf.parse(ref.record.schema, root, { keepCase: true });
      addWellKnown(root, parsed.imports ?? [], ref.resolved);
    } catch (err) {
      throw invalid(`reference ${ref.name} (${ref.subject} version ${ref.version}) does not parse: ${(err as Error).message}`);
    }
  }
}

function addWellKnown(root: protobuf.Root, imports: readonly string[], refs: readonly ResolvedReference[]): void {
  for (const file of imports) {
    if (refs.some((r) => r.name === file)) continue;
    if (!WELL_KNOWN.has(file)) throw invalid(`import "${file}" has no reference (add a reference named "${file}")`);
    const json = protobuf.common.get(file) as protobuf.INamespace | null;
    if (json?.nested) root.addJSON(json.nested);
  }
}

export function parseProtobuf(text: string, references: readonly ResolvedReference[]): ProtobufParsed {
  const root = new protobuf.Root();
  let packageName = '';
  let topLevel: (protobuf.Type | protobuf.Enum)[];
  try {
    const parsed = protobuf.parse(text, root, { keepCase: true });
    packageName = parsed.package ?? '';
    const ns = packageName ? root.lookup(packageName) : root;
    // Taken before references are added, so an imported file's types are not counted as this file's.
    topLevel = ((ns as protobuf.Namespace | null)?.nestedArray ?? []).filter(
      (n): n is protobuf.Type | protobuf.Enum => n instanceof protobuf.Type || n instanceof protobuf.Enum,
    );
    addReferences(root, references, new Set());
    addWellKnown(root, parsed.imports ?? [], references);
    root.resolveAll();
  } catch (err) {
    if (err instanceof SkeinError) throw err;
    throw invalid((err as Error).message);
  }
  const refs: SchemaReference[] = references.map(({ name, subject, version }) => ({ name, subject, version }));
  const proto3 = /^\s*syntax\s*=\s*["']proto3["']/m.test(text);
  return { schemaType: 'PROTOBUF', canonical: text.trim(), references: refs, root, packageName, proto3, topLevel };
}

type Label = 'OPTIONAL' | 'REQUIRED' | 'REPEATED' | null;
type ScalarKind = 'GENERAL_NUMBER' | 'SIGNED_NUMBER' | 'STRING_OR_BYTES' | 'FIXED32' | 'FIXED64' | 'FLOAT' | 'DOUBLE';

const SCALAR_KINDS: Record<string, ScalarKind> = {
  int32: 'GENERAL_NUMBER',
  int64: 'GENERAL_NUMBER',
  uint32: 'GENERAL_NUMBER',
  uint64: 'GENERAL_NUMBER',
  bool: 'GENERAL_NUMBER',
  sint32: 'SIGNED_NUMBER',
  sint64: 'SIGNED_NUMBER',
  string: 'STRING_OR_BYTES',
  bytes: 'STRING_OR_BYTES',
  fixed32: 'FIXED32',
  sfixed32: 'FIXED32',
  fixed64: 'FIXED64',
  sfixed64: 'FIXED64',
  float: 'FLOAT',
  double: 'DOUBLE',
};

/** Whether a oneof is protobufjs's synthetic one for a proto3 `optional` field (not a oneof in the source). */
function isSynthetic(oneof: protobuf.OneOf): boolean {
  return oneof.fieldsArray.length === 1 && oneof.fieldsArray[0]?.options?.proto3_optional === true;
}

function realOneof(field: protobuf.Field): string | undefined {
  return field.partOf && !isSynthetic(field.partOf) ? field.partOf.name : undefined;
}

class Diff {
  readonly differences: ProtobufDifference[] = [];
  private readonly visiting = new Set<string>();

  constructor(
    readonly original: ProtobufParsed,
    readonly update: ProtobufParsed,
  ) {}

  add(change: ProtobufChange, path: string): void {
    this.differences.push({ change, path });
  }

  label(field: protobuf.Field, schema: ProtobufParsed): Label {
    if (realOneof(field)) return null;
    if (field.repeated) return 'REPEATED';
    if (field.required) return 'REQUIRED';
    if (field.options?.proto3_optional === true) return 'OPTIONAL';
    return schema.proto3 ? null : 'OPTIONAL';
  }

  types(original: readonly protobuf.ReflectionObject[], update: readonly protobuf.ReflectionObject[], path: string): void {
    const index = (objs: readonly protobuf.ReflectionObject[]) => {
      const messages = new Map<string, { type: protobuf.Type; index: number }>();
      const enums = new Map<string, protobuf.Enum>();
      let i = 0;
      for (const o of objs) {
        if (o instanceof protobuf.Type) messages.set(o.name, { type: o, index: i++ });
        else if (o instanceof protobuf.Enum) enums.set(o.name, o);
      }
      return { messages, enums };
    };
    const a = index(original);
    const b = index(update);
    for (const name of new Set([...a.messages.keys(), ...b.messages.keys()])) {
      const o = a.messages.get(name);
      const u = b.messages.get(name);
      const p = `${path}${name}`;
      if (!u) this.add('MESSAGE_REMOVED', p);
      else if (!o) this.add('MESSAGE_ADDED', p);
      else {
        this.message(o.type, u.type, p);
        if (o.index !== u.index) this.add('MESSAGE_MOVED', p);
      }
    }
    for (const name of new Set([...a.enums.keys(), ...b.enums.keys()])) {
      const o = a.enums.get(name);
      const u = b.enums.get(name);
      const p = `${path}${name}`;
      if (!u) this.add('ENUM_REMOVED', p);
      else if (!o) this.add('ENUM_ADDED', p);
      else this.enumValues(o, u, p);
    }
  }

  enumValues(original: protobuf.Enum, update: protobuf.Enum, path: string): void {
    const byNumber = (e: protobuf.Enum) => new Map(Object.entries(e.values).map(([k, v]) => [v, k]));
    const a = byNumber(original);
    const b = byNumber(update);
    for (const n of new Set([...a.keys(), ...b.keys()])) {
      if (!b.has(n)) this.add('ENUM_CONST_REMOVED', `${path}/${n}`);
      else if (!a.has(n)) this.add('ENUM_CONST_ADDED', `${path}/${n}`);
      else if (a.get(n) !== b.get(n)) this.add('ENUM_CONST_CHANGED', `${path}/${n}`);
    }
  }

  message(original: protobuf.Type, update: protobuf.Type, path: string): void {
    const key = `${original.fullName}\u0000${update.fullName}`;
    if (this.visiting.has(key)) return;
    this.visiting.add(key);
    try {
      this.messageBody(original, update, path);
    } finally {
      this.visiting.delete(key);
    }
  }

  private messageBody(original: protobuf.Type, update: protobuf.Type, path: string): void {
    const oneofs = (t: protobuf.Type) => new Map(t.oneofsArray.filter((o) => !isSynthetic(o)).map((o) => [o.name, o]));
    const originalOneofs = oneofs(original);
    const updateOneofs = oneofs(update);
    const originalById = new Map(original.fieldsArray.map((f) => [f.id, f]));
    const updateById = new Map(update.fieldsArray.map((f) => [f.id, f]));
    // A oneof removed with none of its members surviving anywhere is a whole deletion (compatible).
    const deletedWhole = new Set<string>();
    for (const [name, oneof] of originalOneofs) {
      if (!updateOneofs.has(name) && !oneof.fieldsArray.some((f) => updateById.has(f.id))) deletedWhole.add(name);
    }
    // Fields that were independent (or in different oneofs) now sharing one oneof: newly exclusive.
    for (const oneof of updateOneofs.values()) {
      const groups = new Set<string>();
      let movedIn = 0;
      for (const f of oneof.fieldsArray) {
        const before = originalById.get(f.id);
        if (!before) continue;
        const was = realOneof(before);
        if (was) groups.add(`oneof:${was}`);
        else {
          groups.add(`field:${f.id}`);
          movedIn++;
        }
      }
      if (groups.size > 1) this.add(movedIn > 1 ? 'MULTIPLE_FIELDS_MOVED_TO_ONEOF' : 'FIELD_MOVED_TO_EXISTING_ONEOF', `${path}/${oneof.name}`);
    }
    for (const name of [...new Set([...originalOneofs.keys(), ...updateOneofs.keys()])].sort()) {
      if (!updateOneofs.has(name)) this.add('ONEOF_REMOVED', `${path}/${name}`);
      else if (!originalOneofs.has(name)) this.add('ONEOF_ADDED', `${path}/${name}`);
    }
    for (const id of [...new Set([...originalById.keys(), ...updateById.keys()])].sort((x, y) => x - y)) {
      const o = originalById.get(id);
      const u = updateById.get(id);
      const oOneof = o && realOneof(o);
      const uOneof = u && realOneof(u);
      if (!u) {
        if (oOneof) {
          if (!deletedWhole.has(oOneof)) this.add('ONEOF_FIELD_REMOVED', `${path}/${oOneof}/${id}`);
        } else this.add(o!.required ? 'REQUIRED_FIELD_REMOVED' : 'FIELD_REMOVED', `${path}/${id}`);
      } else if (!o) {
        if (uOneof) this.add('ONEOF_FIELD_ADDED', `${path}/${uOneof}/${id}`);
        else this.add(u.required ? 'REQUIRED_FIELD_ADDED' : 'FIELD_ADDED', `${path}/${id}`);
      } else {
        if (oOneof && !uOneof) this.add('ONEOF_FIELD_MOVED_TO_TOP_LEVEL', `${path}/${id}`);
        this.field(o, u, uOneof ? `${path}/${uOneof}/${id}` : `${path}/${id}`);
      }
    }
    this.types(original.nestedArray, update.nestedArray, `${path}.`);
  }

  field(original: protobuf.Field, update: protobuf.Field, path: string): void {
    if (original.name !== update.name) this.add('FIELD_NAME_CHANGED', path);
    const kind = (f: protobuf.Field) => (f.map ? 'MAP' : f.resolvedType instanceof protobuf.Type ? 'MESSAGE' : 'SCALAR');
    const ok = kind(original);
    if (ok !== kind(update)) {
      this.add('FIELD_KIND_CHANGED', path);
      return;
    }
    if (ok === 'MAP') {
      // Keys are always scalars; values compare like singular fields.
      if (SCALAR_KINDS[(original as unknown as protobuf.MapField).keyType] !== SCALAR_KINDS[(update as unknown as protobuf.MapField).keyType])
        this.add('FIELD_SCALAR_KIND_CHANGED', path);
      this.valueType(original, update, null, null, path);
      return;
    }
    this.valueType(original, update, this.label(original, this.original), this.label(update, this.update), path);
  }

  private valueType(original: protobuf.Field, update: protobuf.Field, originalLabel: Label, updateLabel: Label, path: string): void {
    const isMessage = (f: protobuf.Field) => f.resolvedType instanceof protobuf.Type;
    if (isMessage(original) !== isMessage(update)) {
      this.add('FIELD_KIND_CHANGED', path);
      return;
    }
    if (isMessage(original)) {
      const o = original.resolvedType as protobuf.Type;
      const u = update.resolvedType as protobuf.Type;
      if (this.localName(o, this.original) !== this.localName(u, this.update)) {
        this.add('FIELD_NAMED_TYPE_CHANGED', path);
        return;
      }
      const sub = new Diff(this.original, this.update);
      sub.visiting.add(`${o.fullName}\u0000${u.fullName}`);
      for (const k of this.visiting) sub.visiting.add(k);
      sub.messageBody(o, u, path);
      this.differences.push(...sub.differences);
      if (!sub.differences.every((d) => COMPATIBLE_PROTOBUF_CHANGES.has(d.change))) this.add('FIELD_NAMED_TYPE_CHANGED', path);
      return;
    }
    const scalar = (f: protobuf.Field) => (f.resolvedType instanceof protobuf.Enum ? 'GENERAL_NUMBER' : SCALAR_KINDS[f.type]);
    const ok = scalar(original);
    if (ok !== scalar(update)) {
      this.add('FIELD_SCALAR_KIND_CHANGED', path);
      return;
    }
    if (originalLabel !== null && updateLabel !== null && originalLabel !== updateLabel) {
      this.add(ok === 'STRING_OR_BYTES' ? 'FIELD_STRING_OR_BYTES_LABEL_CHANGED' : 'FIELD_NUMERIC_LABEL_CHANGED', path);
    }
  }

  private localName(t: protobuf.Type, schema: ProtobufParsed): string {
    const full = t.fullName.replace(/^\./, '');
    return schema.packageName && full.startsWith(`${schema.packageName}.`) ? full.slice(schema.packageName.length + 1) : full;
  }
}

/** Every change from `original` to `update`, compatible or not. */
export function protobufDiff(original: ProtobufParsed, update: ProtobufParsed): ProtobufDifference[] {
  const diff = new Diff(original, update);
  if (original.packageName !== update.packageName) diff.add('PACKAGE_CHANGED', '#/');
  diff.types(original.topLevel, update.topLevel, '#/');
  return diff.differences;
}

export const protobufFormat: SchemaFormat<ProtobufParsed> = {
  schemaType: 'PROTOBUF',
  parse: parseProtobuf,
  // reader = update, writer = original: the reader's schema must accept what the writer's produced.
  readerIssues: (reader, writer) =>
    protobufDiff(writer, reader)
      .filter((d) => !COMPATIBLE_PROTOBUF_CHANGES.has(d.change))
      .map((d) => `${d.change} at ${d.path}`),
};

/**
 * The message indexes of a message type in its file, as Confluent's serializers write them after
 * the schema id: the path of indexes from the file's top level (messages only, declaration order)
 * down to the type. [0] is the first top-level message.
 */
export function messageIndexes(parsed: ProtobufParsed, fullName: string): number[] {
  const wanted = fullName.replace(/^\./, '');
  const search = (objs: readonly protobuf.ReflectionObject[]): number[] | undefined => {
    const messages = objs.filter((o): o is protobuf.Type => o instanceof protobuf.Type);
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i]!;
      if (m.fullName.replace(/^\./, '') === wanted) return [i];
      const inner = search(m.nestedArray);
      if (inner) return [i, ...inner];
    }
    return undefined;
  };
  const found = search(parsed.topLevel);
  if (!found) throw new SkeinError('INVALID_REQUEST', `message ${fullName} is not defined in the schema`);
  return found;
}
