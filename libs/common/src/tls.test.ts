// TLS from files that rotate (tls.ts) and the principal of each call (security/authentication.ts),
// through the shell's real gRPC server on loopback: certificates come from the development CA
// (scripts/dev-ca.js), so no openssl is needed.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCa, issueCertificate, writeCertificate } from '../../../scripts/dev-ca.js';
import { fromServiceError } from './errors.js';
import { type GrpcServerHandle, startGrpcServer, unary } from './grpc-server.js';
import { Authenticator } from './security/authentication.js';
import { parseMappingRules, parsePrincipalList } from './security/principal.js';
import { channelCredentials, clientTlsFromConfig, clientTlsFromEnv, FileCertificateProvider } from './tls.js';

const identity = (b: Buffer) => b;
const whoamiDefinition: grpc.ServiceDefinition = {
  whoami: {
    path: '/skein.test.Who/WhoAmI',
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};
const logger = pino({ level: 'silent' });
const dir = mkdtempSync(join(tmpdir(), 'skein-tls-rotation-'));
const ca = createCa({ days: 1 });
const otherCa = createCa({ commonName: 'someone else', days: 1 });
const p = (name: string) => join(dir, name);
const server = { certFile: p('server.crt'), keyFile: p('server.key') };
const alice = { certFile: p('alice.crt'), keyFile: p('alice.key') };
const serverCert = (cn: string) => issueCertificate(ca, { commonName: cn, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], days: 1 });

/** The serial of the certificate a fresh connection is shown, from the client call's auth context. */
function call(
  address: string,
  creds: grpc.ChannelCredentials,
  options: grpc.ChannelOptions = {},
): Promise<{ principal: string; serverSerial: string | undefined }> {
  // A private subchannel pool: each call here is a new connection, as a new client would make.
  const client = new grpc.Client(address, creds, { ...options, 'grpc.use_local_subchannel_pool': 1 });
  return new Promise((resolve, reject) => {
    const c = client.makeUnaryRequest(
      '/skein.test.Who/WhoAmI',
      identity,
      identity,
      Buffer.alloc(0),
      new grpc.Metadata(),
      { deadline: Date.now() + 5000 },
      (err, res) => {
        const serverSerial = c.getAuthContext()?.sslPeerCertificate?.serialNumber;
        client.close();
        if (err) reject(err);
        else resolve({ principal: res!.toString(), serverSerial });
      },
    );
  });
}

const serialOf = (pem: string) => new X509Certificate(pem).serialNumber.toUpperCase();

