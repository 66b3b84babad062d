/**
 * Skein's error model. Domain code throws SkeinError with a stable reason; ONE table maps each
 * reason to a gRPC status code and says whether a client may retry. On the wire the error carries
 * a google.rpc.Status in `grpc-status-details-bin` with a google.rpc.ErrorInfo (reason, domain
 * "skein.dev", metadata) and typed hints (leader, controller, offset range), so clients in any
 * language retry or re-route without parsing messages. Check `reason`, not `instanceof`.
 */

import * as grpc from '@grpc/grpc-js';
import { Any } from '@skein/proto/google/protobuf/any.js';
import { ErrorInfo } from '@skein/proto/google/rpc/error_details.js';
import { Status } from '@skein/proto/google/rpc/status.js';
import { ControllerHint, LeaderHint, OffsetRangeHint } from '@skein/proto/skein/common/v1/common.js';

const S = grpc.status;

/** reason → [gRPC code, retriable]. Nothing is retriable unless this table says so. */
export const REASONS = {
  INVALID_REQUEST: [S.INVALID_ARGUMENT, false],
  INVALID_TOPIC_NAME: [S.INVALID_ARGUMENT, false],
  INVALID_PARTITIONS: [S.INVALID_ARGUMENT, false],
  INVALID_REPLICATION_FACTOR: [S.INVALID_ARGUMENT, false],
  INVALID_CONFIG: [S.INVALID_ARGUMENT, false],
  UNKNOWN_CONFIG: [S.INVALID_ARGUMENT, false],
  TOPIC_ALREADY_EXISTS: [S.ALREADY_EXISTS, false],
  UNKNOWN_TOPIC: [S.NOT_FOUND, false],
  UNKNOWN_PARTITION: [S.NOT_FOUND, false],
  NOT_CONTROLLER: [S.FAILED_PRECONDITION, true],
  FENCED_LEADER_EPOCH: [S.FAILED_PRECONDITION, false],
  STALE_PARTITION_EPOCH: [S.FAILED_PRECONDITION, false],
  INVALID_ISR: [S.INVALID_ARGUMENT, false],
  BROKER_ID_IN_USE: [S.ALREADY_EXISTS, true],
  SESSION_EXPIRED: [S.NOT_FOUND, false],
  BROKER_NOT_AVAILABLE: [S.UNAVAILABLE, true],
  COORDINATOR_NOT_AVAILABLE: [S.UNAVAILABLE, true],
  STORE_UNAVAILABLE: [S.UNAVAILABLE, true],
  CONCURRENT_MODIFICATION: [S.ABORTED, true],
  CORRUPT_MESSAGE: [S.INVALID_ARGUMENT, false],
  MESSAGE_TOO_LARGE: [S.RESOURCE_EXHAUSTED, false],
  // Over a per-client limit of the service shell (calls in flight): retry once some have finished.
  TOO_MANY_CALLS: [S.RESOURCE_EXHAUSTED, true],
  OFFSET_OUT_OF_RANGE: [S.OUT_OF_RANGE, false],
  OUT_OF_ORDER_SEQUENCE: [S.FAILED_PRECONDITION, false],
  INVALID_PRODUCER_EPOCH: [S.FAILED_PRECONDITION, false],
  UNKNOWN_PRODUCER_ID: [S.FAILED_PRECONDITION, false],
  NOT_ENOUGH_REPLICAS: [S.UNAVAILABLE, true],
  // Appended by the leader, then the ISR fell below min.insync.replicas before enough replicas had
  // it: the outcome is unknown (it may still become visible). Retry with idempotence.
  NOT_ENOUGH_REPLICAS_AFTER_APPEND: [S.UNAVAILABLE, true],
  // Appended by the leader, then leadership moved before the write was replicated: outcome unknown.
  NOT_LEADER_AFTER_APPEND: [S.UNAVAILABLE, true],
  REQUEST_TIMED_OUT: [S.DEADLINE_EXCEEDED, true],
  PARTITION_OFFLINE: [S.UNAVAILABLE, true],
  UNKNOWN_GROUP: [S.NOT_FOUND, false],
  INVALID_GROUP_ID: [S.INVALID_ARGUMENT, false],
  UNKNOWN_MEMBER: [S.NOT_FOUND, false],
  STALE_MEMBER_EPOCH: [S.FAILED_PRECONDITION, false],
  GROUP_NOT_EMPTY: [S.FAILED_PRECONDITION, false],
  UNKNOWN_ASSIGNOR: [S.INVALID_ARGUMENT, false],
  INVALID_SUBSCRIPTION: [S.INVALID_ARGUMENT, false],
  // A streams member's topology differs from its group's, or its topics cannot form tasks (not co-partitioned).
  INVALID_TOPOLOGY: [S.INVALID_ARGUMENT, false],
  SHUTTING_DOWN: [S.UNAVAILABLE, true],
  // ReadReplicaLog on a broker started without --replica-log-read-enabled (off until authorization exists).
  REPLICA_LOG_READ_DISABLED: [S.FAILED_PRECONDITION, false],
  // The service requires authentication (--authentication-required) and the call has none.
  AUTHENTICATION_REQUIRED: [S.UNAUTHENTICATED, false],
  // Kafka's names, so Kafka users recognise them. NOT_LEADER_OR_FOLLOWER is also the metadata
  // service's answer to an AlterPartition from a broker that no longer leads the partition.
  NOT_LEADER_OR_FOLLOWER: [S.FAILED_PRECONDITION, true],
  // Retriable as in Kafka (an InvalidMetadataException): a broker may not have applied a new topic
  // yet. Clients retry it a bounded number of times while refreshing metadata.
  UNKNOWN_TOPIC_OR_PARTITION: [S.NOT_FOUND, true],
  UNKNOWN_LEADER_EPOCH: [S.UNAVAILABLE, true],
  INVALID_RECORD: [S.INVALID_ARGUMENT, false],
  UNSUPPORTED_COMPRESSION_TYPE: [S.INVALID_ARGUMENT, false],
  INVALID_PRODUCER_ID: [S.INVALID_ARGUMENT, false],
  // Transactions (issue 16). Kafka's names; a transactional producer fenced by a newer epoch gets
  // PRODUCER_FENCED (Kafka maps InvalidProducerEpoch to it for transactional producers).
  PRODUCER_FENCED: [S.FAILED_PRECONDITION, false],
  INVALID_TXN_STATE: [S.FAILED_PRECONDITION, false],
  TRANSACTION_COORDINATOR_FENCED: [S.FAILED_PRECONDITION, false],
  // The transaction coordinator's (skein.txn.v1): the previous transaction of the id is still
  // being completed (Kafka's CONCURRENT_TRANSACTIONS, retriable there too).
  CONCURRENT_TRANSACTIONS: [S.FAILED_PRECONDITION, true],
  TRANSACTION_TIMED_OUT: [S.FAILED_PRECONDITION, false],
  UNKNOWN_TRANSACTIONAL_ID: [S.NOT_FOUND, false],
  UNAVAILABLE: [S.UNAVAILABLE, true],
  // Authorization (issue 14): Kafka's names, one per resource type; the metadata names the
  // resource and the operation. AUTHORIZATION_FAILED is for resource types Kafka has no name for.
  // A credential was presented and refused (an expired, wrongly signed or mis-addressed bearer token).
  AUTHENTICATION_FAILED: [S.UNAUTHENTICATED, false],
  TOPIC_AUTHORIZATION_FAILED: [S.PERMISSION_DENIED, false],
  GROUP_AUTHORIZATION_FAILED: [S.PERMISSION_DENIED, false],
  CLUSTER_AUTHORIZATION_FAILED: [S.PERMISSION_DENIED, false],
  TRANSACTIONAL_ID_AUTHORIZATION_FAILED: [S.PERMISSION_DENIED, false],
  PRODUCER_ID_AUTHORIZATION_FAILED: [S.PERMISSION_DENIED, false],
  AUTHORIZATION_FAILED: [S.PERMISSION_DENIED, false],
  // Schema registry (issue 17): Confluent's error codes 40401-40409, 409 and 42201-42206 map one to one.
  SUBJECT_NOT_FOUND: [S.NOT_FOUND, false],
  SCHEMA_VERSION_NOT_FOUND: [S.NOT_FOUND, false],
  SCHEMA_NOT_FOUND: [S.NOT_FOUND, false],
  SUBJECT_SOFT_DELETED: [S.FAILED_PRECONDITION, false],
  SUBJECT_NOT_SOFT_DELETED: [S.FAILED_PRECONDITION, false],
  SCHEMA_VERSION_SOFT_DELETED: [S.FAILED_PRECONDITION, false],
  SCHEMA_VERSION_NOT_SOFT_DELETED: [S.FAILED_PRECONDITION, false],
  SUBJECT_COMPATIBILITY_NOT_CONFIGURED: [S.NOT_FOUND, false],
  SUBJECT_MODE_NOT_CONFIGURED: [S.NOT_FOUND, false],
  INCOMPATIBLE_SCHEMA: [S.FAILED_PRECONDITION, false],
  INVALID_SCHEMA: [S.INVALID_ARGUMENT, false],
  INVALID_SCHEMA_VERSION: [S.INVALID_ARGUMENT, false],
  INVALID_COMPATIBILITY_LEVEL: [S.INVALID_ARGUMENT, false],
  INVALID_MODE: [S.INVALID_ARGUMENT, false],
  SCHEMA_OPERATION_NOT_PERMITTED: [S.FAILED_PRECONDITION, false],
  SCHEMA_REFERENCE_EXISTS: [S.FAILED_PRECONDITION, false],
  // A broker refused a record of a topic with key/value.schema.validation (docs/schemas.md).
  SCHEMA_VALIDATION_FAILED: [S.INVALID_ARGUMENT, false],
  // Connect (skein.connect.v1).
  UNKNOWN_CONNECTOR: [S.NOT_FOUND, false],
  CONNECTOR_ALREADY_EXISTS: [S.ALREADY_EXISTS, false],
  INVALID_CONNECTOR_CONFIG: [S.INVALID_ARGUMENT, false],
  INTERNAL: [S.INTERNAL, false],
} as const satisfies Record<string, readonly [grpc.status, boolean]>;

