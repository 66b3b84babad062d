import { describe, expect, it } from 'vitest';
import { encodeEntryHeader, ENTRY_HEADER_SIZE, parseEntry } from './entry-format.js';

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
