// The Confluent REST API in process (embedded store, HTTP on port 0): paths, status codes, error
// bodies and content type as Confluent's clients expect them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@skein/common/logger.js';
import { EmbeddedStore } from '@skein/common/store/embedded-store.js';
import type { MetadataStore } from '@skein/common/store/types.js';
import { CONTENT_TYPE, type RestServerHandle, startRestServer } from '../src/rest/rest-server.js';
import { Registry } from '../src/runtime/registry.js';
import { RegistryStore } from '../src/store/registry-store.js';

let store: MetadataStore;
let registry: Registry;
let server: RestServerHandle;
let base: string;

beforeAll(async () => {
  store = await EmbeddedStore.open();
  registry = new Registry({ store: new RegistryStore(store, '/t/') });
  await registry.start();
  server = await startRestServer({ registry, host: '127.0.0.1', port: 0, logger: createLogger({ service: 'test', level: 'silent' }) });
  base = `http://127.0.0.1:${server.port}`;
});
afterAll(async () => {
  await server?.close();
  await registry?.close();
  await store?.close();
});

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any; contentType: string | null }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { 'Content-Type': CONTENT_TYPE, Accept: CONTENT_TYPE },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {}
  return { status: res.status, body: parsed, contentType: res.headers.get('content-type') };
}

const user = (fields: unknown[]) => JSON.stringify({ type: 'record', name: 'User', fields });
const v1 = user([{ name: 'name', type: 'string' }]);
const v2 = user([
  { name: 'name', type: 'string' },
  { name: 'age', type: 'int', default: 0 },
]);

