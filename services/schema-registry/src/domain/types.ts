/**
 * The schema registry's vocabulary, Confluent's verbatim (so the REST API and its clients map one to
 * one): a *subject* is a named sequence of *versions* (1, 2, ...); each version points at a *schema*
 * by its *global id*; the same schema (same type, same canonical text, same references) has the same
 * id under every subject. Ids are never reused for another schema.
 */
import { SkeinError } from '@skein/common/errors.js';

export const SCHEMA_TYPES = ['AVRO', 'PROTOBUF', 'JSON'] as const;
export type SchemaType = (typeof SCHEMA_TYPES)[number];

/** A named dependency: Avro named type / Protobuf import path / JSON `$ref` URL → another subject's version. */
export interface SchemaReference {
  name: string;
  subject: string;
  version: number;
}

/** A schema as stored under its id: the canonical text is what lookups compare and what reads return. */
export interface SchemaRecord {
  schemaType: SchemaType;
  schema: string;
  references: SchemaReference[];
}

export const COMPATIBILITY_LEVELS = ['NONE', 'BACKWARD', 'BACKWARD_TRANSITIVE', 'FORWARD', 'FORWARD_TRANSITIVE', 'FULL', 'FULL_TRANSITIVE'] as const;
export type CompatibilityLevel = (typeof COMPATIBILITY_LEVELS)[number];
/** Confluent's default. */
export const DEFAULT_COMPATIBILITY: CompatibilityLevel = 'BACKWARD';

/**
 * READWRITE: normal. READONLY: no registration or delete (reads only). READONLY_OVERRIDE: as READONLY,
 * and it also wins over a subject's own mode when set globally. IMPORT: registrations carry their id
 * and version (migrating from another registry) and are not checked for compatibility.
 */
export const MODES = ['READWRITE', 'READONLY', 'READONLY_OVERRIDE', 'IMPORT'] as const;
export type Mode = (typeof MODES)[number];

export interface SubjectVersion {
  version: number;
  id: number;
  /** Soft-deleted: hidden unless asked for with deleted=true; still blocks reuse of its version number. */
  deleted: boolean;
}

/** One subject's versions in version order. Permanently deleted versions are gone from the list. */
export interface SubjectState {
  versions: SubjectVersion[];
}

export const MAX_VERSION = 2 ** 31 - 1;

export function parseCompatibilityLevel(value: unknown): CompatibilityLevel {
  const v = typeof value === 'string' ? value.toUpperCase() : value;
  if (typeof v === 'string' && (COMPATIBILITY_LEVELS as readonly string[]).includes(v)) return v as CompatibilityLevel;
  throw new SkeinError(
    'INVALID_COMPATIBILITY_LEVEL',
    'Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive',
  );
}

export function parseMode(value: unknown): Mode {
  const v = typeof value === 'string' ? value.toUpperCase() : value;
  if (typeof v === 'string' && (MODES as readonly string[]).includes(v)) return v as Mode;
  throw new SkeinError('INVALID_MODE', 'Invalid mode. Valid values are READWRITE, READONLY, READONLY_OVERRIDE and IMPORT');
}

export function parseSchemaType(value: unknown): SchemaType {
  if (value === undefined || value === null || value === '') return 'AVRO';
  const v = typeof value === 'string' ? value.toUpperCase() : value;
  if (typeof v === 'string' && (SCHEMA_TYPES as readonly string[]).includes(v)) return v as SchemaType;
  throw new SkeinError('INVALID_SCHEMA', `Invalid schema type ${JSON.stringify(value)}: use AVRO, PROTOBUF or JSON`);
}

/** A version selector: a number in [1, 2^31-1], or "latest" / -1 for the newest (non-deleted) version. */
export type VersionSelector = number | 'latest';

export function parseVersion(value: string | number): VersionSelector {
  if (value === 'latest' || value === -1 || value === '-1') return 'latest';
  const n = typeof value === 'number' ? value : /^[0-9]+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(n) || n < 1 || n > MAX_VERSION) {
    throw new SkeinError(
      'INVALID_SCHEMA_VERSION',
      `The specified version '${String(value)}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string "latest"`,
    );
  }
  return n;
}

/** Subject names: any non-empty text without control characters (Confluent's rule), at most 1000 characters here. */
export function validateSubject(subject: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is refused
  if (subject.length === 0 || subject.length > 1000 || /[\u0000-\u001f]/.test(subject)) {
    throw new SkeinError(
      'INVALID_REQUEST',
      `Invalid subject ${JSON.stringify(subject.slice(0, 100))}: non-empty, at most 1000 characters, no control characters`,
    );
  }
  return subject;
}
