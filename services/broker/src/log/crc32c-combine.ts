/**
 * CRC-32C of a concatenation from the CRCs of its parts: `crc32cCombine(crc32c(A), crc32c(B),
 * B.length) === crc32c(A ++ B)`, without reading B. Pure.
 *
 * Why: the log's entry CRC covers the entry header and the whole batch, and the batch's records were
 * just CRC-checked by validation; combining the two CRCs spares a second pass over the payload on
 * every append (bench/PROFILE.md: that pass was ~8 % of the produce path). @node-rs/crc32 has no
 * combine, and the npm packages that do target CRC-32 (zlib's polynomial), not CRC-32C.
 *
 * The method is zlib's (crc32_combine since 1.2.12): appending n zero bytes to A multiplies its CRC
 * by x^(8n) modulo the polynomial, so crc(A ++ B) = crc(A) * x^(8 |B|) mod P xor crc(B); x^(8n) is
 * built from a table of x^(2^k). Polynomials are in the reflected bit order CRC-32C uses (bit 31
 * is x^0). The cost grows with the number of set bits of the length (at most 31 multiplications of
 * 32 steps each): about a microsecond, so it pays only for payloads over a few KiB
 * (COMBINE_MIN_BYTES); below that one more pass is cheaper.
 */

/** CRC-32C (Castagnoli) polynomial, reflected. */
const POLY = 0x82f63b78;

/** a(x) * b(x) modulo P(x), reflected representation. */
function multModP(a: number, b: number): number {
  let m = 0x80000000;
  let p = 0;
  for (;;) {
    if ((a & m) !== 0) {
      p ^= b;
      if ((a & (m - 1)) === 0) break;
    }
    m >>>= 1;
    b = (b & 1) !== 0 ? (b >>> 1) ^ POLY : b >>> 1;
  }
  return p >>> 0;
}

/** X2N[k] = x^(2^k) mod P. */
const X2N = new Uint32Array(32);
{
  let p = 0x40000000; // x^1
  X2N[0] = p;
  for (let k = 1; k < 32; k++) X2N[k] = p = multModP(p, p);
}

/** x^(n * 2^k) mod P. */
function x2nModP(n: number, k: number): number {
  let p = 0x80000000; // x^0
  while (n !== 0) {
    if ((n & 1) !== 0) p = multModP(X2N[k & 31]!, p);
    n >>>= 1;
    k++;
  }
  return p;
}

/** CRC-32C of A ++ B, given crc32c(A), crc32c(B) and B's length in bytes (< 2^32). */
export function crc32cCombine(crcA: number, crcB: number, lengthB: number): number {
  if (!Number.isInteger(lengthB) || lengthB < 0 || lengthB > 0xffffffff) throw new RangeError(`length ${lengthB} out of range`);
  return (multModP(x2nModP(lengthB, 3), crcA >>> 0) ^ crcB) >>> 0;
}

/**
 * Below this many bytes a direct CRC pass costs less than a combination (measured with
 * @node-rs/crc32's hardware CRC: ~0.15 µs per call plus ~0.18 ns per byte, against ~1 µs per combine).
 */
export const COMBINE_MIN_BYTES = 8 * 1024;
