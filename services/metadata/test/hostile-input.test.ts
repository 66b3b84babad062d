// Hostile input against a real metadata service (in process, embedded store in a temp dir): huge
// names and config maps are refused with short INVALID_ARGUMENT statuses before any work, bytes
// that are not a protobuf message answer INVALID_ARGUMENT (they answered INTERNAL), and the
// service keeps serving.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadConfig } from '@skein/common/config.js';
import { fromServiceError } from '@skein/common/errors.js';
import { createLogger } from '@skein/common/logger.js';
import { MetadataServiceClient } from '@skein/proto/skein/metadata/v1/metadata.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metadataConfigSchema } from '../src/config.js';
import { type MetadataServer, startMetadataServer } from '../src/server.js';

const dir = mkdtempSync(join(tmpdir(), 'skein-metadata-hostile-'));
let server: MetadataServer;
let client: MetadataServiceClient;

beforeAll(async () => {
  const config = loadConfig(metadataConfigSchema, { argv: ['--port', '0', '--store', `embedded:${join(dir, 'store.db')}`], env: {} });
  server = await startMetadataServer(config, createLogger({ service: 'test', level: 'silent' }));
  client = new MetadataServiceClient(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
  // One live broker, so a CreateTopic gets as far as its configs.
  await new Promise((resolve, reject) => client.registerBroker({ brokerId: 1, endpoint: { host: '127.0.0.1', port: 1 }, rack: '', sessionTtlMs: 60_000, directoryId: '' }, (e, r) => (e ? reject(e) : resolve(r))));
});
afterAll(async () => {
  client?.close();
  await server?.stop(1000);
  rmSync(dir, { recursive: true, force: true });
});

const options = () => ({ deadline: Date.now() + 10_000 });

async function refusal(call: (cb: (e: grpc.ServiceError | null) => void) => void): Promise<{ code: grpc.status; reason: string; message: string }> {
  const err = await new Promise<grpc.ServiceError>((resolve, reject) => call((e) => (e ? resolve(e) : reject(new Error('expected a refusal')))));
  const decoded = fromServiceError(err);
  return { code: err.code, reason: decoded.reason, message: decoded.message };
}

describe('metadata service: hostile input', () => {
  it('refuses 10,000 bad config keys on CreateTopic promptly with a short INVALID_CONFIG', async () => {
    const configs = Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`bad.config.key.number.${i}`, 'v']));
    const r = await refusal((cb) => client.createTopic({ name: 'many-configs', partitions: 1, replicationFactor: 1, configs, validateOnly: false }, new grpc.Metadata(), options(), cb));
    expect([r.code, r.reason]).toEqual([grpc.status.INVALID_ARGUMENT, 'INVALID_CONFIG']);
    expect(r.message).toBe('configs has 10000 entries; the limit is 64');
    // Under the entry limit, every bad key is still reported (each named), in a bounded message.
    const some = Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`bad.${'k'.repeat(200)}.${i}`, 'v']));
    const r2 = await refusal((cb) => client.createTopic({ name: 'many-configs', partitions: 1, replicationFactor: 1, configs: some, validateOnly: false }, new grpc.Metadata(), options(), cb));
    expect([r2.code, r2.reason]).toEqual([grpc.status.INVALID_ARGUMENT, 'UNKNOWN_CONFIG']);
    expect(Buffer.byteLength(r2.message)).toBeLessThan(1100);
  });

  it('refuses a 100 KB topic name on every RPC that takes one, without echoing it', async () => {
    const name = 'n'.repeat(100_000);
    const md = new grpc.Metadata();
    const calls: Array<(cb: (e: grpc.ServiceError | null) => void) => void> = [
      (cb) => client.createTopic({ name, partitions: 1, replicationFactor: 1, configs: {}, validateOnly: true }, md, options(), cb),
      (cb) => client.describeTopic({ name }, md, options(), cb),
      (cb) => client.deleteTopic({ name }, md, options(), cb),
      (cb) => client.alterTopicConfigs({ name, set: {}, remove: [], validateOnly: true }, md, options(), cb),
      (cb) => client.createPartitions({ name, totalCount: 2, validateOnly: true }, md, options(), cb),
      (cb) => client.getClusterMetadata({ topics: [name] }, md, options(), cb),
    ];
    for (const call of calls) {
      const r = await refusal(call);
      expect([r.code, r.reason]).toEqual([grpc.status.INVALID_ARGUMENT, 'INVALID_TOPIC_NAME']);
      expect(r.message.length).toBeLessThan(200);
    }
  });

  it('refuses oversized lists and strings: metadata topics, broker host', async () => {
    const topics = Array.from({ length: 10_001 }, (_, i) => `t${i}`);
    const r = await refusal((cb) => client.getClusterMetadata({ topics }, new grpc.Metadata(), options(), cb));
    expect([r.code, r.reason]).toEqual([grpc.status.INVALID_ARGUMENT, 'INVALID_REQUEST']);
    const h = await refusal((cb) => client.registerBroker({ brokerId: 2, endpoint: { host: 'h'.repeat(1024 * 1024), port: 1 }, rack: '', sessionTtlMs: 60_000, directoryId: '' }, new grpc.Metadata(), options(), cb));
    expect([h.code, h.reason]).toEqual([grpc.status.INVALID_ARGUMENT, 'INVALID_REQUEST']);
  });

  it('answers bytes that are not a CreateTopicRequest with INVALID_ARGUMENT / INVALID_REQUEST, and keeps serving', async () => {
    const identity = (b: Buffer) => b;
    const raw = new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
    try {
      const r = await refusal((cb) => raw.makeUnaryRequest('/skein.metadata.v1.MetadataService/CreateTopic', identity, identity, Buffer.from([0x0f, 0x01, 0x02]), new grpc.Metadata(), options(), cb));
      expect([r.code, r.reason]).toEqual([grpc.status.INVALID_ARGUMENT, 'INVALID_REQUEST']);
    } finally {
      raw.close();
    }
    const created = await new Promise<{ topic?: { name: string } }>((resolve, reject) => client.createTopic({ name: 'after-garbage', partitions: 1, replicationFactor: 1, configs: {}, validateOnly: false }, new grpc.Metadata(), options(), (e, res) => (e ? reject(e) : resolve(res))));
    expect(created.topic?.name).toBe('after-garbage');
  });
});
