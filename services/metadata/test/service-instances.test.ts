// Service discovery on a real metadata service (in process, embedded store in a temp dir):
// RegisterServiceInstance / ServiceInstanceHeartbeat / UnregisterServiceInstance /
// FindServiceInstances, and the registration loop every non-broker role runs
// (libs/common/src/service-registration.ts), which the group coordinator uses.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadConfig } from '@skein/common/config.js';
import { fromServiceError } from '@skein/common/errors.js';
import { createLogger } from '@skein/common/logger.js';
import { startServiceRegistration } from '@skein/common/service-registration.js';
import { MetadataServiceClient, ServiceRole, type ServiceInstance } from '@skein/proto/skein/metadata/v1/metadata.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metadataConfigSchema } from '../src/config.js';
import { type MetadataServer, startMetadataServer } from '../src/server.js';

const dir = mkdtempSync(join(tmpdir(), 'skein-metadata-instances-'));
const logger = createLogger({ service: 'test', level: 'silent' });
const COORDINATOR = ServiceRole.SERVICE_ROLE_GROUP_COORDINATOR;
let server: MetadataServer;
let client: MetadataServiceClient;
let address = '';

beforeAll(async () => {
  const config = loadConfig(metadataConfigSchema, { argv: ['--port', '0', '--store', `embedded:${join(dir, 'store.db')}`], env: {} });
  server = await startMetadataServer(config, logger);
  address = `127.0.0.1:${server.port}`;
  client = new MetadataServiceClient(address, grpc.credentials.createInsecure());
});
afterAll(async () => {
  client?.close();
  await server?.stop(1000);
  rmSync(dir, { recursive: true, force: true });
});

type Method = 'registerServiceInstance' | 'serviceInstanceHeartbeat' | 'unregisterServiceInstance' | 'findServiceInstances';
function call<Res>(method: Method, req: object): Promise<Res> {
  return new Promise((resolve, reject) => {
    (client[method] as unknown as (r: object, m: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: Res) => void) => void)
      .call(client, req, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (e, r) => (e ? reject(fromServiceError(e)) : resolve(r)));
  });
}
const register = (instanceId: string, port: number, sessionTtlMs = 0) =>
  call<{ sessionId: bigint; sessionTtlMs: number; heartbeatIntervalMs: number; clusterId: string }>('registerServiceInstance', { role: COORDINATOR, instanceId, endpoint: { host: '127.0.0.1', port }, sessionTtlMs });
const find = async (role = COORDINATOR) => (await call<{ instances: ServiceInstance[] }>('findServiceInstances', { role })).instances;
const refusal = (p: Promise<unknown>) => p.then(() => { throw new Error('expected a refusal'); }, (e: { code: number; reason: string; message: string }) => e);

