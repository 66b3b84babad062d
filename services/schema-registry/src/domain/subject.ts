/**
 * A subject's versions as a pure state machine: reads select versions, writes return the next state
 * and what to answer, nothing is mutated. The store layer persists the next state with a
 * compare-and-set on the subject key's revision, so two registry instances deciding on the same
 * subject at once cannot both win (the loser re-reads and decides again).
 *
 * Invariants: versions are in increasing order and unique; a version number is never reused while
 * the version exists, soft-deleted or not (a permanent delete of the newest version frees its
 * number, as in Confluent); a permanent delete needs a soft delete first.
 */
import { SkeinError } from '@skein/common/errors.js';
import {
  type CompatibilityLevel,
  DEFAULT_COMPATIBILITY,
  MAX_VERSION,
  type Mode,
  type SubjectState,
  type SubjectVersion,
  type VersionSelector,
} from './types.js';

export const EMPTY_SUBJECT: SubjectState = Object.freeze({ versions: [] });

export function liveVersions(state: SubjectState): SubjectVersion[] {
  return state.versions.filter((v) => !v.deleted);
}

/** Whether the subject is listed: it has a live version, or any version when deleted ones are asked for. */
export function subjectExists(state: SubjectState | undefined, includeDeleted: boolean): boolean {
  return state !== undefined && (includeDeleted ? state.versions.length > 0 : state.versions.some((v) => !v.deleted));
}

export function subjectNotFound(subject: string): SkeinError {
  return new SkeinError('SUBJECT_NOT_FOUND', `Subject '${subject}' not found.`, { metadata: { subject } });
}

function versionNotFound(subject: string, version: VersionSelector): SkeinError {
  return new SkeinError('SCHEMA_VERSION_NOT_FOUND', `Version ${version === 'latest' ? 'latest' : version} not found.`, {
    metadata: { subject, version: String(version) },
  });
}

/** The version a selector names (40401 when the subject has none visible, 40402 when that one is missing). */
export function selectVersion(subject: string, state: SubjectState | undefined, selector: VersionSelector, includeDeleted: boolean): SubjectVersion {
  if (!subjectExists(state, includeDeleted)) throw subjectNotFound(subject);
  const visible = includeDeleted ? state!.versions : liveVersions(state!);
  const found = selector === 'latest' ? visible[visible.length - 1] : visible.find((v) => v.version === selector);
  if (!found) throw versionNotFound(subject, selector);
  return found;
}

export function listVersions(subject: string, state: SubjectState | undefined, includeDeleted: boolean): number[] {
  if (!subjectExists(state, includeDeleted)) throw subjectNotFound(subject);
  return (includeDeleted ? state!.versions : liveVersions(state!)).map((v) => v.version);
}

/** The live version holding schema `id`, if any: registering that schema again returns it unchanged. */
export function findLiveById(state: SubjectState | undefined, id: number): SubjectVersion | undefined {
  return state?.versions.find((v) => !v.deleted && v.id === id);
}

/** The effective mode: a global READONLY_OVERRIDE beats the subject's own; else the subject's, the global, READWRITE. */
export function effectiveMode(globalMode: Mode | undefined, subjectMode: Mode | undefined): Mode {
  if (globalMode === 'READONLY_OVERRIDE') return globalMode;
  return subjectMode ?? globalMode ?? 'READWRITE';
}

export function effectiveCompatibility(globalLevel: CompatibilityLevel | undefined, subjectLevel: CompatibilityLevel | undefined): CompatibilityLevel {
  return subjectLevel ?? globalLevel ?? DEFAULT_COMPATIBILITY;
}

export function ensureWritable(subject: string, mode: Mode): void {
  if (mode === 'READONLY' || mode === 'READONLY_OVERRIDE') {
    throw new SkeinError('SCHEMA_OPERATION_NOT_PERMITTED', `Subject ${subject} is in read-only mode`, { metadata: { subject } });
  }
}

/**
 * Which earlier versions a new schema is checked against: none for NONE, the latest live one for
 * BACKWARD/FORWARD/FULL, every live one for the *_TRANSITIVE levels (oldest first).
 */
export function versionsToCheck(state: SubjectState | undefined, level: CompatibilityLevel): SubjectVersion[] {
  if (level === 'NONE' || !state) return [];
  const live = liveVersions(state);
  if (level.endsWith('_TRANSITIVE')) return live;
  const latest = live[live.length - 1];
  return latest ? [latest] : [];
}

export type RegistrationDecision =
  /** The schema is already a live version of the subject: answer its id, write nothing. */
  | { kind: 'existing'; version: SubjectVersion }
  /** Append `version` (with the schema's id) and persist `next`. */
  | { kind: 'append'; version: SubjectVersion; next: SubjectState };

export interface RegistrationInput {
  subject: string;
  state: SubjectState | undefined;
  mode: Mode;
  /** The schema's id: the existing one for a schema registered before (under any subject), or a newly allocated one. */
  id: number;
  /** The id the caller asked for (IMPORT mode), if any. */
  requestedId?: number;
  /** The version the caller asked for (IMPORT mode), if any. */
  requestedVersion?: number;
}

