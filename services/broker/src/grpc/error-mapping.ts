/**
 * The two ways an error leaves the broker: as a per-partition `PartitionError` inside a response,
 * or as the RPC's status. Both come from the one reason table and the one encoder in
 * libs/common/src/errors.ts (google.rpc.Status details in `grpc-status-details-bin`: ErrorInfo,
 * LeaderHint, OffsetRangeHint), so a reason means the same thing, with the same code and
 * retriability, wherever it appears. Unexpected errors become INTERNAL without internals.
 */
import type * as grpc from '@grpc/grpc-js';
import { ERROR_DOMAIN, REASONS, toServiceError as encodeStatus, truncateUtf8 } from '@skein/common/errors.js';
import { ErrorInfo } from '@skein/proto/google/rpc/error_details.js';
import { Status } from '@skein/proto/google/rpc/status.js';
import type { PartitionError } from '@skein/proto/skein/broker/v1/broker.js';
import { isLogError, LogError, type LogErrorReason } from '../log/log-error.js';

export { ERROR_DOMAIN };

// Compile-time guard: every broker reason must be a row of the common table.
type MissingFromTable = Exclude<LogErrorReason, keyof typeof REASONS>;
const everyReasonInTable: [MissingFromTable] extends [never] ? true : never = true;
void everyReasonInTable;

/** Normalises anything thrown: LogErrors pass, anything else becomes INTERNAL (and is reported). */
export function toLogError(e: unknown, onUnexpected?: (e: unknown) => void): LogError {
  if (isLogError(e)) return e as LogError;
  onUnexpected?.(e);
  return new LogError('INTERNAL', 'internal error', { cause: e });
}

export function toPartitionError(e: LogError): PartitionError {
  return {
    code: e.code,
    reason: e.reason,
    // Bounded like every error message (libs/common/src/errors.ts): messages echo client input.
    message: truncateUtf8(e.message),
    retriable: e.retriable,
    leaderHint: e.leaderHint ? { leaderId: e.leaderHint.leaderId, leaderEpoch: e.leaderHint.leaderEpoch, leaderEndpoint: e.leaderHint.leaderEndpoint } : undefined,
    offsetRange: e.offsetRange ? { logStartOffset: e.offsetRange.logStartOffset, logEndOffset: e.offsetRange.logEndOffset } : undefined,
  };
}

/** A gRPC error with google.rpc.Status details, for request-level failures (the common encoder). */
export function toServiceError(e: LogError): grpc.ServiceError {
  const status = encodeStatus(e);
  return Object.assign(new Error(status.details), status) as unknown as grpc.ServiceError;
}

/** Where a broker listens, from the cluster cache; undefined when unknown. */
export type BrokerEndpointOf = (brokerId: number) => { host: string; port: number } | undefined;

/**
 * Adds the leader's address to an error's leader hint (LeaderHint.leader_endpoint) when the hint
 * names a leader and lacks it: hints are made where only the leader's id is known (the replica
 * manager), and the contract promises the address so a client re-routes without a metadata call.
 */
export function withLeaderEndpoint(e: LogError, endpointOf: BrokerEndpointOf | undefined): LogError {
  const hint = e.leaderHint;
  if (hint && hint.leaderId >= 0 && !hint.leaderEndpoint) hint.leaderEndpoint = endpointOf?.(hint.leaderId);
  return e;
}

/** toPartitionError and toServiceError that first add the leader's address to a leader hint. */
export function errorMappers(endpointOf: BrokerEndpointOf | undefined): { toPartitionError: (e: LogError) => PartitionError; toServiceError: (e: LogError) => grpc.ServiceError } {
  return {
    toPartitionError: (e) => toPartitionError(withLeaderEndpoint(e, endpointOf)),
    toServiceError: (e) => toServiceError(withLeaderEndpoint(e, endpointOf)),
  };
}

/** Reads the reason back out of a gRPC error (clients and tests). */
export function reasonOf(err: grpc.ServiceError): string | undefined {
  const raw = err.metadata?.get('grpc-status-details-bin')[0];
  if (!raw) return undefined;
  const status = Status.decode(raw as Buffer);
  for (const d of status.details) if (d.typeUrl.endsWith('google.rpc.ErrorInfo')) return ErrorInfo.decode(d.value).reason;
  return undefined;
}
