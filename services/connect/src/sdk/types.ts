/**
 * The connector SDK (Kafka Connect's connect-api, in TypeScript). A plugin is a `ConnectorPlugin`:
 * its configuration definitions, how it splits a connector's configuration into task
 * configurations, and a factory for its tasks. Source tasks `poll()` records from an outside system
 * and say, per record, where in that system it came from (`sourcePartition`, `sourceOffset`); the
 * runtime stores the offsets in the offsets topic (in the same transaction as the records, with
 * exactly-once sources) and gives them back after a restart (`context.offset`). Sink tasks are
 * handed records from topics (`put`) and make them durable in `flush`; the runtime commits the
 * group's offsets only after `flush` returns.
 *
 * Records carry values as plain JS (objects, strings, Buffers, null); converters turn them into
 * bytes on the way into a topic and back on the way out (converters.ts), and transforms rewrite
 * them in between (transforms.ts).
 */

import type { Logger } from 'pino';
import type { ConfigKeyDef } from '../domain/config-def.js';

export type { ConfigKeyDef } from '../domain/config-def.js';

export interface Header {
  key: string;
  value: Buffer;
}

export interface ConnectRecord {
  topic: string;
  /** Only for source records that pick their partition; sink records always have one. */
  partition?: number;
  key: unknown;
  value: unknown;
  headers: Header[];
  timestampMs?: number;
}

export type SourcePartition = Record<string, string | number | boolean | null>;
export type SourceOffset = Record<string, unknown>;

export interface SourceRecord extends ConnectRecord {
  /** Where in the outside system (a file, a table, a replication slot). */
  sourcePartition: SourcePartition;
  /** How far in it this record is; what `context.offset(sourcePartition)` returns after a restart. */
  sourceOffset: SourceOffset;
}

export interface SinkRecord extends ConnectRecord {
  partition: number;
  offset: bigint;
}

export interface TaskContext {
  connector: string;
  task: number;
  logger: Logger;
}

export interface SourceTaskContext extends TaskContext {
  /** The last committed offset of a source partition, or undefined. */
  offset(partition: SourcePartition): SourceOffset | undefined;
}

export interface SinkTaskContext extends TaskContext {}

export interface SourceTask {
  start(config: Readonly<Record<string, string>>, context: SourceTaskContext): Promise<void>;
  /**
   * The next records, or [] when there are none yet. Should return within about a second even when
   * idle (the runtime commits and checks for stop between polls); `signal` aborts a wait.
   */
  poll(signal: AbortSignal): Promise<SourceRecord[]>;
  /**
   * Called after the offsets of every record returned so far up to `offsets` are committed (with
   * exactly-once sources: after the transaction holding them committed). The place to acknowledge
   * the outside system (a replication slot's confirmed position).
   */
  commit?(offsets: ReadonlyMap<string, { partition: SourcePartition; offset: SourceOffset }>): Promise<void>;
  stop(): Promise<void>;
}

export interface TopicPartitionOffset {
  topic: string;
  partition: number;
  offset: bigint;
}

export interface SinkTask {
  start(config: Readonly<Record<string, string>>, context: SinkTaskContext): Promise<void>;
  /**
   * Partitions assigned to this task. A sink that keeps its own position (in the file or table it
   * writes) returns where each partition should resume; the runtime seeks there.
   */
  open?(partitions: Array<{ topic: string; partition: number }>): Promise<TopicPartitionOffset[] | undefined>;
  /** Takes records (it may buffer them); a throw is retried and then handled by the error tolerance. */
  put(records: SinkRecord[]): Promise<void>;
  /** Makes everything put so far durable; the runtime commits offsets only after it returns. */
  flush?(): Promise<void>;
  close?(partitions: Array<{ topic: string; partition: number }>): Promise<void>;
  stop(): Promise<void>;
}

export interface ConnectorPlugin {
  /** What `connector.class` names it by. */
  connectorClass: string;
  type: 'source' | 'sink';
  version: string;
  description: string;
  config: readonly ConfigKeyDef[];
  /** Extra validation across keys (beyond each key's own); problems by key. */
  validate?(config: Readonly<Record<string, string>>): Array<{ key: string; error: string }>;
  /** Splits the connector's configuration into at most `maxTasks` task configurations. */
  taskConfigs(config: Readonly<Record<string, string>>, maxTasks: number): Array<Record<string, string>>;
  createTask(): SourceTask | SinkTask;
  /**
   * Releases what the connector holds outside Skein once it is deleted and its tasks have stopped
   * (a replication slot: left behind it would keep WAL until the database's disk fills).
   */
  onDelete?(connector: string, config: Readonly<Record<string, string>>, logger: Logger): Promise<void>;
}
