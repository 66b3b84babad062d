/**
 * Errors raised by the storage layer and the data path. `reason` is the stable machine-readable
 * code clients switch on; the gRPC layer maps it to a status code in one table
 * (grpc/error-mapping.ts). Whether a client may retry comes from the same table unless the thrower
 * says otherwise.
 */
import { REASONS } from '@skein/common/errors.js';

export type LogErrorReason =
  | 'CORRUPT_MESSAGE'
  | 'INVALID_RECORD'
  | 'MESSAGE_TOO_LARGE'
  | 'UNSUPPORTED_COMPRESSION_TYPE'
  | 'INVALID_PRODUCER_EPOCH'
  | 'INVALID_PRODUCER_ID'
  | 'OUT_OF_ORDER_SEQUENCE'
  | 'OFFSET_OUT_OF_RANGE'
  | 'PARTITION_OFFLINE'
  | 'NOT_LEADER_OR_FOLLOWER'
  | 'UNKNOWN_TOPIC_OR_PARTITION'
  | 'FENCED_LEADER_EPOCH'
  | 'UNKNOWN_LEADER_EPOCH'
  | 'INVALID_REQUEST'
  | 'REQUEST_TIMED_OUT'
  | 'NOT_ENOUGH_REPLICAS'
  | 'NOT_ENOUGH_REPLICAS_AFTER_APPEND'
  | 'NOT_LEADER_AFTER_APPEND'
  | 'BROKER_NOT_AVAILABLE'
  | 'REPLICA_LOG_READ_DISABLED'
  | 'UNAVAILABLE'
  | 'INTERNAL';

export interface LogErrorOptions {
  retriable?: boolean;
  cause?: unknown;
  /** Extra machine-readable facts (topic, partition, ...), carried into ErrorInfo metadata. */
  metadata?: Record<string, string>;
  leaderHint?: { leaderId: number; leaderEpoch: number };
  offsetRange?: { logStartOffset: bigint; logEndOffset: bigint };
}

export class LogError extends Error {
  readonly retriable: boolean;
  readonly metadata: Record<string, string>;
  readonly leaderHint: LogErrorOptions['leaderHint'];
  readonly offsetRange: LogErrorOptions['offsetRange'];

  constructor(readonly reason: LogErrorReason, message: string, options: LogErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'LogError';
    this.retriable = options.retriable ?? REASONS[reason][1];
    this.metadata = options.metadata ?? {};
    this.leaderHint = options.leaderHint;
    this.offsetRange = options.offsetRange;
  }
}

export function isLogError(e: unknown): e is LogError {
  return e instanceof Error && typeof (e as { reason?: unknown }).reason === 'string' && e.name === 'LogError';
}
