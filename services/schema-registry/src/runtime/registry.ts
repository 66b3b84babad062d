/**
 * The registry's operations, shared by both front doors (gRPC and Confluent REST): read state from
 * the store, decide with the pure domain (subject.ts, compatibility.ts), write with a
 * compare-and-set, and answer. Nothing is answered before it is durable.
 *
 * Caching: a schema id names immutable content, so `id → schema` (and its parsed form) is cached
 * without expiry; a miss always reads the store before answering SCHEMA_NOT_FOUND, so a schema
 * registered on another instance is found at once. The cache forgets an id when the store deletes
 * it (a watch on ids/), so a permanent delete on any instance is seen by all. Subject state, modes
 * and configs are read from the store on every request (they change; reads of them are rare next to
 * id lookups, which is what serializers do per record).
 *
 * Authorization: every operation names the subject actions it needs and asks `authorize` (resource
 * type 'subject', Kafka-style operations: read, write, delete, describe_configs, alter_configs;
 * global config/mode use the cluster resource). The default allows everything; the service shell's
 * ACL authorizer plugs in here (see main.ts).
 */
import { SkeinError } from '@skein/common/errors.js';
import type { WatchHandle } from '@skein/common/store/types.js';
import { compatibilityIssues, parseSchema } from '../domain/compatibility.js';
import type { ParsedSchema, ResolvedReference } from '../domain/schema-format.js';
import {
  decideRegistration,
  effectiveCompatibility,
  effectiveMode,
  ensureWritable,
  hardDeleteSubject,
  hardDeleteVersion,
  listVersions,
  selectVersion,
  softDeleteSubject,
  softDeleteVersion,
  subjectExists,
  subjectNotFound,
  versionsToCheck,
} from '../domain/subject.js';
import {
  type CompatibilityLevel,
  type Mode,
  type SchemaRecord,
  type SchemaReference,
  type SchemaType,
  type SubjectState,
  type VersionSelector,
  validateSubject,
} from '../domain/types.js';
import { RegistryStore, type StoredSchema, schemaHash } from '../store/registry-store.js';

/** An action a request needs, in the ACL model's terms (libs/common/src/security/authorizer.ts). */
export interface SubjectAction {
  resourceType: 'subject' | 'cluster';
  /** The subject, or the cluster's name for global config and mode. */
  resourceName: string;
  operation: 'read' | 'write' | 'delete' | 'describe' | 'describe_configs' | 'alter_configs';
}

/** Who is calling, as the front door authenticated it (undefined: anonymous / no authentication). */
export interface Caller {
  /** `User:alice`, for messages. */
  principal?: string;
  /** The principal as the ACL authorizer sees it (internal and super-user flags included); absent: anonymous. */
  identity?: { type: string; name: string; internal?: boolean; superUser?: boolean };
  /** For the audit log: `skein.schema.v1.SchemaRegistryService/RegisterSchema` or `POST /subjects/{}/versions`, and the client address. */
  rpc?: string;
  client?: string;
}

/**
 * Throws SkeinError (AUTHORIZATION_FAILED, CLUSTER_AUTHORIZATION_FAILED) to refuse; the default
 * allows everything. `quiet`: a filter (listing), not a request: a refusal is not audited.
 */
export type SubjectAuthorizer = (caller: Caller, actions: readonly SubjectAction[], options?: { quiet?: boolean }) => void | Promise<void>;

export const CLUSTER = 'skein-cluster';

export interface SchemaInput {
  schema: string;
  schemaType?: SchemaType;
  references?: SchemaReference[];
}

export interface RegisterInput extends SchemaInput {
  /** IMPORT mode only. */
  id?: number;
  /** IMPORT mode only. */
  version?: number;
}

export interface SubjectVersionView extends SchemaRecord {
  subject: string;
  version: number;
  id: number;
  deleted: boolean;
}

export interface RegistryOptions {
  store: RegistryStore;
  authorize?: SubjectAuthorizer;
  /** Upper bound of cached ids (oldest forgotten first). */
  cacheSize?: number;
  /** Attempts at a compare-and-set before answering CONCURRENT_MODIFICATION (retriable). */
  maxCasAttempts?: number;
}

interface CachedSchema {
  stored: StoredSchema;
  parsed?: ParsedSchema;
}

