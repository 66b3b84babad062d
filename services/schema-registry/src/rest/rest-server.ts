/**
 * The Confluent Schema Registry REST API (v1), so Confluent's serializers and clients in any
 * language work unchanged: the same paths, query parameters, JSON bodies, status codes and error
 * bodies (`{"error_code": 40401, "message": "Subject 'x' not found."}`), answered as
 * `application/vnd.schemaregistry.v1+json`. Every route calls the same Registry as the gRPC front
 * door, so the two agree by construction.
 *
 * Plain node:http: the API is small and fixed, and a framework would add a dependency for routing
 * that a table of regular expressions does. Requests bodies are bounded (`maxBodyBytes`).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Logger } from 'pino';
import { isSkeinError } from '@skein/common/errors.js';
import { parseCompatibilityLevel, parseMode, parseSchemaType, parseVersion, type SchemaReference, type SchemaType } from '../domain/types.js';
import type { Caller, Registry } from '../runtime/registry.js';

export const CONTENT_TYPE = 'application/vnd.schemaregistry.v1+json';

/** Skein reason → [HTTP status, Confluent error code]. */
// Keyed by reason name (string): reasons of other work (authorization) map here as they land.
const CONFLUENT_CODES: Readonly<Record<string, readonly [number, number]>> = {
  SUBJECT_NOT_FOUND: [404, 40401],
  SCHEMA_VERSION_NOT_FOUND: [404, 40402],
  SCHEMA_NOT_FOUND: [404, 40403],
  SUBJECT_SOFT_DELETED: [404, 40404],
  SUBJECT_NOT_SOFT_DELETED: [404, 40405],
  SCHEMA_VERSION_SOFT_DELETED: [404, 40406],
  SCHEMA_VERSION_NOT_SOFT_DELETED: [404, 40407],
  SUBJECT_COMPATIBILITY_NOT_CONFIGURED: [404, 40408],
  SUBJECT_MODE_NOT_CONFIGURED: [404, 40409],
  INCOMPATIBLE_SCHEMA: [409, 409],
  INVALID_SCHEMA: [422, 42201],
  INVALID_SCHEMA_VERSION: [422, 42202],
  INVALID_COMPATIBILITY_LEVEL: [422, 42203],
  INVALID_MODE: [422, 42204],
  SCHEMA_OPERATION_NOT_PERMITTED: [422, 42205],
  SCHEMA_REFERENCE_EXISTS: [422, 42206],
  INVALID_REQUEST: [422, 422],
  AUTHORIZATION_FAILED: [403, 40301],
  AUTHENTICATION_FAILED: [401, 40101],
  AUTHENTICATION_REQUIRED: [401, 40101],
  CLUSTER_AUTHORIZATION_FAILED: [403, 40301],
  STORE_UNAVAILABLE: [500, 50001],
  CONCURRENT_MODIFICATION: [500, 50001],
  REQUEST_TIMED_OUT: [500, 50002],
};

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly errorCode: number,
    message: string,
  ) {
    super(message);
  }
}

interface Request {
  method: string;
  params: string[];
  query: URLSearchParams;
  body: () => Promise<Record<string, unknown>>;
  caller: Caller;
}

type Handler = (req: Request) => Promise<unknown>;

const flag = (q: URLSearchParams, name: string) => (q.get(name) ?? '').toLowerCase() === 'true';

function schemaIdParam(raw: string): number {
  const id = /^[0-9]{1,10}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isInteger(id) || id < 0 || id > 2 ** 31 - 1) throw new HttpError(404, 40403, `Schema ${raw} not found`);
  return id;
}

/** The optional schemaType/references of Confluent's bodies; references default to none. */
function schemaBody(body: Record<string, unknown>): { schema: string; schemaType: SchemaType; references: SchemaReference[] } {
  if (typeof body.schema !== 'string') throw new HttpError(422, 42201, 'Invalid schema: the body needs a "schema" string');
  const refs = body.references ?? [];
  if (!Array.isArray(refs)) throw new HttpError(422, 42201, 'Invalid schema: "references" must be an array');
  return { schema: body.schema, schemaType: parseSchemaType(body.schemaType), references: refs as SchemaReference[] };
}

