// The schema registry from clients: @skein/client's serializers (Avro, Protobuf, JSON Schema in
// Confluent's wire format) against a registry process, and Confluent's own Python client
// (confluent_kafka.schema_registry, Debian's 1.7) against its REST API: register, look up, check
// compatibility, configure, delete, and decode a JSON Schema record the TypeScript serializer wrote.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeHeader, decodeMessageIndexes, SchemaDeserializer, SchemaRegistryClient, SchemaRegistryError, SchemaSerializer } from '@skein/client';
import { freePort, startService, stopAll } from './harness/index.js';
import { skipUnless } from './harness/requirements.js';
import { startStores, type TestStores } from './harness/stores.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const ENTRY = `${root}services/schema-registry/dist/main.js`;
let stores: TestStores;
let url: string;
let registry: SchemaRegistryClient;

beforeAll(async () => {
  stores = await startStores();
  const restPort = await freePort();
  await startService({
    name: 'schema-registry',
    entry: ENTRY,
    args: [...stores.args('schema-registry', `/serdes-${process.pid}/`), '--rest-port', String(restPort), '--log-level', 'warn'],
  });
  url = `http://127.0.0.1:${restPort}`;
  registry = new SchemaRegistryClient({ url });
});
afterAll(async () => {
  await stopAll();
  await stores?.stop();
});

const payment = {
  type: 'record',
  name: 'Payment',
  namespace: 'shop',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'amount', type: 'double' },
  ],
};

describe('client serializers', () => {
  it('Avro: register on first use, write magic byte + id + Avro binary, read back; a reader schema resolves evolution', async () => {
    const ser = new SchemaSerializer('AVRO', { registry, schema: JSON.stringify(payment) });
    const bytes = await ser.serialize('payments', { id: 'p1', amount: 9.5 });
    const { schemaId } = decodeHeader(bytes);
    expect((await registry.latestVersion('payments-value')).id).toBe(schemaId);
    const de = new SchemaDeserializer({ registry });
    expect(await de.deserialize(bytes)).toEqual({ id: 'p1', amount: 9.5 });
    // A consumer on a newer schema (field added with a default) reads the old record.
    const v2 = { ...payment, fields: [...payment.fields, { name: 'currency', type: 'string', default: 'EUR' }] };
    const evolved = new SchemaDeserializer({ registry, readerSchema: JSON.stringify(v2) });
    expect(await evolved.deserialize(bytes)).toEqual({ id: 'p1', amount: 9.5, currency: 'EUR' });
    // An incompatible writer schema is refused at registration (BACKWARD by default).
    const breaking = new SchemaSerializer('AVRO', { registry, schema: JSON.stringify({ ...payment, fields: [{ name: 'id', type: 'int' }] }) });
    await expect(breaking.serialize('payments', { id: 1 })).rejects.toMatchObject({ status: 409, errorCode: 409 });
    expect(breaking).toBeDefined();
    expect(SchemaRegistryError).toBeDefined();
  });

  it('Protobuf: message indexes in Java’s encoding after the id; nested messages decode by their indexes', async () => {
    const proto =
      'syntax = "proto3";\npackage shop;\nmessage Order { string id = 1; int64 cents = 2; }\nmessage Envelope { message Line { string sku = 1; int32 qty = 2; } repeated Line lines = 1; }';
    const orders = new SchemaSerializer('PROTOBUF', { registry, schema: proto });
    const lines = new SchemaSerializer('PROTOBUF', { registry, schema: proto, messageType: 'shop.Envelope.Line' });
    const a = await orders.serialize('orders', { id: 'o1', cents: '1250' });
    const b = await lines.serialize('order-lines', { sku: 'x', qty: 3 });
    expect(decodeHeader(a).schemaId).toBe(decodeHeader(b).schemaId); // the same schema, one id
    expect(decodeMessageIndexes(decodeHeader(a).rest).indexes).toEqual([0]);
    expect(decodeHeader(a).rest[0]).toBe(0); // [0] is the single byte 0
    expect(decodeMessageIndexes(decodeHeader(b).rest).indexes).toEqual([1, 0]);
    expect(decodeHeader(b).rest.subarray(0, 3).toString('hex')).toBe('040200'); // count 2, 1, 0 as zigzag varints
    const de = new SchemaDeserializer({ registry });
    expect(await de.deserialize(a)).toEqual({ id: 'o1', cents: '1250' });
    expect(await de.deserialize(b)).toEqual({ sku: 'x', qty: 3 });
  });

  it('subject name strategies and use-latest', async () => {
    const schema = JSON.stringify(payment);
    await new SchemaSerializer('AVRO', { registry, schema, subjectNameStrategy: 'record' }).serialize('t1', { id: 'a', amount: 1 });
    await new SchemaSerializer('AVRO', { registry, schema, subjectNameStrategy: 'topic-record' }).serialize('t1', { id: 'a', amount: 1 });
    await new SchemaSerializer('AVRO', { registry, schema, isKey: true }).serialize('t1', { id: 'a', amount: 1 });
    const subjects = await registry.subjects();
    expect(subjects).toEqual(expect.arrayContaining(['shop.Payment', 't1-shop.Payment', 't1-key']));
    // useLatestVersion writes with whatever the subject's latest version is, registering nothing.
    const latest = new SchemaSerializer('AVRO', { registry, useLatestVersion: true });
    const bytes = await latest.serialize('payments', { id: 'p2', amount: 1 });
    expect(decodeHeader(bytes).schemaId).toBe((await registry.latestVersion('payments-value')).id);
    // autoRegister off: an unregistered schema is an error, not a registration.
    const noAuto = new SchemaSerializer('AVRO', { registry, schema: JSON.stringify({ type: 'record', name: 'Never', fields: [] }), autoRegister: false });
    await expect(noAuto.serialize('never', {})).rejects.toMatchObject({ errorCode: 40401 });
    expect(await registry.subjects()).not.toContain('never-value');
  });

  it('JSON Schema: values are validated before they are written', async () => {
    const schema = JSON.stringify({
      title: 'Reading',
      type: 'object',
      properties: { sensor: { type: 'string' }, celsius: { type: 'number' } },
      required: ['sensor'],
    });
    const ser = new SchemaSerializer('JSON', { registry, schema });
    await expect(ser.serialize('readings', { celsius: 3 })).rejects.toThrow(/sensor/);
    const bytes = await ser.serialize('readings', { sensor: 's1', celsius: 21.5 });
    expect(JSON.parse(decodeHeader(bytes).rest.toString())).toEqual({ sensor: 's1', celsius: 21.5 });
  });
});

