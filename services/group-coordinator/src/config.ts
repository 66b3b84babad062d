import { type ConfigOf, commonServerConfigSchema } from '@skein/common/config.js';
import { grpcServerLimitsConfigSchema } from '@skein/common/grpc-server.js';
import { etcdClientConfigSchema } from '@skein/common/store/open-store.js';

export const coordinatorConfigSchema = {
  ...commonServerConfigSchema,
  ...grpcServerLimitsConfigSchema,
  port: { type: 'int', default: 9095, min: 0, max: 65535, doc: 'gRPC port (0 picks a free one)' },
  store: { type: 'string', default: 'embedded:.skein-data/coordinator/store.db', doc: 'Metadata store holding group state: etcd://host:port[,...] or embedded:<path>' },
  etcdEndpoints: { type: 'list', default: [], doc: 'etcd endpoints host:port,...; when set, overrides --store' },
  ...etcdClientConfigSchema,
  prefix: { type: 'string', default: '/skein/', doc: 'Key prefix in the store (ends with /)' },
  metadataAddresses: { type: 'list', default: ['127.0.0.1:9090'], doc: 'Metadata service addresses, for topic partition counts and to register this instance (clients find coordinators there)' },
  instanceId: { type: 'string', default: '', doc: 'Name this instance registers under with the metadata service, unique among coordinators (default host-pid; e.g. the pod name)' },
  sessionTimeoutMs: { type: 'int', default: 45_000, min: 1000, max: 600_000, doc: 'A member silent this long is removed (Kafka: group.consumer.session.timeout.ms)' },
  heartbeatIntervalMs: { type: 'int', default: 5000, min: 100, max: 60_000, doc: 'Heartbeat interval told to members' },
  sessionBreakGraceMs: { type: 'int', default: 3000, min: 0, max: 600_000, doc: 'A member whose session stream broke without leaving keeps its partitions this long (at least two heartbeat intervals; instead of the whole session timeout), waiting for it to come back' },
  offsetsRetentionMs: { type: 'int', default: 7 * 24 * 3600_000, min: 1000, max: 365 * 24 * 3600_000, doc: 'Committed offsets of a group with no members are deleted this long after it became empty or last committed (Kafka: offsets.retention.minutes, 7 days)' },
  offsetMetadataMaxBytes: { type: 'int', default: 4096, min: 0, max: 1024 * 1024, doc: 'Largest metadata string of a committed offset, in UTF-8 bytes (Kafka: offset.metadata.max.bytes)' },
  maxTxnOps: { type: 'int', default: 128, min: 2, max: 1_000_000, doc: 'Most operations (and compares) in one store transaction of a group commit: set to etcd\'s --max-txn-ops (default 128); larger commits are split' },
  maxTxnBytes: { type: 'int', default: 1024 * 1024, min: 16 * 1024, max: 64 * 1024 * 1024, doc: 'Most bytes of keys and values in one store transaction of a group commit: keep below etcd\'s --max-request-bytes (default 1.5 MiB)' },
  sweepIntervalMs: { type: 'int', default: 5000, min: 100, max: 600_000, doc: 'How often this instance removes expired members and expired empty groups (every instance sweeps; the writes are compare-and-set)' },
  txnSweepIntervalMs: { type: 'int', default: 1000, min: 50, max: 600_000, doc: 'How often this instance finishes decided transactions left unfinished and aborts transactions past their timeout (every instance sweeps; the writes are compare-and-set)' },
  txnCompletionWaitMs: { type: 'int', default: 5000, min: 100, max: 120_000, doc: 'How long EndTxn (and a request that must first finish the previous transaction) waits for the markers before answering without them' },
  txnCompletionGraceMs: { type: 'int', default: 3000, min: 0, max: 600_000, doc: 'A decided transaction is left this long to the instance that decided it before another instance\'s sweep finishes it' },
} as const;

export type CoordinatorConfig = ConfigOf<typeof coordinatorConfigSchema>;
