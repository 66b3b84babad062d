/**
 * The shell's token and authorization interceptors on a real gRPC server (loopback, port 0): a
 * JSON "write to topic" RPC guarded by a rule, ACLs changed in the cache while the server runs.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromServiceError } from '../errors.js';
import { type GrpcServerHandle, startGrpcServer, unary } from '../grpc-server.js';
import { AclCache } from './acl-cache.js';
import type { AclBinding } from './authorizer.js';
import { type AuthorizeMap, requestAuth, tokenPrincipal } from './enforcement.js';
import { JwtVerifier } from './jwt.js';

const json = {
  serialize: (v: unknown) => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer) => JSON.parse(b.toString()) as unknown,
};
const method = (name: string): grpc.MethodDefinition<unknown, unknown> => ({
  path: `/skein.test.Topics/${name}`,
  requestStream: false,
  responseStream: false,
  requestSerialize: json.serialize,
  requestDeserialize: json.deserialize,
  responseSerialize: json.serialize,
  responseDeserialize: json.deserialize,
});
const definition: grpc.ServiceDefinition = { write: method('Write'), internalOnly: method('InternalOnly') };
const rules: AuthorizeMap = { write: (req: { topic: string }) => [{ resourceType: 'topic', resourceName: req.topic, operation: 'write' }] };

const dir = mkdtempSync(join(tmpdir(), 'skein-authz-'));
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
const acls = new AclCache();
let server: GrpcServerHandle;
let client: grpc.Client;
let sign: (claims: Record<string, unknown>, opts?: { expiresIn?: string | number; key?: CryptoKey }) => Promise<string>;
let otherKey: CryptoKey;

beforeAll(async () => {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  otherKey = (await generateKeyPair('ES256')).privateKey;
  writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }] }));
  sign = (claims, opts = {}) =>
    new SignJWT({ aud: 'skein', ...claims })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer('https://issuer.test')
      .setIssuedAt()
      .setExpirationTime(opts.expiresIn ?? '5m')
      .sign(opts.key ?? privateKey);
  const jwt = new JwtVerifier({ jwksFile: join(dir, 'jwks.json'), issuer: 'https://issuer.test', audience: 'skein', clockToleranceSec: 0 });
  // The shell's Authenticator does the same: a verified token names the caller, else anonymous.
  const authenticator = {
    identify: (c: { readonly metadata?: grpc.Metadata }) => {
      const p = tokenPrincipal(c.metadata);
      return { principal: p ?? { type: 'User', name: 'ANONYMOUS' }, internal: p?.name === 'broker-1', superUser: p?.name === 'admin' };
    },
  };
  server = await startGrpcServer({
    host: '127.0.0.1',
    port: 0,
    logger: pino({ level: 'silent' }),
    services: [
      {
        name: 'skein.test.Topics',
        definition,
        authorize: rules,
        implementation: {
          write: unary(async (_req: unknown, call) => ({ ok: true, principal: requestAuth(call).principal.name })),
          internalOnly: unary(async () => ({ ok: true })),
        },
      },
    ],
    security: { tokens: { jwt, audit }, authorization: { authenticator, acls, audit } },
  });
  client = new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
});
afterAll(async () => {
  client?.close();
  await server?.shutdown(0);
  rmSync(dir, { recursive: true, force: true });
});

function call(name: string, body: unknown, token?: string): Promise<{ ok: boolean; principal?: string }> {
  const md = new grpc.Metadata();
  if (token !== undefined) md.set('authorization', `Bearer ${token}`);
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(`/skein.test.Topics/${name}`, json.serialize, json.deserialize, body, md, { deadline: Date.now() + 5000 }, (e, r) =>
      e ? reject(fromServiceError(e)) : resolve(r as { ok: boolean }),
    ),
  );
}
const acl = (over: Partial<AclBinding>): AclBinding => ({
  principal: 'User:alice',
  resourceType: 'topic',
  resourceName: 'orders',
  patternType: 'literal',
  operation: 'write',
  permission: 'allow',
  ...over,
});

describe('authorization interceptor', () => {
  it('refuses alice until an ACL allows her, then lets her through with no restart; a deny overrides the allow', async () => {
    const alice = await sign({ sub: 'alice' });
    acls.update([], 1n);
    const denied = await call('Write', { topic: 'orders' }, alice).catch((e: unknown) => e);
    expect(denied).toMatchObject({
      reason: 'TOPIC_AUTHORIZATION_FAILED',
      code: grpc.status.PERMISSION_DENIED,
      metadata: { principal: 'User:alice', resource_type: 'topic', resource_name: 'orders', operation: 'write' },
    });
    expect(auditLines.at(-1)).toMatchObject({
      component: 'audit',
      event: 'denied',
      principal: 'User:alice',
      operation: 'write',
      resourceType: 'topic',
      resourceName: 'orders',
      rpc: 'skein.test.Topics/Write',
      basis: 'no_matching_acl',
    });

    acls.update([acl({ patternType: 'prefixed', resourceName: 'ord' })], 2n);
    expect(await call('Write', { topic: 'orders' }, alice)).toEqual({ ok: true, principal: 'alice' });
    expect(await call('Write', { topic: 'ord-new' }, alice)).toEqual({ ok: true, principal: 'alice' });

    acls.update([acl({ patternType: 'prefixed', resourceName: 'ord' }), acl({ permission: 'deny' })], 3n);
    await expect(call('Write', { topic: 'orders' }, alice)).rejects.toMatchObject({ reason: 'TOPIC_AUTHORIZATION_FAILED' });
    expect(auditLines.at(-1)).toMatchObject({ event: 'denied', basis: 'deny_acl', acl: { permission: 'deny' } });
    expect(await call('Write', { topic: 'ord-new' }, alice)).toMatchObject({ ok: true });
  });

  it('anonymous callers have no ACLs; super-users and internal principals need none', async () => {
    acls.update([], 4n);
    await expect(call('Write', { topic: 'orders' })).rejects.toMatchObject({ reason: 'TOPIC_AUTHORIZATION_FAILED', metadata: { principal: 'User:ANONYMOUS' } });
    expect(await call('Write', { topic: 'orders' }, await sign({ sub: 'admin' }))).toMatchObject({ ok: true });
    expect(await call('InternalOnly', {}, await sign({ sub: 'broker-1' }))).toMatchObject({ ok: true });
  });

  it('an RPC without a rule is internal only (cluster_action)', async () => {
    acls.update([acl({ operation: 'all', resourceName: '*' })], 5n);
    await expect(call('InternalOnly', {}, await sign({ sub: 'alice' }))).rejects.toMatchObject({
      reason: 'CLUSTER_AUTHORIZATION_FAILED',
      metadata: { operation: 'cluster_action' },
    });
  });
});

describe('bearer tokens', () => {
  it('refuses an expired token, a wrongly signed one and one for another audience with UNAUTHENTICATED and the reason', async () => {
    acls.update([acl({})], 6n);
    const expired = await sign({ sub: 'alice' }, { expiresIn: Math.floor(Date.now() / 1000) - 60 });
    await expect(call('Write', { topic: 'orders' }, expired)).rejects.toMatchObject({
      reason: 'AUTHENTICATION_FAILED',
      code: grpc.status.UNAUTHENTICATED,
      message: expect.stringMatching(/expired/),
    });
    const forged = await sign({ sub: 'alice' }, { key: otherKey });
    await expect(call('Write', { topic: 'orders' }, forged)).rejects.toMatchObject({
      reason: 'AUTHENTICATION_FAILED',
      message: expect.stringMatching(/signature/),
    });
    const wrongAudience = await sign({ sub: 'alice', aud: 'another-service' });
    await expect(call('Write', { topic: 'orders' }, wrongAudience)).rejects.toMatchObject({
      reason: 'AUTHENTICATION_FAILED',
      message: expect.stringMatching(/aud/),
    });
    await expect(call('Write', { topic: 'orders' }, 'garbage')).rejects.toMatchObject({
      reason: 'AUTHENTICATION_FAILED',
      message: expect.stringMatching(/malformed/),
    });
    expect(auditLines.at(-1)).toMatchObject({ event: 'authentication_failed', mechanism: 'jwt' });
    // The same principal with a good token is served: the refusals were the token's.
    expect(await call('Write', { topic: 'orders' }, await sign({ sub: 'alice' }))).toMatchObject({ ok: true });
  });
});
