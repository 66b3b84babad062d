// One contract for both store engines (in memory, and LMDB on a temporary directory), and the
// write cache in front of them: what processors read while an interval is open, what reaches the
// engine only at flush, and that a discarded interval leaves no trace.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LmdbEngine } from './lmdb-engine.js';
import { CachedStore, MemoryEngine, type StoreEngine } from './store-engine.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'skein-streams-engine-'));
  dirs.push(d);
  return d;
};
const b = (s: string) => Buffer.from(s);

const backends: Array<[string, () => StoreEngine]> = [
  ['memory', () => new MemoryEngine()],
  ['lmdb', () => new LmdbEngine(tempDir())],
];

describe.each(backends)('%s engine', (_name, make) => {
  it('writes and metadata apply together; ranges are byte-ordered and end-exclusive; an empty key works', async () => {
    const e = make();
    e.write(
      [
        { store: 's', key: b('b'), value: b('2') },
        { store: 's', key: b('a'), value: b('1') },
        { store: 's', key: Buffer.from([0xff]), value: b('hi') },
        { store: 's', key: b(''), value: b('empty') },
        { store: 't', key: b('a'), value: b('other store') },
      ],
      { 'checkpoint:s': '5' },
    );
    expect(e.get('s', b('a'))?.toString()).toBe('1');
    expect(e.get('s', b(''))?.toString()).toBe('empty');
    expect(e.meta('checkpoint:s')).toBe('5');
    expect(e.range('s', b('a'), Buffer.from([0xff])).map(([k, v]) => `${k}=${v}`)).toEqual(['a=1', 'b=2']);
    e.write([{ store: 's', key: b('a'), value: null }], {});
    expect(e.get('s', b('a'))).toBeUndefined();
    await e.wipe();
    expect(e.get('s', b('b'))).toBeUndefined();
    expect(e.meta('checkpoint:s')).toBeUndefined();
    await e.close();
  });

  it('behind a cache: reads see the interval, the engine only after flush, discard forgets it', async () => {
    const e = make();
    const s = new CachedStore('s', e);
    e.write([{ store: 's', key: b('k1'), value: b('old') }], {});
    s.put(b('k1'), b('new'));
    s.put(b('k2'), b('v2'));
    s.put(b('k3'), b('v3'));
    s.put(b('k3'), null);
    expect(s.get(b('k1'))?.toString()).toBe('new');
    expect(s.get(b('k3'))).toBeUndefined();
    expect(e.get('s', b('k1'))?.toString()).toBe('old');
    expect(s.range(b('k'), b('l')).map(([k, v]) => `${k}=${v}`)).toEqual(['k1=new', 'k2=v2']);
    expect(s.drainDirty().map(([k, v]) => `${k}=${v}`)).toEqual(['k1=new', 'k2=v2', 'k3=null']);
    expect(s.drainDirty()).toEqual([]);
    s.discard();
    expect(s.get(b('k1'))?.toString()).toBe('old');
    s.put(b('k2'), b('v2'));
    e.write(s.takeCache(), { 'checkpoint:s': '9' });
    expect(e.get('s', b('k2'))?.toString()).toBe('v2');
    await e.close();
  });
});

describe('lmdb engine', () => {
  it('a reopened directory has what was written and the checkpoint written with it', async () => {
    const dir = tempDir();
    const e = new LmdbEngine(dir);
    e.write([{ store: 'counts', key: b('w'), value: b('7') }], { 'checkpoint:counts': '42' });
    await e.close();
    const again = new LmdbEngine(dir);
    expect(again.get('counts', b('w'))?.toString()).toBe('7');
    expect(again.meta('checkpoint:counts')).toBe('42');
    await again.close();
  });
});
