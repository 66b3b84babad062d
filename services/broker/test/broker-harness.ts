import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { BrokerServiceClient, type ProduceResponse, ProduceResponse as ProduceResponseCodec, type RecordBatch } from '@skein/proto/skein/broker/v1/broker.js';
import { ProduceRequestWire } from '@skein/proto/skein/broker/internal/v1/wire.js';
import type { ClusterMetadata } from '@skein/proto/skein/metadata/v1/metadata.js';
import { BrokerServer, type BrokerServerOptions } from '../src/server.js';
import type { PartitionAssignment } from '../src/replica-manager.js';
import type { LeaderInfo } from '../src/replica-manager.js';
import { systemTimers } from '../src/runtime/timers.js';

/** A metadata view the test fills by hand. */
export class FakeMetadata {
  readonly leaders = new Map<string, LeaderInfo>();
  getMetadata(topics: readonly string[]): ClusterMetadata {
    return { clusterId: 'test-cluster', brokers: [], controller: undefined, topics: topics.map((name) => ({ name, topicId: `${name}-id`, configs: {}, partitions: [], replicationFactor: 1 })), revision: 1n };
  }
  leaderOf(topic: string, partition: number): LeaderInfo | undefined {
    return this.leaders.get(`${topic}-${partition}`);
  }
  /** Partition counts by topic; a topic not listed is unknown. */
  readonly partitionCounts = new Map<string, number>();
  partitionCount(topic: string): number | undefined {
    return this.partitionCounts.get(topic);
  }
}

export class FakeProducerIds {
  next = 0n;
  calls = 0;
  async allocateProducerIds(count: number): Promise<{ firstProducerId: bigint; count: number }> {
    this.calls++;
    const first = this.next;
    this.next += BigInt(count);
    return { firstProducerId: first, count };
  }
}

export interface Harness {
  server: BrokerServer;
  client: BrokerServiceClient;
  port: number;
  metadata: FakeMetadata;
  producerIds: FakeProducerIds;
  stop(): Promise<void>;
}

export async function startBroker(
  dataDir: string,
  opts: { brokerId?: number; producerIds?: FakeProducerIds; clock?: { nowMs(): number }; config?: Partial<BrokerServerOptions['config']> } = {},
): Promise<Harness> {
  const metadata = new FakeMetadata();
  const producerIds = opts.producerIds ?? new FakeProducerIds();
  const server = new BrokerServer({
    config: { brokerId: opts.brokerId ?? 1, dataDir, host: '127.0.0.1', port: 0, backgroundIntervalMs: 3_600_000, producerIdBlockSize: 10, fetchMaxBytes: 50 << 20, ...opts.config },
    logger: pino({ level: process.env['SKEIN_TEST_LOG'] ?? 'silent' }),
    metadata,
    producerIdSource: producerIds,
    clock: opts.clock,
    timers: systemTimers,
  });
  const port = await server.start();
  const client = new BrokerServiceClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  return {
    server,
    client,
    port,
    metadata,
    producerIds,
    async stop() {
      client.close();
      await server.stop(1000);
    },
  };
}

export function assignment(topic: string, partition: number, configs: Record<string, string> = {}, leaderId = 1): PartitionAssignment {
  return { topic, topicId: `${topic}-id`, partition, leaderId, leaderEpoch: 0, replicas: [leaderId], isr: [leaderId], configs };
}

export function call<Req, Res>(fn: (req: Req, cb: (e: grpc.ServiceError | null, r: Res) => void) => unknown, req: Req): Promise<Res> {
  return new Promise((resolve, reject) => fn(req, (e, r) => (e ? reject(e) : resolve(r))));
}

export async function produceOne(client: BrokerServiceClient, topic: string, partition: number, batch: RecordBatch, acks = 2): Promise<ProduceResponse> {
  return call(client.produce.bind(client), { acks, timeoutMs: 1000, topics: [{ topic, partitions: [{ partition, batch }] }] });
}

/** Produces raw batch bytes (possibly malformed) through the broker's wire view. */
export function produceRaw(client: BrokerServiceClient, topic: string, partition: number, batch: Buffer, acks = 2, timeoutMs = 1000): Promise<ProduceResponse> {
  const req = Buffer.from(ProduceRequestWire.encode({ acks, timeoutMs, topics: [{ topic, partitions: [{ partition, batch }] }] }).finish());
  return rawUnary(client, '/skein.broker.v1.BrokerService/Produce', req, ProduceResponseCodec.decode);
}

export function rawUnary<T>(client: BrokerServiceClient, path: string, req: Buffer, decode: (b: Buffer) => T): Promise<T> {
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(path, (b: Buffer) => b, decode, req, (e, r) => (e ? reject(e) : resolve(r as T))),
  );
}