export interface RegistryStats {
  cacheHits: number;
  cacheMisses: number;
}

export class Registry {
  readonly store: RegistryStore;
  private readonly authorize: SubjectAuthorizer;
  /** An authorizer was installed (the ACLs are enforced). */
  private readonly enforcing: boolean;
  private readonly cache = new Map<number, CachedSchema>();
  private readonly cacheSize: number;
  private readonly maxCasAttempts: number;
  private watch?: WatchHandle;
  readonly stats: RegistryStats = { cacheHits: 0, cacheMisses: 0 };

  constructor(options: RegistryOptions) {
    this.store = options.store;
    this.authorize = options.authorize ?? (() => undefined);
    this.enforcing = options.authorize !== undefined;
    this.cacheSize = options.cacheSize ?? 10_000;
    this.maxCasAttempts = options.maxCasAttempts ?? 64;
  }

  /** Follows deletions of ids so every instance forgets a permanently deleted schema. */
  async start(): Promise<void> {
    const prefix = this.store.keys.ids();
    this.watch = await this.store.store.watchPrefix(prefix, {
      onBatch: (batch) => {
        for (const e of batch.events) if (e.type === 'delete') this.cache.delete(Number(e.key.slice(prefix.length)));
      },
      // A broken watch only costs freshness of deletes: drop the whole cache and go on without it.
      onError: () => {
        this.cache.clear();
        this.watch = undefined;
      },
    });
  }

  async close(): Promise<void> {
    await this.watch?.close();
  }

  // ---- schemas by id -------------------------------------------------------------------------

  private remember(id: number, entry: CachedSchema): void {
    if (this.cacheSize <= 0) return; // --schema-cache-size 0: every lookup reads the store
    if (this.cache.size >= this.cacheSize) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(id, entry);
  }

  private async cached(id: number): Promise<CachedSchema | undefined> {
    const hit = this.cache.get(id);
    if (hit) {
      this.stats.cacheHits++;
      return hit;
    }
    this.stats.cacheMisses++;
    const stored = await this.store.schemaById(id);
    if (!stored) return undefined;
    const entry = { stored };
    this.remember(id, entry);
    return entry;
  }

  private async parsedById(id: number): Promise<ParsedSchema> {
    const entry = await this.cached(id);
    if (!entry) throw schemaNotFound(id);
    entry.parsed ??= parseSchema(entry.stored.schemaType, entry.stored.schema, await this.resolveReferences(entry.stored.references));
    return entry.parsed;
  }

  /**
   * GET /schemas/ids/{id}: a cache miss reads the store before answering 40403. Needs read on the
   * given subject or, without one, on some subject using the id (checked only when an authorizer
   * is installed: it costs a read of the id's usages).
   */
  async schemaById(caller: Caller, id: number, subject?: string): Promise<SchemaRecord> {
    if (subject !== undefined) await this.authorize(caller, [{ resourceType: 'subject', resourceName: subject, operation: 'read' }]);
    const entry = await this.cached(id);
    if (!entry) throw schemaNotFound(id);
    if (subject === undefined && this.enforcing) await this.authorizeAnySubject(caller, id);
    const { schemaType, schema, references } = entry.stored;
    return { schemaType, schema, references };
  }

  /** GET /schemas/ids/{id}/versions: every subject version using the id. */
  async versionsById(caller: Caller, id: number, includeDeleted: boolean): Promise<Array<{ subject: string; version: number }>> {
    if (!(await this.cached(id))) throw schemaNotFound(id);
    const out: Array<{ subject: string; version: number }> = [];
    for (const u of await this.store.usages(id)) {
      const state = (await this.store.subject(u.subject)).value;
      const v = state?.versions.find((x) => x.version === u.version);
      if (v && (includeDeleted || !v.deleted)) out.push(u);
    }
    await this.authorize(
      caller,
      [...new Set(out.map((u) => u.subject))].map((s) => ({ resourceType: 'subject', resourceName: s, operation: 'describe' })),
    );
    return out.sort((a, b) => (a.subject === b.subject ? a.version - b.version : a.subject < b.subject ? -1 : 1));
  }

