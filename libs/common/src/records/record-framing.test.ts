import { describe, expect, it } from 'vitest';
import { Records } from '@skein/proto/skein/broker/v1/broker.js';
import { CorruptBatchError, scanRecordsFraming } from './record-framing.js';
import { seededRandom as rng } from '../seeded-random.js';

function payload(deltas: bigint[], extra: Partial<{ key: Uint8Array; value: Uint8Array; headers: Array<{ key: string; value: Uint8Array }> }> = {}): Uint8Array {
  return Records.encode({
    records: deltas.map((d) => ({ key: extra.key ?? Buffer.from('k'), value: extra.value ?? Buffer.from('v'), headers: extra.headers ?? [], timestampDeltaMs: d })),
  }).finish();
}


const corrupt = (bytes: Uint8Array) => {
  try {
    scanRecordsFraming(bytes);
  } catch (e) {
    expect(e).toBeInstanceOf(CorruptBatchError);
    return (e as Error).message;
  }
  throw new Error('expected CorruptBatchError');
};

describe('record framing scan', () => {
  it('counts records and reads first and largest timestamp deltas, headers and nulls included', () => {
    const bytes = Records.encode({
      records: [
        { key: Buffer.from('a'), value: undefined, headers: [{ key: 'h', value: Buffer.from([1]) }], timestampDeltaMs: 0n },
        { key: Buffer.alloc(0), value: Buffer.alloc(0), headers: [], timestampDeltaMs: 17n },
        { key: Buffer.from('c'), value: Buffer.alloc(300, 1), headers: [], timestampDeltaMs: -4n },
      ],
    }).finish();
    expect(scanRecordsFraming(bytes)).toEqual({ count: 3, firstDeltaMs: 0, maxDeltaMs: 17 });
    expect(scanRecordsFraming(new Uint8Array(0))).toEqual({ count: 0, firstDeltaMs: 0, maxDeltaMs: 0 });
  });

  it('decodes int64 deltas exactly like the protobuf decoder, negatives and 2^53 edges included (seeded)', () => {
    const next = rng(12);
    const edges = [0n, 1n, -1n, 127n, 128n, -128n, 2n ** 31n, -(2n ** 31n), 2n ** 32n, 2n ** 53n - 1n, -(2n ** 53n - 1n)];
    for (let i = 0; i < 2000; i++) {
      const d = i < edges.length ? edges[i]! : BigInt(Math.floor((next() - 0.5) * 2 ** (1 + Math.floor(next() * 53))));
      const got = scanRecordsFraming(payload([0n, d]));
      expect(BigInt(got.maxDeltaMs), `delta ${d}`).toBe(d > 0n ? d : 0n);
      expect(BigInt(scanRecordsFraming(payload([d])).firstDeltaMs), `delta ${d}`).toBe(d);
    }
    expect(corrupt(payload([2n ** 53n]))).toMatch(/beyond \+-2\^53/);
    expect(corrupt(payload([-(2n ** 62n)]))).toMatch(/beyond \+-2\^53/);
  });

  it('accepts unknown fields of every skippable wire type, as protobuf does', () => {
    const good = payload([0n]);
    // Record field 9 varint, field 10 fixed64, field 11 fixed32, field 12 bytes; top-level field 5 bytes.
    const record = Buffer.concat([Buffer.from(good.subarray(2)), Buffer.from([0x48, 0x96, 0x01, 0x51, 1, 2, 3, 4, 5, 6, 7, 8, 0x5d, 1, 2, 3, 4, 0x62, 0x01, 0xff])]);
    const bytes = Buffer.concat([Buffer.from([0x0a, record.length]), record, Buffer.from([0x2a, 0x02, 0x00, 0x00])]);
    expect(Records.decode(bytes).records).toHaveLength(1);
    expect(scanRecordsFraming(bytes).count).toBe(1);
  });

  it('names truncated varints, lengths past the end, wrong wire types, groups and overlong varints', () => {
    expect(corrupt(Buffer.from([0x0a]))).toMatch(/truncated varint at byte 1/);
    expect(corrupt(Buffer.from([0x0a, 0x80]))).toMatch(/truncated varint/);
    expect(corrupt(Buffer.from([0x0a, 0x05, 0x0a, 0x01]))).toMatch(/length 5 runs past the end/);
    // A record whose key claims more bytes than the record holds.
    expect(corrupt(Buffer.from([0x0a, 0x03, 0x0a, 0x09, 0x41]))).toMatch(/length 9 runs past the end of its message \(1 bytes left\)/);
    // timestamp_delta_ms cut inside its varint.
    expect(corrupt(Buffer.from([0x0a, 0x02, 0x20, 0x80]))).toMatch(/truncated varint/);
    expect(corrupt(Buffer.from([0x0a, 0x02, 0x08, 0x01]))).toMatch(/record field 1 has wire type 0/);
    expect(corrupt(Buffer.from([0x0a, 0x02, 0x22, 0x00]))).toMatch(/record field 4 has wire type 2/);
    expect(corrupt(Buffer.from([0x08, 0x01]))).toMatch(/records field 1 has wire type 0/);
    expect(corrupt(Buffer.from([0x13, 0x0c]))).toMatch(/wire type 3 not allowed/);
    expect(corrupt(Buffer.from([0x17]))).toMatch(/wire type 7 not allowed/);
    expect(corrupt(Buffer.from([0x02, 0x00]))).toMatch(/field number 0/);
    expect(corrupt(Buffer.from([0x0a, 0x0b, 0x20, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]))).toMatch(/overflows 64 bits/);
    expect(corrupt(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x7f]))).toMatch(/exceeds 32 bits/);
    // A header whose value length runs out of the header.
    expect(corrupt(Buffer.from([0x0a, 0x04, 0x1a, 0x02, 0x12, 0x05]))).toMatch(/length 5 runs past/);
  });

  it('never throws anything but CorruptBatchError on mangled payloads, and agrees with the decoder when it accepts (seeded)', () => {
    const next = rng(7);
    const base = payload([0n, 3n, 1n, 9n], { headers: [{ key: 'hk', value: Buffer.from('hv') }] });
    for (let i = 0; i < 3000; i++) {
      const bytes = Buffer.from(base);
      const edits = 1 + Math.floor(next() * 3);
      for (let e = 0; e < edits; e++) bytes[Math.floor(next() * bytes.length)] = Math.floor(next() * 256);
      const cut = next() < 0.3 ? bytes.subarray(0, Math.floor(next() * bytes.length)) : bytes;
      let scanned: ReturnType<typeof scanRecordsFraming> | undefined;
      try {
        scanned = scanRecordsFraming(cut);
      } catch (e) {
        expect(e, `case ${i}`).toBeInstanceOf(CorruptBatchError);
        continue;
      }
      // Whatever the scan accepts, the real decoder reads as the same number of records.
      expect(Records.decode(cut).records.length, `case ${i}`).toBe(scanned.count);
    }
  });
});