/** Confluent omits schemaType for AVRO and references when there are none. */
function schemaView(r: { schemaType: SchemaType; schema: string; references: readonly SchemaReference[] }) {
  return {
    ...(r.schemaType !== 'AVRO' ? { schemaType: r.schemaType } : {}),
    ...(r.references.length > 0 ? { references: r.references } : {}),
    schema: r.schema,
  };
}

export function restRoutes(registry: Registry): Array<[string, RegExp, Handler]> {
  const subj = '([^/]+)';
  return [
    ['GET', /^\/$/, async () => ({})],
    ['GET', /^\/schemas\/types$/, async () => ['JSON', 'PROTOBUF', 'AVRO']],
    [
      'GET',
      /^\/schemas\/ids\/([^/]+)$/,
      async ({ params, query, caller }) => {
        const id = schemaIdParam(params[0]!);
        const r = await registry.schemaById(caller, id, query.get('subject') ?? undefined);
        return schemaView(r);
      },
    ],
    ['GET', /^\/schemas\/ids\/([^/]+)\/schema$/, async ({ params, caller }) => raw((await registry.schemaById(caller, schemaIdParam(params[0]!))).schema)],
    [
      'GET',
      /^\/schemas\/ids\/([^/]+)\/versions$/,
      async ({ params, query, caller }) => registry.versionsById(caller, schemaIdParam(params[0]!), flag(query, 'deleted')),
    ],
    [
      'GET',
      /^\/schemas\/ids\/([^/]+)\/subjects$/,
      async ({ params, query, caller }) => [
        ...new Set((await registry.versionsById(caller, schemaIdParam(params[0]!), flag(query, 'deleted'))).map((v) => v.subject)),
      ],
    ],
    [
      'GET',
      /^\/subjects$/,
      async ({ query, caller }) => registry.listSubjects(caller, { includeDeleted: flag(query, 'deleted'), prefix: query.get('subjectPrefix') ?? '' }),
    ],
    [
      'POST',
      new RegExp(`^/subjects/${subj}$`),
      async ({ params, query, body, caller }) => {
        const v = await registry.lookup(caller, params[0]!, schemaBody(await body()), flag(query, 'deleted'));
        return { subject: v.subject, version: v.version, id: v.id, ...schemaView(v) };
      },
    ],
    ['DELETE', new RegExp(`^/subjects/${subj}$`), async ({ params, query, caller }) => registry.deleteSubject(caller, params[0]!, flag(query, 'permanent'))],
    ['GET', new RegExp(`^/subjects/${subj}/versions$`), async ({ params, query, caller }) => registry.listVersions(caller, params[0]!, flag(query, 'deleted'))],
    [
      'POST',
      new RegExp(`^/subjects/${subj}/versions$`),
      async ({ params, body, caller }) => {
        const b = await body();
        const input = schemaBody(b);
        const id = b.id === undefined || b.id === -1 ? undefined : Number(b.id);
        const version = b.version === undefined || b.version === -1 ? undefined : Number(b.version);
        if ((id !== undefined && !Number.isInteger(id)) || (version !== undefined && !Number.isInteger(version)))
          throw new HttpError(422, 422, 'id and version must be integers');
        const r = await registry.register(caller, params[0]!, { ...input, id, version });
        return { id: r.id };
      },
    ],
    [
      'GET',
      new RegExp(`^/subjects/${subj}/versions/([^/]+)$`),
      async ({ params, query, caller }) => {
        const v = await registry.getVersion(caller, params[0]!, parseVersion(params[1]!), flag(query, 'deleted'));
        return { subject: v.subject, version: v.version, id: v.id, ...schemaView(v) };
      },
    ],
    [
      'GET',
      new RegExp(`^/subjects/${subj}/versions/([^/]+)/schema$`),
      async ({ params, query, caller }) => raw((await registry.getVersion(caller, params[0]!, parseVersion(params[1]!), flag(query, 'deleted'))).schema),
    ],
    [
      'GET',
      new RegExp(`^/subjects/${subj}/versions/([^/]+)/referencedby$`),
      async ({ params, caller }) => registry.referencedBy(caller, params[0]!, parseVersion(params[1]!)),
    ],
    [
      'DELETE',
      new RegExp(`^/subjects/${subj}/versions/([^/]+)$`),
      async ({ params, query, caller }) => registry.deleteVersion(caller, params[0]!, parseVersion(params[1]!), flag(query, 'permanent')),
    ],
    [
      'POST',
      new RegExp(`^/compatibility/subjects/${subj}/versions(?:/([^/]+))?$`),
      async ({ params, query, body, caller }) => {
        const selector = params[1] === undefined ? ('all' as const) : parseVersion(params[1]);
        let issues: string[];
        try {
          issues = await registry.testCompatibility(caller, params[0]!, selector, schemaBody(await body()));
        } catch (err) {
          // Against "latest" of a subject with no versions there is nothing to break (Confluent answers true).
          if (isSkeinError(err) && err.reason === 'SUBJECT_NOT_FOUND' && selector === 'latest') issues = [];
          else throw err;
        }
        return { is_compatible: issues.length === 0, ...(flag(query, 'verbose') ? { messages: issues } : {}) };
      },
    ],
    ['GET', /^\/config$/, async ({ caller }) => ({ compatibilityLevel: await registry.getConfig(caller, undefined, true) })],
    [
      'PUT',
      /^\/config$/,
      async ({ body, caller }) => ({ compatibility: await registry.setConfig(caller, undefined, parseCompatibilityLevel((await body()).compatibility)) }),
    ],
    ['DELETE', /^\/config$/, async ({ caller }) => ({ compatibilityLevel: await registry.deleteConfig(caller, undefined) })],
    [
      'GET',
      new RegExp(`^/config/${subj}$`),
      async ({ params, query, caller }) => ({ compatibilityLevel: await registry.getConfig(caller, params[0]!, flag(query, 'defaultToGlobal')) }),
    ],
    [
      'PUT',
      new RegExp(`^/config/${subj}$`),
      async ({ params, body, caller }) => ({
        compatibility: await registry.setConfig(caller, params[0]!, parseCompatibilityLevel((await body()).compatibility)),
      }),
    ],
    ['DELETE', new RegExp(`^/config/${subj}$`), async ({ params, caller }) => ({ compatibilityLevel: await registry.deleteConfig(caller, params[0]!) })],
    ['GET', /^\/mode$/, async ({ caller }) => ({ mode: await registry.getMode(caller, undefined, true) })],
    [
      'PUT',
      /^\/mode$/,
      async ({ query, body, caller }) => ({ mode: await registry.setMode(caller, undefined, parseMode((await body()).mode), flag(query, 'force')) }),
    ],
    [
      'GET',
      new RegExp(`^/mode/${subj}$`),
      async ({ params, query, caller }) => ({ mode: await registry.getMode(caller, params[0]!, flag(query, 'defaultToGlobal')) }),
    ],
    [
      'PUT',
      new RegExp(`^/mode/${subj}$`),
      async ({ params, query, body, caller }) => ({ mode: await registry.setMode(caller, params[0]!, parseMode((await body()).mode), flag(query, 'force')) }),
    ],
    ['DELETE', new RegExp(`^/mode/${subj}$`), async ({ params, caller }) => ({ mode: await registry.deleteMode(caller, params[0]!) })],
  ];
}