  /** Read on at least one subject using `id`; the refusal names the first of them. */
  private async authorizeAnySubject(caller: Caller, id: number): Promise<void> {
    const subjects = [...new Set((await this.store.usages(id)).map((u) => u.subject))].sort();
    for (const s of subjects) {
      try {
        await this.authorize(caller, [{ resourceType: 'subject', resourceName: s, operation: 'read' }], { quiet: true });
        return;
      } catch {}
    }
    if (subjects.length === 0) throw schemaNotFound(id);
    // None allows it: refused (and audited) naming the first subject.
    await this.authorize(caller, [{ resourceType: 'subject', resourceName: subjects[0]!, operation: 'read' }]);
  }

  // ---- references -----------------------------------------------------------------------------

  private async resolveReferences(refs: readonly SchemaReference[], depth = 0): Promise<ResolvedReference[]> {
    if (depth > 32) throw new SkeinError('INVALID_SCHEMA', 'Invalid schema: references nest deeper than 32 (a cycle?)');
    const out: ResolvedReference[] = [];
    for (const ref of refs) {
      if (typeof ref?.name !== 'string' || typeof ref.subject !== 'string' || !Number.isInteger(ref.version)) {
        throw new SkeinError('INVALID_SCHEMA', 'Invalid schema: a reference needs name, subject and version');
      }
      const state = (await this.store.subject(ref.subject)).value;
      let id: number;
      let version: number;
      try {
        // "latest" (-1) is pinned to the version it names now: stored references are concrete.
        ({ id, version } = selectVersion(ref.subject, state, ref.version === -1 ? 'latest' : ref.version, false));
      } catch (err) {
        throw new SkeinError('INVALID_SCHEMA', `Invalid schema: reference ${ref.name} names ${ref.subject} version ${ref.version}, which does not exist`, {
          cause: err,
        });
      }
      const entry = await this.cached(id);
      if (!entry) throw new SkeinError('INVALID_SCHEMA', `Invalid schema: reference ${ref.name} names schema ${id}, which does not exist`);
      out.push({
        name: ref.name,
        subject: ref.subject,
        version,
        record: entry.stored,
        resolved: await this.resolveReferences(entry.stored.references, depth + 1),
      });
    }
    return out;
  }

  private async parseInput(input: SchemaInput): Promise<{ parsed: ParsedSchema; hash: string }> {
    if (typeof input.schema !== 'string') throw new SkeinError('INVALID_SCHEMA', 'Invalid schema: the schema must be a string');
    const schemaType = input.schemaType ?? 'AVRO';
    const references = input.references ?? [];
    const parsed = parseSchema(schemaType, input.schema, await this.resolveReferences(references));
    return { parsed, hash: schemaHash(schemaType, parsed.canonical, parsed.references) };
  }

  // ---- subjects ------------------------------------------------------------------------------

  private async modeAndLevel(subject: string) {
    const [gm, sm, gc, sc] = await Promise.all([
      this.store.globalMode(),
      this.store.subjectMode(subject),
      this.store.globalConfig(),
      this.store.subjectConfig(subject),
    ]);
    return {
      mode: effectiveMode(gm.value?.mode, sm.value?.mode),
      level: effectiveCompatibility(gc.value?.compatibility, sc.value?.compatibility),
      // Compared by a write, so it is decided on the mode and level in force when it commits.
      compare: [
        this.store.unchanged(this.store.keys.globalMode(), gm.revision),
        this.store.unchanged(this.store.keys.mode(subject), sm.revision),
        this.store.unchanged(this.store.keys.globalConfig(), gc.revision),
        this.store.unchanged(this.store.keys.config(subject), sc.revision),
      ],
    };
  }

  private async previousSchemas(state: SubjectState | undefined, level: CompatibilityLevel) {
    return Promise.all(versionsToCheck(state, level).map(async (v) => ({ version: v.version, schema: await this.parsedById(v.id) })));
  }