describe('TLS files re-read on change, and principals from client certificates', () => {
  let handle: GrpcServerHandle;
  let address: string;
  const authenticator = new Authenticator({
    rules: parseMappingRules('RULE:^CN=([^,]+),OU=services,.*$/service-$1/L, RULE:^CN=([^,]+),.*$/$1/'),
    internalPrincipals: parsePrincipalList('User:service-*'),
    required: true,
  });

  beforeAll(async () => {
    writeCertificate(dir, 'ca', ca);
    writeCertificate(dir, 'server', serverCert('server-1'));
    writeCertificate(dir, 'alice', issueCertificate(ca, { commonName: 'alice', days: 1 }));
    writeCertificate(dir, 'broker', issueCertificate(ca, { commonName: 'Broker-7', organizationalUnit: 'services', days: 1 }));
    writeCertificate(dir, 'mallory', issueCertificate(otherCa, { commonName: 'alice', days: 1 }));
    handle = await startGrpcServer({
      host: '127.0.0.1',
      port: 0,
      logger,
      authenticator,
      tls: { ...server, caFile: p('ca.crt'), requireClientCert: false, refreshIntervalMs: 100 },
      services: [
        {
          name: 'skein.test.Who',
          definition: whoamiDefinition,
          implementation: {
            whoami: unary(async (_req: Buffer, c) => {
              const id = authenticator.identify(c);
              return Buffer.from(`${id.principal.type}:${id.principal.name}${id.internal ? ' internal' : ''}`);
            }),
          },
        },
      ],
    });
    address = `127.0.0.1:${handle.port}`;
  });

  afterAll(async () => {
    await handle?.shutdown(1000);
    rmSync(dir, { recursive: true, force: true });
  });

  it('maps the client certificate to its principal; internal principals are recognised', async () => {
    const creds = (cert: { certFile: string; keyFile: string }) => channelCredentials({ caFile: p('ca.crt'), ...cert, refreshIntervalMs: 100 });
    expect((await call(address, creds(alice))).principal).toBe('User:alice');
    expect((await call(address, creds({ certFile: p('broker.crt'), keyFile: p('broker.key') }))).principal).toBe('User:service-broker-7 internal');
  });

  it('answers a call without a verified certificate UNAUTHENTICATED / AUTHENTICATION_REQUIRED; health stays open', async () => {
    const none = await call(address, channelCredentials({ caFile: p('ca.crt') })).catch((e: grpc.ServiceError) => e);
    const err = fromServiceError(none as grpc.ServiceError);
    expect([err.code, err.reason]).toEqual([grpc.status.UNAUTHENTICATED, 'AUTHENTICATION_REQUIRED']);
    expect(err.message).toMatch(/no verified client certificate/);
    // A certificate from another CA is not verified: no principal, however its subject reads.
    const forged = await call(address, channelCredentials({ caFile: p('ca.crt'), certFile: p('mallory.crt'), keyFile: p('mallory.key') })).catch(
      (e: grpc.ServiceError) => e,
    );
    expect(fromServiceError(forged as grpc.ServiceError).reason).toBe('AUTHENTICATION_REQUIRED');
    const health = new grpc.Client(address, channelCredentials({ caFile: p('ca.crt') }));
    const status = await new Promise<Buffer>((resolve, reject) =>
      health.makeUnaryRequest(
        '/grpc.health.v1.Health/Check',
        identity,
        identity,
        Buffer.alloc(0),
        new grpc.Metadata(),
        { deadline: Date.now() + 5000 },
        (e, r) => (e ? reject(e) : resolve(r!)),
      ),
    );
    expect(status[1]).toBe(1); // SERVING
    health.close();
  });

  it('serves a rotated server certificate to new connections, and clients present a rotated certificate, without restart', async () => {
    const creds = channelCredentials({ caFile: p('ca.crt'), ...alice, refreshIntervalMs: 100 });
    const before = await call(address, creds);
    const rotated = serverCert('server-1');
    writeCertificate(dir, 'server', rotated);
    const deadline = Date.now() + 10_000;
    let after = before;
    while (after.serverSerial === before.serverSerial && Date.now() < deadline) after = await call(address, creds);
    expect(after.serverSerial?.toUpperCase()).toBe(serialOf(rotated.certPem));

    // The client's files: alice's certificate replaced by bob's; a new connection is bob.
    writeCertificate(dir, 'alice', issueCertificate(ca, { commonName: 'bob', days: 1 }));
    let principal = (await call(address, creds)).principal;
    while (principal === 'User:alice' && Date.now() < deadline + 10_000) principal = (await call(address, creds)).principal;
    expect(principal).toBe('User:bob');
  });
});

