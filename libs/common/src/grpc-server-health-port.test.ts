// The plaintext health-only port (--health-port): kubelet's gRPC probes cannot speak TLS, so a
// service whose port requires mTLS also answers grpc.health.v1, and nothing else, in plaintext on a
// second port. Certificates from the development CA (scripts/dev-ca.js): no openssl needed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { createCa, issueCertificate, writeCertificate } from '../../../scripts/dev-ca.js';
import { startGrpcServer, unary } from './grpc-server.js';
import { channelCredentials } from './tls.js';

const identity = (b: Buffer) => b;
const echoDefinition: grpc.ServiceDefinition = {
  echo: {
    path: '/skein.test.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};
const echo = { echo: unary(async (req: Buffer) => req) };
const logger = pino({ level: 'silent' });
const dir = mkdtempSync(join(tmpdir(), 'skein-health-port-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ca = createCa({ days: 1 });
const caFile = writeCertificate(dir, 'ca', ca).certFile;
const server = writeCertificate(dir, 'server', issueCertificate(ca, { commonName: 'server', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], days: 1 }));
const client = writeCertificate(dir, 'client', issueCertificate(ca, { commonName: 'client', days: 1 }));

/** HealthCheckRequest { service } by hand (field 1, length-delimited). */
const healthRequest = (service: string) =>
  service === '' ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x0a, Buffer.byteLength(service)]), Buffer.from(service)]);
const SERVING = Buffer.from([0x08, 0x01]);
const NOT_SERVING = Buffer.from([0x08, 0x02]);

function rawUnary(c: grpc.Client, path: string, body: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    c.makeUnaryRequest(path, identity, identity, body, new grpc.Metadata(), { deadline: Date.now() + 5000 }, (e, r) => (e ? reject(e) : resolve(r!))),
  );
}
const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => grpc.status.OK,
    (e: grpc.ServiceError) => e.code,
  );

describe('the plaintext health-only port', () => {
  it('serves grpc.health.v1 in plaintext beside an mTLS port, follows its statuses, and serves nothing else', async () => {
    const handle = await startGrpcServer({
      host: '127.0.0.1',
      port: 0,
      services: [{ name: 'skein.test.Echo', definition: echoDefinition, implementation: echo }],
      logger,
      tls: { certFile: server.certFile, keyFile: server.keyFile, caFile, requireClientCert: true },
      healthPort: 0,
    });
    const plainToHealth = new grpc.Client(`127.0.0.1:${handle.healthPort}`, grpc.credentials.createInsecure());
    const plainToMain = new grpc.Client(`127.0.0.1:${handle.port}`, grpc.credentials.createInsecure());
    const mtlsToMain = new grpc.Client(`localhost:${handle.port}`, channelCredentials({ caFile, certFile: client.certFile, keyFile: client.keyFile }));
    try {
      expect(handle.healthPort).toBeGreaterThan(0);
      expect(handle.healthPort).not.toBe(handle.port);
      // The main port stays TLS-only: plaintext gets no answer at all, Health included.
      expect(await codeOf(rawUnary(plainToMain, '/grpc.health.v1.Health/Check', healthRequest('')))).toBe(grpc.status.UNAVAILABLE);
      expect((await rawUnary(mtlsToMain, '/skein.test.Echo/Echo', Buffer.from('hi'))).toString()).toBe('hi');

      // The health port answers plaintext, overall and per service, with the main port's statuses.
      expect(await rawUnary(plainToHealth, '/grpc.health.v1.Health/Check', healthRequest(''))).toEqual(SERVING);
      expect(await rawUnary(plainToHealth, '/grpc.health.v1.Health/Check', healthRequest('skein.test.Echo'))).toEqual(SERVING);
      handle.setServing('', false);
      expect(await rawUnary(plainToHealth, '/grpc.health.v1.Health/Check', healthRequest(''))).toEqual(NOT_SERVING);
      expect(await rawUnary(mtlsToMain, '/grpc.health.v1.Health/Check', healthRequest(''))).toEqual(NOT_SERVING);
      handle.setServing('', true);
      expect(await rawUnary(plainToHealth, '/grpc.health.v1.Health/Check', healthRequest('skein.test.Echo'))).toEqual(SERVING);

      // Nothing else: not the service, not reflection (which the main port does serve).
      expect(await codeOf(rawUnary(plainToHealth, '/skein.test.Echo/Echo', Buffer.from('hi')))).toBe(grpc.status.UNIMPLEMENTED);
      for (const reflection of [
        '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo',
        '/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo',
      ]) {
        expect(await codeOf(rawUnary(plainToHealth, reflection, Buffer.alloc(0))), reflection).toBe(grpc.status.UNIMPLEMENTED);
        expect(await codeOf(rawUnary(mtlsToMain, reflection, Buffer.alloc(0))), reflection).not.toBe(grpc.status.UNIMPLEMENTED);
      }
    } finally {
      for (const c of [plainToHealth, plainToMain, mtlsToMain]) c.close();
      await handle.shutdown(1000);
    }
    // Shutdown closes the health port too.
    const after = new grpc.Client(`127.0.0.1:${handle.healthPort}`, grpc.credentials.createInsecure());
    expect(await codeOf(rawUnary(after, '/grpc.health.v1.Health/Check', healthRequest('')))).toBe(grpc.status.UNAVAILABLE);
    after.close();
  });

  it('is not opened unless asked for', async () => {
    const handle = await startGrpcServer({
      host: '127.0.0.1',
      port: 0,
      services: [{ name: 'skein.test.Echo', definition: echoDefinition, implementation: echo }],
      logger,
    });
    expect(handle.healthPort).toBeUndefined();
    await handle.shutdown(1000);
  });
});
