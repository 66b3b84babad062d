import { describe, expect, it } from 'vitest';
import { buildRecordBatch, encodeRecordBatch } from '@skein/common/records/record-batch.js';
import { isCodecSupported } from '@skein/common/records/compression.js';
import { legacyEncodeEntryHeader } from '../../test/fixtures/legacy-entry.js';
import { validateBatch } from './batch-validation.js';
import { COMBINE_MIN_BYTES } from './crc32c-combine.js';
import { encodeEntryHeader, ENTRY_HEADER_SIZE, locateRecords, parseEntry } from './entry-format.js';

const header = {
  baseOffset: 1234567890123n,
  leaderEpoch: 3,
  recordCount: 5,
  maxTimestampMs: 1_700_000_000_000n,
  producerId: 42n,
  producerEpoch: 1,
  baseSequence: 10,
};

function entry(batch: Buffer): Buffer {
  return Buffer.concat([encodeEntryHeader(header, batch), batch]);
}

describe('entry framing', () => {
  it('round-trips the header and slices the batch without copying', () => {
    const batch = Buffer.from('batch-bytes');
    const buf = Buffer.concat([entry(batch), entry(Buffer.from('second'))]);
    const first = parseEntry(buf, 0);
    expect(first.kind).toBe('entry');
    if (first.kind !== 'entry') return;
    expect(first.entry).toMatchObject({ ...header, position: 0, size: ENTRY_HEADER_SIZE + batch.length });
    expect(first.entry.batch.toString()).toBe('batch-bytes');
    expect(first.entry.batch.buffer).toBe(buf.buffer);
    const second = parseEntry(buf, first.entry.size);
    expect(second.kind === 'entry' && second.entry.batch.toString()).toBe('second');
  });

  it('reports a cut entry as incomplete, at every cut point', () => {
    const buf = entry(Buffer.from('payload'));
    for (let cut = 0; cut < buf.length; cut++) {
      expect(parseEntry(buf.subarray(0, cut), 0).kind).toBe('incomplete');
    }
  });

  it('reports any flipped byte after the length field as corrupt', () => {
    const buf = entry(Buffer.from('payload'));
    for (let i = 4; i < buf.length; i++) {
      const copy = Buffer.from(buf);
      copy[i] = copy[i]! ^ 0x01;
      expect(parseEntry(copy, 0).kind).toBe('corrupt');
    }
  });

  it('reports an impossible length as corrupt', () => {
    const buf = entry(Buffer.from('x'));
    buf.writeUInt32BE(3, 0);
    expect(parseEntry(buf, 0).kind).toBe('corrupt');
  });
});

/** A real RecordBatch whose records payload is `records` x ~1 KiB (over COMBINE_MIN_BYTES from 9 on). */
function recordBatch(records: number, extra: Buffer = Buffer.alloc(0)): Buffer {
  const bytes = encodeRecordBatch(
    buildRecordBatch(Array.from({ length: records }, (_, i) => ({ key: `k${i}`, value: Buffer.alloc(1000, 97 + (i % 26)), timestampMs: 1_700_000_000_000 + i }))),
  );
  // Unknown fields after the records (a newer producer's): the entry CRC covers them too.
  return Buffer.concat([bytes, extra]);
}

/** Unknown field 15 (varint 300) and field 16 (bytes "later"): wire bytes a newer producer may add. */
const TRAILING_FIELDS = Buffer.from([0x78, 0xac, 0x02, 0x82, 0x01, 0x05, ...Buffer.from('later')]);

