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
  NOT_LEADER_FOR_PARTITION: [S.FAILED_PRECONDITION, true],
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
  UNKNOWN_CODEC: [S.INVALID_ARGUMENT, false],
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
  SHUTTING_DOWN: [S.UNAVAILABLE, true],
  // ReadReplicaLog on a broker started without --replica-log-read-enabled (off until authorization exists).
  REPLICA_LOG_READ_DISABLED: [S.FAILED_PRECONDITION, false],
  // The broker data path uses Kafka's own names for these, so Kafka users recognise them.
  NOT_LEADER_OR_FOLLOWER: [S.FAILED_PRECONDITION, true],
  // Retriable as in Kafka (an InvalidMetadataException): a broker may not have applied a new topic
  // yet. Clients retry it a bounded number of times while refreshing metadata.
  UNKNOWN_TOPIC_OR_PARTITION: [S.NOT_FOUND, true],
  UNKNOWN_LEADER_EPOCH: [S.UNAVAILABLE, true],
  INVALID_RECORD: [S.INVALID_ARGUMENT, false],
  UNSUPPORTED_COMPRESSION_TYPE: [S.INVALID_ARGUMENT, false],
  INVALID_PRODUCER_ID: [S.INVALID_ARGUMENT, false],
  UNAVAILABLE: [S.UNAVAILABLE, true],
  INTERNAL: [S.INTERNAL, false],
} as const satisfies Record<string, readonly [grpc.status, boolean]>;

export type Reason = keyof typeof REASONS;
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
  const metadata = new grpc.Metadata();
  metadata.set('grpc-status-details-bin', Buffer.from(Status.encode({ code, message, details }).finish()));
  return { code, details: message, metadata };
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

/** Client side: decodes the details of a failed call back into a SkeinError. */
export function fromServiceError(err: grpc.ServiceError): SkeinError {
  const raw = err.metadata?.get('grpc-status-details-bin')[0];
  if (raw) {
    try {
      const status = Status.decode(Buffer.isBuffer(raw) ? raw : Buffer.from(raw));
      const opts: SkeinErrorOptions & { reason?: string } = { cause: err };
      for (const d of status.details) {
        if (d.typeUrl === typeUrl('google.rpc.ErrorInfo')) {
          const info = ErrorInfo.decode(d.value);
          opts.reason = info.reason;
          opts.metadata = info.metadata;
        } else if (d.typeUrl === typeUrl('skein.common.v1.LeaderHint')) opts.leaderHint = LeaderHint.decode(d.value);
        else if (d.typeUrl === typeUrl('skein.common.v1.ControllerHint')) opts.controllerHint = ControllerHint.decode(d.value);
        else if (d.typeUrl === typeUrl('skein.common.v1.OffsetRangeHint')) opts.offsetRangeHint = OffsetRangeHint.decode(d.value);
      }
      if (opts.reason && opts.reason in REASONS) {
        const e = new SkeinError(opts.reason as Reason, status.message, opts);
        // Keep the code the server sent (a peer may map a reason differently across versions).
        Object.defineProperty(e, 'code', { value: err.code });
        return e;
      }
      if (opts.reason) {
        const e = new SkeinError('INTERNAL', status.message, opts);
        Object.defineProperty(e, 'reason', { value: opts.reason });
        Object.defineProperty(e, 'code', { value: err.code });
        return e;
      }
    } catch {
      // fall through to the code-only mapping
    }
  }
  const e = new SkeinError(REASON_BY_CODE[err.code] ?? 'INTERNAL', err.details || err.message, { cause: err });
  Object.defineProperty(e, 'code', { value: err.code });
  if (err.code === S.UNAVAILABLE) Object.defineProperty(e, 'retriable', { value: true });
  return e;
}