async function waitFor(condition: () => Promise<boolean>, timeoutMs: number, message: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${message}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('service discovery (FindServiceInstances)', () => {
  it('lists registered instances by role, ordered by instance id, until they unregister', async () => {
    const b = await register('coord-b', 7002);
    const a = await register('coord-a', 7001);
    expect(a.clusterId).toBe(server.clusterId);
    expect(a.heartbeatIntervalMs).toBe(Math.floor(a.sessionTtlMs / 3));
    expect(await find()).toEqual([
      { role: COORDINATOR, instanceId: 'coord-a', endpoint: { host: '127.0.0.1', port: 7001 } },
      { role: COORDINATOR, instanceId: 'coord-b', endpoint: { host: '127.0.0.1', port: 7002 } },
    ]);
    // UNSPECIFIED lists every role; a role this build does not know lists nothing.
    expect((await find(ServiceRole.SERVICE_ROLE_UNSPECIFIED)).map((i) => i.instanceId)).toEqual(['coord-a', 'coord-b']);
    expect(await find(42 as ServiceRole)).toEqual([]);
    expect((await call<{ sessionTtlMs: number }>('serviceInstanceHeartbeat', { role: COORDINATOR, instanceId: 'coord-a', sessionId: a.sessionId })).sessionTtlMs).toBeGreaterThan(0);
    await call('unregisterServiceInstance', { role: COORDINATOR, instanceId: 'coord-a', sessionId: a.sessionId });
    await call('unregisterServiceInstance', { role: COORDINATOR, instanceId: 'coord-b', sessionId: b.sessionId });
    expect(await find()).toEqual([]);
  });

  it('a registration under a registered name replaces it; the old session can no longer heartbeat', async () => {
    const old = await register('coord-restarted', 7100);
    const fresh = await register('coord-restarted', 7101);
    expect((await find()).filter((i) => i.instanceId === 'coord-restarted').map((i) => i.endpoint?.port)).toEqual([7101]);
    const e = await refusal(call('serviceInstanceHeartbeat', { role: COORDINATOR, instanceId: 'coord-restarted', sessionId: old.sessionId }));
    expect([e.code, e.reason]).toEqual([grpc.status.NOT_FOUND, 'SESSION_EXPIRED']);
    await call('unregisterServiceInstance', { role: COORDINATOR, instanceId: 'coord-restarted', sessionId: fresh.sessionId });
  });

  it('an instance that stops heartbeating is no longer listed once its session expires', async () => {
    await register('coord-silent', 7200, 1000);
    expect((await find()).map((i) => i.instanceId)).toContain('coord-silent');
    await waitFor(async () => !(await find()).some((i) => i.instanceId === 'coord-silent'), 10_000, 'the silent instance is unlisted');
  });

  it('refuses bad registrations with INVALID_ARGUMENT', async () => {
    const bad: Array<[object, RegExp]> = [
      [{ role: ServiceRole.SERVICE_ROLE_UNSPECIFIED, instanceId: 'x', endpoint: { host: 'h', port: 1 } }, /role/],
      [{ role: COORDINATOR, instanceId: '', endpoint: { host: 'h', port: 1 } }, /instance_id is required/],
      [{ role: COORDINATOR, instanceId: 'a/b', endpoint: { host: 'h', port: 1 } }, /instance_id may contain only/],
      [{ role: COORDINATOR, instanceId: 'x'.repeat(10_000), endpoint: { host: 'h', port: 1 } }, /10000 characters; the limit is 253/],
      [{ role: COORDINATOR, instanceId: 'x' }, /endpoint.host is required/],
      [{ role: COORDINATOR, instanceId: 'x', endpoint: { host: 'h', port: 70_000 } }, /endpoint.port/],
      [{ role: COORDINATOR, instanceId: 'x', endpoint: { host: 'h', port: 1 }, sessionTtlMs: 10 }, /session_ttl_ms/],
    ];
    for (const [req, message] of bad) {
      const e = await refusal(call('registerServiceInstance', { sessionTtlMs: 0, ...req }));
      expect([e.code, e.reason], JSON.stringify(req).slice(0, 100)).toEqual([grpc.status.INVALID_ARGUMENT, 'INVALID_REQUEST']);
      expect(e.message).toMatch(message);
    }
    expect(await find()).toEqual([]);
  });

  it('the registration loop registers, registers again when its session is replaced, and unregisters on stop', async () => {
    const registration = startServiceRegistration({
      metadataAddresses: ['127.0.0.1:1', address], // the first is unreachable: the loop moves on
      role: COORDINATOR, instanceId: 'coord-loop', endpoint: { host: '10.0.0.7', port: 9095 }, logger, sessionTtlMs: 1000, callTimeoutMs: 2000,
    });
    try {
      await registration.registered;
      expect(await find()).toEqual([{ role: COORDINATOR, instanceId: 'coord-loop', endpoint: { host: '10.0.0.7', port: 9095 } }]);
      // Someone takes the name over; when that entry goes, the loop's next heartbeat finds its
      // session gone and registers again with its own endpoint.
      const usurper = await register('coord-loop', 1234);
      await call('unregisterServiceInstance', { role: COORDINATOR, instanceId: 'coord-loop', sessionId: usurper.sessionId });
      await waitFor(async () => (await find()).some((i) => i.endpoint?.host === '10.0.0.7'), 10_000, 'the loop registered again');
    } finally {
      await registration.stop();
    }
    expect(await find()).toEqual([]);
  });
});
