import * as zlib from 'node:zlib';
import { crc32c } from '@node-rs/crc32';
import { describe, expect, it } from 'vitest';
import { CompressionCodec, type RecordBatch, Records } from '@skein/proto/skein/broker/v1/broker.js';
import { compress, isCodecSupported } from '@skein/common/records/compression.js';
import { buildRecordBatch, encodeRecordBatch } from '@skein/common/records/record-batch.js';
import { maxDecompressedBytes, ProduceAdmission, validateBatch, validateRecords } from './batch-validation.js';

const MAX = 1 << 20;
const codecs = [
  CompressionCodec.COMPRESSION_CODEC_NONE,
  CompressionCodec.COMPRESSION_CODEC_GZIP,
  CompressionCodec.COMPRESSION_CODEC_LZ4,
  CompressionCodec.COMPRESSION_CODEC_ZSTD,
].filter(isCodecSupported);
const compressed = codecs.filter((c) => c !== CompressionCodec.COMPRESSION_CODEC_NONE);

/** A batch around `payload` (already compressed as `codec`) with a correct CRC, so only the records can be wrong. */
function withPayload(header: Partial<RecordBatch>, payload: Uint8Array): Buffer {
  const p = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  return encodeRecordBatch({
    formatVersion: 1,
    compression: CompressionCodec.COMPRESSION_CODEC_NONE,
    recordCount: 1,
    producerId: -1n,
    producerEpoch: -1,
    baseSequence: -1,
    firstTimestampMs: 1000n,
    maxTimestampMs: 1000n,
    ...header,
    crc32c: crc32c(p) >>> 0,
    records: p,
  });
}

function records(deltas: number[]): Uint8Array {
  return Records.encode({ records: deltas.map((d, i) => ({ key: Buffer.from(`k${i}`), value: Buffer.from(`v${i}`), headers: [], timestampDeltaMs: BigInt(d) })) }).finish();
}

/** Runs validateRecords to completion; resolves to the LogError (reason + message) or undefined. */
async function outcome(bytes: Buffer, max = MAX): Promise<{ reason: string; message: string } | undefined> {
  try {
    await validateRecords(bytes, max);
    return undefined;
  } catch (e) {
    return { reason: (e as { reason: string }).reason, message: (e as Error).message };
  }
}

