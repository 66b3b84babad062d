import { describe, expect, it } from 'vitest';
import { buildRecordBatch } from '@skein/common/records/record-batch.js';
import { CompressionCodec } from '@skein/proto/skein/broker/v1/broker.js';
import { decodeFetchedBatches } from './fetched-batches.js';

const where = { topic: 't', partition: 0, fetchOffset: 0n };
const good = (base: bigint, n: number) => ({ baseOffset: base, batch: buildRecordBatch(Array.from({ length: n }, (_, i) => ({ value: `v${Number(base) + i}`, timestampMs: 1 }))) });

describe('decodeFetchedBatches', () => {
  it('returns the records before a batch with a bad CRC, and the error naming it', () => {
    const bad = good(2n, 2);
    bad.batch.crc32c ^= 1;
    const { records, error } = decodeFetchedBatches(where, [good(0n, 2), bad, good(4n, 1)]);
    expect(records.map((r) => r.value!.toString())).toEqual(['v0', 'v1']);
    expect(error).toMatchObject({ reason: 'CORRUPT_MESSAGE', metadata: { baseOffset: '2' } });
    expect(error!.message).toContain('CRC');
  });

  it('reports a batch whose record count lies (its CRC is fine) as corrupt, with nothing before it', () => {
    const lying = good(0n, 2);
    lying.batch.recordCount = 1000;
    const { records, error } = decodeFetchedBatches(where, [lying]);
    expect(records).toEqual([]);
    expect(error).toMatchObject({ reason: 'CORRUPT_MESSAGE' });
    expect(error!.message).toContain('1000');
  });

  it('reports garbage behind a valid CRC (undecodable compressed payload) as corrupt', () => {
    const b = buildRecordBatch([{ value: 'x', timestampMs: 1 }], { compression: CompressionCodec.COMPRESSION_CODEC_NONE });
    const garbage = { ...b, compression: CompressionCodec.COMPRESSION_CODEC_GZIP };
    expect(decodeFetchedBatches(where, [{ baseOffset: 0n, batch: garbage }]).error).toMatchObject({ reason: 'CORRUPT_MESSAGE' });
  });

  it('bounds decompression: one batch over the budget is MESSAGE_TOO_LARGE, never decompressed whole', () => {
    const bomb = { baseOffset: 0n, batch: buildRecordBatch([{ value: Buffer.alloc(32 << 20), timestampMs: 1 }], { compression: CompressionCodec.COMPRESSION_CODEC_GZIP }) };
    expect(bomb.batch.records.length).toBeLessThan(1 << 20);
    const { records, error } = decodeFetchedBatches(where, [bomb], 4 << 20);
    expect(records).toEqual([]);
    expect(error).toMatchObject({ reason: 'MESSAGE_TOO_LARGE' });
  });

  it('stops before a batch that fits a whole budget but not what is left of it, without an error', () => {
    const mk = (base: bigint) => ({ baseOffset: base, batch: buildRecordBatch([{ value: Buffer.alloc(3 << 20), timestampMs: 1 }], { compression: CompressionCodec.COMPRESSION_CODEC_GZIP }) });
    const { records, error } = decodeFetchedBatches(where, [mk(0n), mk(1n)], 4 << 20);
    expect(records.map((r) => r.offset)).toEqual([0n]);
    expect(error).toBeUndefined();
  });

  it('drops records before the fetch offset (a batch may start before it)', () => {
    const { records } = decodeFetchedBatches({ ...where, fetchOffset: 3n }, [good(2n, 3)]);
    expect(records.map((r) => r.offset)).toEqual([3n, 4n]);
  });
});
