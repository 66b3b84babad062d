/**
 * What the registry needs from a schema format (Avro, Protobuf, JSON Schema): parse a schema's text
 * with its references resolved, give its canonical text (what lookups compare and the dedupe key
 * hashes), and say whether a reader schema can read data written with a writer schema. Parsing is
 * done by well-kept libraries (avsc, protobufjs, ajv); the compatibility rules are Avro's schema
 * resolution and Confluent's Protobuf and JSON Schema rules.
 */
import type { SchemaRecord, SchemaReference, SchemaType } from './types.js';

/** A reference with the schema it names, itself resolved (references nest: A imports B imports C). */
export interface ResolvedReference extends SchemaReference {
  record: SchemaRecord;
  resolved: ResolvedReference[];
}

export interface ParsedSchema {
  readonly schemaType: SchemaType;
  /** The text stored and returned; equal texts (with equal references) are the same schema. */
  readonly canonical: string;
  readonly references: readonly SchemaReference[];
}

export interface SchemaFormat<P extends ParsedSchema = ParsedSchema> {
  readonly schemaType: SchemaType;
  /** Throws SkeinError INVALID_SCHEMA saying why. */
  parse(text: string, references: readonly ResolvedReference[]): P;
  /**
   * Why `reader` cannot read data written with `writer`, one message per violation; empty when it
   * can. BACKWARD asks this with reader = new schema, FORWARD with reader = old schema.
   */
  readerIssues(reader: P, writer: P): string[];
}
