/**
 * The one table from storage/data-path reasons to gRPC status codes, and the two ways an error
 * leaves the broker: as a per-partition `PartitionError` inside a response, or as the RPC's status
 * with google.rpc.Status details (ErrorInfo + LeaderHint / OffsetRangeHint) in
 * `grpc-status-details-bin`. Unexpected errors become INTERNAL without internals in the message.
 */
import * as grpc from '@grpc/grpc-js';
import { boundErrorMetadata, ERROR_DOMAIN, REASONS, truncateUtf8 } from '@skein/common/errors.js';
import { Any } from '@skein/proto/google/protobuf/any.js';
import { ErrorInfo } from '@skein/proto/google/rpc/error_details.js';
import { Status } from '@skein/proto/google/rpc/status.js';
import { LeaderHint, OffsetRangeHint } from '@skein/proto/skein/common/v1/common.js';
import type { PartitionError } from '@skein/proto/skein/broker/v1/broker.js';
import { isLogError, LogError, type LogErrorReason } from '../log/log-error.js';

export { ERROR_DOMAIN };

// Compile-time guard: every broker reason must be a row of the common table.
type MissingFromTable = Exclude<LogErrorReason, keyof typeof REASONS>;
const everyReasonInTable: [MissingFromTable] extends [never] ? true : never = true;
void everyReasonInTable;

/** The broker's reasons are rows of libs/common's one reason table; this only narrows the type. */
const CODES: Record<LogErrorReason, grpc.status> = Object.fromEntries(
  Object.entries(REASONS).map(([reason, [code]]) => [reason, code]),
) as Record<LogErrorReason, grpc.status>;

/** Corruption found in stored data (not in a client's batch) is data loss, not bad input. */
function codeOf(e: LogError): grpc.status {
  if (e.reason === 'CORRUPT_MESSAGE' && e.metadata['source'] === 'storage') return grpc.status.DATA_LOSS;
  return CODES[e.reason];
}

/** Normalises anything thrown: LogErrors pass, anything else becomes INTERNAL (and is reported). */
export function toLogError(e: unknown, onUnexpected?: (e: unknown) => void): LogError {
  if (isLogError(e)) return e;
  onUnexpected?.(e);
  return new LogError('INTERNAL', 'internal error', { cause: e });
}

export function toPartitionError(e: LogError): PartitionError {
  return {
    code: codeOf(e),
    reason: e.reason,
    // Bounded like every error message (libs/common/src/errors.ts): messages echo client input.
    message: truncateUtf8(e.message),
    retriable: e.retriable,
    leaderHint: e.leaderHint ? { leaderId: e.leaderHint.leaderId, leaderEpoch: e.leaderHint.leaderEpoch, leaderEndpoint: undefined } : undefined,
    offsetRange: e.offsetRange ? { logStartOffset: e.offsetRange.logStartOffset, logEndOffset: e.offsetRange.logEndOffset } : undefined,
  };
}

function pack(typeName: string, value: Uint8Array): Any {
  return { typeUrl: `type.googleapis.com/${typeName}`, value: Buffer.from(value) };
}

/** A gRPC error with google.rpc.Status details, for request-level failures. */
export function toServiceError(e: LogError): grpc.ServiceError {
  const code = codeOf(e);
  // Bounded like every error (libs/common/src/errors.ts): unbounded trailers past 64 KiB never arrive.
  const message = truncateUtf8(e.message);
  const details: Any[] = [
    pack('google.rpc.ErrorInfo', ErrorInfo.encode({ reason: e.reason, domain: ERROR_DOMAIN, metadata: { ...boundErrorMetadata(e.metadata), retriable: String(e.retriable) } }).finish()),
  ];
  if (e.leaderHint) details.push(pack('skein.common.v1.LeaderHint', LeaderHint.encode({ ...e.leaderHint, leaderEndpoint: undefined }).finish()));
  if (e.offsetRange) details.push(pack('skein.common.v1.OffsetRangeHint', OffsetRangeHint.encode(e.offsetRange).finish()));
  const metadata = new grpc.Metadata();
  metadata.set('grpc-status-details-bin', Buffer.from(Status.encode({ code, message, details }).finish()));
  const err = Object.assign(new Error(message), { code, details: message, metadata }) as grpc.ServiceError;
  return err;
}

/** Reads the reason back out of a gRPC error (clients and tests). */
export function reasonOf(err: grpc.ServiceError): string | undefined {
  const raw = err.metadata?.get('grpc-status-details-bin')[0];
  if (!raw) return undefined;
  const status = Status.decode(raw as Buffer);
  for (const d of status.details) if (d.typeUrl.endsWith('google.rpc.ErrorInfo')) return ErrorInfo.decode(d.value).reason;
  return undefined;
}