  /** POST /subjects/{s}/versions. Same schema, same id (under any subject); same subject, same version. */
  async register(caller: Caller, subjectIn: string, input: RegisterInput): Promise<{ id: number; version: number }> {
    const subject = validateSubject(subjectIn);
    await this.authorize(caller, [{ resourceType: 'subject', resourceName: subject, operation: 'write' }]);
    const { parsed, hash } = await this.parseInput(input);
    const keys = this.store.keys;
    for (let attempt = 0; attempt < this.maxCasAttempts; attempt++) {
      const [subjectRead, hashRead, ctx] = await Promise.all([this.store.subject(subject), this.store.idByHash(hash), this.modeAndLevel(subject)]);
      const state = subjectRead.value;
      ensureWritable(subject, ctx.mode);
      const compare = [
        ...ctx.compare,
        this.store.unchanged(keys.subject(subject), subjectRead.revision),
        this.store.unchanged(keys.hash(hash), hashRead.revision),
      ];
      const ops = [];
      let id = hashRead.value;
      if (input.id !== undefined) {
        // IMPORT: the caller's id, which must be free or already hold this very schema.
        if (ctx.mode !== 'IMPORT')
          throw new SkeinError('SCHEMA_OPERATION_NOT_PERMITTED', `Subject ${subject} is not in import mode`, { metadata: { subject } });
        if (id !== undefined && id !== input.id) {
          throw new SkeinError('SCHEMA_OPERATION_NOT_PERMITTED', `Schema is already registered with id ${id} instead of id ${input.id}`, {
            metadata: { subject },
          });
        }
        const holder = await this.store.schemaById(input.id);
        if (holder && holder.hash !== hash)
          throw new SkeinError('SCHEMA_OPERATION_NOT_PERMITTED', `Overwrite new schema with id ${input.id} is not permitted.`, { metadata: { subject } });
        if (id === undefined) {
          id = input.id;
          const next = await this.store.nextId();
          compare.push(this.store.unchanged(keys.nextId(), next.revision), this.store.unchanged(keys.id(id), 0n));
          ops.push(
            this.store.put(keys.id(id), {
              schemaType: parsed.schemaType,
              schema: parsed.canonical,
              references: [...parsed.references],
              hash,
            } satisfies StoredSchema),
            this.store.put(keys.hash(hash), id),
          );
          if (id >= next.value!) ops.push(this.store.put(keys.nextId(), id + 1));
        }
      }
      const existingInSubject = id !== undefined ? state?.versions.find((v) => !v.deleted && v.id === id) : undefined;
      if (!existingInSubject && ctx.mode !== 'IMPORT') {
        const issues = compatibilityIssues(ctx.level, parsed, await this.previousSchemas(state, ctx.level));
        if (issues.length > 0) {
          throw new SkeinError(
            'INCOMPATIBLE_SCHEMA',
            `Schema being registered is incompatible with an earlier schema for subject "${subject}", details: [${issues.join('; ')}]`,
            {
              metadata: { subject, level: ctx.level },
            },
          );
        }
      }
      if (id === undefined) {
        const next = await this.store.nextId();
        id = next.value!;
        compare.push(this.store.unchanged(keys.nextId(), next.revision));
        ops.push(
          this.store.put(keys.nextId(), id + 1),
          this.store.put(keys.id(id), {
            schemaType: parsed.schemaType,
            schema: parsed.canonical,
            references: [...parsed.references],
            hash,
          } satisfies StoredSchema),
          this.store.put(keys.hash(hash), id),
        );
      }
      const decision = decideRegistration({ subject, state, mode: ctx.mode, id, requestedId: input.id, requestedVersion: input.version });
      if (decision.kind === 'existing') return { id, version: decision.version.version };
      ops.push(this.store.put(keys.subject(subject), decision.next), this.store.put(keys.usage(id, subject, decision.version.version), ''));
      for (const ref of parsed.references) ops.push(this.store.put(keys.referencedBy(ref.subject, ref.version, id), ''));
      if (await this.store.commit(compare, ops)) {
        // The serializer that registered it asks for it by id next: keep it (ids are immutable).
        if (!this.cache.has(id))
          this.remember(id, { stored: { schemaType: parsed.schemaType, schema: parsed.canonical, references: [...parsed.references], hash }, parsed });
        return { id, version: decision.version.version };
      }
    }
    throw new SkeinError('CONCURRENT_MODIFICATION', `registration under ${subject} lost ${this.maxCasAttempts} compare-and-set races in a row; retry`);
  }

