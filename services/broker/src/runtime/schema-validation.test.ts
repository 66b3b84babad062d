import { describe, expect, it } from 'vitest';
import { buildRecordBatch, encodeRecordBatch } from '@skein/common/records/record-batch.js';
import { CompressionCodec } from '@skein/proto/skein/broker/v1/broker.js';
import { ProduceAdmission } from '../log/batch-validation.js';
import { SchemaValidator, type SchemaUsageSource } from './schema-validation.js';

/** A registry serializer's bytes: magic 0, id big-endian, payload. */
const framed = (id: number, payload = 'x') =>
  Buffer.concat([Buffer.from([0, (id >>> 24) & 0xff, (id >>> 16) & 0xff, (id >>> 8) & 0xff, id & 0xff]), Buffer.from(payload)]);

function fakeRegistry(usages: Record<number, string[]>) {
  const asked: number[] = [];
  const state = { down: false };
  const source: SchemaUsageSource = {
    async subjectsOf(id) {
      asked.push(id);
      if (state.down) throw new Error('connection refused');
      return usages[id];
    },
  };
  return { source, asked, state, usages };
}

function clock() {
  const c = { now: 1_000, nowMs: () => c.now };
  return c;
}

const batch = (records: Array<{ key?: Buffer | null; value: Buffer | null }>, compression = CompressionCodec.COMPRESSION_CODEC_NONE) =>
  encodeRecordBatch(
    buildRecordBatch(
      records.map((r) => ({ ...r, timestampMs: 5 })),
      { compression },
    ),
  );

/** Runs one batch through the admission as the produce path does; resolves with the reason or 'appended'. */
async function admit(v: SchemaValidator, topic: string, bytes: Buffer, key = false, value = true): Promise<string> {
  const admission = new ProduceAdmission();
  try {
    await admission.admit({}, bytes, 1 << 20, async () => 'appended', v.forTopic(topic, key, value));
    return 'appended';
  } catch (e) {
    return `${(e as { reason: string }).reason}: ${(e as Error).message}`;
  }
}