export type Reason = keyof typeof REASONS;

/**
 * What each reason means and what the caller should do: the text of docs/errors.md, which
 * scripts/errors-doc.js generates from this map and REASONS (npm test fails when the two drift).
 * Every reason needs an entry; where two reasons look alike, the entry says how they differ.
 */
export const REASON_GUIDANCE = {
  INVALID_REQUEST:
    'A field is missing, out of range or inconsistent, or the request could not be decoded (also: a client-side misuse, such as send() on a closed producer). Fix the request; the same request fails again.',
  INVALID_TOPIC_NAME: 'The topic name is empty, too long, or has characters other than [a-zA-Z0-9._-] (docs/limits.md). Choose a valid name.',
  INVALID_PARTITIONS: 'CreateTopic: the partition count is outside 1..the per-topic maximum; CreatePartitions: the new total is not larger than the current count. Pick a count within docs/limits.md.',
  INVALID_REPLICATION_FACTOR:
    'The replication factor is outside the allowed range, larger than the number of live brokers, or a reassignment target is not a list of distinct brokers. Start more brokers or lower the factor.',
  INVALID_CONFIG: 'A topic config value is of the wrong type or out of range. Fix the value; DescribeTopic lists the effective configs.',
  UNKNOWN_CONFIG: 'A topic config key is not one Skein knows. Check the spelling against docs/operations.md.',
  TOPIC_ALREADY_EXISTS: 'CreateTopic for a name that exists. Treat as done if DescribeTopic shows the settings you want; otherwise pick another name.',
  UNKNOWN_TOPIC:
    "The topic is not in the cluster's metadata: raised by the metadata service, the group coordinator and the client's own metadata lookup, which read the authoritative topic list, so it is final (not retriable). Create the topic or fix the name. Compare UNKNOWN_TOPIC_OR_PARTITION, the broker's retriable answer.",
  UNKNOWN_PARTITION:
    "The topic exists but has no partition with that number in the cluster's metadata (metadata service, group coordinator, client lookup); final. Use a partition below DescribeTopic's count. Compare UNKNOWN_TOPIC_OR_PARTITION.",
  NOT_CONTROLLER:
    'A controller operation reached a metadata service instance that is not (or no longer) the elected controller; ControllerHint names the controller when known. Retry against it (the client and the brokers do).',
  FENCED_LEADER_EPOCH:
    'The request carries a leader epoch older than the partition\'s current one: a deposed leader (AlterPartition), or a client or follower with stale metadata. Refresh metadata and send a new request with the current epoch; a deposed leader stops acting as leader.',
  STALE_PARTITION_EPOCH: 'An AlterPartition or reassignment was computed from a partition state that has changed since. Re-read the partition and propose again.',
  INVALID_ISR: 'A proposed ISR lists a broker twice, leaves out the leader, or names a broker that is not a replica. The leader re-reads the partition state before proposing again.',
  BROKER_ID_IN_USE:
    "RegisterBroker for an id that a live session holds (often this broker's previous run, until its session expires). Retried until the old session expires; if it persists, two brokers are configured with the same id.",
  SESSION_EXPIRED:
    'A heartbeat for a broker or service-instance session that the metadata service no longer has (its lease expired). Register again: brokers and libs/common service-registration do so automatically.',
  BROKER_NOT_AVAILABLE:
    "A broker needed for the request is not live (a reassignment target), or the broker has not applied cluster metadata yet after starting. The client also reports a gRPC UNAVAILABLE that carries no Skein details (connection refused, server gone) under this reason. Retry with backoff; if it persists, check the broker is running and reachable.",
  COORDINATOR_NOT_AVAILABLE: 'No group coordinator is registered with the metadata service, or none answers. Retry with backoff; start a coordinator if none runs.',
  STORE_UNAVAILABLE: 'The metadata store (etcd, or the embedded store) did not answer in time. Retry with backoff; check the store\'s health if it persists.',
  CONCURRENT_MODIFICATION: 'A compare-and-set write lost to a concurrent change of the same object. Retry: the service re-reads and decides again.',
  CORRUPT_MESSAGE:
    "A record batch fails its CRC, framing or record-count checks, or a Produce request's batch could not be decoded. From a client's write: rebuild the batch. From stored data (gRPC DATA_LOSS, metadata source=storage): the replica's copy is damaged; see docs/operations.md. A consumer stops at the batch's offset. Compare INVALID_RECORD (a well-formed batch whose content is refused).",
  MESSAGE_TOO_LARGE: "A batch or request is larger than max.message.bytes or the server's message limit, or decompresses past the limit. Send smaller batches, or raise the topic's max.message.bytes.",
  TOO_MANY_CALLS: 'This client address has too many calls in flight on the service (--max-concurrent-calls-per-client). Retry once some of its calls have finished.',
  OFFSET_OUT_OF_RANGE: 'The offset is before the log start or past the log end; OffsetRangeHint carries both. Reset to the earliest or latest offset (the consumer does, per its reset policy).',
  OUT_OF_ORDER_SEQUENCE:
    "An idempotent producer's sequence number is not the next one the partition expects: records were lost between this producer and the broker, or its state was reset. Not retriable: start a new producer (new producer id) and check for gaps.",
  INVALID_PRODUCER_EPOCH: 'A newer instance with the same producer id has a higher epoch (this one is fenced), or the epoch is out of range. Stop this producer.',
  UNKNOWN_PRODUCER_ID: "Reserved, not raised today (Kafka's reason for a producer whose state the broker no longer has).",
  NOT_ENOUGH_REPLICAS: 'The ISR is smaller than min.insync.replicas, so an acks=all write was refused before it was appended (nothing written). Retry; operators: bring replicas back.',
  NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    'The leader appended the write, then the ISR fell below min.insync.replicas before enough replicas had it: the outcome is unknown (it may still become visible). Retry with an idempotent producer so a retry cannot duplicate.',
  NOT_LEADER_AFTER_APPEND:
    'The leader appended the write, then lost leadership before it was replicated: the outcome is unknown. Retry with an idempotent producer; the client re-routes to the new leader.',
  REQUEST_TIMED_OUT:
    'The server could not finish within the request\'s timeout (an acks=all write waiting for replication: outcome unknown; a watch client too slow to keep up; a broker rejoin still pending). Retry; writes with an idempotent producer.',
  PARTITION_OFFLINE: "The partition has no live leader, or its log directory failed on the leader. Retry with backoff while the controller elects a leader from the ISR.",
  UNKNOWN_GROUP: 'The consumer group has no members and no committed offsets. Check the group id; a group appears when a member joins or offsets are committed.',
  INVALID_GROUP_ID: 'The group id is empty, too long or has characters other than [a-zA-Z0-9._-]. Choose a valid id.',
  UNKNOWN_MEMBER: 'The member id is not in the group (it was removed after its session timed out, or left). Rejoin with member epoch 0; GroupConsumer does.',
  STALE_MEMBER_EPOCH: 'The member epoch is not the current one, or the member committed a partition it does not own. Rejoin (GroupConsumer does) and commit only owned partitions.',
  GROUP_NOT_EMPTY: 'The operation needs a group without members (offset reset, delete, commits from outside the group). Stop the consumers first.',
  UNKNOWN_ASSIGNOR: 'The server assignor name is not one the coordinator has. Use range, roundrobin or uniform.',
  INVALID_SUBSCRIPTION: 'The subscription is empty, lists too many topics, or its regex is too long or invalid. Fix the subscription (subscribe by regex for many topics).',
  INVALID_TOPOLOGY: 'A streams member sent a topology (or num_standby_replicas) different from the one the other members of its group run, or a subtopology whose source topics have different partition counts (the message names both), or a topic feeding two subtopologies. Run one topology per application id (stop the old instances before changing it) and give co-partitioned topics the same partition count.',
  SHUTTING_DOWN: 'The service is stopping gracefully. Retry: the client moves to another instance or waits for the restart.',
  REPLICA_LOG_READ_DISABLED: 'ReadReplicaLog is off on this broker (it reads any replica without authorization). Start the broker with --replica-log-read-enabled to allow it.',
  AUTHENTICATION_REQUIRED:
    'The service requires authentication (--authentication-required) and the call carries none it accepts: no client certificate signed by the cluster CA, or one that no principal mapping rule maps (the message says which). Connect with a client certificate (SKEIN_TLS_CERT_FILE / SKEIN_TLS_KEY_FILE, docs/security.md); not retriable as is.',
  NOT_LEADER_OR_FOLLOWER:
    'Kafka\'s name for "the broker you addressed does not lead this partition": a broker\'s answer to Produce, Fetch, ListOffsets or a replica fetch, and the metadata service\'s answer to an AlterPartition from a broker that is no longer the leader. LeaderHint names the current leader, its epoch and address when known. Retry at the leader (the client re-routes on its own).',
  UNKNOWN_TOPIC_OR_PARTITION:
    "A broker hosts no replica of the partition, or the partition number is past the topic's count as the broker knows it. The broker may not have applied a topic just created yet, so clients retry it a bounded number of times while refreshing metadata (ClientOptions.unknownTopicAttempts); a topic that does not exist fails after those. Compare UNKNOWN_TOPIC and UNKNOWN_PARTITION, the authoritative answers.",
  UNKNOWN_LEADER_EPOCH: 'The request carries a leader epoch newer than the broker knows: the broker has not applied the latest leader change yet. Retry after a short backoff.',
  INVALID_RECORD:
    'A well-formed batch whose content is refused: empty, an unsupported format version, no records, or timestamps out of order. Fix the producer. Compare CORRUPT_MESSAGE (damaged or undecodable bytes).',
  UNSUPPORTED_COMPRESSION_TYPE: 'The batch names a compression codec this side does not support. Use none, gzip, snappy, lz4 or zstd.',
  INVALID_PRODUCER_ID: 'An idempotent batch carries a producer id that InitProducerId did not hand out (zero or negative other than -1). Call InitProducerId first (the client does).',
  PRODUCER_FENCED:
    'A transactional producer (or a transaction marker) carries an older producer epoch than the partition or the transaction coordinator has seen: a newer instance with the same transactional id took over, or the transaction was aborted by timeout or by an operator. Not retriable: stop this producer instance (a new one calls InitProducerId). Compare INVALID_PRODUCER_EPOCH, the idempotent (non-transactional) producer\'s reason.',
  INVALID_TXN_STATE:
    'The request does not fit the state of the transaction: on a broker, a transactional batch for a partition where the producer has no open transaction (the coordinator never began it there, or it has ended: e.g. a retry arriving after the abort), a non-transactional batch from a producer whose transaction is open, or a begin/marker while an earlier transaction of the producer is still open there. Not retriable: abort the transaction (add the partition with AddPartitionsToTxn before producing to it).',
  TRANSACTION_COORDINATOR_FENCED:
    'A BeginTxn for a transaction that is older than, or the same as, one already ended on the partition (coordinator_epoch at or below it): a late or zombie coordinator call. Not retriable; the transaction it belongs to is over.',
  CONCURRENT_TRANSACTIONS:
    'The previous transaction of this transactional id is decided but its markers are still being written (or a newer producer instance is fencing it). Retry after a short backoff; the transactional producer does.',
  TRANSACTION_TIMED_OUT:
    "The producer's transaction ran past its transaction timeout and the coordinator aborted it (its epoch was bumped). Not retriable as is: call InitProducerId with the producer id and epoch you hold to go on (the transactional producer's initTransactions() does), then redo the transaction.",
  UNKNOWN_TRANSACTIONAL_ID: 'A transaction request for a transactional id the coordinator has never seen. Call InitProducerId first.',
  AUTHENTICATION_FAILED:
    'The caller presented a credential the service refused: a bearer token that is expired, not signed by a configured issuer key, for another issuer or audience, or without the principal claim (the message says which). Get a fresh token from the issuer; nothing is retried with it.',
  TOPIC_AUTHORIZATION_FAILED:
    'The principal may not perform the operation on the topic (metadata: principal, resource_type, resource_name, operation): no ACL allows it, or an ACL denies it (deny wins). An operator grants it with `skein acls create` (docs/security.md); not retriable until then.',
  GROUP_AUTHORIZATION_FAILED: 'The principal may not perform the operation on the consumer group (join, commit, fetch offsets and heartbeat need read; describe, delete). Grant it with `skein acls create --group`.',
  CLUSTER_AUTHORIZATION_FAILED:
    'The principal may not perform the operation on the cluster: creating topics without a topic ACL, managing ACLs (alter/describe on the cluster), or an internal RPC (broker registration, AlterPartition, replica fetch: cluster_action, which only the services\' own principals hold).',
  TRANSACTIONAL_ID_AUTHORIZATION_FAILED: 'The principal may not use the transactional id (write to produce transactionally, describe to look it up). Grant it with `skein acls create --transactional-id`.',
  PRODUCER_ID_AUTHORIZATION_FAILED: 'A produce carried an idempotent producer id that another principal obtained (or first wrote with) on this broker: a principal writes only with its own producer ids. Call InitProducerId for one of your own; not retriable with this id.',
  AUTHORIZATION_FAILED: 'The principal may not perform the operation on a resource of a type Kafka has no reason name for (schema subjects, connectors). Grant it with `skein acls create`.',
  UNAVAILABLE:
    'A resource behind the request is briefly unavailable (a producer id block could not be allocated; a broker could not reach the schema registry to validate a record of a topic with key/value.schema.validation, which fails closed). Retry with backoff.',
  SUBJECT_NOT_FOUND: "Schema registry (REST 40401): the subject has no versions (or only soft-deleted ones and the request did not ask for deleted). Check the subject name; the serializer's subject name strategy decides it (topic-value by default).",
  SCHEMA_VERSION_NOT_FOUND: 'Schema registry (REST 40402): the subject exists but not that version (or it was soft-deleted). List the versions first.',
  SCHEMA_NOT_FOUND: 'Schema registry (REST 40403): no schema has that global id (never registered, or every version using it was permanently deleted). A record carrying that id cannot be decoded.',
  SUBJECT_SOFT_DELETED: 'Schema registry (REST 40404): the subject was already soft-deleted. Delete it again with permanent=true to remove it for good.',
  SUBJECT_NOT_SOFT_DELETED: 'Schema registry (REST 40405): a permanent delete of a subject that was not soft-deleted first. Delete it without permanent=true first.',
  SCHEMA_VERSION_SOFT_DELETED: 'Schema registry (REST 40406): the version was already soft-deleted. Delete it again with permanent=true to remove it for good.',
  SCHEMA_VERSION_NOT_SOFT_DELETED: 'Schema registry (REST 40407): a permanent delete of a version that was not soft-deleted first. Delete it without permanent=true first.',
  SUBJECT_COMPATIBILITY_NOT_CONFIGURED: 'Schema registry (REST 40408): the subject has no compatibility level of its own. Ask with defaultToGlobal=true for the level that applies.',
  SUBJECT_MODE_NOT_CONFIGURED: 'Schema registry (REST 40409): the subject has no mode of its own. Ask with defaultToGlobal=true for the mode that applies.',
  INCOMPATIBLE_SCHEMA: "Schema registry (REST 409): the schema breaks the subject's compatibility level against the latest version (or, for a *_TRANSITIVE level, any earlier one); the message lists each violation. Evolve the schema by the format's rules (docs/schemas.md), or change the level deliberately.",
  INVALID_SCHEMA: 'Schema registry (REST 42201): the schema does not parse as its type (AVRO, PROTOBUF, JSON), names an unknown type, or a reference does not resolve. Fix the schema; the message says where it failed.',
  INVALID_SCHEMA_VERSION: 'Schema registry (REST 42202): a version must be an integer in [1, 2^31-1], "latest" or -1.',
  INVALID_COMPATIBILITY_LEVEL: 'Schema registry (REST 42203): use NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL or FULL_TRANSITIVE.',
  INVALID_MODE: 'Schema registry (REST 42204): use READWRITE, READONLY, READONLY_OVERRIDE or IMPORT.',
  SCHEMA_OPERATION_NOT_PERMITTED: 'Schema registry (REST 42205): the mode forbids it (a write to a READONLY subject, a registration with an explicit id outside IMPORT mode, IMPORT mode over existing subjects without force, or an id already used by another schema). Change the mode first.',
  SCHEMA_REFERENCE_EXISTS: 'Schema registry (REST 42206): another schema references this version. Delete the referencing versions first.',
  SCHEMA_VALIDATION_FAILED:
    "A broker refused a batch of a topic with value.schema.validation (or key.schema.validation): a record's value (key) does not start with the schema registry header (magic byte 0, 4-byte schema id), or its id is unknown to the registry, or not registered under the topic's subject (<topic>-value, <topic>-key). The message names the record and the id; nothing of the batch was appended. Serialize with a registry serializer using the topic name strategy, or register the schema under the subject.",
  UNKNOWN_CONNECTOR: 'Connect: no connector of that name (or no such task of it). ListConnectors shows the names; create it first.',
  CONNECTOR_ALREADY_EXISTS: 'Connect: CreateConnector for a name in use. Use UpdateConnector to change its configuration, or pick another name.',
  INVALID_CONNECTOR_CONFIG: 'Connect: the configuration fails its plugin\'s validation (a missing or malformed key, an unknown connector.class, a bad transform). ValidateConfig lists every problem by key.',
  INTERNAL: 'An unexpected failure; the service logged it with its input. Not retriable. Report it with the service\'s log.',
} as const satisfies Record<Reason, string>;
export const ERROR_DOMAIN = 'skein.dev';

