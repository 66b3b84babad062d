/**
 * A compacted internal topic read by every worker from the start and then tailed (Kafka Connect's
 * KafkaBasedLog): the config, status and offsets topics. Each record is handed to `onRecord` in
 * offset order per partition; `readToEnd()` resolves once every record committed before the call
 * has been handed over (reads are read_committed, so an exactly-once source's offsets are seen only
 * once its transaction committed, and `end` is the last stable offset). Writes go through an
 * idempotent acks=all producer and resolve once stored.
 *
 * The topic is created (cleanup.policy=compact) when missing; a concurrent creation by another
 * worker is fine (TOPIC_ALREADY_EXISTS).
 */

import { Acks, OffsetSpec, type Producer, type SkeinClient } from '@skein/client';
import { retry } from '@skein/common/backoff.js';
import type { Logger } from 'pino';

export interface TopicLogOptions {
  topic: string;
  partitions: number;
  replicationFactor: number;
  logger: Logger;
  onRecord(key: string, value: Buffer | null, partition: number, offset: bigint): void;
}

/**
 * Creates the topic unless it exists; returns its partition count. While the cluster is coming up
 * (no live broker yet: INVALID_REPLICATION_FACTOR; or anything retriable) it keeps trying for
 * `waitMs`, so a worker started with the cluster (npm start, a Deployment) waits for the brokers.
 */
export async function ensureTopic(
  client: SkeinClient,
  name: string,
  partitions: number,
  replicationFactor: number,
  configs: Record<string, string>,
  waitMs = 120_000,
): Promise<number> {
  const deadline = Date.now() + waitMs;
  return retry(() => createOrDescribe(client, name, partitions, replicationFactor, configs), {
    initialMs: 100,
    maxMs: 2000,
    retryIf: (err) =>
      Date.now() < deadline && ((err as { retriable?: boolean }).retriable === true || (err as { reason?: string }).reason === 'INVALID_REPLICATION_FACTOR'),
  });
}

async function createOrDescribe(
  client: SkeinClient,
  name: string,
  partitions: number,
  replicationFactor: number,
  configs: Record<string, string>,
): Promise<number> {
  try {
    // 0 asks for the cluster's default replication factor.
    const t = await client.createTopic(name, { partitions, replicationFactor: Math.max(0, replicationFactor), configs });
    return t.partitions.length;
  } catch (err) {
    if ((err as { reason?: string }).reason !== 'TOPIC_ALREADY_EXISTS') throw err;
  }
  const t = await client.topic(name, true);
  return t.partitions.length;
}

export class TopicLog {
  private readonly positions = new Map<number, bigint>();
  private partitionCount = 0;
  private stopped = false;
  private readonly loops: Array<Promise<void>> = [];
  private producer: Producer | undefined;
  private readonly waiters = new Set<() => void>();

  constructor(
    private readonly client: SkeinClient,
    private readonly options: TopicLogOptions,
  ) {}

  get topic(): string {
    return this.options.topic;
  }

  get partitions(): number {
    return this.partitionCount;
  }

  async start(): Promise<void> {
    this.partitionCount = await ensureTopic(this.client, this.options.topic, this.options.partitions, this.options.replicationFactor, {
      'cleanup.policy': 'compact',
    });
    this.producer = this.client.producer({ acks: Acks.ACKS_ALL, lingerMs: 0 }) as Producer;
    for (let p = 0; p < this.partitionCount; p++) {
      this.positions.set(p, 0n);
      this.loops.push(this.readLoop(p));
    }
    await this.readToEnd();
  }

  private async readLoop(partition: number): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      const position = this.positions.get(partition)!;
      try {
        const res = await this.client.fetch(this.options.topic, partition, position, { maxWaitMs: 500, isolationLevel: 'read_committed' });
        failures = 0;
        for (const r of res.records) {
          if (r.offset < position) continue;
          this.options.onRecord(r.key.toString('utf8'), r.value, partition, r.offset);
        }
        const last = res.records.at(-1);
        const next = res.nextOffset ?? (last ? last.offset + 1n : position);
        if (next > position) this.positions.set(partition, next);
        for (const w of [...this.waiters]) w();
      } catch (err) {
        if (this.stopped) return;
        failures++;
        this.options.logger.warn({ err, topic: this.options.topic, partition }, 'reading an internal topic failed; retrying');
        await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** Math.min(failures, 5))));
      }
    }
  }

  /** Resolves once every record committed before this call has been handed to onRecord. */
  async readToEnd(timeoutMs = 60_000): Promise<void> {
    const ends = await Promise.all(
      [...this.positions.keys()].map(
        async (p) => [p, await this.client.listOffset(this.options.topic, p, OffsetSpec.OFFSET_SPEC_LATEST, 0n, 'read_committed')] as const,
      ),
    );
    const caughtUp = () => ends.every(([p, end]) => (this.positions.get(p) ?? 0n) >= end);
    if (caughtUp()) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`reading ${this.options.topic} to its end took longer than ${timeoutMs} ms`));
      }, timeoutMs);
      const check = () => {
        if (!caughtUp() && !this.stopped) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      this.waiters.add(check);
    });
  }

  /** Writes one record (null value: a tombstone) to the partition of its key and waits until stored. */
  async send(key: string, value: Buffer | null): Promise<void> {
    if (!this.producer) throw new Error(`${this.options.topic} is not started`);
    await this.producer.send(this.options.topic, [{ key, value }]);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const w of [...this.waiters]) w();
    await this.producer?.close().catch(() => {});
    await Promise.allSettled(this.loops);
  }
}