/** A readable metrics label for a route: `GET /subjects/{}/versions/{}`. */
function routeName(method: string, re: RegExp): string {
  const path = re.source
    .replace(/^\^|\$$/g, '')
    .replace(/\\\//g, '/')
    .replace(/\(\?:\/\(\[\^\/\]\+\)\)\?/g, '[/{}]')
    .replace(/\(\[\^\/\]\+\)/g, '{}');
  return `${method} ${path}`;
}

/** A body sent as is (the schema text of /schema routes), not JSON-encoded again. */
class Raw {
  constructor(readonly text: string) {}
}
const raw = (text: string) => new Raw(text);

function readBody(req: IncomingMessage, maxBytes: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > maxBytes) {
        reject(new HttpError(413, 413, `Request body larger than ${maxBytes} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('error', reject);
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '') return resolve({});
      try {
        const parsed: unknown = JSON.parse(text);
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
          return reject(new HttpError(422, 422, 'The request body must be a JSON object'));
        resolve(parsed as Record<string, unknown>);
      } catch (err) {
        reject(new HttpError(400, 400, `Unexpected request body: ${(err as Error).message}`));
      }
    });
  });
}

export interface RestServerOptions {
  registry: Registry;
  host: string;
  port: number;
  logger: Logger;
  maxBodyBytes?: number;
  /** Counts requests by route and status (the service's metrics). */
  onRequest?: (route: string, status: number) => void;
  /**
   * Who is asking (subject-authorization.ts restCaller: bearer token, client certificate, or
   * anonymous); rejects to refuse the request (401). Default: anonymous, nothing checked.
   */
  identify?: (req: IncomingMessage, route: string) => Promise<Caller>;
  /**
   * Serve HTTPS (--rest-tls): the service's certificate and key; with `ca`, client certificates
   * are requested and verified against it (required with `requireClientCert`), and a verified one
   * names the caller.
   */
  tls?: { cert: Buffer; key: Buffer; ca?: Buffer; requireClientCert: boolean };
}

export interface RestServerHandle {
  readonly port: number;
  close(): Promise<void>;
}

export async function startRestServer(options: RestServerOptions): Promise<RestServerHandle> {
  const routes = restRoutes(options.registry);
  const maxBodyBytes = options.maxBodyBytes ?? 16 * 1024 * 1024;
  const send = (res: ServerResponse, status: number, body: unknown) => {
    const text = body instanceof Raw ? body.text : JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': CONTENT_TYPE, 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  };
  const tls = options.tls;
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://registry');
    // Subjects arrive URL-encoded in the path (a subject may contain "/" as %2F): match first, decode after.
    const path = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, '') : url.pathname;
    const method = req.method ?? 'GET';
    let pathMatched = false;
    for (const [m, re, handler] of routes) {
      const match = re.exec(path);
      if (!match) continue;
      pathMatched = true;
      if (m !== method) continue;
      const route = routeName(m, re);
      let params: string[];
      try {
        params = match.slice(1).map((p) => (p === undefined ? (undefined as unknown as string) : decodeURIComponent(p)));
      } catch {
        send(res, 404, { error_code: 404, message: 'HTTP 404 Not Found' });
        return;
      }
      (options.identify ? options.identify(req, route) : Promise.resolve<Caller>({}))
        .then((caller) => handler({ method, params, query: url.searchParams, body: () => readBody(req, maxBodyBytes), caller }))
        .then((body) => {
          send(res, 200, body);
          options.onRequest?.(route, 200);
        })
        .catch((err: unknown) => {
          const [status, code, message] = errorResponse(err, options.logger, { method, path });
          send(res, status, { error_code: code, message });
          options.onRequest?.(route, status);
        });
      return;
    }
    if (pathMatched) send(res, 405, { error_code: 405, message: 'HTTP 405 Method Not Allowed' });
    else send(res, 404, { error_code: 404, message: 'HTTP 404 Not Found' });
  };
  const server: Server = tls
    ? createHttpsServer(
        { cert: tls.cert, key: tls.key, ca: tls.ca, requestCert: tls.ca !== undefined, rejectUnauthorized: tls.ca !== undefined && tls.requireClientCert },
        listener,
      )
    : createServer(listener);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function errorResponse(err: unknown, logger: Logger, request: { method: string; path: string }): [number, number, string] {
  if (err instanceof HttpError) return [err.status, err.errorCode, err.message];
  if (isSkeinError(err)) {
    const mapped = CONFLUENT_CODES[err.reason];
    if (mapped) return [mapped[0], mapped[1], err.message];
    if (err.code === 3) return [422, 422, err.message];
  }
  logger.error({ err, ...request }, 'unexpected failure answering a REST request');
  return [500, 50001, 'Error in the backend data store'];
}