describe('FileCertificateProvider', () => {
  it('keeps the previous pair while a rotation is half written, and publishes it once the key matches', () => {
    const d = mkdtempSync(join(tmpdir(), 'skein-tls-provider-'));
    try {
      const files = writeCertificate(d, 'x', issueCertificate(ca, { commonName: 'x', days: 1 }));
      const provider = new FileCertificateProvider(files, 60_000);
      const errors: string[] = [];
      provider.onError = (err) => errors.push(err.message);
      const next = issueCertificate(ca, { commonName: 'x2', days: 1 });
      writeFileSync(files.certFile, next.certPem); // the key is still the old one
      expect(provider.refresh()).toBe(false);
      expect(errors[0]).toMatch(/does not belong/);
      expect(new X509Certificate(provider.certificate!).subject).toMatch(/CN=x$/m);
      writeFileSync(files.keyFile, next.keyPem);
      expect(provider.refresh()).toBe(true);
      expect(new X509Certificate(provider.certificate!).subject).toContain('CN=x2');
      expect(provider.refresh()).toBe(false); // unchanged files publish nothing
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  it('refuses a missing file at construction, naming it', () => {
    expect(() => new FileCertificateProvider({ caFile: join(dir, 'missing.crt') })).toThrow(/missing\.crt/);
  });
});

describe('client TLS settings', () => {
  it('a service serving TLS dials TLS with its own certificate unless told otherwise', () => {
    const base = {
      tlsCaFile: '',
      tlsCertFile: '',
      tlsKeyFile: '',
      tlsClientCaFile: '',
      tlsClientCertFile: '',
      tlsClientKeyFile: '',
      tlsServerName: '',
      tlsRefreshIntervalMs: 1000,
    };
    expect(clientTlsFromConfig(base)).toBeUndefined();
    expect(clientTlsFromConfig({ ...base, tlsCaFile: 'ca', tlsCertFile: 's.crt', tlsKeyFile: 's.key' })).toEqual({
      caFile: 'ca',
      certFile: 's.crt',
      keyFile: 's.key',
      serverName: undefined,
      refreshIntervalMs: 1000,
    });
    expect(
      clientTlsFromConfig({
        ...base,
        tlsCertFile: 's.crt',
        tlsKeyFile: 's.key',
        tlsClientCertFile: 'c.crt',
        tlsClientKeyFile: 'c.key',
        tlsClientCaFile: 'ca2',
        tlsServerName: 'skein',
      }),
    ).toEqual({ caFile: 'ca2', certFile: 'c.crt', keyFile: 'c.key', serverName: 'skein', refreshIntervalMs: 1000 });
    expect(() => clientTlsFromConfig({ ...base, tlsClientCertFile: 'c.crt' })).toThrow(/--tls-client-key-file/);
  });

  it('reads SKEIN_TLS_* for the client library and the CLI', () => {
    expect(clientTlsFromEnv({})).toBeUndefined();
    expect(clientTlsFromEnv({ SKEIN_TLS_CA_FILE: 'ca', SKEIN_TLS_CERT_FILE: 'c', SKEIN_TLS_KEY_FILE: 'k', SKEIN_TLS_SERVER_NAME: 'n' })).toEqual({
      caFile: 'ca',
      certFile: 'c',
      keyFile: 'k',
      serverName: 'n',
    });
    expect(clientTlsFromEnv({ SKEIN_TLS: 'true' })).toEqual({ caFile: undefined, certFile: undefined, keyFile: undefined, serverName: undefined });
  });

  it('verifies the server certificate against the server-name override', async () => {
    const d = mkdtempSync(join(tmpdir(), 'skein-tls-name-'));
    const files = writeCertificate(d, 's', issueCertificate(ca, { commonName: 'skein-broker', dnsNames: ['broker.skein.internal'], days: 1 }));
    writeCertificate(d, 'ca', ca);
    const h = await startGrpcServer({
      host: '127.0.0.1',
      port: 0,
      logger,
      tls: files,
      services: [{ name: 'skein.test.Who', definition: whoamiDefinition, implementation: { whoami: unary(async () => Buffer.from('ok')) } }],
    });
    try {
      const addr = `127.0.0.1:${h.port}`;
      await expect(call(addr, channelCredentials({ caFile: join(d, 'ca.crt') }))).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
      expect((await call(addr, channelCredentials({ caFile: join(d, 'ca.crt'), serverName: 'broker.skein.internal' }))).principal).toBe('ok');
    } finally {
      await h.shutdown(1000);
      rmSync(d, { recursive: true, force: true });
    }
  });
});
