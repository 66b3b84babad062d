// The schema registry as processes over one store (etcd): both front doors on the same state, a
// schema registered on one instance found by id on another at once (its cache misses, it reads the
// store before answering 40403), and two instances racing registrations agree on ids.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { SchemaRegistryServiceClient, SchemaType } from '@skein/proto/skein/schema/v1/schema.js';
import { fileURLToPath } from 'node:url';
import { freePort, startService, stopAll, type ServiceProcess } from './harness/index.js';
import { skipUnless } from './harness/requirements.js';
import { startStores, type TestStores } from './harness/stores.js';

const ENTRY = fileURLToPath(new URL('../services/schema-registry/dist/main.js', import.meta.url));
const CT = 'application/vnd.schemaregistry.v1+json';
const skip = skipUnless(import.meta.url, 'etcd');

let stores: TestStores;
const registries: Array<{ proc: ServiceProcess; rest: string; grpc: SchemaRegistryServiceClient }> = [];

async function startRegistry(name: string, prefix: string) {
  const restPort = await freePort();
  const proc = await startService({
    name,
    entry: ENTRY,
    args: [...stores.args('schema-registry', prefix), '--rest-port', String(restPort), '--log-level', 'warn'],
  });
  const r = { proc, rest: `http://127.0.0.1:${restPort}`, grpc: new SchemaRegistryServiceClient(proc.address, grpc.credentials.createInsecure()) };
  registries.push(r);
  return r;
}

async function rest(base: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${base}${path}`, { method, headers: { 'Content-Type': CT }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

const call = <Req, Res>(fn: (req: Req, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: Res) => void) => unknown, req: Req) =>
  new Promise<Res>((resolve, reject) => fn(req, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (e, r) => (e ? reject(e) : resolve(r))));

describe.skipIf(skip)('schema registry instances over one store', () => {
  const prefix = `/sr-${process.pid}-${Date.now()}/`;
  let a: Awaited<ReturnType<typeof startRegistry>>;
  let b: Awaited<ReturnType<typeof startRegistry>>;

  beforeAll(async () => {
    stores = await startStores();
    [a, b] = await Promise.all([startRegistry('registry-a', prefix), startRegistry('registry-b', prefix)]);
  });
  afterAll(async () => {
    for (const r of registries) r.grpc.close();
    await stopAll();
    await stores?.stop();
  });

  it('a schema registered through REST on one instance is found by id through REST and gRPC on the other at once', async () => {
    const schema = JSON.stringify({ type: 'record', name: 'Fresh', fields: [{ name: 'at', type: 'long' }] });
    // b looks the id up before it exists: a 40403 it must not remember.
    const next = (await rest(a.rest, 'POST', '/subjects/probe/versions', { schema: '"string"' })).body.id + 1;
    expect(await rest(b.rest, 'GET', `/schemas/ids/${next}`)).toMatchObject({ status: 404, body: { error_code: 40403 } });
    const { id } = (await rest(a.rest, 'POST', '/subjects/fresh-value/versions', { schema })).body;
    expect(id).toBe(next);
    expect(await rest(b.rest, 'GET', `/schemas/ids/${id}`)).toEqual({ status: 200, body: { schema } });
    const viaGrpc = await call(b.grpc.getSchema.bind(b.grpc), { id, subject: '' });
    expect(viaGrpc.schema).toMatchObject({ schemaType: SchemaType.SCHEMA_TYPE_AVRO, schema });
    const latest = await call(b.grpc.getSubjectVersion.bind(b.grpc), { subject: 'fresh-value', version: -1, includeDeleted: false });
    expect(latest.version).toMatchObject({ subject: 'fresh-value', version: 1, id });
    // gRPC errors carry the reason.
    await expect(call(b.grpc.getSubjectVersion.bind(b.grpc), { subject: 'nope', version: 0, includeDeleted: false })).rejects.toMatchObject({
      code: grpc.status.NOT_FOUND,
      details: expect.stringMatching(/not found/),
    });
  });

  it('two instances registering the same and different schemas concurrently agree on ids', async () => {
    const schemas = Array.from({ length: 12 }, (_, i) => JSON.stringify({ type: 'record', name: `Race${i}`, fields: [{ name: 'f', type: 'int' }] }));
    // Every schema registered on both instances, under two subjects each, all at once.
    const attempts = schemas.flatMap((schema, i) =>
      [a, b].flatMap((r) =>
        [`race-${i}-x`, `race-${i}-y`].map(async (subject) => ({ i, subject, res: await rest(r.rest, 'POST', `/subjects/${subject}/versions`, { schema }) })),
      ),
    );
    const results = await Promise.all(attempts);
    for (const r of results) expect(r.res.status, JSON.stringify(r.res.body)).toBe(200);
    const idsBySchema = new Map<number, Set<number>>();
    for (const r of results) idsBySchema.set(r.i, (idsBySchema.get(r.i) ?? new Set()).add(r.res.body.id));
    // The same schema has one id, whichever instance and subject registered it...
    for (const [i, ids] of idsBySchema) expect(ids.size, `schema ${i} got ids ${[...ids]}`).toBe(1);
    // ...and different schemas have different ids.
    const ids = [...idsBySchema.values()].map((s) => [...s][0]!);
    expect(new Set(ids).size).toBe(schemas.length);
    // Each subject got exactly one version, though both instances registered it.
    for (let i = 0; i < schemas.length; i++) expect((await rest(b.rest, 'GET', `/subjects/race-${i}-x/versions`)).body).toEqual([1]);
    // Both instances read the same id -> schema mapping.
    for (const [i, s] of idsBySchema) {
      const id = [...s][0]!;
      expect((await rest(a.rest, 'GET', `/schemas/ids/${id}`)).body.schema).toBe(schemas[i]);
      expect((await rest(b.rest, 'GET', `/schemas/ids/${id}`)).body.schema).toBe(schemas[i]);
    }
  });

  it('a permanent delete on one instance is seen by the other’s cache', async () => {
    const schema = JSON.stringify({ type: 'record', name: 'Gone', fields: [] });
    const { id } = (await rest(a.rest, 'POST', '/subjects/gone/versions', { schema })).body;
    expect((await rest(b.rest, 'GET', `/schemas/ids/${id}`)).status).toBe(200); // now cached on b
    await rest(a.rest, 'DELETE', '/subjects/gone');
    await rest(a.rest, 'DELETE', '/subjects/gone?permanent=true');
    const deadline = Date.now() + 10_000;
    let status = 200;
    while (status === 200 && Date.now() < deadline) status = (await rest(b.rest, 'GET', `/schemas/ids/${id}`)).status;
    expect(status).toBe(404);
  });
});