describe('validateRecords', () => {
  for (const codec of codecs) {
    it(`passes good batches with codec ${CompressionCodec[codec]}, out-of-order timestamps, headers and tombstones included`, async () => {
      const batch = encodeRecordBatch(
        buildRecordBatch(
          [
            { key: 'a', value: 'x'.repeat(2000), headers: [{ key: 'h', value: Buffer.from([1, 2]) }], timestampMs: 5000 },
            { key: 'b', value: null, timestampMs: 4990 },
            { key: null, value: '', timestampMs: 5007 },
          ],
          { compression: codec },
        ),
      );
      const result = validateRecords(batch, MAX);
      // Uncompressed batches are checked synchronously; compressed ones off the event loop.
      if (codec === CompressionCodec.COMPRESSION_CODEC_NONE) expect(result).toBeUndefined();
      else expect(result).toBeInstanceOf(Promise);
      await expect(outcome(batch)).resolves.toBeUndefined();
    });

    it(`refuses a ${CompressionCodec[codec]} batch whose record_count claims more records than it holds`, async () => {
      const bytes = withPayload({ compression: codec, recordCount: 1_000_000, maxTimestampMs: 1002n }, compress(codec, records([0, 1, 2])));
      // The header alone looks fine: this is what used to be appended (burning a million offsets).
      expect(validateBatch(bytes, MAX, isCodecSupported).recordCount).toBe(1_000_000);
      expect(await outcome(bytes)).toEqual({ reason: 'CORRUPT_MESSAGE', message: 'record batch says record_count 1000000 but holds 3 records' });
      expect(await outcome(withPayload({ compression: codec, recordCount: 2, maxTimestampMs: 1002n }, compress(codec, records([0, 1, 2]))))).toMatchObject({ message: expect.stringContaining('holds 3 records') });
    });

    it(`refuses a ${CompressionCodec[codec]} batch whose max_timestamp_ms lies, or whose first record is not at first_timestamp_ms`, async () => {
      const payload = compress(codec, records([0, 40, 7]));
      expect(await outcome(withPayload({ compression: codec, recordCount: 3, maxTimestampMs: 1040n }, payload))).toBeUndefined();
      expect(await outcome(withPayload({ compression: codec, recordCount: 3, maxTimestampMs: 9_999_999_999n }, payload))).toEqual({
        reason: 'CORRUPT_MESSAGE',
        message: "record batch says max_timestamp_ms 9999999999 but its records' largest timestamp is 1040",
      });
      expect(await outcome(withPayload({ compression: codec, recordCount: 3, maxTimestampMs: 1007n }, payload))).toMatchObject({ reason: 'CORRUPT_MESSAGE' });
      expect(await outcome(withPayload({ compression: codec, recordCount: 2, maxTimestampMs: 1005n }, compress(codec, records([3, 5]))))).toMatchObject({
        reason: 'CORRUPT_MESSAGE',
        message: expect.stringContaining('first record has timestamp_delta_ms 3'),
      });
    });

    it(`refuses a ${CompressionCodec[codec]} batch with a truncated varint or a length past the end, naming it`, async () => {
      const good = Buffer.from(records([0, 1]));
      const cut = good.subarray(0, good.length - 1); // the last record's timestamp varint is cut
      expect(await outcome(withPayload({ compression: codec, recordCount: 2, maxTimestampMs: 1001n }, compress(codec, cut)))).toMatchObject({
        reason: 'CORRUPT_MESSAGE',
        message: expect.stringMatching(/malformed record batch: records payload: (truncated varint|length \d+ runs past the end)/),
      });
      const long = Buffer.from(good);
      long[1] = 0x7f; // the first record claims 127 bytes
      expect(await outcome(withPayload({ compression: codec, recordCount: 2, maxTimestampMs: 1001n }, compress(codec, long)))).toMatchObject({
        reason: 'CORRUPT_MESSAGE',
        message: expect.stringContaining('length 127 runs past the end of its message'),
      });
    });
  }

  for (const codec of compressed) {
    it(`refuses a garbage ${CompressionCodec[codec]} payload (with a correct CRC) as CORRUPT_MESSAGE`, async () => {
      const garbage = Buffer.from('this is not compressed at all, whatever the header says');
      expect(await outcome(withPayload({ compression: codec }, garbage))).toMatchObject({
        reason: 'CORRUPT_MESSAGE',
        message: expect.stringContaining(`does not decompress as ${CompressionCodec[codec]}`),
      });
      // A valid stream of the codec that holds garbage records.
      expect(await outcome(withPayload({ compression: codec }, compress(codec, Buffer.from([0x0a, 0x40, 0x01]))))).toMatchObject({ reason: 'CORRUPT_MESSAGE' });
    });

    it(`refuses a ${CompressionCodec[codec]} batch that decompresses past ${maxDecompressedBytes(8192)} bytes (16 x max.message.bytes) as MESSAGE_TOO_LARGE`, async () => {
      const bomb = compress(codec, Buffer.alloc(1 << 20));
      expect(bomb.length).toBeLessThan(8192);
      expect(await outcome(withPayload({ compression: codec }, bomb), 8192)).toMatchObject({ reason: 'MESSAGE_TOO_LARGE', message: expect.stringContaining('more than 131072 bytes') });
    });
  }

  it('still refuses what the header check refuses (CRC, count, codec)', async () => {
    const good = buildRecordBatch([{ key: 'k', value: 'v', timestampMs: 1 }]);
    const bad = Buffer.from(encodeRecordBatch(good));
    bad[bad.length - 1] ^= 0x01;
    expect(await outcome(bad)).toMatchObject({ reason: 'CORRUPT_MESSAGE', message: expect.stringContaining('crc32c mismatch') });
    expect(await outcome(encodeRecordBatch({ ...good, recordCount: 0 }))).toMatchObject({ reason: 'INVALID_RECORD' });
    expect(await outcome(encodeRecordBatch({ ...good, compression: 99 as CompressionCodec }))).toMatchObject({ reason: 'UNSUPPORTED_COMPRESSION_TYPE' });
  });

  it("the append's own header check reuses what validateRecords established for the same buffer, limits still applied", async () => {
    const bytes = encodeRecordBatch(buildRecordBatch([{ key: 'k', value: 'v', timestampMs: 7 }], { producerId: 5n, producerEpoch: 0, baseSequence: 3 }));
    const fresh = validateBatch(bytes, MAX, isCodecSupported);
    await validateRecords(bytes, MAX);
    expect(() => validateBatch(bytes, 10, isCodecSupported)).toThrow(expect.objectContaining({ reason: 'MESSAGE_TOO_LARGE' }));
    expect(validateBatch(bytes, MAX, isCodecSupported)).toEqual(fresh);
  });

  it('decompresses without blocking the event loop: a timer set before the check runs before it settles', async () => {
    // 8 MiB that gzip shrinks to a few KiB: inflating it still takes milliseconds, on the threadpool.
    const big = Buffer.alloc(8 << 20, 'ab');
    const payload = zlib.gzipSync(Records.encode({ records: [{ key: Buffer.alloc(0), value: big, headers: [], timestampDeltaMs: 0n }] }).finish(), { level: 1 });
    const bytes = withPayload({ compression: CompressionCodec.COMPRESSION_CODEC_GZIP, maxTimestampMs: 1000n }, payload);
    const order: string[] = [];
    const check = validateRecords(bytes, 1 << 20)!.then(() => order.push('checked'));
    setImmediate(() => order.push('event loop turned'));
    await check;
    expect(order[0]).toBe('event loop turned');
  });
});

