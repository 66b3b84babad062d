/**
 * The seven compatibility levels over any format. BACKWARD: the new schema reads data written with
 * the previous one (consumers upgrade first). FORWARD: the previous schema reads data written with
 * the new one (producers upgrade first). FULL: both. The *_TRANSITIVE levels check against every
 * live earlier version instead of the latest only (`versionsToCheck` in subject.ts picks them).
 */
import { SkeinError } from '@skein/common/errors.js';
import { avroFormat } from './avro.js';
import { jsonSchemaFormat } from './json-schema.js';
import { protobufFormat } from './protobuf.js';
import type { ParsedSchema, ResolvedReference, SchemaFormat } from './schema-format.js';
import type { CompatibilityLevel, SchemaType } from './types.js';

export const FORMATS: Record<SchemaType, SchemaFormat> = {
  AVRO: avroFormat as unknown as SchemaFormat,
  PROTOBUF: protobufFormat as unknown as SchemaFormat,
  JSON: jsonSchemaFormat as unknown as SchemaFormat,
};

export function parseSchema(schemaType: SchemaType, text: string, references: readonly ResolvedReference[]): ParsedSchema {
  if (typeof text !== 'string' || text.trim() === '') throw new SkeinError('INVALID_SCHEMA', 'Invalid schema: empty');
  return FORMATS[schemaType].parse(text, references);
}

/**
 * Why `candidate` breaks `level` against `previous` (the versions versionsToCheck chose, oldest
 * first), one message per violation with the version it breaks against; empty when it is compatible.
 */
export function compatibilityIssues(
  level: CompatibilityLevel,
  candidate: ParsedSchema,
  previous: readonly { version: number; schema: ParsedSchema }[],
): string[] {
  if (level === 'NONE') return [];
  const backward = level.startsWith('BACKWARD') || level.startsWith('FULL');
  const forward = level.startsWith('FORWARD') || level.startsWith('FULL');
  const issues: string[] = [];
  for (const { version, schema } of previous) {
    if (schema.schemaType !== candidate.schemaType) {
      issues.push(`version ${version}: incompatible schema type ${schema.schemaType} → ${candidate.schemaType}`);
      continue;
    }
    const format = FORMATS[candidate.schemaType];
    if (backward) for (const m of format.readerIssues(candidate, schema)) issues.push(`version ${version} (backward): ${m}`);
    if (forward) for (const m of format.readerIssues(schema, candidate)) issues.push(`version ${version} (forward): ${m}`);
  }
  return issues;
}
