/**
 * A client of the Confluent Schema Registry REST API (Skein's registry, or Confluent's): what the
 * serializers need, with Confluent's caching rules. A schema id names immutable content, so id →
 * schema and (subject, schema) → id are cached for the life of the client; "latest version of a
 * subject" changes, so it is cached for `latestCacheTtlMs` only. Errors keep Confluent's HTTP
 * status and error code (`SchemaRegistryError.errorCode`: 40401, 40403, 409, 42201...).
 */

export type SchemaType = 'AVRO' | 'PROTOBUF' | 'JSON';

export interface SchemaReference {
  name: string;
  subject: string;
  version: number;
}

export interface RegisteredSchema {
  schemaType: SchemaType;
  schema: string;
  references: SchemaReference[];
}

export interface SubjectVersion extends RegisteredSchema {
  subject: string;
  version: number;
  id: number;
}

export class SchemaRegistryError extends Error {
  constructor(
    readonly status: number,
    readonly errorCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'SchemaRegistryError';
  }
}

export interface SchemaRegistryClientOptions {
  /** Base URL, e.g. http://127.0.0.1:8081 (several comma-separated: tried in turn). */
  url: string;
  /** How long the latest version of a subject is cached (default 30 s; 0 disables). */
  latestCacheTtlMs?: number;
  /** Per-request timeout (default 10 s). */
  requestTimeoutMs?: number;
  /** Extra headers (e.g. Authorization). */
  headers?: Record<string, string>;
  /** Injected for tests. */
  nowMs?: () => number;
}

const CONTENT_TYPE = 'application/vnd.schemaregistry.v1+json';

const enc = encodeURIComponent;

export class SchemaRegistryClient {
  private readonly urls: string[];
  private readonly byId = new Map<number, Promise<RegisteredSchema>>();
  private readonly idBySchema = new Map<string, Promise<number>>();
  private readonly latest = new Map<string, { at: number; value: Promise<SubjectVersion> }>();
  private readonly ttl: number;
  private readonly now: () => number;
  /** Requests made (for tests and the benchmark: how well the caches work). */
  requests = 0;

