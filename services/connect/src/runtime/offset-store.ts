/**
 * Source offsets (Kafka Connect's KafkaOffsetBackingStore): the offsets topic holds, per connector
 * and source partition, the last committed source offset. Key: the JSON of `[connector,
 * sourcePartition]` (with the partition's keys sorted, so one partition always has one key, and
 * compaction keeps its latest offset); value: the JSON of the offset. Every worker reads the whole
 * topic (read_committed: an exactly-once task's offsets count once its transaction committed) and
 * keeps the latest value per key in memory.
 */

import type { SkeinClient } from '@skein/client';
import type { Logger } from 'pino';
import type { SourceOffset, SourcePartition } from '../sdk/types.js';
import { TopicLog } from './topic-log.js';

function sortedKeys(o: SourcePartition): SourcePartition {
  const out: SourcePartition = {};
  for (const k of Object.keys(o).sort()) out[k] = o[k]!;
  return out;
}

export class OffsetStore {
  private readonly offsets = new Map<string, SourceOffset>();
  private readonly log: TopicLog;

  constructor(client: SkeinClient, options: { topic: string; partitions: number; replicationFactor: number; logger: Logger }) {
    this.log = new TopicLog(client, {
      ...options,
      onRecord: (key, value) => {
        if (value === null) this.offsets.delete(key);
        else {
          try {
            this.offsets.set(key, JSON.parse(value.toString('utf8')) as SourceOffset);
          } catch {
            options.logger.warn({ key }, 'unparseable source offset skipped');
          }
        }
      },
    });
  }

  get topic(): string {
    return this.log.topic;
  }

  start(): Promise<void> {
    return this.log.start();
  }

  readToEnd(): Promise<void> {
    return this.log.readToEnd();
  }

  key(connector: string, partition: SourcePartition): string {
    return JSON.stringify([connector, sortedKeys(partition)]);
  }

  get(connector: string, partition: SourcePartition): SourceOffset | undefined {
    return this.offsets.get(this.key(connector, partition));
  }

  /** Records the offset locally (after it was committed), ahead of reading it back. */
  set(connector: string, partition: SourcePartition, offset: SourceOffset): void {
    this.offsets.set(this.key(connector, partition), offset);
  }

  /** The offsets-topic record for an offset: what a transactional task sends in its transaction. */
  record(connector: string, partition: SourcePartition, offset: SourceOffset): { key: string; value: Buffer } {
    return { key: this.key(connector, partition), value: Buffer.from(JSON.stringify(offset)) };
  }

  /** Writes an offset outside any transaction (at-least-once sources) and waits until stored. */
  async write(connector: string, partition: SourcePartition, offset: SourceOffset): Promise<void> {
    const r = this.record(connector, partition, offset);
    await this.log.send(r.key, r.value);
  }

  stop(): Promise<void> {
    return this.log.stop();
  }
}