describe('Confluent REST API', () => {
  it('registers, dedupes, versions and reads schemas back', async () => {
    const r1 = await call('POST', '/subjects/users-value/versions', { schema: v1 });
    expect(r1.status).toBe(200);
    expect(r1.contentType).toBe(CONTENT_TYPE);
    const id1 = r1.body.id as number;
    expect(id1).toBeGreaterThan(0);
    // Same schema again (even with other whitespace): same id, no new version.
    expect((await call('POST', '/subjects/users-value/versions', { schema: JSON.stringify(JSON.parse(v1), null, 2) })).body).toEqual({ id: id1 });
    // The same schema under another subject: the same global id.
    expect((await call('POST', '/subjects/other-value/versions', { schema: v1, schemaType: 'AVRO' })).body).toEqual({ id: id1 });
    const r2 = await call('POST', '/subjects/users-value/versions', { schema: v2 });
    expect(r2.body.id).toBeGreaterThan(id1);
    expect((await call('GET', '/subjects/users-value/versions')).body).toEqual([1, 2]);
    expect((await call('GET', '/subjects/users-value/versions/latest')).body).toEqual({ subject: 'users-value', version: 2, id: r2.body.id, schema: v2 });
    expect((await call('GET', '/subjects/users-value/versions/1/schema')).body).toEqual(JSON.parse(v1));
    expect((await call('GET', `/schemas/ids/${id1}`)).body).toEqual({ schema: v1 });
    expect((await call('GET', `/schemas/ids/${id1}/versions`)).body).toEqual([
      { subject: 'other-value', version: 1 },
      { subject: 'users-value', version: 1 },
    ]);
    expect((await call('GET', `/schemas/ids/${id1}/subjects`)).body).toEqual(['other-value', 'users-value']);
    expect((await call('GET', '/subjects')).body).toEqual(['other-value', 'users-value']);
    expect((await call('GET', '/subjects?subjectPrefix=us')).body).toEqual(['users-value']);
    expect((await call('GET', '/schemas/types')).body).toEqual(['JSON', 'PROTOBUF', 'AVRO']);
    const lookup = await call('POST', '/subjects/users-value', { schema: v1 });
    expect(lookup.body).toEqual({ subject: 'users-value', version: 1, id: id1, schema: v1 });
  });

  it('answers Confluent error codes for missing subjects, versions and schemas', async () => {
    expect(await call('GET', '/subjects/nope/versions')).toMatchObject({ status: 404, body: { error_code: 40401, message: "Subject 'nope' not found." } });
    expect(await call('GET', '/subjects/users-value/versions/99')).toMatchObject({ status: 404, body: { error_code: 40402 } });
    expect(await call('GET', '/schemas/ids/999999')).toMatchObject({ status: 404, body: { error_code: 40403, message: 'Schema 999999 not found' } });
    expect(await call('POST', '/subjects/users-value', { schema: user([{ name: 'x', type: 'int' }]) })).toMatchObject({
      status: 404,
      body: { error_code: 40403 },
    });
    expect(await call('POST', '/subjects/nope', { schema: v1 })).toMatchObject({ status: 404, body: { error_code: 40401 } });
    expect(await call('GET', '/subjects/users-value/versions/zero')).toMatchObject({ status: 422, body: { error_code: 42202 } });
    expect(await call('POST', '/subjects/users-value/versions', { schema: '{"type": "nope"}' })).toMatchObject({ status: 422, body: { error_code: 42201 } });
    expect(await call('GET', '/no/such/path')).toMatchObject({ status: 404, body: { error_code: 404 } });
    expect(await call('PATCH', '/subjects')).toMatchObject({ status: 405, body: { error_code: 405 } });
  });

  it('refuses an incompatible schema with 409 and checks compatibility on request', async () => {
    const breaking = user([
      { name: 'name', type: 'string' },
      { name: 'email', type: 'string' },
    ]);
    expect(await call('POST', '/subjects/users-value/versions', { schema: breaking })).toMatchObject({ status: 409, body: { error_code: 409 } });
    expect((await call('POST', '/compatibility/subjects/users-value/versions/latest', { schema: breaking })).body).toEqual({ is_compatible: false });
    const verbose = await call('POST', '/compatibility/subjects/users-value/versions/latest?verbose=true', { schema: breaking });
    expect(verbose.body.is_compatible).toBe(false);
    expect(verbose.body.messages.join()).toMatch(/email has no default/);
    expect((await call('POST', '/compatibility/subjects/users-value/versions/latest', { schema: v2 })).body).toEqual({ is_compatible: true });
    // With the subject set to NONE the same schema registers.
    expect((await call('PUT', '/config/users-value', { compatibility: 'NONE' })).body).toEqual({ compatibility: 'NONE' });
    expect((await call('GET', '/config/users-value')).body).toEqual({ compatibilityLevel: 'NONE' });
    expect((await call('POST', '/subjects/users-value/versions', { schema: breaking })).status).toBe(200);
    expect((await call('DELETE', '/config/users-value')).body).toEqual({ compatibilityLevel: 'NONE' });
    expect(await call('GET', '/config/users-value')).toMatchObject({ status: 404, body: { error_code: 40408 } });
    expect((await call('GET', '/config/users-value?defaultToGlobal=true')).body).toEqual({ compatibilityLevel: 'BACKWARD' });
    expect((await call('GET', '/config')).body).toEqual({ compatibilityLevel: 'BACKWARD' });
    expect(await call('PUT', '/config', { compatibility: 'SIDEWAYS' })).toMatchObject({ status: 422, body: { error_code: 42203 } });
  });

  it('soft and permanent deletes in Confluent’s order, with its errors', async () => {
    await call('POST', '/subjects/del-me/versions', { schema: v1 });
    await call('POST', '/subjects/del-me/versions', { schema: v2 });
    expect(await call('DELETE', '/subjects/del-me?permanent=true')).toMatchObject({ status: 404, body: { error_code: 40405 } });
    expect((await call('DELETE', '/subjects/del-me/versions/1')).body).toBe(1);
    expect(await call('DELETE', '/subjects/del-me/versions/1')).toMatchObject({ status: 404, body: { error_code: 40406 } });
    expect((await call('GET', '/subjects/del-me/versions')).body).toEqual([2]);
    expect((await call('GET', '/subjects/del-me/versions?deleted=true')).body).toEqual([1, 2]);
    expect((await call('DELETE', '/subjects/del-me')).body).toEqual([2]);
    expect(await call('DELETE', '/subjects/del-me')).toMatchObject({ status: 404, body: { error_code: 40404 } });
    expect((await call('GET', '/subjects')).body).not.toContain('del-me');
    expect((await call('GET', '/subjects?deleted=true')).body).toContain('del-me');
    expect((await call('DELETE', '/subjects/del-me?permanent=true')).body).toEqual([1, 2]);
    expect(await call('GET', '/subjects/del-me/versions?deleted=true')).toMatchObject({ status: 404, body: { error_code: 40401 } });
  });

  it('permanently deleting the last use of a schema removes its id everywhere', async () => {
    const only = user([{ name: 'solo', type: 'long' }]);
    const { id } = (await call('POST', '/subjects/solo/versions', { schema: only })).body;
    await call('DELETE', '/subjects/solo/versions/1');
    expect((await call('GET', `/schemas/ids/${id}`)).status).toBe(200); // soft-deleted: still readable by id
    await call('DELETE', '/subjects/solo/versions/1?permanent=true');
    expect(await call('GET', `/schemas/ids/${id}`)).toMatchObject({ status: 404, body: { error_code: 40403 } });
  });

  it('modes: READONLY refuses writes; explicit ids need IMPORT', async () => {
    expect((await call('PUT', '/mode/locked', { mode: 'READONLY' })).body).toEqual({ mode: 'READONLY' });
    expect(await call('POST', '/subjects/locked/versions', { schema: v1 })).toMatchObject({ status: 422, body: { error_code: 42205 } });
    expect((await call('GET', '/mode/locked')).body).toEqual({ mode: 'READONLY' });
    expect((await call('GET', '/mode')).body).toEqual({ mode: 'READWRITE' });
    expect(await call('PUT', '/mode', { mode: 'SOMETIMES' })).toMatchObject({ status: 422, body: { error_code: 42204 } });
    expect(await call('PUT', '/mode', { mode: 'IMPORT' })).toMatchObject({ status: 422, body: { error_code: 42205 } });
    expect(await call('POST', '/subjects/imp/versions', { schema: v1, id: 5000 })).toMatchObject({ status: 422, body: { error_code: 42205 } });
    expect((await call('PUT', '/mode/imp', { mode: 'IMPORT' })).body).toEqual({ mode: 'IMPORT' });
    const other = user([{ name: 'imported', type: 'string' }]);
    expect((await call('POST', '/subjects/imp/versions', { schema: other, id: 5000, version: 3 })).body).toEqual({ id: 5000 });
    expect((await call('GET', '/subjects/imp/versions/3')).body).toMatchObject({ id: 5000, version: 3 });
    await call('DELETE', '/mode/imp');
    // Ids handed out after an import continue above it.
    const next = await call('POST', '/subjects/after-import/versions', { schema: user([{ name: 'later', type: 'string' }]) });
    expect(next.body.id).toBeGreaterThan(5000);
  });

  it('protobuf and JSON schemas carry schemaType; references resolve across subjects', async () => {
    const proto = 'syntax = "proto3";\npackage acme;\nmessage Order { string id = 1; }';
    const p = await call('POST', '/subjects/orders-value/versions', { schema: proto, schemaType: 'PROTOBUF' });
    expect((await call('GET', `/schemas/ids/${p.body.id}`)).body).toEqual({ schemaType: 'PROTOBUF', schema: proto });
    const address = JSON.stringify({ type: 'object', properties: { city: { type: 'string' } } });
    await call('POST', '/subjects/address/versions', { schema: address, schemaType: 'JSON' });
    const person = JSON.stringify({ type: 'object', properties: { home: { $ref: 'address.json' } } });
    const refs = [{ name: 'address.json', subject: 'address', version: 1 }];
    // Without the reference the $ref does not resolve: the schema is refused, not stored half-valid.
    expect(await call('POST', '/subjects/person/versions', { schema: person, schemaType: 'JSON' })).toMatchObject({ status: 422, body: { error_code: 42201 } });
    const withRef = await call('POST', '/subjects/person2/versions', { schema: person, schemaType: 'JSON', references: refs });
    expect(withRef.status).toBe(200);
    expect((await call('GET', `/schemas/ids/${withRef.body.id}`)).body).toEqual({ schemaType: 'JSON', references: refs, schema: person });
    expect((await call('GET', '/subjects/address/versions/1/referencedby')).body).toEqual([withRef.body.id]);
    // A referenced version cannot be deleted (soft or permanent) while the reference exists.
    expect(await call('DELETE', '/subjects/address/versions/1')).toMatchObject({ status: 422, body: { error_code: 42206 } });
    expect(await call('DELETE', '/subjects/address/versions/1?permanent=true')).toMatchObject({ status: 404, body: { error_code: 40407 } });
    await call('DELETE', '/subjects/person2');
    await call('DELETE', '/subjects/person2?permanent=true');
    expect((await call('DELETE', '/subjects/address/versions/1')).body).toBe(1);
  });
});