export interface SkeinErrorOptions {
  metadata?: Record<string, string>;
  leaderHint?: LeaderHint;
  controllerHint?: ControllerHint;
  offsetRangeHint?: OffsetRangeHint;
  cause?: unknown;
}

export class SkeinError extends Error {
  readonly reason: Reason;
  readonly code: grpc.status;
  readonly retriable: boolean;
  readonly metadata: Record<string, string>;
  readonly leaderHint?: LeaderHint;
  readonly controllerHint?: ControllerHint;
  readonly offsetRangeHint?: OffsetRangeHint;

  constructor(reason: Reason, message: string, options: SkeinErrorOptions = {}) {
    super(message, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'SkeinError';
    this.reason = reason;
    const [code, retriable] = REASONS[reason] ?? REASONS.INTERNAL;
    this.code = code;
    this.retriable = retriable;
    this.metadata = options.metadata ?? {};
    this.leaderHint = options.leaderHint;
    this.controllerHint = options.controllerHint;
    this.offsetRangeHint = options.offsetRangeHint;
  }
}

export function isSkeinError(err: unknown): err is SkeinError {
  return typeof err === 'object' && err !== null && typeof (err as SkeinError).reason === 'string' && (err as SkeinError).name === 'SkeinError';
}

export function isRetriable(err: unknown): boolean {
  return isSkeinError(err) && err.retriable;
}

const typeUrl = (name: string) => `type.googleapis.com/${name}`;

/**
 * Bounds on what an error carries back to a client. Messages and metadata echo client input (a
 * 100 KB topic name, 10,000 bad config keys); HTTP/2 caps a header block at 64 KiB by default, and
 * past it grpc-js sends no status at all, so the caller hangs until its deadline. Every encoder
 * (this one and the broker's) applies these, keeping the trailers of any error under ~12 KiB.
 */
export const MAX_ERROR_MESSAGE_BYTES = 1024;
export const MAX_ERROR_METADATA_ENTRIES = 8;
export const MAX_ERROR_METADATA_KEY_BYTES = 64;
export const MAX_ERROR_METADATA_VALUE_BYTES = 256;

/** `text` cut to at most `maxBytes` of UTF-8 (at a character boundary), saying how much was cut. */
export function truncateUtf8(text: string, maxBytes: number = MAX_ERROR_MESSAGE_BYTES): string {
  const total = Buffer.byteLength(text, 'utf8');
  if (total <= maxBytes) return text;
  // Slicing characters first keeps this cheap on huge inputs: maxBytes bytes never need more characters.
  let head = Buffer.from(text.slice(0, maxBytes), 'utf8').subarray(0, maxBytes).toString('utf8');
  if (head.endsWith('\uFFFD')) head = head.slice(0, -1); // a character cut in half
  return `${head}… (${total - Buffer.byteLength(head, 'utf8')} more bytes)`;
}

/** Error metadata bounded in entries, key length and value length (see MAX_ERROR_METADATA_*). */
export function boundErrorMetadata(metadata: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  let n = 0;
  for (const [key, value] of Object.entries(metadata)) {
    if (n++ >= MAX_ERROR_METADATA_ENTRIES) break;
    out[truncateUtf8(key, MAX_ERROR_METADATA_KEY_BYTES)] = truncateUtf8(String(value), MAX_ERROR_METADATA_VALUE_BYTES);
  }
  return out;
}

/** Builds the status object grpc-js sends, with details in `grpc-status-details-bin`. */
export function toServiceError(err: unknown, onUnexpected?: (err: unknown) => void): Partial<grpc.StatusObject> & { code: grpc.status; details: string; metadata: grpc.Metadata } {
  // Already encoded by this function (a handler that answers with the status itself): unchanged.
  if (!isSkeinError(err) && isEncodedStatus(err)) return { code: err.code, details: err.details, metadata: err.metadata };
  const status = toStatus(err, onUnexpected);
  const metadata = new grpc.Metadata();
  metadata.set('grpc-status-details-bin', Buffer.from(Status.encode(status).finish()));
  return { code: status.code, details: status.message, metadata };
}

/**
 * The google.rpc.Status an error travels as: what toServiceError puts in `grpc-status-details-bin`,
 * and what a response carries for one failed item of a stream (CommitStreamResponse.error).
 */
export function toStatus(err: unknown, onUnexpected?: (err: unknown) => void): Status {
  const e = isSkeinError(err) ? err : undefined;
  if (!e) onUnexpected?.(err);
  const reason: Reason = e?.reason ?? 'INTERNAL';
  const code = e?.code ?? grpc.status.INTERNAL;
  const message = truncateUtf8(e?.message ?? 'internal error');
  const details: Any[] = [
    // `retriable` rides along in ErrorInfo.metadata so a client in any language can decide without a
    // copy of the table (the value is the table's, for this reason).
    { typeUrl: typeUrl('google.rpc.ErrorInfo'), value: Buffer.from(ErrorInfo.encode({ reason, domain: ERROR_DOMAIN, metadata: { ...boundErrorMetadata({ retriable: '', ...(e?.metadata ?? {}) }), retriable: String(e?.retriable ?? false) } }).finish()) },
  ];
  if (e?.leaderHint) details.push({ typeUrl: typeUrl('skein.common.v1.LeaderHint'), value: Buffer.from(LeaderHint.encode(e.leaderHint).finish()) });
  if (e?.controllerHint) details.push({ typeUrl: typeUrl('skein.common.v1.ControllerHint'), value: Buffer.from(ControllerHint.encode(e.controllerHint).finish()) });
  if (e?.offsetRangeHint) details.push({ typeUrl: typeUrl('skein.common.v1.OffsetRangeHint'), value: Buffer.from(OffsetRangeHint.encode(e.offsetRangeHint).finish()) });
  return { code, message, details };
}

function isEncodedStatus(err: unknown): err is { code: grpc.status; details: string; metadata: grpc.Metadata } {
  const e = err as { code?: unknown; details?: unknown; metadata?: unknown };
  return typeof e === 'object' && e !== null && typeof e.code === 'number' && typeof e.details === 'string'
    && e.metadata instanceof grpc.Metadata && e.metadata.get('grpc-status-details-bin').length > 0;
}

const REASON_BY_CODE: Partial<Record<grpc.status, Reason>> = {
  [S.INVALID_ARGUMENT]: 'INVALID_REQUEST',
  [S.NOT_FOUND]: 'UNKNOWN_TOPIC',
  [S.UNAVAILABLE]: 'BROKER_NOT_AVAILABLE',
  [S.DEADLINE_EXCEEDED]: 'REQUEST_TIMED_OUT',
  [S.RESOURCE_EXHAUSTED]: 'MESSAGE_TOO_LARGE',
  [S.ABORTED]: 'CONCURRENT_MODIFICATION',
};

/**
 * A google.rpc.Status from a peer as a SkeinError (undefined when it carries no Skein reason),
 * keeping the code it names: a peer may map a reason differently across versions.
 */
export function fromStatus(status: Status, cause?: unknown): SkeinError | undefined {
  const opts: SkeinErrorOptions & { reason?: string } = cause !== undefined ? { cause } : {};
  for (const d of status.details) {
    if (d.typeUrl === typeUrl('google.rpc.ErrorInfo')) {
      const info = ErrorInfo.decode(d.value);
      opts.reason = info.reason;
      opts.metadata = info.metadata;
    } else if (d.typeUrl === typeUrl('skein.common.v1.LeaderHint')) opts.leaderHint = LeaderHint.decode(d.value);
    else if (d.typeUrl === typeUrl('skein.common.v1.ControllerHint')) opts.controllerHint = ControllerHint.decode(d.value);
    else if (d.typeUrl === typeUrl('skein.common.v1.OffsetRangeHint')) opts.offsetRangeHint = OffsetRangeHint.decode(d.value);
  }
  if (!opts.reason) return undefined;
  const known = opts.reason in REASONS;
  const e = new SkeinError(known ? (opts.reason as Reason) : 'INTERNAL', status.message, opts);
  if (!known) Object.defineProperty(e, 'reason', { value: opts.reason });
  Object.defineProperty(e, 'code', { value: status.code });
  return e;
}

/** Client side: decodes the details of a failed call back into a SkeinError. */
export function fromServiceError(err: grpc.ServiceError): SkeinError {
  const raw = err.metadata?.get('grpc-status-details-bin')[0];
  if (raw) {
    try {
      const status = Status.decode(Buffer.isBuffer(raw) ? raw : Buffer.from(raw));
      // The call's code, which is the one the status names.
      const e = fromStatus({ ...status, code: err.code }, err);
      if (e) return e;
    } catch {
      // fall through to the code-only mapping
    }
  }
  const e = new SkeinError(REASON_BY_CODE[err.code] ?? 'INTERNAL', err.details || err.message, { cause: err });
  Object.defineProperty(e, 'code', { value: err.code });
  if (err.code === S.UNAVAILABLE) Object.defineProperty(e, 'retriable', { value: true });
  return e;
}
