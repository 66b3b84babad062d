// Authorization on subjects, in process: the registry's gRPC service behind the shell's token and
// authorization interceptors, the REST API with bearer tokens and, on an HTTPS listener, client
// certificates; ACLs changed in the cache while both serve. Subjects are enforced for read, write,
// delete, describe and alter_configs, the global config on the cluster, listings show only
// describable subjects, REST denials answer 403 / 40301, and every denial is audited.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromServiceError, type SkeinError } from '@skein/common/errors.js';
import { type GrpcServerHandle, startGrpcServer } from '@skein/common/grpc-server.js';
import { AclCache } from '@skein/common/security/acl-cache.js';
import { Authenticator } from '@skein/common/security/authentication.js';
import type { AclBinding } from '@skein/common/security/authorizer.js';
import { JwtVerifier } from '@skein/common/security/jwt.js';
import { parseMappingRules } from '@skein/common/security/principal.js';
import { EmbeddedStore } from '@skein/common/store/embedded-store.js';
import type { MetadataStore } from '@skein/common/store/types.js';
import { CompatibilityLevel, SchemaRegistryServiceClient, SchemaType } from '@skein/proto/skein/schema/v1/schema.js';
import { createCa, issueCertificate } from '../../../scripts/dev-ca.js';
import { schemaAuthorizeMap, schemaServiceHandlers, SchemaRegistryServiceService, SCHEMA_SERVICE_NAME } from '../src/grpc/schema-service.js';
import { CONTENT_TYPE, type RestServerHandle, startRestServer } from '../src/rest/rest-server.js';
import { Registry } from '../src/runtime/registry.js';
import { aclSubjectAuthorizer, restCaller } from '../src/runtime/subject-authorization.js';
import { RegistryStore } from '../src/store/registry-store.js';

const dir = mkdtempSync(join(tmpdir(), 'skein-subject-authz-'));
const auditLines: Array<Record<string, unknown>> = [];
const audit = pino(
  { level: 'info' },
  new Writable({
    write(chunk, _enc, done) {
      auditLines.push(JSON.parse(chunk.toString()));
      done();
    },
  }),
).child({ component: 'audit' });
const silent = pino({ level: 'silent' });
const acls = new AclCache();
const ca = createCa({ days: 1 });
let store: MetadataStore;
let registry: Registry;
let grpcServer: GrpcServerHandle;
let rest: RestServerHandle;
let restTls: RestServerHandle;
let client: SchemaRegistryServiceClient;
let sign: (sub: string) => Promise<string>;
let tokens: Record<'alice' | 'admin', string>;

beforeAll(async () => {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }] }));
  sign = (sub) => new SignJWT({ sub }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuedAt().setExpirationTime('5m').sign(privateKey);
  tokens = { alice: await sign('alice'), admin: await sign('admin') };
  const jwt = new JwtVerifier({ jwksFile: join(dir, 'jwks.json'), clockToleranceSec: 0 });
  const authenticator = new Authenticator({ rules: parseMappingRules('RULE:^CN=([^,]+),.*$/$1/'), superUsers: [{ type: 'User', name: 'admin' }] });

  store = await EmbeddedStore.open();
  registry = new Registry({ store: new RegistryStore(store, '/authz/'), authorize: aclSubjectAuthorizer(acls, audit) });
  await registry.start();
  grpcServer = await startGrpcServer({
    host: '127.0.0.1',
    port: 0,
    logger: silent,
    authenticator,
    services: [
      { name: SCHEMA_SERVICE_NAME, definition: SchemaRegistryServiceService, implementation: schemaServiceHandlers(registry), authorize: schemaAuthorizeMap },
    ],
    security: { tokens: { jwt, audit }, authorization: { authenticator, acls, audit } },
  });
  client = new SchemaRegistryServiceClient(`127.0.0.1:${grpcServer.port}`, grpc.credentials.createInsecure());
  const identify = (req: Parameters<typeof restCaller>[0], route: string) => restCaller(req, { authenticator, jwt, audit, required: false }, route);
  rest = await startRestServer({ registry, host: '127.0.0.1', port: 0, logger: silent, identify });
  const server = issueCertificate(ca, { commonName: 'registry', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], days: 1 });
  restTls = await startRestServer({
    registry,
    host: '127.0.0.1',
    port: 0,
    logger: silent,
    identify,
    tls: { cert: Buffer.from(server.certPem), key: Buffer.from(server.keyPem), ca: Buffer.from(ca.certPem), requireClientCert: false },
  });
});

