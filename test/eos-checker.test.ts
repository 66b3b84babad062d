// The exactly-once checker itself (harness/eos-checker.ts): it must accept a correct history and
// catch each kind of violation, or the Jepsen-style test could pass for the wrong reason.
import { describe, expect, it } from 'vitest';
import { checkExactlyOnce } from './harness/eos-checker.js';

const r = (key: string, seq: number) => ({ key, value: `${key}:${seq}` });
const inputs = [r('a', 0), r('a', 1), r('b', 0), r('b', 1)];

describe('exactly-once checker', () => {
  it('accepts every input once, in order per key, keys spread over partitions', () => {
    expect(
      checkExactlyOnce(inputs, [
        [r('a', 0), r('a', 1)],
        [r('b', 0), r('b', 1)],
      ]).ok,
    ).toBe(true);
  });
  it('reports a missing, a duplicated, an unexpected and a reordered record', () => {
    expect(checkExactlyOnce(inputs, [[r('a', 0), r('a', 1)], [r('b', 0)]])).toMatchObject({ ok: false, missing: ['b:1'] });
    expect(
      checkExactlyOnce(inputs, [
        [r('a', 0), r('a', 1), r('a', 1)],
        [r('b', 0), r('b', 1)],
      ]),
    ).toMatchObject({ ok: false, duplicated: ['a:1'] });
    expect(
      checkExactlyOnce(inputs, [
        [r('a', 0), r('a', 1), r('a', 7)],
        [r('b', 0), r('b', 1)],
      ]),
    ).toMatchObject({ ok: false, unexpected: ['a:7'] });
    expect(
      checkExactlyOnce(inputs, [
        [r('a', 1), r('a', 0)],
        [r('b', 0), r('b', 1)],
      ]),
    ).toMatchObject({ ok: false, reordered: [{ key: 'a', before: 'a:1', after: 'a:0' }] });
  });
});
