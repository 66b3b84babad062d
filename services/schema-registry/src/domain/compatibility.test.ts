import { describe, expect, it } from 'vitest';
import { compatibilityIssues, parseSchema } from './compatibility.js';
import {
  decideRegistration,
  effectiveCompatibility,
  effectiveMode,
  hardDeleteSubject,
  hardDeleteVersion,
  selectVersion,
  softDeleteSubject,
  softDeleteVersion,
  versionsToCheck,
} from './subject.js';
import { COMPATIBILITY_LEVELS, type CompatibilityLevel, parseVersion, type SubjectState } from './types.js';

const avro = (fields: unknown[]) => parseSchema('AVRO', JSON.stringify({ type: 'record', name: 'R', fields }), []);
// v1 {a}; v2 {a, b default}; v3 {a, b default, c default} with a NOT removed; then candidates.
const v1 = avro([{ name: 'a', type: 'string' }]);
const v2 = avro([
  { name: 'a', type: 'string' },
  { name: 'b', type: 'int', default: 0 },
]);

function check(level: CompatibilityLevel, state: SubjectState, schemas: Map<number, ReturnType<typeof avro>>, candidate: ReturnType<typeof avro>) {
  const previous = versionsToCheck(state, level).map((v) => ({ version: v.version, schema: schemas.get(v.id)! }));
  return compatibilityIssues(level, candidate, previous);
}

describe('compatibility levels', () => {
  const state: SubjectState = {
    versions: [
      { version: 1, id: 1, deleted: false },
      { version: 2, id: 2, deleted: false },
    ],
  };
  const schemas = new Map([
    [1, v1],
    [2, v2],
  ]);

  // The classic matrix: which change each level admits (Confluent's docs, "Compatibility types").
  const addWithoutDefault = avro([
    { name: 'a', type: 'string' },
    { name: 'b', type: 'int', default: 0 },
    { name: 'c', type: 'string' },
  ]);
  const addWithDefault = avro([
    { name: 'a', type: 'string' },
    { name: 'b', type: 'int', default: 0 },
    { name: 'c', type: 'string', default: '' },
  ]);
  const removeWithoutDefault = avro([{ name: 'b', type: 'int', default: 0 }]);
  const cases: Array<[string, ReturnType<typeof avro>, Record<CompatibilityLevel, boolean>]> = [
    [
      'add a field without a default',
      addWithoutDefault,
      { NONE: true, BACKWARD: false, BACKWARD_TRANSITIVE: false, FORWARD: true, FORWARD_TRANSITIVE: true, FULL: false, FULL_TRANSITIVE: false },
    ],
    [
      'add a field with a default',
      addWithDefault,
      { NONE: true, BACKWARD: true, BACKWARD_TRANSITIVE: true, FORWARD: true, FORWARD_TRANSITIVE: true, FULL: true, FULL_TRANSITIVE: true },
    ],
    [
      'remove a field without a default',
      removeWithoutDefault,
      { NONE: true, BACKWARD: true, BACKWARD_TRANSITIVE: true, FORWARD: false, FORWARD_TRANSITIVE: false, FULL: false, FULL_TRANSITIVE: false },
    ],
  ];
  for (const [name, candidate, expected] of cases) {
    for (const level of COMPATIBILITY_LEVELS) {
      it(`${name}: ${level} ${expected[level] ? 'admits' : 'refuses'} it`, () => {
        expect(check(level, state, schemas, candidate).length === 0).toBe(expected[level]);
      });
    }
  }

  it('transitive levels check every live version, non-transitive ones only the latest', () => {
    // FORWARD: the old schemas must read data written with the candidate, which drops `a`. v3 gives
    // `a` a default, so the latest alone is fine; v1 and v2 need `a` (no default), so transitive fails.
    const v3 = avro([
      { name: 'a', type: 'string', default: '' },
      { name: 'b', type: 'int', default: 0 },
    ]);
    const s3: SubjectState = { versions: [...state.versions, { version: 3, id: 3, deleted: false }] };
    const all = new Map([...schemas, [3, v3]]);
    const candidate = avro([{ name: 'b', type: 'int', default: 0 }]); // drops a
    expect(check('FORWARD', s3, all, candidate)).toEqual([]); // v3 gives a default for a
    const issues = check('FORWARD_TRANSITIVE', s3, all, candidate);
    expect(issues.length).toBeGreaterThan(0);
    expect(issues.every((m) => /^version [12] /.test(m))).toBe(true);
    // A soft-deleted version is not checked.
    const deleted: SubjectState = { versions: s3.versions.map((v) => (v.version < 3 ? { ...v, deleted: true } : v)) };
    expect(check('FORWARD_TRANSITIVE', deleted, all, candidate)).toEqual([]);
  });

  it('a schema of another type is incompatible with the previous version', () => {
    const json = parseSchema('JSON', '{"type":"object"}', []);
    expect(compatibilityIssues('BACKWARD', json, [{ version: 1, schema: v1 }])[0]).toMatch(/schema type AVRO → JSON/);
    expect(compatibilityIssues('NONE', json, [{ version: 1, schema: v1 }])).toEqual([]);
  });
});

