import { type ConfigOf, commonServerConfigSchema } from '@skein/common/config.js';
import { grpcServerLimitsConfigSchema } from '@skein/common/grpc-server.js';
import { etcdClientConfigSchema } from '@skein/common/store/open-store.js';

export const metadataConfigSchema = {
  ...commonServerConfigSchema,
  ...grpcServerLimitsConfigSchema,
  port: { type: 'int', default: 9090, min: 0, max: 65535, doc: 'gRPC port (0 picks a free one)' },
  store: { type: 'string', default: 'embedded:.skein-data/metadata/store.db', doc: 'Metadata store: etcd://host:port[,host:port] or embedded:<path>' },
  etcdEndpoints: { type: 'list', default: [], doc: 'etcd endpoints host:port,...; when set, overrides --store' },
  ...etcdClientConfigSchema,
  prefix: { type: 'string', default: '/skein/', doc: 'Key prefix in the store (ends with /)' },
  instanceId: { type: 'string', default: '', doc: 'Name of this instance in the controller election (default host-pid)' },
  controllerSessionTtlMs: { type: 'int', default: 5000, min: 1000, max: 60_000, doc: 'Controller session TTL: failover happens within it' },
  brokerSessionTtlMs: { type: 'int', default: 9000, min: 1000, max: 300_000, doc: 'Default broker session TTL (Kafka: broker.session.timeout.ms)' },
  defaultPartitions: { type: 'int', default: 1, min: 1, max: 10_000, doc: 'Partitions of a topic created without a count (Kafka: num.partitions)' },
  defaultReplicationFactor: { type: 'int', default: 1, min: 1, max: 32, doc: 'Replication factor of a topic created without one' },
  topicConfigDefaults: { type: 'list', default: [], doc: 'Cluster-wide topic config defaults, key=value,...' },
} as const;

export type MetadataConfig = ConfigOf<typeof metadataConfigSchema>;