describe('ProduceAdmission', () => {
  const plain = (ts: number) => encodeRecordBatch(buildRecordBatch([{ key: 'k', value: `v${ts}`, timestampMs: ts }]));
  const gz = (ts: number) => encodeRecordBatch(buildRecordBatch([{ key: 'k', value: 'x'.repeat(100_000) + ts, timestampMs: ts }], { compression: CompressionCodec.COMPRESSION_CODEC_GZIP }));

  it('appends an uncompressed batch synchronously when nothing is pending for its partition', () => {
    const admission = new ProduceAdmission();
    const appended: string[] = [];
    void admission.admit({}, plain(1), MAX, async () => appended.push('a'));
    expect(appended).toEqual(['a']);
    expect(admission.pending).toBe(0);
  });

  it('keeps arrival order per partition while a compressed batch is checked, without holding other partitions', async () => {
    const admission = new ProduceAdmission();
    const p0 = {};
    const p1 = {};
    const appended: string[] = [];
    const append = (name: string) => async () => {
      appended.push(name);
      return name;
    };
    const first = admission.admit(p0, gz(1), MAX, append('p0-gzip'));
    const second = admission.admit(p0, plain(2), MAX, append('p0-plain'));
    const third = admission.admit(p0, plain(3), MAX, append('p0-plain-2'));
    const other = admission.admit(p1, plain(4), MAX, append('p1-plain'));
    // The other partition went at once; p0's plain batches wait for the gzip batch before them.
    expect(appended).toEqual(['p1-plain']);
    await Promise.all([first, second, third, other]);
    expect(appended).toEqual(['p1-plain', 'p0-gzip', 'p0-plain', 'p0-plain-2']);
    expect(admission.pending).toBe(0);
  });

  it('a refused batch appends nothing and keeps the order of those around it', async () => {
    const admission = new ProduceAdmission();
    const p = {};
    const appended: string[] = [];
    const lying = withPayload({ compression: CompressionCodec.COMPRESSION_CODEC_GZIP, recordCount: 5 }, compress(CompressionCodec.COMPRESSION_CODEC_GZIP, records([0])));
    const a = admission.admit(p, gz(1), MAX, async () => appended.push('a'));
    const bad = admission.admit(p, lying, MAX, async () => appended.push('bad'));
    const c = admission.admit(p, plain(3), MAX, async () => appended.push('c'));
    await expect(bad).rejects.toMatchObject({ reason: 'CORRUPT_MESSAGE' });
    await Promise.all([a, c]);
    expect(appended).toEqual(['a', 'c']);
  });

  it('passes the turn once the append was made, not when its promise settles (acks=all waits must not serialize)', async () => {
    const admission = new ProduceAdmission();
    const p = {};
    const appended: string[] = [];
    let finishFirst!: () => void;
    const first = admission.admit(p, gz(1), MAX, () => {
      appended.push('first');
      return new Promise<void>((r) => (finishFirst = r));
    });
    const second = admission.admit(p, gz(2), MAX, async () => void appended.push('second'));
    await second;
    expect(appended).toEqual(['first', 'second']);
    finishFirst();
    await first;
  });
});