describe('subject state machine', () => {
  const s: SubjectState = {
    versions: [
      { version: 1, id: 10, deleted: false },
      { version: 2, id: 11, deleted: false },
    ],
  };

  it('registering a schema already live in the subject returns its version; otherwise appends the next version', () => {
    expect(decideRegistration({ subject: 's', state: s, mode: 'READWRITE', id: 10 })).toEqual({ kind: 'existing', version: s.versions[0] });
    const d = decideRegistration({ subject: 's', state: s, mode: 'READWRITE', id: 12 });
    expect(d.kind === 'append' && d.version).toEqual({ version: 3, id: 12, deleted: false });
    // A schema whose only version was soft-deleted comes back as a new version with the same id.
    const soft = softDeleteVersion('s', s, 1, 'READWRITE').next;
    const again = decideRegistration({ subject: 's', state: soft, mode: 'READWRITE', id: 10 });
    expect(again.kind === 'append' && again.version).toEqual({ version: 3, id: 10, deleted: false });
  });

  it('read-only modes refuse writes; an explicit id needs IMPORT mode, and there sets the version', () => {
    expect(() => decideRegistration({ subject: 's', state: s, mode: 'READONLY', id: 12 })).toThrow(
      expect.objectContaining({ reason: 'SCHEMA_OPERATION_NOT_PERMITTED' }),
    );
    expect(() => softDeleteSubject('s', s, 'READONLY_OVERRIDE')).toThrow(expect.objectContaining({ reason: 'SCHEMA_OPERATION_NOT_PERMITTED' }));
    expect(() => decideRegistration({ subject: 's', state: s, mode: 'READWRITE', id: 12, requestedId: 12 })).toThrow(
      expect.objectContaining({ reason: 'SCHEMA_OPERATION_NOT_PERMITTED' }),
    );
    const d = decideRegistration({ subject: 's', state: s, mode: 'IMPORT', id: 50, requestedId: 50, requestedVersion: 7 });
    expect(d.kind === 'append' && d.version).toEqual({ version: 7, id: 50, deleted: false });
    expect(effectiveMode('READONLY_OVERRIDE', 'READWRITE')).toBe('READONLY_OVERRIDE');
    expect(effectiveMode('READONLY', 'READWRITE')).toBe('READWRITE');
    expect(effectiveMode(undefined, undefined)).toBe('READWRITE');
    expect(effectiveCompatibility(undefined, undefined)).toBe('BACKWARD');
    expect(effectiveCompatibility('FULL', 'NONE')).toBe('NONE');
  });

  it('soft then hard delete, with Confluent’s errors for each wrong order', () => {
    expect(() => hardDeleteSubject('s', s, 'READWRITE')).toThrow(expect.objectContaining({ reason: 'SUBJECT_NOT_SOFT_DELETED' }));
    const { next, deleted } = softDeleteSubject('s', s, 'READWRITE');
    expect(deleted).toEqual([1, 2]);
    expect(() => softDeleteSubject('s', next, 'READWRITE')).toThrow(expect.objectContaining({ reason: 'SUBJECT_SOFT_DELETED' }));
    expect(() => selectVersion('s', next, 'latest', false)).toThrow(expect.objectContaining({ reason: 'SUBJECT_NOT_FOUND' }));
    expect(selectVersion('s', next, 'latest', true).version).toBe(2);
    expect(hardDeleteSubject('s', next, 'READWRITE').removed.map((v) => v.version)).toEqual([1, 2]);
    expect(() => hardDeleteVersion('s', s, 1, 'READWRITE')).toThrow(expect.objectContaining({ reason: 'SCHEMA_VERSION_NOT_SOFT_DELETED' }));
    const one = softDeleteVersion('s', s, 1, 'READWRITE').next;
    expect(() => softDeleteVersion('s', one, 1, 'READWRITE')).toThrow(expect.objectContaining({ reason: 'SCHEMA_VERSION_SOFT_DELETED' }));
    expect(hardDeleteVersion('s', one, 1, 'READWRITE').next.versions.map((v) => v.version)).toEqual([2]);
    expect(() => selectVersion('s', one, 1, false)).toThrow(expect.objectContaining({ reason: 'SCHEMA_VERSION_NOT_FOUND' }));
  });

  it('versions: 1..2^31-1, "latest" and -1', () => {
    expect(parseVersion('latest')).toBe('latest');
    expect(parseVersion('-1')).toBe('latest');
    expect(parseVersion('3')).toBe(3);
    for (const bad of ['0', 'abc', '2147483648', '1.5', ''])
      expect(() => parseVersion(bad)).toThrow(expect.objectContaining({ reason: 'INVALID_SCHEMA_VERSION' }));
  });
});
