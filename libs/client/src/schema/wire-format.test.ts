// Confluent's wire format. The message-index vectors are what Java's MessageIndexes.toByteArray
// writes (Kafka ByteUtils.writeVarint: zigzag varints; [0] as the single byte 0); Confluent's Python
// client before 1.8 wrote unsigned varints, which differ for every index but 0.
import { describe, expect, it } from 'vitest';
import { decodeHeader, decodeMessageIndexes, encodeHeader, encodeMessageIndexes, WireFormatError } from './wire-format.js';

const hex = (b: Buffer) => b.toString('hex');

describe('Confluent wire format', () => {
  it('header: magic byte 0 and the id as int32 big-endian', () => {
    expect(hex(encodeHeader(1))).toBe('0000000001');
    expect(hex(encodeHeader(0x01020304))).toBe('0001020304');
    const { schemaId, rest } = decodeHeader(Buffer.from('00000001f4ff', 'hex'));
    expect(schemaId).toBe(500);
    expect(hex(rest)).toBe('ff');
    expect(() => decodeHeader(Buffer.from('01000001f4', 'hex'))).toThrow(WireFormatError);
    expect(() => decodeHeader(Buffer.from('0000', 'hex'))).toThrow(WireFormatError);
  });

  // [indexes, Java bytes (zigzag), old Python bytes (unsigned)]
  const vectors: Array<[number[], string, string]> = [
    [[0], '00', '00'],
    [[1], '0202', '0101'],
    [[0, 1], '040002', '020001'],
    [[1, 2, 3], '06020406', '03010203'],
    [[64], '028001', '0140'],
    [[3, 0, 200], '0606009003', '030300c801'],
  ];
  it("message indexes: Java's zigzag vectors, both ways", () => {
    for (const [indexes, java] of vectors) {
      expect(hex(encodeMessageIndexes(indexes)), `${indexes}`).toBe(java);
      const { indexes: back, rest } = decodeMessageIndexes(Buffer.concat([Buffer.from(java, 'hex'), Buffer.from('aa', 'hex')]));
      expect(back).toEqual(indexes);
      expect(hex(rest)).toBe('aa');
    }
  });

  it('message indexes: the unsigned encoding of old Python clients, on request', () => {
    for (const [indexes, , python] of vectors) {
      expect(hex(encodeMessageIndexes(indexes, 'unsigned')), `${indexes}`).toBe(python);
      expect(decodeMessageIndexes(Buffer.from(python, 'hex'), 'unsigned').indexes).toEqual(indexes);
    }
  });

  it('refuses truncated or negative indexes', () => {
    expect(() => decodeMessageIndexes(Buffer.from('04', 'hex'))).toThrow(WireFormatError);
    expect(() => decodeMessageIndexes(Buffer.from('0201', 'hex'))).toThrow(/negative/); // zigzag 1 = -1
    expect(() => encodeMessageIndexes([])).toThrow(WireFormatError);
  });
});
