/**
 * Checks the framing of an encoded (uncompressed) skein.broker.v1.Records payload in one pass,
 * without decoding it. Pure, no I/O. The broker runs this on every produced batch before it is
 * appended (a batch is stored as sent, so what is stored must be readable later), and it must stay
 * cheap: one walk over the varints and lengths, no allocation per record, numbers not bigints.
 *
 * The payload is protobuf:
 *
 *   Records      { repeated Record records = 1; }
 *   Record       { bytes key = 1; optional bytes value = 2; repeated RecordHeader headers = 3;
 *                  int64 timestamp_delta_ms = 4; }
 *   RecordHeader { string key = 1; bytes value = 2; }
 *
 * What is checked: every tag and varint is whole (at most 10 bytes, the last one's spare bits
 * clear), every length fits inside its enclosing message, known fields have their declared wire
 * type, unknown fields are skippable (no groups, no reserved wire types). What is measured: the
 * number of records, the first record's timestamp delta and the largest delta, so the caller can
 * compare them with the batch header's `record_count`, `first_timestamp_ms` and
 * `max_timestamp_ms`. Header keys are not checked for UTF-8 (as Kafka's broker does not).
 *
 * Optionally (a topic with `key.schema.validation` / `value.schema.validation`), the same pass
 * reads the schema registry wire header of each record's key and value — magic byte 0, then the
 * schema id as 4 bytes big-endian — into a `SchemaIdScan`: the distinct ids, and the first record
 * without a header. Nothing else of the payload is decoded; the only allocation is the id sets.
 */

/** A record batch whose bytes do not hold what its header says. `reason` as in the reason table. */
export class CorruptBatchError extends Error {
  readonly reason = 'CORRUPT_MESSAGE';
}

export interface RecordsFraming {
  /** Records present. */
  count: number;
  /** timestamp_delta_ms of the first record (0 when there is none). */
  firstDeltaMs: number;
  /** Largest timestamp_delta_ms of any record. */
  maxDeltaMs: number;
}

/** |timestamp_delta_ms| above this is refused: 2^53 ms is 285,000 years, and numbers stay exact. */
const MAX_DELTA_MS = Number.MAX_SAFE_INTEGER;

/** The first byte of every record a schema registry serializer wrote (Confluent's wire format). */
export const SCHEMA_MAGIC_BYTE = 0;
/** Magic byte and 4-byte schema id. */
export const SCHEMA_HEADER_BYTES = 5;

/**
 * What scanRecordsFraming collects for broker-side schema validation: the distinct schema ids of
 * the keys (when `key`) and values (when `value`), and the first record whose key or value does
 * not start with the header. A null key (absent or empty: proto3 cannot tell them apart) and a null
 * value (a tombstone) carry no schema and are not checked: serializers pass null through.
 */
export class SchemaIdScan {
  readonly keyIds = new Set<number>();
  readonly valueIds = new Set<number>();
  /** The first record (index in the batch) whose key or value lacks the header, and why. */
  missing: { record: number; field: 'key' | 'value'; problem: string } | undefined;
  constructor(
    readonly key: boolean,
    readonly value: boolean,
  ) {}

  /** Notes the key or value bytes [start, end) of record `record`. */
  note(field: 'key' | 'value', buf: Uint8Array, start: number, end: number, record: number): void {
    const n = end - start;
    if (n < SCHEMA_HEADER_BYTES || buf[start] !== SCHEMA_MAGIC_BYTE) {
      if (n === 0 && field === 'key') return; // no key
      this.missing ??= {
        record,
        field,
        problem:
          n === 0
            ? 'is empty'
            : buf[start] !== SCHEMA_MAGIC_BYTE
              ? `starts with byte ${buf[start]}, not the magic byte 0`
              : `is ${n} bytes, shorter than the 5-byte header`,
      };
      return;
    }
    const id = ((buf[start + 1]! << 24) | (buf[start + 2]! << 16) | (buf[start + 3]! << 8) | buf[start + 4]!) >>> 0;
    (field === 'key' ? this.keyIds : this.valueIds).add(id);
  }
}
const TWO_32 = 4294967296;

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

/**
 * A read position in the payload. One per scan; the methods are small so V8 inlines them. Errors
 * name the byte position, so an operator can find the bad byte in the batch.
 */
