/**
 * Confluent's wire format for schema-registry-encoded records, byte for byte, so records interoperate
 * with Confluent's serializers in every language:
 *
 *   byte 0       magic byte 0
 *   bytes 1..4   the schema's global id, int32 big-endian
 *   (Protobuf)   the message indexes: which message of the .proto file the payload is, as a path of
 *                positions (top-level message, then nested); written as a zigzag varint count
 *                followed by zigzag varint indexes, except [0] (the first message, by far the most
 *                common), written as the single byte 0. This is Java's encoding (Kafka's ByteUtils
 *                varints are zigzag); Confluent's Python client before 1.8 wrote unsigned varints,
 *                which differ for every index but 0: `indexEncoding: 'unsigned'` reads and writes those.
 *   then         the payload: Avro binary, Protobuf binary, or JSON text.
 */

export const MAGIC_BYTE = 0;

export type IndexEncoding = 'zigzag' | 'unsigned';

export class WireFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WireFormatError';
  }
}

/** The 5-byte header: magic byte and schema id. */
export function encodeHeader(schemaId: number): Buffer {
  if (!Number.isInteger(schemaId) || schemaId < 0 || schemaId > 0x7fffffff) throw new WireFormatError(`schema id ${schemaId} is not an int32 >= 0`);
  const b = Buffer.alloc(5);
  b[0] = MAGIC_BYTE;
  b.writeInt32BE(schemaId, 1);
  return b;
}

/** Splits a framed record into its schema id and what follows the header. */
export function decodeHeader(bytes: Uint8Array): { schemaId: number; rest: Buffer } {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < 5) throw new WireFormatError(`${b.length} bytes is too short for a schema registry record (magic byte and 4-byte schema id)`);
  if (b[0] !== MAGIC_BYTE) throw new WireFormatError(`unknown magic byte ${b[0]}: not produced by a schema registry serializer`);
  return { schemaId: b.readInt32BE(1), rest: b.subarray(5) };
}

function writeVarint(out: number[], value: number, encoding: IndexEncoding): void {
  if (!Number.isInteger(value) || value < 0 || value > 0x3fffffff) throw new WireFormatError(`message index ${value} out of range`);
  let v = encoding === 'zigzag' ? value * 2 : value; // zigzag of a non-negative n is 2n
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
}

function readVarint(b: Buffer, pos: { at: number }, encoding: IndexEncoding): number {
  let result = 0;
  for (let shift = 0; shift < 35; shift += 7) {
    if (pos.at >= b.length) throw new WireFormatError('truncated message indexes');
    const byte = b[pos.at++]!;
    result += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) {
      if (encoding === 'unsigned') return result;
      // zigzag: (n >>> 1) ^ -(n & 1)
      return result % 2 === 0 ? result / 2 : -(result + 1) / 2;
    }
  }
  throw new WireFormatError('a message index varint is longer than 5 bytes');
}

export function encodeMessageIndexes(indexes: readonly number[], encoding: IndexEncoding = 'zigzag'): Buffer {
  if (indexes.length === 0) throw new WireFormatError('message indexes cannot be empty');
  if (indexes.length === 1 && indexes[0] === 0) return Buffer.from([0]);
  const out: number[] = [];
  writeVarint(out, indexes.length, encoding);
  for (const i of indexes) writeVarint(out, i, encoding);
  return Buffer.from(out);
}

export function decodeMessageIndexes(bytes: Buffer, encoding: IndexEncoding = 'zigzag'): { indexes: number[]; rest: Buffer } {
  const pos = { at: 0 };
  const count = readVarint(bytes, pos, encoding);
  if (count === 0) return { indexes: [0], rest: bytes.subarray(pos.at) };
  if (count < 0 || count > 100) throw new WireFormatError(`implausible message index count ${count}`);
  const indexes: number[] = [];
  for (let i = 0; i < count; i++) {
    const idx = readVarint(bytes, pos, encoding);
    if (idx < 0) throw new WireFormatError(`negative message index ${idx}`);
    indexes.push(idx);
  }
  return { indexes, rest: bytes.subarray(pos.at) };
}
