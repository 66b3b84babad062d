/**
 * Broker-side schema validation (topic configs `key.schema.validation` / `value.schema.validation`,
 * docs/schemas.md): a produced record's key or value must start with the schema registry header
 * (magic byte 0, 4-byte schema id) and the id must be registered, with a live version, under the
 * topic's subject by the topic name strategy (`<topic>-key`, `<topic>-value`).
 *
 * The framing scan (record-framing.ts) collects the distinct ids of a batch in the pass it already
 * makes; this module decides on them. It asks the registry which subjects use an id
 * (`SchemaUsageSource`, gRPC GetSchemaUsages) and caches the answer per id:
 * - an answer that includes the subject is trusted for `positiveTtlMs` (a version deleted since is
 *   still accepted until then);
 * - an unknown id, or an answer without the subject, refuses for `negativeTtlMs` only (a schema
 *   registered a moment later is accepted after that), then the registry is asked again;
 * - concurrent batches waiting for the same id share one lookup.
 * A batch whose ids are all cached is decided synchronously (no promise on the produce path).
 *
 * Fails closed: when no registry answers, the batch is refused with UNAVAILABLE (retriable; a
 * producer retries it), never appended unchecked. Ids already cached keep being decided from the
 * cache while the registry is down.
 *
 * No I/O here: the source and the clock are passed in.
 */
import { SchemaIdScan } from '@skein/common/records/record-framing.js';
import type { SchemaAdmissionCheck } from '../log/batch-validation.js';
import { LogError } from '../log/log-error.js';
import type { Clock } from './timers.js';

export interface SchemaUsageSource {
  /** Subjects with a live version using `id`; undefined when the registry has no such id. Rejects when no registry answers. */
  subjectsOf(id: number): Promise<readonly string[] | undefined>;
}

export interface SchemaValidatorOptions {
  source: SchemaUsageSource;
  clock: Clock;
  /** How long an answer that allows an id under a subject is trusted. */
  positiveTtlMs?: number;
  /** How long an unknown id (or one not under the subject) is refused without asking again. */
  negativeTtlMs?: number;
  /** Ids remembered (oldest forgotten first). */
  maxEntries?: number;
}

interface Entry {
  /** Subjects using the id; undefined: the registry has no such id. */
  subjects: ReadonlySet<string> | undefined;
  atMs: number;
}

const MAX_SCHEMA_ID = 0x7fffffff;

export class SchemaValidator {
  private readonly entries = new Map<number, Entry>();
  private readonly inFlight = new Map<number, Promise<Entry>>();
  private readonly positiveTtlMs: number;
  private readonly negativeTtlMs: number;
  private readonly maxEntries: number;
  readonly stats = { cacheHits: 0, lookups: 0 };

  constructor(private readonly options: SchemaValidatorOptions) {
    this.positiveTtlMs = options.positiveTtlMs ?? 60_000;
    this.negativeTtlMs = options.negativeTtlMs ?? 1_000;
    this.maxEntries = options.maxEntries ?? 10_000;
  }

  /** The admission check of one batch of `topic` (ProduceAdmission.admit). */
  forTopic(topic: string, key: boolean, value: boolean): SchemaAdmissionCheck {
    return { scan: () => new SchemaIdScan(key, value), check: (ids) => this.check(topic, ids) };
  }

  /** Throws (or rejects with) SCHEMA_VALIDATION_FAILED, or UNAVAILABLE when no registry answers; undefined when accepted synchronously. */
  check(topic: string, ids: SchemaIdScan): Promise<void> | undefined {
    if (ids.missing) {
      const { record, field, problem } = ids.missing;
      throw new LogError(
        'SCHEMA_VALIDATION_FAILED',
        `record ${record} of the batch: its ${field} ${problem}; topic ${topic} has ${field}.schema.validation=true, so every ${field} must start with the schema registry header (magic byte 0, 4-byte schema id)`,
        { metadata: { topic, field, record: String(record) } },
      );
    }
    let pending: Array<Promise<void>> | undefined;
    try {
      for (const id of ids.valueIds) {
        const p = this.checkId(topic, 'value', id);
        if (p) (pending ??= []).push(p);
      }
      for (const id of ids.keyIds) {
        const p = this.checkId(topic, 'key', id);
        if (p) (pending ??= []).push(p);
      }
    } catch (err) {
      // Refused from the cache: the lookups already started still fill the cache, unobserved.
      for (const p of pending ?? []) p.catch(() => undefined);
      throw err;
    }
    if (!pending) return undefined;
    // allSettled first: a refusal is reported only once every lookup of the batch has ended.
    return Promise.allSettled(pending).then((results) => {
      for (const r of results) if (r.status === 'rejected') throw r.reason;
    });
  }

  private checkId(topic: string, field: 'key' | 'value', id: number): Promise<void> | undefined {
    const subject = `${topic}-${field}`;
    if (id < 1 || id > MAX_SCHEMA_ID) throw refusal(topic, field, id, subject, undefined);
    const now = this.options.clock.nowMs();
    const known = this.entries.get(id);
    if (known) {
      const allowed = known.subjects?.has(subject) ?? false;
      const age = now - known.atMs;
      if (age < (allowed ? this.positiveTtlMs : this.negativeTtlMs)) {
        this.stats.cacheHits++;
        if (allowed) return undefined;
        throw refusal(topic, field, id, subject, known.subjects);
      }
    }
    return this.lookup(id).then((fresh) => {
      if (!fresh.subjects?.has(subject)) throw refusal(topic, field, id, subject, fresh.subjects);
    });
  }

  private lookup(id: number): Promise<Entry> {
    const running = this.inFlight.get(id);
    if (running) return running;
    this.stats.lookups++;
    const p = this.options.source.subjectsOf(id).then(
      (subjects) => {
        const entry = { subjects: subjects ? new Set(subjects) : undefined, atMs: this.options.clock.nowMs() };
        this.entries.delete(id);
        if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
        this.entries.set(id, entry);
        return entry;
      },
      (err: unknown) => {
        throw new LogError('UNAVAILABLE', `cannot validate schema id ${id}: the schema registry is unreachable (${(err as Error).message}); retry`, {
          cause: err,
          metadata: { schema_id: String(id) },
        });
      },
    );
    this.inFlight.set(id, p);
    const forget = () => this.inFlight.delete(id);
    p.then(forget, forget);
    return p;
  }
}

function refusal(topic: string, field: 'key' | 'value', id: number, subject: string, subjects: ReadonlySet<string> | undefined): LogError {
  const why =
    subjects === undefined
      ? 'is unknown to the schema registry'
      : `is not registered under subject ${subject}${subjects.size > 0 ? ` (only under ${[...subjects].sort().slice(0, 5).join(', ')})` : ''}`;
  return new LogError('SCHEMA_VALIDATION_FAILED', `${field} schema id ${id} ${why}; topic ${topic} has ${field}.schema.validation=true`, {
    metadata: { topic, field, schema_id: String(id), subject },
  });
}