  /** POST /subjects/{s}: the version of the subject holding this schema. */
  async lookup(caller: Caller, subject: string, input: SchemaInput, includeDeleted: boolean): Promise<SubjectVersionView> {
    await this.authorize(caller, [{ resourceType: 'subject', resourceName: subject, operation: 'read' }]);
    const state = (await this.store.subject(subject)).value;
    if (!subjectExists(state, includeDeleted)) throw subjectNotFound(subject);
    const { parsed, hash } = await this.parseInput(input);
    const id = (await this.store.idByHash(hash)).value;
    const found = id === undefined ? undefined : [...state!.versions].reverse().find((v) => v.id === id && (includeDeleted || !v.deleted));
    if (!found) throw new SkeinError('SCHEMA_NOT_FOUND', 'Schema not found', { metadata: { subject } });
    return {
      subject,
      version: found.version,
      id: found.id,
      deleted: found.deleted,
      schemaType: parsed.schemaType,
      schema: parsed.canonical,
      references: [...parsed.references],
    };
  }

  async listSubjects(caller: Caller, options: { includeDeleted?: boolean; prefix?: string } = {}): Promise<string[]> {
    const subjects = await this.store.subjects();
    const names = [...subjects]
      .filter(([s, state]) => s.startsWith(options.prefix ?? '') && subjectExists(state, options.includeDeleted ?? false))
      .map(([s]) => s);
    const visible: string[] = [];
    // Listing shows only subjects the caller may describe (as ListTopics does).
    for (const s of names.sort()) {
      try {
        await this.authorize(caller, [{ resourceType: 'subject', resourceName: s, operation: 'describe' }], { quiet: true });
        visible.push(s);
      } catch {}
    }
    return visible;
  }

  async listVersions(caller: Caller, subject: string, includeDeleted: boolean): Promise<number[]> {
    await this.authorize(caller, [{ resourceType: 'subject', resourceName: subject, operation: 'describe' }]);
    return listVersions(subject, (await this.store.subject(subject)).value, includeDeleted);
  }

  async getVersion(caller: Caller, subject: string, selector: VersionSelector, includeDeleted: boolean): Promise<SubjectVersionView> {
    await this.authorize(caller, [{ resourceType: 'subject', resourceName: subject, operation: 'read' }]);
    const v = selectVersion(subject, (await this.store.subject(subject)).value, selector, includeDeleted);
    const entry = await this.cached(v.id);
    if (!entry) throw schemaNotFound(v.id);
    const { schemaType, schema, references } = entry.stored;
    return { subject, version: v.version, id: v.id, deleted: v.deleted, schemaType, schema, references };
  }

  async referencedBy(caller: Caller, subject: string, selector: VersionSelector): Promise<number[]> {
    const v = await this.getVersion(caller, subject, selector, true);
    return this.store.referencedBy(subject, v.version);
  }

  /** DELETE /subjects/{s}: the versions deleted. A permanent delete needs a soft delete first. */
  async deleteSubject(caller: Caller, subject: string, permanent: boolean): Promise<number[]> {
    await this.authorize(caller, [{ resourceType: 'subject', resourceName: subject, operation: 'delete' }]);
    for (let attempt = 0; attempt < this.maxCasAttempts; attempt++) {
      const [read, ctx] = await Promise.all([this.store.subject(subject), this.modeAndLevel(subject)]);
      const compare = [...ctx.compare, this.store.unchanged(this.store.keys.subject(subject), read.revision)];
      if (!permanent) {
        const { next, deleted } = softDeleteSubject(subject, read.value, ctx.mode);
        for (const v of deleted) await this.ensureNotReferenced(subject, v);
        if (await this.store.commit(compare, [this.store.put(this.store.keys.subject(subject), next)])) return deleted;
        continue;
      }
      const { removed } = hardDeleteSubject(subject, read.value, ctx.mode);
      for (const v of removed) await this.ensureNotReferenced(subject, v.version);
      const ops = [
        this.store.del(this.store.keys.subject(subject)),
        this.store.del(this.store.keys.config(subject)),
        this.store.del(this.store.keys.mode(subject)),
      ];
      for (const v of removed) ops.push(...(await this.releaseUsage(v.id, subject, v.version, compare)));
      if (await this.store.commit(compare, ops)) return removed.map((v) => v.version);
    }
    throw new SkeinError('CONCURRENT_MODIFICATION', `delete of ${subject} lost ${this.maxCasAttempts} compare-and-set races in a row; retry`);
  }