afterAll(async () => {
  client?.close();
  await rest?.close();
  await restTls?.close();
  await grpcServer?.shutdown(0);
  await registry?.close();
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

const acl = (over: Partial<AclBinding>): AclBinding => ({
  principal: 'User:alice',
  resourceType: 'subject',
  resourceName: 'alice-',
  patternType: 'prefixed',
  operation: 'write',
  permission: 'allow',
  ...over,
});
let revision = 1n;
const setAcls = (list: AclBinding[]) => acls.update(list, revision++);

const avro = (name: string) => JSON.stringify({ type: 'record', name, fields: [{ name: 'id', type: 'string' }] });

/** A gRPC call as `who` (a token) or anonymously; rejects with the decoded SkeinError. */
function rpc<Req, Res>(method: keyof SchemaRegistryServiceClient, req: Req, who?: keyof typeof tokens): Promise<Res> {
  const md = new grpc.Metadata();
  if (who) md.set('authorization', `Bearer ${tokens[who]}`);
  return new Promise((resolve, reject) =>
    (client[method] as unknown as (r: Req, m: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: Res) => void) => void).call(
      client,
      req,
      md,
      { deadline: Date.now() + 5000 },
      (e, r) => (e ? reject(fromServiceError(e)) : resolve(r)),
    ),
  );
}
const refused = (p: Promise<unknown>) =>
  p.then(
    () => undefined as unknown as SkeinError,
    (e: SkeinError) => e,
  );

async function http(method: string, path: string, who?: keyof typeof tokens | string, body?: unknown): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = { 'Content-Type': CONTENT_TYPE };
  if (who) headers.Authorization = `Bearer ${who in tokens ? tokens[who as keyof typeof tokens] : who}`;
  const res = await fetch(`http://127.0.0.1:${rest.port}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

/** GET over the HTTPS listener with an optional client certificate. */
function https(path: string, cert?: { certPem: string; keyPem: string }): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port: restTls.port,
        path,
        method: 'GET',
        ca: ca.certPem,
        servername: 'localhost',
        ...(cert ? { cert: cert.certPem, key: cert.keyPem } : {}),
      },
      (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('authorization on subjects', () => {
  it('gRPC: write, read, describe and alter_configs are checked per subject; the global config is on the cluster', async () => {
    setAcls([acl({})]);
    // admin (a super-user) registers bob's subject; alice may write alice-* only.
    await rpc(
      'registerSchema',
      { subject: 'bob-value', schema: { schema: avro('Bob'), schemaType: SchemaType.SCHEMA_TYPE_AVRO, references: [] }, id: 0, version: 0 },
      'admin',
    );
    const mine = await rpc<unknown, { id: number }>(
      'registerSchema',
      { subject: 'alice-value', schema: { schema: avro('Alice'), schemaType: SchemaType.SCHEMA_TYPE_AVRO, references: [] }, id: 0, version: 0 },
      'alice',
    );
    expect(mine.id).toBeGreaterThan(0);
    const denied = await refused(
      rpc(
        'registerSchema',
        { subject: 'bob-value', schema: { schema: avro('Evil'), schemaType: SchemaType.SCHEMA_TYPE_AVRO, references: [] }, id: 0, version: 0 },
        'alice',
      ),
    );
    expect(denied).toMatchObject({ code: grpc.status.PERMISSION_DENIED, reason: 'AUTHORIZATION_FAILED' });
    expect(denied.message).toBe('User:alice may not write subject bob-value (no ACL allows it)');
    // write implies describe (listing), not read.
    expect(await rpc('listSubjects', { prefix: '', includeDeleted: false }, 'alice')).toEqual({ subjects: ['alice-value'] });
    expect(await refused(rpc('getSubjectVersion', { subject: 'alice-value', version: 0, includeDeleted: false }, 'alice'))).toMatchObject({
      reason: 'AUTHORIZATION_FAILED',
    });
    setAcls([acl({}), acl({ operation: 'read' })]);
    expect(await rpc('getSubjectVersion', { subject: 'alice-value', version: 0, includeDeleted: false }, 'alice')).toMatchObject({ version: { id: mine.id } });
    // By id: read on some subject using it.
    expect(await rpc('getSchema', { id: mine.id, subject: '' }, 'alice')).toMatchObject({ schema: { schema: expect.stringContaining('Alice') } });
    const bobId = (await rpc<unknown, { version: { id: number } }>('getSubjectVersion', { subject: 'bob-value', version: 0, includeDeleted: false }, 'admin'))
      .version.id;
    expect(await refused(rpc('getSchema', { id: bobId, subject: '' }, 'alice'))).toMatchObject({ reason: 'AUTHORIZATION_FAILED' });
    // Configs: the subject's needs alter_configs on it, the global one on the cluster.
    expect(await refused(rpc('setCompatibility', { subject: 'alice-value', level: CompatibilityLevel.COMPATIBILITY_LEVEL_FULL }, 'alice'))).toMatchObject({
      reason: 'AUTHORIZATION_FAILED',
    });
    expect(await refused(rpc('setCompatibility', { subject: '', level: CompatibilityLevel.COMPATIBILITY_LEVEL_FULL }, 'alice'))).toMatchObject({
      reason: 'CLUSTER_AUTHORIZATION_FAILED',
    });
    setAcls([acl({}), acl({ operation: 'read' }), acl({ operation: 'alter_configs' })]);
    expect(await rpc('setCompatibility', { subject: 'alice-value', level: CompatibilityLevel.COMPATIBILITY_LEVEL_FULL }, 'alice')).toEqual({
      level: CompatibilityLevel.COMPATIBILITY_LEVEL_FULL,
    });
    // A deny wins; anonymous callers get nothing.
    setAcls([acl({}), acl({ operation: 'read' }), acl({ operation: 'all', permission: 'deny', patternType: 'literal', resourceName: 'alice-value' })]);
    expect(await refused(rpc('getSubjectVersion', { subject: 'alice-value', version: 0, includeDeleted: false }, 'alice'))).toMatchObject({
      reason: 'AUTHORIZATION_FAILED',
    });
    expect(await rpc('listSubjects', { prefix: '', includeDeleted: false }, 'alice')).toEqual({ subjects: [] });
    expect(await rpc('listSubjects', { prefix: '', includeDeleted: false })).toEqual({ subjects: [] });
    expect(await rpc('listSubjects', { prefix: '', includeDeleted: false }, 'admin')).toEqual({ subjects: ['alice-value', 'bob-value'] });
    expect(auditLines.some((l) => l.event === 'denied' && l.principal === 'User:alice' && l.resourceName === 'bob-value' && l.operation === 'write')).toBe(
      true,
    );
  });

  it('REST: denials answer 403 with error code 40301; listings show only describable subjects; delete is checked', async () => {
    setAcls([acl({})]);
    const body = { schema: avro('Carol') };
    const denied = await http('POST', '/subjects/bob-value/versions', 'alice', body);
    expect(denied).toEqual({ status: 403, body: { error_code: 40301, message: 'User:alice may not write subject bob-value (no ACL allows it)' } });
    expect(await http('POST', '/subjects/alice-rest-value/versions', 'alice', body)).toMatchObject({ status: 200 });
    expect((await http('GET', '/subjects', 'alice')).body).toEqual(['alice-rest-value', 'alice-value']);
    expect(await http('GET', '/subjects')).toEqual({ status: 200, body: [] });
    expect(await http('GET', '/subjects/bob-value/versions', 'alice')).toMatchObject({ status: 403, body: { error_code: 40301 } });
    expect(await http('PUT', '/config', 'alice', { compatibility: 'NONE' })).toMatchObject({ status: 403, body: { error_code: 40301 } });
    expect(await http('DELETE', '/subjects/alice-rest-value', 'alice')).toMatchObject({ status: 403, body: { error_code: 40301 } });
    setAcls([acl({}), acl({ operation: 'delete' })]);
    expect(await http('DELETE', '/subjects/alice-rest-value', 'alice')).toEqual({ status: 200, body: [1] });
    // A token that does not verify is refused, not taken as anonymous.
    expect(await http('GET', '/subjects', 'not-a-jwt')).toMatchObject({ status: 401, body: { error_code: 40101 } });
    expect(auditLines.some((l) => l.event === 'denied' && l.rpc === 'POST /subjects/{}/versions' && l.resourceName === 'bob-value')).toBe(true);
  });

  it('REST over HTTPS: a verified client certificate names the caller; without one the caller is anonymous', async () => {
    setAcls([acl({ operation: 'describe' })]);
    const alice = issueCertificate(ca, { commonName: 'alice', days: 1 });
    expect(await https('/subjects', alice)).toEqual({ status: 200, body: ['alice-value'] });
    expect(await https('/subjects')).toEqual({ status: 200, body: [] });
    expect(await https('/subjects/bob-value/versions', alice)).toMatchObject({ status: 403, body: { error_code: 40301 } });
  });
});
