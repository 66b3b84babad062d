/**
 * The metadata key layout in the store, and the versioned JSON values stored under it. One prefix
 * (default `/skein/`) holds everything:
 *
 *   <prefix>cluster/id                          cluster id (plain text), written once
 *   <prefix>brokers/<brokerId>                  BrokerRecord, attached to the broker's session lease
 *   <prefix>broker-directories/<brokerId>       BrokerDirectoryRecord: the data directory id last
 *                                               accepted for the broker; durable (no lease), so it
 *                                               outlives sessions (see broker-directories.ts)
 *   <prefix>topics/<name>                       TopicRecord
 *   <prefix>partitions/<name>/<partition>       PartitionRecord (leader, epochs, ISR)
 *   <prefix>controller/election/<leaseIdHex>    controller candidates; lowest create revision leads
 *   <prefix>producer-ids/next                   next unallocated producer id (decimal text)
 *   <prefix>service-instances/<role>/<id>       a registered instance of another role (a group
 *                                               coordinator), on its session lease (see
 *                                               service-instances.ts)
 *
 * Topic names cannot contain "/", so the prefixes of two topics never overlap. Values carry
 * `v: 1`; a reader refuses versions it does not know rather than guessing.
 */

import type { PartitionRecord } from './partition-state.js';

export interface BrokerRecord {
  v: 1;
  brokerId: number;
  host: string;
  port: number;
  rack: string;
  registeredAtMs: number;
  /** The data directory id the broker registered with ('' from brokers that send none). */
  directoryId?: string;
}

/**
 * The data directory last accepted for a broker. A registration with another id sets
 * `pendingDirectoryId`; the controller removes the broker from every ISR and only then makes it
 * `directoryId` (see broker-directories.ts).
 */
export interface BrokerDirectoryRecord {
  v: 1;
  brokerId: number;
  directoryId: string;
  pendingDirectoryId?: string;
  updatedAtMs: number;
}

export interface TopicRecord {
  v: 1;
  name: string;
  topicId: string;
  replicationFactor: number;
  partitionCount: number;
  /**
   * Replica lists per partition, preferred leader first. The partition state keys are created from
   * it; because etcd limits the operations per transaction, a large topic's states are written in
   * several transactions, and the controller completes any a crashed writer left out.
   */
  assignment: number[][];
  configs: Record<string, string>;
  createdAtMs: number;
}

export interface ControllerRecord {
  v: 1;
  instanceId: string;
  host: string;
  port: number;
}

export class MetadataKeys {
  constructor(readonly prefix: string) {
    if (!prefix.endsWith('/')) throw new Error(`metadata prefix must end with "/", got "${prefix}"`);
  }
  clusterId(): string { return `${this.prefix}cluster/id`; }
  brokersPrefix(): string { return `${this.prefix}brokers/`; }
  broker(id: number): string { return `${this.prefix}brokers/${id}`; }
  brokerDirectory(id: number): string { return `${this.prefix}broker-directories/${id}`; }
  topicsPrefix(): string { return `${this.prefix}topics/`; }
  topic(name: string): string { return `${this.prefix}topics/${name}`; }
  partitionsPrefix(): string { return `${this.prefix}partitions/`; }
  topicPartitionsPrefix(name: string): string { return `${this.prefix}partitions/${name}/`; }
  partition(name: string, partition: number): string { return `${this.prefix}partitions/${name}/${partition}`; }
  electionPrefix(): string { return `${this.prefix}controller/election/`; }
  nextProducerId(): string { return `${this.prefix}producer-ids/next`; }

  /** Classifies a key of this layout; undefined for keys it does not own. */
  parse(key: string):
    | { kind: 'broker'; brokerId: number }
    | { kind: 'directory'; brokerId: number }
    | { kind: 'topic'; name: string }
    | { kind: 'partition'; topic: string; partition: number }
    | { kind: 'election'; candidate: string }
    | { kind: 'other' }
    | undefined {
    if (!key.startsWith(this.prefix)) return undefined;
    const rest = key.slice(this.prefix.length);
    const [head, ...tail] = rest.split('/');
    if (head === 'brokers' && tail.length === 1 && /^\d+$/.test(tail[0]!)) return { kind: 'broker', brokerId: Number(tail[0]) };
    if (head === 'broker-directories' && tail.length === 1 && /^\d+$/.test(tail[0]!)) return { kind: 'directory', brokerId: Number(tail[0]) };
    if (head === 'topics' && tail.length === 1) return { kind: 'topic', name: tail[0]! };
    if (head === 'partitions' && tail.length === 2 && /^\d+$/.test(tail[1]!)) {
      return { kind: 'partition', topic: tail[0]!, partition: Number(tail[1]) };
    }
    if (head === 'controller' && tail[0] === 'election' && tail.length === 2) return { kind: 'election', candidate: tail[1]! };
    return { kind: 'other' };
  }
}

export function encodeRecord(value: BrokerRecord | BrokerDirectoryRecord | TopicRecord | ControllerRecord | (PartitionRecord & { v: 1 })): Buffer {
  return Buffer.from(JSON.stringify(value));
}

function decodeVersioned<T extends { v: number }>(bytes: Buffer, what: string): T {
  const parsed = JSON.parse(bytes.toString('utf8')) as T;
  if (parsed.v !== 1) throw new Error(`unsupported ${what} record version ${String(parsed.v)}`);
  return parsed;
}

export const decodeBroker = (b: Buffer): BrokerRecord => decodeVersioned<BrokerRecord>(b, 'broker');
export const decodeBrokerDirectory = (b: Buffer): BrokerDirectoryRecord => decodeVersioned<BrokerDirectoryRecord>(b, 'broker directory');
export const decodeTopic = (b: Buffer): TopicRecord => decodeVersioned<TopicRecord>(b, 'topic');
export const decodeController = (b: Buffer): ControllerRecord => decodeVersioned<ControllerRecord>(b, 'controller');
export function decodePartition(b: Buffer): PartitionRecord {
  const { v: _v, ...rest } = decodeVersioned<PartitionRecord & { v: number }>(b, 'partition');
  return rest;
}
export function encodePartition(p: PartitionRecord): Buffer {
  return encodeRecord({ v: 1, ...p });
}
