import { describe, expect, it } from 'vitest';
import { groupOperations, quoteTable, toOperations } from './postgres-sink.js';
import { alreadyEmitted, formatLsn, parseLsn } from './postgres-source.js';

const rec = (value: unknown, key: unknown = null, offset = 0n) => ({ topic: 'pg.public.src', partition: 0, offset, key, value, headers: [] });
const opts = { tableFormat: 'dst', pkFields: ['id'], deleteEnabled: true };

describe('postgres sink operations', () => {
  it('turns change events, rows and tombstones into upserts and deletes in order', () => {
    const ops = toOperations(
      [
        rec({ op: 'c', before: null, after: { id: 1, name: 'a' } }),
        rec({ id: 2, name: 'plain row' }),
        rec({ op: 'd', before: { id: 1 }, after: null }, { id: 1 }),
        rec(null, { id: 2 }),
      ],
      opts,
    );
    expect(ops).toEqual([
      { kind: 'upsert', table: 'dst', row: { id: 1, name: 'a' } },
      { kind: 'upsert', table: 'dst', row: { id: 2, name: 'plain row' } },
      { kind: 'delete', table: 'dst', key: { id: 1 } },
      { kind: 'delete', table: 'dst', key: { id: 2 } },
    ]);
    expect(() => toOperations([rec('a string')], opts)).toThrow(/has no row/);
  });

  it('groups consecutive operations and keeps the last upsert of a key (ON CONFLICT touches a row once)', () => {
    const ops = toOperations([rec({ id: 1, v: 1 }), rec({ id: 1, v: 2 }), rec({ id: 3, v: 1 }), rec(null, { id: 3 }), rec({ id: 3, v: 9 })], opts);
    const groups = groupOperations(ops, ['id']);
    expect(groups.map((g) => g.map((o) => (o.kind === 'upsert' ? `u${o.row.id}:${o.row.v}` : `d${o.key.id}`)))).toEqual([['u1:2', 'u3:1'], ['d3'], ['u3:9']]);
  });

  it('quotes identifiers', () => {
    expect(quoteTable('public.we"ird')).toBe('"public"."we""ird"');
  });
});

describe('postgres cdc offsets', () => {
  it('LSNs round-trip and compare as 64-bit numbers', () => {
    expect(formatLsn(parseLsn('16/B374D848'))).toBe('16/B374D848');
    expect(parseLsn('1/0') > parseLsn('0/FFFFFFFF')).toBe(true);
  });

  it('skips rows at or before the stored offset, and whole transactions once the last row was stored', () => {
    const stored = { lsn: '0/200', endLsn: '0/210', row: 3, last: false };
    expect(alreadyEmitted(stored, parseLsn('0/100'), 9)).toBe(true);
    expect(alreadyEmitted(stored, parseLsn('0/200'), 3)).toBe(true);
    expect(alreadyEmitted(stored, parseLsn('0/200'), 4)).toBe(false);
    expect(alreadyEmitted({ ...stored, last: true }, parseLsn('0/200'), 9)).toBe(true);
    expect(alreadyEmitted(stored, parseLsn('0/300'), 0)).toBe(false);
    expect(alreadyEmitted(undefined, parseLsn('0/1'), 0)).toBe(false);
  });
});