const skipPython = skipUnless({ url: import.meta.url, part: "Confluent's Python client" }, 'python-schema-registry');

describe.skipIf(skipPython)("Confluent's Python SchemaRegistryClient", () => {
  it('registers, looks up, checks compatibility, configures and deletes; decodes a JSON record the TypeScript serializer wrote', async () => {
    const schema = JSON.stringify({ title: 'Sensor', type: 'object', properties: { id: { type: 'string' }, ok: { type: 'boolean' } }, required: ['id'] });
    const record = await new SchemaSerializer('JSON', { registry, schema }).serialize('sensors', { id: 'temp-1', ok: true });
    const stdout = execFileSync('/usr/bin/python3', [`${root}examples/python/schema_registry_example.py`, url, 'py-payments-value', record.toString('hex')], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    const steps = Object.fromEntries(
      stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
        .map((s) => [s.step, s]),
    );
    expect(steps.register.id).toBeGreaterThan(0);
    expect(steps.register.again).toBe(steps.register.id);
    expect(steps.get_schema).toMatchObject({ schema_type: 'AVRO', schema: { name: 'Payment' } });
    expect(steps.lookup).toMatchObject({ id: steps.register.id, version: 1, subject: 'py-payments-value' });
    expect(steps.compatibility).toMatchObject({ v2: true, bad: false });
    expect(steps.register_incompatible.error).toEqual({ http_status: 409, error_code: 409 });
    expect(steps.latest).toMatchObject({ version: 2, versions: [1, 2], v1: steps.register.id });
    expect(steps.config).toMatchObject({ set: { compatibility: 'FULL' }, get: 'FULL' }); // this client returns the PUT body as is
    expect(steps.missing).toMatchObject({ schema: { http_status: 404, error_code: 40403 }, subject: { http_status: 404, error_code: 40401 } });
    expect(steps.subjects.listed).toBe(true);
    expect(steps.delete_version).toMatchObject({ deleted: 1, versions: [2] });
    expect(steps.delete_subject).toMatchObject({ deleted: [2], after: { http_status: 404, error_code: 40401 } });
    expect(steps.decode_json).toEqual({
      step: 'decode_json',
      schema_id: decodeHeader(record).schemaId,
      schema_type: 'JSON',
      value: { id: 'temp-1', ok: true },
    });
  });
});