  async deleteVersion(caller: Caller, subject: string, selector: VersionSelector, permanent: boolean): Promise<number> {
    await this.authorize(caller, [{ resourceType: 'subject', resourceName: subject, operation: 'delete' }]);
    for (let attempt = 0; attempt < this.maxCasAttempts; attempt++) {
      const [read, ctx] = await Promise.all([this.store.subject(subject), this.modeAndLevel(subject)]);
      const compare = [...ctx.compare, this.store.unchanged(this.store.keys.subject(subject), read.revision)];
      const { next, version } = permanent
        ? hardDeleteVersion(subject, read.value, selector, ctx.mode)
        : softDeleteVersion(subject, read.value, selector, ctx.mode);
      await this.ensureNotReferenced(subject, version.version);
      const ops = [next.versions.length > 0 ? this.store.put(this.store.keys.subject(subject), next) : this.store.del(this.store.keys.subject(subject))];
      if (permanent) ops.push(...(await this.releaseUsage(version.id, subject, version.version, compare)));
      if (await this.store.commit(compare, ops)) return version.version;
    }
    throw new SkeinError('CONCURRENT_MODIFICATION', `delete of ${subject} lost ${this.maxCasAttempts} compare-and-set races in a row; retry`);
  }

  private async ensureNotReferenced(subject: string, version: number): Promise<void> {
    const by = await this.store.referencedBy(subject, version);
    if (by.length > 0) {
      throw new SkeinError(
        'SCHEMA_REFERENCE_EXISTS',
        `One or more references exist to the schema {subject=${subject},version=${version}}: ids ${by.join(', ')}`,
        {
          metadata: { subject, version: String(version) },
        },
      );
    }
  }

  /**
   * Ops that drop one usage of `id`; when it was the last, the schema itself (id, hash, and the
   * referenced-by marks of its references) goes too, compared so a registration racing to reuse
   * it makes one of the two retry.
   */
  private async releaseUsage(id: number, subject: string, version: number, compare: ReturnType<RegistryStore['unchanged']>[]) {
    const keys = this.store.keys;
    const ops = [this.store.del(keys.usage(id, subject, version))];
    const others = (await this.store.usages(id)).filter((u) => !(u.subject === subject && u.version === version));
    if (others.length > 0) return ops;
    const stored = await this.store.schemaById(id);
    if (!stored) return ops;
    const hashRead = await this.store.idByHash(stored.hash);
    compare.push(this.store.unchanged(keys.hash(stored.hash), hashRead.revision));
    ops.push(this.store.del(keys.id(id)), this.store.del(keys.hash(stored.hash)));
    for (const ref of stored.references) ops.push(this.store.del(keys.referencedBy(ref.subject, ref.version, id)));
    return ops;
  }

  // ---- compatibility, config, mode ----------------------------------------------------------

  /** POST /compatibility/subjects/{s}/versions/{v} (or every version when `selector` is 'all'). */
  async testCompatibility(caller: Caller, subject: string, selector: VersionSelector | 'all', input: SchemaInput): Promise<string[]> {
    await this.authorize(caller, [{ resourceType: 'subject', resourceName: subject, operation: 'read' }]);
    const { parsed } = await this.parseInput(input);
    const [state, ctx] = await Promise.all([this.store.subject(subject).then((r) => r.value), this.modeAndLevel(subject)]);
    let against: Array<{ version: number; schema: ParsedSchema }>;
    if (selector === 'all') {
      // Confluent: "all" means the versions the subject's level checks against.
      against = await this.previousSchemas(state, ctx.level);
    } else {
      const v = selectVersion(subject, state, selector, false);
      against = [{ version: v.version, schema: await this.parsedById(v.id) }];
    }
    // A single-version check applies the level's direction to that version whatever its transitivity.
    return compatibilityIssues(ctx.level, parsed, against);
  }