describe('entry CRC from the validated payload CRC (one pass per byte on append)', () => {
  it('writes the same bytes as the two-pass encoder of earlier brokers, small and large batches alike', () => {
    for (const batch of [recordBatch(1), recordBatch(9), recordBatch(200), recordBatch(40, TRAILING_FIELDS)]) {
      const { records } = validateBatch(batch, 1 << 30, isCodecSupported);
      expect(encodeEntryHeader(header, batch, records)).toEqual(legacyEncodeEntryHeader(header, batch));
    }
  });

  it('takes the payload CRC from validation instead of reading the payload again', () => {
    const batch = recordBatch(40);
    const { records } = validateBatch(batch, 1 << 30, isCodecSupported);
    expect(records.end - records.start).toBeGreaterThanOrEqual(COMBINE_MIN_BYTES);
    // A wrong CRC handed in shows in the entry CRC: the payload bytes were not read.
    const wrong = encodeEntryHeader(header, batch, { ...records, crc32c: records.crc32c ^ 1 });
    expect(wrong.readUInt32BE(4)).not.toBe(legacyEncodeEntryHeader(header, batch).readUInt32BE(4));
    expect(wrong.subarray(8)).toEqual(legacyEncodeEntryHeader(header, batch).subarray(8));
  });

  it("finds the payload and its CRC where validation does, and nothing in bytes that are not a batch", () => {
    for (const batch of [recordBatch(3), recordBatch(40, TRAILING_FIELDS)]) {
      expect(locateRecords(batch)).toEqual(validateBatch(batch, 1 << 30, isCodecSupported).records);
    }
    expect(locateRecords(Buffer.from('payload'))).toBeUndefined();
    expect(locateRecords(Buffer.alloc(0))).toBeUndefined();
    // Records but no crc32c field.
    expect(locateRecords(Buffer.from([0x52, 0x02, 0x01, 0x02]))).toBeUndefined();
    // A length running past the end.
    expect(locateRecords(Buffer.from([0x52, 0x09, 0x01]))).toBeUndefined();
  });
});

describe("the 'header' check (replication reads: the follower checks the payload)", () => {
  const batch = recordBatch(40, TRAILING_FIELDS);
  const { records } = validateBatch(batch, 1 << 30, isCodecSupported);
  const stored = Buffer.concat([encodeEntryHeader(header, batch, records), batch]);
  const payloadStart = ENTRY_HEADER_SIZE + records.start;
  const payloadEnd = ENTRY_HEADER_SIZE + records.end;

  it('finds any flipped byte outside the records payload', () => {
    for (let i = 4; i < stored.length; i++) {
      if (i >= payloadStart && i < payloadEnd) continue;
      const copy = Buffer.from(stored);
      copy[i] = copy[i]! ^ 0x10;
      expect(parseEntry(copy, 0, 'header').kind, `byte ${i}`).toBe('corrupt');
    }
  });

  it("leaves a flipped payload byte to the reader's batch CRC check, which 'full' (recovery, consumer reads) finds itself", () => {
    for (let i = payloadStart; i < payloadEnd; i += 97) {
      const copy = Buffer.from(stored);
      copy[i] = copy[i]! ^ 0x10;
      expect(parseEntry(copy, 0, 'header').kind).toBe('entry');
      expect(parseEntry(copy, 0, 'full').kind, `byte ${i}`).toBe('corrupt');
      const sent = parseEntry(copy, 0, 'header');
      expect(() => validateBatch(sent.kind === 'entry' ? Buffer.from(sent.entry.batch) : Buffer.alloc(0), 1 << 30, isCodecSupported)).toThrow(/crc32c mismatch/);
    }
  });

  it('checks small payloads and batches it cannot walk in full', () => {
    const small = recordBatch(2);
    const smallStored = Buffer.concat([encodeEntryHeader(header, small), small]);
    const flipped = Buffer.from(smallStored);
    flipped[smallStored.length - 3] = flipped[smallStored.length - 3]! ^ 1;
    expect(parseEntry(flipped, 0, 'header').kind).toBe('corrupt');
    const opaque = entry(Buffer.from('not a batch'));
    expect(parseEntry(opaque, 0, 'header').kind).toBe('entry');
    opaque[opaque.length - 1] = opaque[opaque.length - 1]! ^ 1;
    expect(parseEntry(opaque, 0, 'header').kind).toBe('corrupt');
  });
});