export class Cursor {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}

  fail(what: string, at = this.pos): never {
    throw new CorruptBatchError(`records payload: ${what} at byte ${at} of ${this.buf.length}`);
  }

  /** A varint of at most 32 significant bits (tags, lengths), as an unsigned number. */
  varint32(end: number): number {
    const buf = this.buf;
    const start = this.pos;
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 5; i++) {
      if (this.pos >= end) this.fail('truncated varint', start);
      const b = buf[this.pos++]!;
      if (i === 4 && b > 0x0f) break;
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
      scale *= 128;
    }
    // Longer encodings (sign-extended negatives) are never valid for tags and lengths.
    return this.fail('varint exceeds 32 bits where a tag or length belongs', start);
  }

  /** Skips a varint of up to 10 bytes (any int64/uint64). */
  skipVarint(end: number): void {
    const start = this.pos;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= end) this.fail('truncated varint', start);
      const b = this.buf[this.pos++]!;
      if (b < 0x80) {
        if (i === 9 && b > 1) this.fail('varint overflows 64 bits', start);
        return;
      }
    }
    this.fail('varint longer than 10 bytes', start);
  }

  /**
   * An int64 varint as an exact number; values beyond +-2^53 are refused (a timestamp delta that
   * large is not a timestamp). Two's-complement negatives take 10 bytes.
   */
  int64(end: number): number {
    const buf = this.buf;
    const start = this.pos;
    let lo = 0;
    let hi = 0;
    let i = 0;
    let b = 0x80;
    // Bytes 0-3 fill bits 0-27 of the low word, byte 4 bits 28-31 and the high word's bits 0-2,
    // bytes 5-9 the rest of the high word.
    for (; i < 10 && b >= 0x80; i++) {
      if (this.pos >= end) this.fail('truncated varint', start);
      b = buf[this.pos++]!;
      if (i < 4) lo |= (b & 0x7f) << (7 * i);
      else if (i === 4) {
        lo |= (b & 0x0f) << 28;
        hi = (b & 0x7f) >> 4;
      } else hi |= (b & 0x7f) << (7 * i - 32);
    }
    if (b >= 0x80) this.fail('varint longer than 10 bytes', start);
    if (i === 10 && b > 1) this.fail('varint overflows 64 bits', start);
    lo >>>= 0;
    let value: number;
    if (hi < 0) {
      // Negative: magnitude is the two's complement of (hi, lo).
      const nlo = ~lo >>> 0;
      const nhi = ~hi >>> 0;
      value = -(nhi * TWO_32 + nlo + 1);
    } else value = hi * TWO_32 + lo;
    if (value > MAX_DELTA_MS || value < -MAX_DELTA_MS) this.fail('timestamp_delta_ms beyond +-2^53', start);
    return value;
  }

  /** A length prefix; returns the end of the bytes it covers, which must lie within `end`. */
  length(end: number): number {
    const at = this.pos;
    const n = this.varint32(end);
    if (n > end - this.pos) this.fail(`length ${n} runs past the end of its message (${end - this.pos} bytes left)`, at);
    return this.pos + n;
  }

  /** Skips an unknown field of wire type `wire`. */
  skip(wire: number, end: number, tagAt: number): void {
    switch (wire) {
      case WIRE_VARINT:
        this.skipVarint(end);
        return;
      case WIRE_I64:
        if (end - this.pos < 8) this.fail('truncated fixed64 field', tagAt);
        this.pos += 8;
        return;
      case WIRE_LEN:
        this.pos = this.length(end);
        return;
      case WIRE_I32:
        if (end - this.pos < 4) this.fail('truncated fixed32 field', tagAt);
        this.pos += 4;
        return;
      default:
        // 3/4 are deprecated groups (never in this schema), 6/7 do not exist.
        this.fail(`wire type ${wire} not allowed`, tagAt);
    }
  }

  /** Reads a tag and checks it has a field number. */
  tag(end: number): number {
    const at = this.pos;
    const tag = this.varint32(end);
    if (tag >>> 3 === 0) this.fail('field number 0', at);
    return tag;
  }
}

function scanHeader(c: Cursor, end: number): void {
  while (c.pos < end) {
    const at = c.pos;
    const tag = c.tag(end);
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 1 || field === 2) {
      if (wire !== WIRE_LEN) c.fail(`record header field ${field} has wire type ${wire}, not 2`, at);
      c.pos = c.length(end);
    } else c.skip(wire, end, at);
  }
}

/** Scans one Record in [c.pos, end); returns its timestamp delta. */
function scanRecord(c: Cursor, end: number, ids: SchemaIdScan | undefined, index: number): number {
  let delta = 0;
  while (c.pos < end) {
    const at = c.pos;
    const tag = c.tag(end);
    const field = tag >>> 3;
    const wire = tag & 7;
    switch (field) {
      case 1:
      case 2: {
        if (wire !== WIRE_LEN) c.fail(`record field ${field} has wire type ${wire}, not 2`, at);
        const fieldEnd = c.length(end);
        if (ids && (field === 1 ? ids.key : ids.value)) ids.note(field === 1 ? 'key' : 'value', c.buf, c.pos, fieldEnd, index);
        c.pos = fieldEnd;
        break;
      }
      case 3: {
        if (wire !== WIRE_LEN) c.fail(`record field 3 has wire type ${wire}, not 2`, at);
        const headerEnd = c.length(end);
        scanHeader(c, headerEnd);
        break;
      }
      case 4:
        if (wire !== WIRE_VARINT) c.fail(`record field 4 has wire type ${wire}, not 0`, at);
        delta = c.int64(end); // the last occurrence wins, as protobuf decoders do
        break;
      default:
        c.skip(wire, end, at);
    }
  }
  return delta;
}

/**
 * Walks an encoded Records payload; throws CorruptBatchError naming the first problem found. With
 * `ids`, also collects the records' schema ids (see SchemaIdScan).
 */
export function scanRecordsFraming(payload: Uint8Array, ids?: SchemaIdScan): RecordsFraming {
  const c = new Cursor(payload);
  const end = payload.length;
  let count = 0;
  let firstDeltaMs = 0;
  let maxDeltaMs = -Infinity;
  while (c.pos < end) {
    const at = c.pos;
    const tag = c.tag(end);
    if (tag >>> 3 !== 1) {
      c.skip(tag & 7, end, at);
      continue;
    }
    if ((tag & 7) !== WIRE_LEN) c.fail(`records field 1 has wire type ${tag & 7}, not 2`, at);
    const recordEnd = c.length(end);
    const delta = scanRecord(c, recordEnd, ids, count);
    if (count === 0) firstDeltaMs = delta;
    if (delta > maxDeltaMs) maxDeltaMs = delta;
    count++;
  }
  return { count, firstDeltaMs, maxDeltaMs: count === 0 ? 0 : maxDeltaMs };
}