  async getConfig(caller: Caller, subject: string | undefined, defaultToGlobal: boolean): Promise<CompatibilityLevel> {
    await this.authorize(caller, [
      subject === undefined
        ? { resourceType: 'cluster', resourceName: CLUSTER, operation: 'describe_configs' }
        : { resourceType: 'subject', resourceName: subject, operation: 'describe_configs' },
    ]);
    const global = (await this.store.globalConfig()).value?.compatibility;
    if (subject === undefined) return effectiveCompatibility(global, undefined);
    const own = (await this.store.subjectConfig(subject)).value?.compatibility;
    if (own) return own;
    if (!defaultToGlobal) {
      throw new SkeinError('SUBJECT_COMPATIBILITY_NOT_CONFIGURED', `Subject '${subject}' does not have subject-level compatibility configured`, {
        metadata: { subject },
      });
    }
    return effectiveCompatibility(global, undefined);
  }

  async setConfig(caller: Caller, subject: string | undefined, level: CompatibilityLevel): Promise<CompatibilityLevel> {
    await this.authorize(caller, [
      subject === undefined
        ? { resourceType: 'cluster', resourceName: CLUSTER, operation: 'alter_configs' }
        : { resourceType: 'subject', resourceName: subject, operation: 'alter_configs' },
    ]);
    if (subject !== undefined) validateSubject(subject);
    const key = subject === undefined ? this.store.keys.globalConfig() : this.store.keys.config(subject);
    await this.store.commit([], [this.store.put(key, { compatibility: level })]);
    return level;
  }

  /** DELETE /config/{s}: the subject falls back to the global level; answers the level it had. */
  async deleteConfig(caller: Caller, subject: string | undefined): Promise<CompatibilityLevel> {
    const previous = await this.getConfig(caller, subject, true);
    await this.authorize(caller, [
      subject === undefined
        ? { resourceType: 'cluster', resourceName: CLUSTER, operation: 'alter_configs' }
        : { resourceType: 'subject', resourceName: subject, operation: 'alter_configs' },
    ]);
    await this.store.commit([], [this.store.del(subject === undefined ? this.store.keys.globalConfig() : this.store.keys.config(subject))]);
    return previous;
  }

  async getMode(caller: Caller, subject: string | undefined, defaultToGlobal: boolean): Promise<Mode> {
    await this.authorize(caller, [
      subject === undefined
        ? { resourceType: 'cluster', resourceName: CLUSTER, operation: 'describe_configs' }
        : { resourceType: 'subject', resourceName: subject, operation: 'describe_configs' },
    ]);
    const global = (await this.store.globalMode()).value?.mode;
    if (subject === undefined) return global ?? 'READWRITE';
    const own = (await this.store.subjectMode(subject)).value?.mode;
    if (own) return own;
    if (!defaultToGlobal)
      throw new SkeinError('SUBJECT_MODE_NOT_CONFIGURED', `Subject '${subject}' does not have subject-level mode configured`, { metadata: { subject } });
    return global ?? 'READWRITE';
  }

  /** PUT /mode: IMPORT only on an empty registry (or subject) unless forced, as in Confluent. */
  async setMode(caller: Caller, subject: string | undefined, mode: Mode, force: boolean): Promise<Mode> {
    await this.authorize(caller, [
      subject === undefined
        ? { resourceType: 'cluster', resourceName: CLUSTER, operation: 'alter_configs' }
        : { resourceType: 'subject', resourceName: subject, operation: 'alter_configs' },
    ]);
    if (mode === 'IMPORT' && !force) {
      const nonEmpty = subject === undefined ? await this.store.hasSubjects() : subjectExists((await this.store.subject(subject)).value, true);
      if (nonEmpty) throw new SkeinError('SCHEMA_OPERATION_NOT_PERMITTED', 'Cannot import since found existing subjects');
    }
    const key = subject === undefined ? this.store.keys.globalMode() : this.store.keys.mode(subject);
    await this.store.commit([], [this.store.put(key, { mode })]);
    return mode;
  }

  async deleteMode(caller: Caller, subject: string): Promise<Mode> {
    const previous = await this.getMode(caller, subject, true);
    await this.authorize(caller, [{ resourceType: 'subject', resourceName: subject, operation: 'alter_configs' }]);
    await this.store.commit([], [this.store.del(this.store.keys.mode(subject))]);
    return previous;
  }
}

function schemaNotFound(id: number): SkeinError {
  return new SkeinError('SCHEMA_NOT_FOUND', `Schema ${id} not found`, { metadata: { id: String(id) } });
}
