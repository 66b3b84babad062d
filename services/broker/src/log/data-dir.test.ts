import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DIRECTORY_ID_FILE, ensureDirectoryId } from './data-dir.js';

const dirs: string[] = [];
const tmp = () => { const d = mkdtempSync(join(tmpdir(), 'skein-datadir-')); dirs.push(d); return d; };
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

describe('ensureDirectoryId', () => {
  it('creates an id on first use and keeps it across restarts', () => {
    const dir = join(tmp(), 'data');
    const first = ensureDirectoryId(dir, { newId: () => 'id-1', nowMs: () => 7 });
    expect(first).toEqual({ directoryId: 'id-1', created: true });
    expect(JSON.parse(readFileSync(join(dir, DIRECTORY_ID_FILE), 'utf8'))).toEqual({ v: 1, directoryId: 'id-1', createdAtMs: 7 });
    expect(existsSync(join(dir, `${DIRECTORY_ID_FILE}.tmp`))).toBe(false);
    expect(ensureDirectoryId(dir, { newId: () => 'id-2' })).toEqual({ directoryId: 'id-1', created: false });
  });

  it('gives a wiped or replaced directory a new id', () => {
    const dir = tmp();
    const before = ensureDirectoryId(dir).directoryId;
    rmSync(dir, { recursive: true, force: true });
    const after = ensureDirectoryId(dir);
    expect(after.created).toBe(true);
    expect(after.directoryId).not.toBe(before);
    expect(after.directoryId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('refuses to start on an unreadable id file rather than guess', () => {
    const dir = tmp();
    writeFileSync(join(dir, DIRECTORY_ID_FILE), '{"v":1,"directoryId":');
    expect(() => ensureDirectoryId(dir)).toThrow(/not valid JSON/);
    writeFileSync(join(dir, DIRECTORY_ID_FILE), '{"v":1,"directoryId":"a/b"}');
    expect(() => ensureDirectoryId(dir)).toThrow(/no valid directoryId/);
  });
});
