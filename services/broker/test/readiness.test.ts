// A broker answers the data path only once it has applied its first metadata (issue 12: it used to
// serve produce and fetch before, answering UNKNOWN_TOPIC_OR_PARTITION for partitions that exist).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { buildRecordBatch } from '@skein/common/records/record-batch.js';
import { BrokerServiceClient } from '@skein/proto/skein/broker/v1/broker.js';
import { BrokerServer } from '../src/server.js';
import { systemTimers } from '../src/runtime/timers.js';
import { assignment, FakeMetadata, FakeProducerIds, produceOne } from './broker-harness.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('broker readiness', () => {
  it('refuses produce with a retriable BROKER_NOT_AVAILABLE until the first metadata is applied, then serves', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skein-ready-'));
    dirs.push(dir);
    const server = new BrokerServer({
      config: { brokerId: 1, dataDir: dir, host: '127.0.0.1', port: 0, backgroundIntervalMs: 3_600_000, producerIdBlockSize: 10, fetchMaxBytes: 50 << 20 },
      logger: pino({ level: 'silent' }),
      metadata: new FakeMetadata(),
      producerIdSource: new FakeProducerIds(),
      timers: systemTimers,
      awaitMetadata: true,
    });
    const port = await server.start();
    const client = new BrokerServiceClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    try {
      // The partition is already open (as during recovery), but the broker has not marked itself ready.
      await server.replicas.applyPartitionAssignment(assignment('orders', 0));
      const batch = buildRecordBatch([{ key: null, value: Buffer.from('x'), timestampMs: Date.now() }]);
      const before = await produceOne(client, 'orders', 0, batch);
      const refused = before.topics[0]!.partitions[0]!;
      expect(refused.error?.reason).toBe('BROKER_NOT_AVAILABLE');
      expect(refused.error?.retriable).toBe(true);
      expect(refused.error?.code).toBe(grpc.status.UNAVAILABLE);
      server.replicas.markReady();
      const after = await produceOne(client, 'orders', 0, batch);
      expect(after.topics[0]!.partitions[0]!.error).toBeUndefined();
      expect(after.topics[0]!.partitions[0]!.baseOffset).toBe(0n);
    } finally {
      client.close();
      await server.stop(1000);
    }
  });
});
