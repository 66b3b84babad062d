/**
 * Errors raised by the storage layer and the data path. `reason` is the stable machine-readable
 * code clients switch on; the gRPC layer maps it to a status code in one table
 * (libs/common/src/errors.ts), which also says whether a client may retry.
 */
import { status as grpcStatus } from '@grpc/grpc-js';
import { isSkeinError, SkeinError } from '@skein/common/errors.js';

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
  | 'PRODUCER_FENCED'
  | 'INVALID_TXN_STATE'
  | 'TRANSACTION_COORDINATOR_FENCED'
  | 'PRODUCER_ID_AUTHORIZATION_FAILED'
  | 'SCHEMA_VALIDATION_FAILED'
  | 'INVALID_TOPIC_NAME'
  | 'INTERNAL';

export interface LogErrorOptions {
  cause?: unknown;
  /** Extra machine-readable facts (topic, partition, ...), carried into ErrorInfo metadata. */
  metadata?: Record<string, string>;
  leaderHint?: { leaderId: number; leaderEpoch: number; leaderEndpoint?: { host: string; port: number } };
  offsetRange?: { logStartOffset: bigint; logEndOffset: bigint };
}

/**
 * The data path's SkeinError: the same class, the same table (code and retriability come only from
 * REASONS), narrowed to the broker's reasons. One exception to the table's code: corruption found
 * in stored data (metadata source=storage) is DATA_LOSS, not the client's INVALID_ARGUMENT.
 */
export class LogError extends SkeinError {
  declare readonly reason: LogErrorReason;

  constructor(reason: LogErrorReason, message: string, options: LogErrorOptions = {}) {
    super(reason, message, {
      cause: options.cause,
      metadata: options.metadata,
      leaderHint: options.leaderHint ? { leaderId: options.leaderHint.leaderId, leaderEpoch: options.leaderHint.leaderEpoch, leaderEndpoint: options.leaderHint.leaderEndpoint } : undefined,
      offsetRangeHint: options.offsetRange,
    });
    if (reason === 'CORRUPT_MESSAGE' && options.metadata?.['source'] === 'storage') {
      Object.defineProperty(this, 'code', { value: grpcStatus.DATA_LOSS });
    }
  }

  /** The offset range hint (OFFSET_OUT_OF_RANGE). */
  get offsetRange(): { logStartOffset: bigint; logEndOffset: bigint } | undefined {
    return this.offsetRangeHint;
  }
}

export function isLogError(e: unknown): e is LogError {
  return isSkeinError(e);
}