  constructor(private readonly options: SchemaRegistryClientOptions) {
    this.urls = options.url
      .split(',')
      .map((u) => u.trim().replace(/\/+$/, ''))
      .filter(Boolean);
    if (this.urls.length === 0) throw new Error('SchemaRegistryClient needs a url');
    this.ttl = options.latestCacheTtlMs ?? 30_000;
    this.now = options.nowMs ?? Date.now;
  }

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let lastError: unknown;
    for (const base of this.urls) {
      this.requests++;
      let res: Response;
      try {
        res = await fetch(`${base}${path}`, {
          method,
          headers: { 'Content-Type': CONTENT_TYPE, Accept: CONTENT_TYPE, ...this.options.headers },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(this.options.requestTimeoutMs ?? 10_000),
        });
      } catch (err) {
        lastError = err; // unreachable: try the next URL
        continue;
      }
      const text = await res.text();
      let parsed: unknown;
      try {
        parsed = text === '' ? undefined : JSON.parse(text);
      } catch {
        parsed = text;
      }
      if (res.ok) return parsed as T;
      const e = (parsed ?? {}) as { error_code?: number; message?: string };
      throw new SchemaRegistryError(res.status, e.error_code ?? res.status, e.message ?? `HTTP ${res.status}`);
    }
    throw new SchemaRegistryError(503, 50003, `no schema registry reachable at ${this.urls.join(', ')}: ${(lastError as Error)?.message}`);
  }

  /** Caches a promise; a failed one is forgotten so the next call asks again. */
  private memo<K, V>(map: Map<K, Promise<V>>, key: K, load: () => Promise<V>): Promise<V> {
    let p = map.get(key);
    if (!p) {
      p = load();
      map.set(key, p);
      p.catch(() => map.delete(key));
    }
    return p;
  }

  async register(subject: string, schema: RegisteredSchema): Promise<number> {
    return this.memo(
      this.idBySchema,
      `r\u0000${subject}\u0000${schema.schemaType}\u0000${schema.schema}\u0000${JSON.stringify(schema.references)}`,
      async () => {
        const r = await this.request<{ id: number }>('POST', `/subjects/${enc(subject)}/versions`, body(schema));
        this.byId.set(r.id, Promise.resolve(schema));
        return r.id;
      },
    );
  }

  /** The id of a schema already registered under `subject` (SchemaRegistryError 40401/40403 otherwise). */
  async lookup(subject: string, schema: RegisteredSchema): Promise<SubjectVersion> {
    const r = await this.request<Record<string, unknown>>('POST', `/subjects/${enc(subject)}`, body(schema));
    return view(r);
  }

  async schemaById(id: number): Promise<RegisteredSchema> {
    return this.memo(this.byId, id, async () => {
      const r = await this.request<Record<string, unknown>>('GET', `/schemas/ids/${id}`);
      return {
        schemaType: (r.schemaType as SchemaType | undefined) ?? 'AVRO',
        schema: r.schema as string,
        references: (r.references as SchemaReference[] | undefined) ?? [],
      };
    });
  }

  async latestVersion(subject: string): Promise<SubjectVersion> {
    const hit = this.latest.get(subject);
    if (hit && this.now() - hit.at < this.ttl) return hit.value;
    const value = this.request<Record<string, unknown>>('GET', `/subjects/${enc(subject)}/versions/latest`).then(view);
    this.latest.set(subject, { at: this.now(), value });
    value.catch(() => this.latest.delete(subject));
    return value;
  }

  async version(subject: string, version: number | 'latest'): Promise<SubjectVersion> {
    if (version === 'latest') return this.latestVersion(subject);
    return view(await this.request<Record<string, unknown>>('GET', `/subjects/${enc(subject)}/versions/${version}`));
  }

  subjects(options: { deleted?: boolean; prefix?: string } = {}): Promise<string[]> {
    const q = new URLSearchParams();
    if (options.deleted) q.set('deleted', 'true');
    if (options.prefix) q.set('subjectPrefix', options.prefix);
    return this.request('GET', `/subjects${q.size ? `?${q}` : ''}`);
  }

  versions(subject: string, options: { deleted?: boolean } = {}): Promise<number[]> {
    return this.request('GET', `/subjects/${enc(subject)}/versions${options.deleted ? '?deleted=true' : ''}`);
  }

  async testCompatibility(
    subject: string,
    schema: RegisteredSchema,
    version: number | 'latest' | 'all' = 'latest',
  ): Promise<{ compatible: boolean; messages: string[] }> {
    const path =
      version === 'all'
        ? `/compatibility/subjects/${enc(subject)}/versions?verbose=true`
        : `/compatibility/subjects/${enc(subject)}/versions/${version}?verbose=true`;
    const r = await this.request<{ is_compatible: boolean; messages?: string[] }>('POST', path, body(schema));
    return { compatible: r.is_compatible, messages: r.messages ?? [] };
  }

  deleteSubject(subject: string, permanent = false): Promise<number[]> {
    return this.request('DELETE', `/subjects/${enc(subject)}${permanent ? '?permanent=true' : ''}`);
  }

  deleteVersion(subject: string, version: number | 'latest', permanent = false): Promise<number> {
    return this.request('DELETE', `/subjects/${enc(subject)}/versions/${version}${permanent ? '?permanent=true' : ''}`);
  }

  async compatibility(subject?: string): Promise<string> {
    const r = await this.request<{ compatibilityLevel: string }>('GET', subject === undefined ? '/config' : `/config/${enc(subject)}?defaultToGlobal=true`);
    return r.compatibilityLevel;
  }

  async setCompatibility(level: string, subject?: string): Promise<string> {
    const r = await this.request<{ compatibility: string }>('PUT', subject === undefined ? '/config' : `/config/${enc(subject)}`, { compatibility: level });
    return r.compatibility;
  }
}

function body(schema: RegisteredSchema): Record<string, unknown> {
  return {
    schema: schema.schema,
    ...(schema.schemaType !== 'AVRO' ? { schemaType: schema.schemaType } : {}),
    ...(schema.references.length > 0 ? { references: schema.references } : {}),
  };
}

function view(r: Record<string, unknown>): SubjectVersion {
  return {
    subject: r.subject as string,
    version: r.version as number,
    id: r.id as number,
    schemaType: (r.schemaType as SchemaType | undefined) ?? 'AVRO',
    schema: r.schema as string,
    references: (r.references as SchemaReference[] | undefined) ?? [],
  };
}