describe('broker-side schema validation', () => {
  it('accepts ids registered under <topic>-value and refuses unknown ids, other subjects and records without the header', async () => {
    const reg = fakeRegistry({ 1: ['orders-value'], 2: ['payments-value'] });
    const v = new SchemaValidator({ source: reg.source, clock: clock() });
    expect(await admit(v, 'orders', batch([{ value: framed(1) }, { value: framed(1, 'y') }]))).toBe('appended');
    expect(await admit(v, 'orders', batch([{ value: framed(1) }, { value: framed(2) }]))).toMatch(
      /^SCHEMA_VALIDATION_FAILED: value schema id 2 is not registered under subject orders-value \(only under payments-value\)/,
    );
    expect(await admit(v, 'orders', batch([{ value: framed(7) }]))).toMatch(/^SCHEMA_VALIDATION_FAILED: value schema id 7 is unknown to the schema registry/);
    expect(await admit(v, 'orders', batch([{ value: framed(1) }, { value: Buffer.from('{"plain":"json"}') }]))).toMatch(
      /^SCHEMA_VALIDATION_FAILED: record 1 of the batch: its value starts with byte 123, not the magic byte 0/,
    );
    expect(await admit(v, 'orders', batch([{ value: Buffer.from([0, 0, 1]) }]))).toMatch(/its value is 3 bytes, shorter than the 5-byte header/);
    expect(await admit(v, 'orders', batch([{ value: Buffer.alloc(0) }]))).toMatch(/its value is empty/);
    // A tombstone carries no schema; ids are asked once each (the second batch with id 1 came from the cache).
    expect(await admit(v, 'orders', batch([{ key: Buffer.from('k'), value: null }]))).toBe('appended');
    expect(reg.asked.sort()).toEqual([1, 2, 7]);
  });

  it('checks keys against <topic>-key only when key validation is on; a null key passes', async () => {
    const reg = fakeRegistry({ 1: ['orders-value'], 3: ['orders-key'] });
    const v = new SchemaValidator({ source: reg.source, clock: clock() });
    expect(await admit(v, 'orders', batch([{ key: Buffer.from('plain'), value: framed(1) }]))).toBe('appended');
    expect(await admit(v, 'orders', batch([{ key: Buffer.from('plain'), value: Buffer.from('plain') }]), true, false)).toMatch(
      /record 0 of the batch: its key starts with byte 112/,
    );
    expect(
      await admit(
        v,
        'orders',
        batch([
          { key: framed(3), value: Buffer.from('plain') },
          { key: null, value: Buffer.from('p') },
        ]),
        true,
        false,
      ),
    ).toBe('appended');
    expect(await admit(v, 'orders', batch([{ key: framed(1), value: framed(1) }]), true, true)).toMatch(
      /key schema id 1 is not registered under subject orders-key/,
    );
  });

  it('checks compressed batches after decompressing them', async () => {
    const reg = fakeRegistry({ 1: ['t-value'] });
    const v = new SchemaValidator({ source: reg.source, clock: clock() });
    const many = Array.from({ length: 50 }, () => ({ value: framed(1, 'same payload '.repeat(20)) }));
    expect(await admit(v, 't', batch(many, CompressionCodec.COMPRESSION_CODEC_GZIP))).toBe('appended');
    expect(await admit(v, 't', batch([...many, { value: framed(9) }], CompressionCodec.COMPRESSION_CODEC_GZIP))).toMatch(/value schema id 9 is unknown/);
  });

  it('decides synchronously from the cache; re-asks after the positive TTL and, briefly, after a refusal', async () => {
    const reg = fakeRegistry({ 1: ['t-value'] });
    const c = clock();
    const v = new SchemaValidator({ source: reg.source, clock: c, positiveTtlMs: 60_000, negativeTtlMs: 1_000 });
    expect(await admit(v, 't', batch([{ value: framed(1) }]))).toBe('appended');
    // Cached: the check has nothing to wait for.
    const admission = new ProduceAdmission();
    let appended = false;
    void admission.admit({}, batch([{ value: framed(1) }]), 1 << 20, async () => (appended = true), v.forTopic('t', false, true));
    expect(appended).toBe(true);
    // Unknown id 5, then registered: refused from the cache until the negative TTL passes.
    expect(await admit(v, 't', batch([{ value: framed(5) }]))).toMatch(/unknown/);
    reg.usages[5] = ['t-value'];
    expect(await admit(v, 't', batch([{ value: framed(5) }]))).toMatch(/unknown/);
    c.now += 1_000;
    expect(await admit(v, 't', batch([{ value: framed(5) }]))).toBe('appended');
    // Deleted from the subject: still accepted until the positive TTL passes, then refused.
    reg.usages[1] = [];
    expect(await admit(v, 't', batch([{ value: framed(1) }]))).toBe('appended');
    c.now += 60_000;
    expect(await admit(v, 't', batch([{ value: framed(1) }]))).toMatch(/value schema id 1 is not registered under subject t-value; topic t has/);
    expect(reg.asked).toEqual([1, 5, 5, 1]);
  });

  it('fails closed: an id it cannot look up is refused with retriable UNAVAILABLE; cached ids still decide', async () => {
    const reg = fakeRegistry({ 1: ['t-value'], 2: ['t-value'] });
    const v = new SchemaValidator({ source: reg.source, clock: clock() });
    expect(await admit(v, 't', batch([{ value: framed(1) }]))).toBe('appended');
    reg.state.down = true;
    expect(await admit(v, 't', batch([{ value: framed(1) }, { value: framed(2) }]))).toMatch(
      /^UNAVAILABLE: cannot validate schema id 2: the schema registry is unreachable \(connection refused\)/,
    );
    expect(await admit(v, 't', batch([{ value: framed(1) }]))).toBe('appended');
    reg.state.down = false;
    expect(await admit(v, 't', batch([{ value: framed(2) }]))).toBe('appended');
  });

  it('shares one lookup between batches waiting for the same id', async () => {
    const reg = fakeRegistry({ 1: ['t-value'] });
    const v = new SchemaValidator({ source: reg.source, clock: clock() });
    const results = await Promise.all(Array.from({ length: 5 }, () => admit(v, 't', batch([{ value: framed(1) }]))));
    expect(results).toEqual(Array(5).fill('appended'));
    expect(reg.asked).toEqual([1]);
  });
});
