/**
 * The registry's durable state in the metadata store (etcd in production). Every instance reads and
 * writes the same keys; there is no leader. Keys under `<prefix>schema-registry/`:
 *
 *   ids/next                         the next global id to hand out (decimal text)
 *   ids/<id>                         StoredSchema JSON: type, canonical text, references, hash
 *   hashes/<sha256>                  the id of the schema with that hash (type + canonical + references)
 *   subjects/<subject>               SubjectState JSON: the subject's versions
 *   usages/<id>/<subject>/<version>  "" — which subject versions use an id (GET /schemas/ids/{id}/versions)
 *   referenced-by/<subject>/<version>/<id>  "" — schemas whose references name that version
 *   global-config, config/<subject>  {"compatibility": LEVEL}
 *   global-mode, mode/<subject>      {"mode": MODE}
 *
 * (subjects are URI-encoded in keys, so a "/" in a subject name cannot split a key.)
 *
 * Ids are unique and monotonic because allocating one is a compare-and-set on `ids/next`; the same
 * schema gets the same id because the hash key is created in the same transaction, compared absent.
 * A registration also compares the subject key and the mode/config keys it read, so it is decided
 * on current state: two instances racing on a subject or a schema cannot both win, and the loser
 * re-reads and decides again (`RegistryStore.commit` returns false).
 */
import { createHash } from 'node:crypto';
import type { Compare, MetadataStore, TxnOp } from '@skein/common/store/types.js';
import type { CompatibilityLevel, Mode, SchemaRecord, SchemaReference, SchemaType, SubjectState } from '../domain/types.js';

export interface StoredSchema extends SchemaRecord {
  hash: string;
}

/** A value read at a revision (0n: the key was absent), for the compare of a later write. */
export interface Versioned<T> {
  value: T | undefined;
  revision: bigint;
}

const enc = (subject: string) => encodeURIComponent(subject);
const dec = (key: string) => decodeURIComponent(key);
const json = (v: unknown) => Buffer.from(JSON.stringify(v), 'utf8');
const EMPTY = Buffer.alloc(0);

/** The dedupe key: equal type, canonical text and references ⇒ the same schema ⇒ the same id. */
export function schemaHash(schemaType: SchemaType, canonical: string, references: readonly SchemaReference[]): string {
  const refs = references.map((r) => [r.name, r.subject, r.version]);
  return createHash('sha256')
    .update(JSON.stringify([schemaType, canonical, refs]))
    .digest('hex');
}

export class RegistryStore {
  readonly root: string;

  constructor(
    readonly store: MetadataStore,
    prefix: string,
  ) {
    this.root = `${prefix}schema-registry/`;
  }

  keys = {
    nextId: () => `${this.root}ids/next`,
    id: (id: number) => `${this.root}ids/${id}`,
    ids: () => `${this.root}ids/`,
    hash: (hash: string) => `${this.root}hashes/${hash}`,
    subject: (s: string) => `${this.root}subjects/${enc(s)}`,
    subjects: () => `${this.root}subjects/`,
    usage: (id: number, s: string, v: number) => `${this.root}usages/${id}/${enc(s)}/${v}`,
    usages: (id: number) => `${this.root}usages/${id}/`,
    referencedBy: (s: string, v: number, id: number) => `${this.root}referenced-by/${enc(s)}/${v}/${id}`,
    referencedByPrefix: (s: string, v: number) => `${this.root}referenced-by/${enc(s)}/${v}/`,
    globalConfig: () => `${this.root}global-config`,
    config: (s: string) => `${this.root}config/${enc(s)}`,
    globalMode: () => `${this.root}global-mode`,
    mode: (s: string) => `${this.root}mode/${enc(s)}`,
  };

  private async read<T>(key: string): Promise<Versioned<T>> {
    const kv = await this.store.get(key);
    return kv ? { value: JSON.parse(kv.value.toString('utf8')) as T, revision: kv.modRevision } : { value: undefined, revision: 0n };
  }

  async schemaById(id: number): Promise<StoredSchema | undefined> {
    return (await this.read<StoredSchema>(this.keys.id(id))).value;
  }

  async idByHash(hash: string): Promise<Versioned<number>> {
    return this.read<number>(this.keys.hash(hash));
  }

  async nextId(): Promise<Versioned<number>> {
    const v = await this.read<number>(this.keys.nextId());
    return { value: v.value ?? 1, revision: v.revision };
  }

  async subject(subject: string): Promise<Versioned<SubjectState>> {
    return this.read<SubjectState>(this.keys.subject(subject));
  }

  async subjects(): Promise<Map<string, SubjectState>> {
    const res = await this.store.range(this.keys.subjects());
    return new Map(res.kvs.map((kv) => [dec(kv.key.slice(this.keys.subjects().length)), JSON.parse(kv.value.toString('utf8')) as SubjectState]));
  }

  async usages(id: number): Promise<Array<{ subject: string; version: number }>> {
    const prefix = this.keys.usages(id);
    const res = await this.store.range(prefix);
    return res.kvs.map((kv) => {
      const [s, v] = kv.key.slice(prefix.length).split('/');
      return { subject: dec(s!), version: Number(v) };
    });
  }

  async referencedBy(subject: string, version: number): Promise<number[]> {
    const prefix = this.keys.referencedByPrefix(subject, version);
    const res = await this.store.range(prefix);
    return res.kvs.map((kv) => Number(kv.key.slice(prefix.length))).sort((a, b) => a - b);
  }

  async globalConfig(): Promise<Versioned<{ compatibility: CompatibilityLevel }>> {
    return this.read(this.keys.globalConfig());
  }
  async subjectConfig(subject: string): Promise<Versioned<{ compatibility: CompatibilityLevel }>> {
    return this.read(this.keys.config(subject));
  }
  async globalMode(): Promise<Versioned<{ mode: Mode }>> {
    return this.read(this.keys.globalMode());
  }
  async subjectMode(subject: string): Promise<Versioned<{ mode: Mode }>> {
    return this.read(this.keys.mode(subject));
  }

  /** Whether any schema was ever registered (IMPORT mode may only be entered on an empty registry). */
  async hasSubjects(): Promise<boolean> {
    return (await this.store.range(this.keys.subjects())).kvs.length > 0;
  }

  /** One compare-and-set transaction; false when a compared key changed meanwhile (re-read and decide again). */
  async commit(compare: Compare[], success: TxnOp[]): Promise<boolean> {
    return (await this.store.txn({ compare, success })).succeeded;
  }

  /** Compare: the key is still at the revision it was read at (0n: still absent). */
  unchanged(key: string, revision: bigint): Compare {
    return { key, target: 'modRevision', op: '=', value: revision };
  }

  put(key: string, value: unknown): TxnOp {
    return { type: 'put', key, value: value === '' ? EMPTY : json(value) };
  }

  del(key: string): TxnOp {
    return { type: 'delete', key };
  }
}