/**
 * Decides a registration after the compatibility check passed (or was skipped). Outside IMPORT
 * mode a caller-chosen id is refused; in IMPORT mode the caller's version is used (it must be newer
 * than every existing one, so imports keep versions in order).
 */
export function decideRegistration(input: RegistrationInput): RegistrationDecision {
  const { subject, state, mode } = input;
  ensureWritable(subject, mode);
  if (input.requestedId !== undefined && mode !== 'IMPORT') {
    throw new SkeinError('SCHEMA_OPERATION_NOT_PERMITTED', `Subject ${subject} is not in import mode`, { metadata: { subject } });
  }
  const existing = findLiveById(state, input.id);
  if (existing && (input.requestedVersion === undefined || input.requestedVersion === existing.version)) return { kind: 'existing', version: existing };
  const versions = state?.versions ?? [];
  const newest = versions[versions.length - 1]?.version ?? 0;
  let version = newest + 1;
  if (input.requestedVersion !== undefined) {
    if (mode !== 'IMPORT') throw new SkeinError('SCHEMA_OPERATION_NOT_PERMITTED', `Subject ${subject} is not in import mode`, { metadata: { subject } });
    if (input.requestedVersion <= newest) {
      throw new SkeinError(
        'SCHEMA_OPERATION_NOT_PERMITTED',
        `Version ${input.requestedVersion} of subject ${subject} exists or is older than version ${newest}`,
        {
          metadata: { subject },
        },
      );
    }
    version = input.requestedVersion;
  }
  if (version > MAX_VERSION)
    throw new SkeinError('SCHEMA_OPERATION_NOT_PERMITTED', `Subject ${subject} has no version numbers left`, { metadata: { subject } });
  const added: SubjectVersion = { version, id: input.id, deleted: false };
  return { kind: 'append', version: added, next: { versions: [...versions, added] } };
}

/** Soft delete of a whole subject: every live version is marked deleted; answers their numbers. */
export function softDeleteSubject(subject: string, state: SubjectState | undefined, mode: Mode): { next: SubjectState; deleted: number[] } {
  ensureWritable(subject, mode);
  if (!subjectExists(state, true)) throw subjectNotFound(subject);
  const live = liveVersions(state!);
  if (live.length === 0) {
    throw new SkeinError('SUBJECT_SOFT_DELETED', `Subject '${subject}' was soft deleted. Set permanent=true to delete permanently`, { metadata: { subject } });
  }
  return { next: { versions: state!.versions.map((v) => ({ ...v, deleted: true })) }, deleted: live.map((v) => v.version) };
}

/** Permanent delete of a whole subject: allowed only once every version is soft-deleted; answers the numbers removed. */
export function hardDeleteSubject(subject: string, state: SubjectState | undefined, mode: Mode): { removed: SubjectVersion[] } {
  ensureWritable(subject, mode);
  if (!subjectExists(state, true)) throw subjectNotFound(subject);
  if (state!.versions.some((v) => !v.deleted)) {
    throw new SkeinError('SUBJECT_NOT_SOFT_DELETED', `Subject '${subject}' was not deleted first before being permanently deleted`, { metadata: { subject } });
  }
  return { removed: state!.versions };
}

export function softDeleteVersion(
  subject: string,
  state: SubjectState | undefined,
  selector: VersionSelector,
  mode: Mode,
): { next: SubjectState; version: SubjectVersion } {
  ensureWritable(subject, mode);
  if (!subjectExists(state, true)) throw subjectNotFound(subject);
  // "latest" names the newest live version; a number may name a soft-deleted one (then 40406).
  const target = selector === 'latest' ? liveVersions(state!).at(-1) : state!.versions.find((v) => v.version === selector);
  if (!target) throw versionNotFound(subject, selector);
  if (target.deleted) {
    throw new SkeinError(
      'SCHEMA_VERSION_SOFT_DELETED',
      `Subject '${subject}' Version ${target.version} was soft deleted. Set permanent=true to delete permanently`,
      {
        metadata: { subject, version: String(target.version) },
      },
    );
  }
  return { next: { versions: state!.versions.map((v) => (v.version === target.version ? { ...v, deleted: true } : v)) }, version: target };
}

export function hardDeleteVersion(
  subject: string,
  state: SubjectState | undefined,
  selector: VersionSelector,
  mode: Mode,
): { next: SubjectState; version: SubjectVersion } {
  ensureWritable(subject, mode);
  if (!subjectExists(state, true)) throw subjectNotFound(subject);
  const target = selector === 'latest' ? state!.versions.at(-1) : state!.versions.find((v) => v.version === selector);
  if (!target) throw versionNotFound(subject, selector);
  if (!target.deleted) {
    throw new SkeinError(
      'SCHEMA_VERSION_NOT_SOFT_DELETED',
      `Subject '${subject}' Version ${target.version} was not deleted first before being permanently deleted`,
      {
        metadata: { subject, version: String(target.version) },
      },
    );
  }
  return { next: { versions: state!.versions.filter((v) => v.version !== target.version) }, version: target };
}
