import { Records } from '@skein/proto/skein/broker/v1/broker.js';
import { describe, expect, it } from 'vitest';
import { CorruptBatchError } from './record-framing.js';
import { decodeRecords, encodeRecords, type RecordBytes } from './records-codec.js';
import { seededRandom as rng } from '../seeded-random.js';

const DELTAS = [0, 1, -1, 127, 128, -128, 16_383, 16_384, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), 2 ** 35, 2 ** 53 - 1, -(2 ** 53 - 1), 1_700_000_000_000];

function randomRecords(seed: number): RecordBytes[] {
  const r = rng(seed);
  const bytes = (max: number) => Buffer.from(Array.from({ length: Math.floor(r() * max) }, () => Math.floor(r() * 256)));
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)]!;
  return Array.from({ length: 1 + Math.floor(r() * 20) }, () => ({
    key: r() < 0.3 ? undefined : bytes(r() < 0.1 ? 300 : 20),
    value: r() < 0.15 ? null : bytes(r() < 0.1 ? 20_000 : 200),
    headers:
      r() < 0.5
        ? undefined
        : Array.from({ length: Math.floor(r() * 4) }, () => ({ key: pick(['', 'a', 'trace-id', 'ünïcode ✓', 'x'.repeat(200)]), value: bytes(40) })),
    deltaMs: pick(DELTAS),
  }));
}

// The reference: the generated codec, fed the same records.
const reference = (records: RecordBytes[]) =>
  Buffer.from(
    Records.encode({
      records: records.map((x) => ({
        key: x.key ?? Buffer.alloc(0),
        value: x.value ?? undefined,
        headers: x.headers ?? [],
        timestampDeltaMs: BigInt(x.deltaMs),
      })),
    }).finish(),
  );

describe('records codec against the generated protobuf codec', () => {
  it('encodes the same bytes and decodes them back, on 2,000 random batches', () => {
    for (let seed = 1; seed <= 2000; seed++) {
      const records = randomRecords(seed);
      const mine = encodeRecords(records);
      expect(mine.equals(reference(records)), `seed ${seed}`).toBe(true);
      const back = decodeRecords(mine);
      const theirs = Records.decode(mine).records;
      expect(back.length, `seed ${seed}`).toBe(theirs.length);
      back.forEach((d, i) => {
        const t = theirs[i]!;
        expect(Buffer.from(d.key).equals(Buffer.from(t.key)), `seed ${seed} record ${i} key`).toBe(true);
        expect(d.value === null ? undefined : [...d.value], `seed ${seed} record ${i} value`).toEqual(t.value === undefined ? undefined : [...t.value]);
        expect(d.headers.map((h) => [h.key, [...h.value]])).toEqual(t.headers.map((h) => [h.key, [...h.value]]));
        expect(BigInt(d.deltaMs)).toBe(t.timestampDeltaMs);
      });
    }
  });

  it('skips unknown fields and keeps the last of a repeated singular field, as protobuf decoders do', () => {
    // Record { key=1:"a", 9 (varint)=5, key=1:"bc", 15 (fixed32), 4 (delta)=3 } and a stray Records field 2.
    const record = Buffer.from([0x0a, 0x01, 0x61, 0x48, 0x05, 0x0a, 0x02, 0x62, 0x63, 0x7d, 1, 2, 3, 4, 0x20, 0x03]);
    const payload = Buffer.concat([Buffer.from([0x12, 0x01, 0x00, 0x0a, record.length]), record]);
    const [r] = decodeRecords(payload);
    const ref = Records.decode(payload).records[0]!;
    expect(r!.key.toString()).toBe('bc');
    expect(Buffer.from(ref.key).toString()).toBe('bc');
    expect(r!.value).toBeNull();
    expect(r!.deltaMs).toBe(3);
  });

  it('refuses truncated and mistyped input with CorruptBatchError', () => {
    const good = encodeRecords([{ key: Buffer.from('k'), value: Buffer.from('value'), headers: [{ key: 'h', value: Buffer.from('v') }], deltaMs: 5 }]);
    for (let cut = 1; cut < good.length; cut++) expect(() => decodeRecords(good.subarray(0, cut)), `cut at ${cut}`).toThrow(CorruptBatchError);
    // Record field 2 (value) as a varint instead of bytes.
    expect(() => decodeRecords(Buffer.from([0x0a, 0x02, 0x10, 0x01]))).toThrow(/wire type 0, not 2/);
  });
});
