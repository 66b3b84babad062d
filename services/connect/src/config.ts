import type { ConfigOf } from '@skein/common/config.js';
import { serviceShellConfigSchema } from '@skein/common/service-shell.js';

export const connectConfigSchema = {
  ...serviceShellConfigSchema,
  port: { type: 'int', default: 8083, min: 0, max: 65535, doc: 'gRPC port of skein.connect.v1.ConnectService (0 picks a free one)' },
  metadataAddresses: {
    type: 'list',
    default: ['127.0.0.1:9090'],
    doc: 'Metadata service addresses: the cluster to read and write, and where this worker registers (clients find workers there)',
  },
  coordinatorAddresses: { type: 'list', default: [], doc: 'Group coordinator addresses; empty: found from the metadata service' },
  instanceId: { type: 'string', default: '', doc: "This worker's name, unique in its group (default host-pid; e.g. the pod name)" },
  groupId: {
    type: 'string',
    default: 'connect-cluster',
    doc: 'The Connect cluster: workers with the same group id share connectors and tasks (Kafka: group.id)',
  },
  configTopic: { type: 'string', default: 'connect-configs', doc: 'Compacted topic of connector configurations (Kafka: config.storage.topic)' },
  offsetsTopic: { type: 'string', default: 'connect-offsets', doc: 'Compacted topic of source offsets (Kafka: offset.storage.topic)' },
  offsetsPartitions: { type: 'int', default: 5, min: 1, max: 1000, doc: 'Partitions of the offsets topic when this worker creates it' },
  statusTopic: { type: 'string', default: 'connect-status', doc: 'Compacted topic of task states (Kafka: status.storage.topic)' },
  slotsTopic: {
    type: 'string',
    default: 'connect-slots',
    doc: 'Topic whose partitions are the task slots the group coordinator assigns to workers (empty; never written)',
  },
  taskSlots: {
    type: 'int',
    default: 32,
    min: 1,
    max: 10_000,
    doc: 'Task slots (partitions of the slots topic when this worker creates it): the unit of balance between workers',
  },
  internalReplicationFactor: {
    type: 'int',
    default: -1,
    min: -1,
    max: 16,
    doc: 'Replication factor of the internal topics this worker creates; -1: the cluster default',
  },
  exactlyOnceSourceSupport: {
    type: 'bool',
    default: true,
    doc: 'Source tasks write records and offsets in one transaction with a transactional id per task (KIP-618), unless a connector sets exactly.once.support=disabled',
  },
  pluginModules: { type: 'list', default: [], doc: 'Extra connector plugin modules to load (paths or package names exporting ConnectorPlugin objects)' },
} as const;

export type ConnectConfig = ConfigOf<typeof connectConfigSchema>;
