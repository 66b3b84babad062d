/**
 * Hand-written codec for the skein.broker.v1.Records payload (the records inside a batch), for the
 * client's hot paths. The generated codec builds an intermediate object per record and a bigint
 * per timestamp, grows its output by doubling (copying and zero-filling as it goes) and then
 * copies it out again; through `skein perf` the client spent more CPU per byte than the broker
 * (bench/PROFILE.md §8). This one sizes the payload first and writes it into one allocation, and
 * decodes straight into the records an application sees. It produces the same bytes as the
 * generated encoder and reads anything the generated decoder reads (records-codec.test.ts checks
 * both against it on random records); the framing rules are those of record-framing.ts.
 */
import { Cursor } from './record-framing.js';

/** What encodeRecords needs of a record: bytes already, so nothing is converted twice. */
export interface RecordBytes {
  key: Buffer | undefined;
  value: Buffer | null;
  headers: ReadonlyArray<{ key: string; value: Buffer }> | undefined;
  /** Timestamp minus the batch's first timestamp, in ms (an integer within ±2^53). */
  deltaMs: number;
}

/** A decoded record, before offsets and timestamps are made absolute. */
export interface DecodedRecord {
  key: Buffer;
  value: Buffer | null;
  headers: Array<{ key: string; value: Buffer }>;
  deltaMs: number;
}

const TWO_64 = 1n << 64n;

function varintSize(n: number): number {
  if (n < 0x80) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x200000) return 3;
  if (n < 0x10000000) return 4;
  let size = 5;
  for (let v = Math.floor(n / 0x800000000); v > 0; v = Math.floor(v / 128)) size++;
  return size;
}

/** An int64 varint's size; negatives take ten bytes (two's complement), as protobuf writes them. */
function int64Size(n: number): number {
  return n < 0 ? 10 : varintSize(n);
}

function putVarint(buf: Buffer, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  return pos;
}

function putInt64(buf: Buffer, pos: number, n: number): number {
  if (n >= 0) return putVarint(buf, pos, n);
  let v = TWO_64 + BigInt(n);
  for (let i = 0; i < 9; i++) {
    buf[pos++] = Number(v & 0x7fn) | 0x80;
    v >>= 7n;
  }
  buf[pos++] = Number(v);
  return pos;
}

function headerSize(keyBytes: number, valueBytes: number): number {
  return (keyBytes > 0 ? 1 + varintSize(keyBytes) + keyBytes : 0) + (valueBytes > 0 ? 1 + varintSize(valueBytes) + valueBytes : 0);
}

/** Encodes records as a Records message, byte for byte what the generated encoder writes. */
export function encodeRecords(records: readonly RecordBytes[]): Buffer {
  const sizes = new Array<number>(records.length);
  let total = 0;
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    const keyLen = r.key?.length ?? 0;
    let size = keyLen > 0 ? 1 + varintSize(keyLen) + keyLen : 0;
    if (r.value !== null) size += 1 + varintSize(r.value.length) + r.value.length;
    if (r.headers) {
      for (const h of r.headers) {
        const hs = headerSize(Buffer.byteLength(h.key, 'utf8'), h.value.length);
        size += 1 + varintSize(hs) + hs;
      }
    }
    if (r.deltaMs !== 0) size += 1 + int64Size(r.deltaMs);
    sizes[i] = size;
    total += 1 + varintSize(size) + size;
  }
  const buf = Buffer.allocUnsafe(total);
  let pos = 0;
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    buf[pos++] = 0x0a; // Records.records, field 1, length-delimited
    pos = putVarint(buf, pos, sizes[i]!);
    if (r.key && r.key.length > 0) {
      buf[pos++] = 0x0a; // Record.key
      pos = putVarint(buf, pos, r.key.length);
      pos += r.key.copy(buf, pos);
    }
    if (r.value !== null) {
      buf[pos++] = 0x12; // Record.value (optional: present even when empty)
      pos = putVarint(buf, pos, r.value.length);
      pos += r.value.copy(buf, pos);
    }
    if (r.headers) {
      for (const h of r.headers) {
        const keyBytes = Buffer.byteLength(h.key, 'utf8');
        buf[pos++] = 0x1a; // Record.headers
        pos = putVarint(buf, pos, headerSize(keyBytes, h.value.length));
        if (keyBytes > 0) {
          buf[pos++] = 0x0a;
          pos = putVarint(buf, pos, keyBytes);
          pos += buf.write(h.key, pos, 'utf8');
        }
        if (h.value.length > 0) {
          buf[pos++] = 0x12;
          pos = putVarint(buf, pos, h.value.length);
          pos += h.value.copy(buf, pos);
        }
      }
    }
    if (r.deltaMs !== 0) {
      buf[pos++] = 0x20; // Record.timestamp_delta_ms, varint
      pos = putInt64(buf, pos, r.deltaMs);
    }
  }
  if (pos !== total) throw new Error(`records codec: wrote ${pos} bytes of ${total}`);
  return buf;
}

const EMPTY: Buffer = Buffer.alloc(0);

/**
 * Decodes a Records payload; keys, values and header values are views into `payload` (no copy).
 * Malformed input throws CorruptBatchError, as record-framing.ts would; unknown fields are skipped
 * and a repeated singular field keeps its last value, as protobuf decoders do.
 */
export function decodeRecords(payload: Buffer): DecodedRecord[] {
  const out: DecodedRecord[] = [];
  const c = new Cursor(payload);
  const end = payload.length;
  while (c.pos < end) {
    const at = c.pos;
    const tag = c.tag(end);
    if (tag >>> 3 !== 1) {
      c.skip(tag & 7, end, at);
      continue;
    }
    if ((tag & 7) !== 2) c.fail(`records field 1 has wire type ${tag & 7}, not 2`, at);
    const recordEnd = c.length(end);
    const r: DecodedRecord = { key: EMPTY, value: null, headers: [], deltaMs: 0 };
    while (c.pos < recordEnd) {
      const fieldAt = c.pos;
      const t = c.tag(recordEnd);
      const field = t >>> 3;
      const wire = t & 7;
      if (field === 1 || field === 2) {
        if (wire !== 2) c.fail(`record field ${field} has wire type ${wire}, not 2`, fieldAt);
        const fieldEnd = c.length(recordEnd);
        const bytes = payload.subarray(c.pos, fieldEnd);
        if (field === 1) r.key = bytes;
        else r.value = bytes;
        c.pos = fieldEnd;
      } else if (field === 3) {
        if (wire !== 2) c.fail(`record field 3 has wire type ${wire}, not 2`, fieldAt);
        const headerEnd = c.length(recordEnd);
        let key = '';
        let value: Buffer = EMPTY;
        while (c.pos < headerEnd) {
          const hAt = c.pos;
          const ht = c.tag(headerEnd);
          const hf = ht >>> 3;
          if (hf === 1 || hf === 2) {
            if ((ht & 7) !== 2) c.fail(`record header field ${hf} has wire type ${ht & 7}, not 2`, hAt);
            const e = c.length(headerEnd);
            if (hf === 1) key = payload.toString('utf8', c.pos, e);
            else value = payload.subarray(c.pos, e);
            c.pos = e;
          } else c.skip(ht & 7, headerEnd, hAt);
        }
        r.headers.push({ key, value });
      } else if (field === 4) {
        if (wire !== 0) c.fail(`record field 4 has wire type ${wire}, not 0`, fieldAt);
        r.deltaMs = c.int64(recordEnd);
      } else c.skip(wire, recordEnd, fieldAt);
    }
    out.push(r);
  }
  return out;
}
