import { describe, expect, it } from 'vitest';
import { converter } from './converters.js';
import { buildTransformChain, formatTimestamp } from './transforms.js';

const rec = (value: unknown, topic = 'orders') => ({
  topic,
  key: null,
  value,
  headers: [] as Array<{ key: string; value: Buffer }>,
  timestampMs: Date.UTC(2026, 0, 2, 3, 4, 5),
});

describe('transforms', () => {
  it('insert, rename and mask fields in order', () => {
    const t = buildTransformChain({
      transforms: 'ins,ren,mask',
      'transforms.ins.type': 'InsertField',
      'transforms.ins.static.field': 'dc',
      'transforms.ins.static.value': 'eu',
      'transforms.ins.topic.field': 'src',
      'transforms.ren.type': 'RenameField',
      'transforms.ren.renames': 'name:fullName',
      'transforms.mask.type': 'MaskField',
      'transforms.mask.fields': 'ssn,age',
    });
    expect(t(rec({ name: 'Ada', ssn: '123', age: 36 }))!.value).toEqual({ fullName: 'Ada', ssn: '', age: 0, dc: 'eu', src: 'orders' });
    // Non-object values pass field transforms unchanged.
    expect(t(rec(null))!.value).toBeNull();
  });

  it('routes by regex and by timestamp', () => {
    expect(
      buildTransformChain({
        transforms: 'r',
        'transforms.r.type': 'RegexRouter',
        'transforms.r.regex': 'pg\\.public\\.(.*)',
        'transforms.r.replacement': 'cdc-$1',
      })(rec({}, 'pg.public.users'))!.topic,
    ).toBe('cdc-users');
    expect(
      buildTransformChain({ transforms: 'r', 'transforms.r.type': 'RegexRouter', 'transforms.r.regex': 'x', 'transforms.r.replacement': 'y' })(
        rec({}, 'orders'),
      )!.topic,
    ).toBe('orders');
    expect(buildTransformChain({ transforms: 't', 'transforms.t.type': 'TimestampRouter' })(rec({}))!.topic).toBe('orders-20260102');
    expect(formatTimestamp(Date.UTC(2026, 0, 2, 3, 4, 5), 'yyyy-MM-dd HH:mm:ss')).toBe('2026-01-02 03:04:05');
  });

  it('filters by predicate, negated too', () => {
    const drop = buildTransformChain({ transforms: 'f', 'transforms.f.type': 'Filter', 'transforms.f.predicate': 'RecordIsTombstone' });
    expect(drop(rec(null))).toBeNull();
    expect(drop(rec({ a: 1 }))).not.toBeNull();
    const keep = buildTransformChain({
      transforms: 'f',
      'transforms.f.type': 'Filter',
      'transforms.f.predicate': 'TopicNameMatches',
      'transforms.f.pattern': 'keep-.*',
      'transforms.f.negate': 'true',
    });
    expect(keep(rec({}, 'keep-1'))).not.toBeNull();
    expect(keep(rec({}, 'other'))).toBeNull();
  });

  it('bad configs name the key', () => {
    expect(() => buildTransformChain({ transforms: 'x' })).toThrow(/transforms\.x\.type is required/);
    expect(() => buildTransformChain({ transforms: 'x', 'transforms.x.type': 'RenameField', 'transforms.x.renames': 'a' })).toThrow(/from:to/);
  });
});

describe('converters', () => {
  it('json round-trips objects (bigint as string) and fails on invalid JSON', () => {
    const c = converter('json');
    expect(c.toConnect(c.fromConnect({ a: 1n, b: 'x' }))).toEqual({ a: '1', b: 'x' });
    expect(() => c.toConnect(Buffer.from('{oops'))).toThrow();
    expect(c.fromConnect(null)).toBeNull();
  });

  it('bytes keep bytes exactly; string is UTF-8', () => {
    const raw = Buffer.from([0, 255, 10, 13]);
    expect(converter('bytes').fromConnect(raw)!.equals(raw)).toBe(true);
    expect(converter('string').toConnect(Buffer.from('héllo'))).toBe('héllo');
    expect(() => converter('xml')).toThrow(/unknown converter/);
  });
});
