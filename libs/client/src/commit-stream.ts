/**
 * Offset commits to a group coordinator over its CommitStream: one long-lived stream per
 * coordinator instance carries every commit of its owner (a consumer, an admin), each matched to
 * its answer by request id, instead of a unary call per commit. A coordinator that predates the
 * stream answers UNIMPLEMENTED; from then on that instance gets unary CommitOffsets, and the
 * commits that were waiting on the stream are sent again that way.
 *
 * Errors are those of the unary call, decoded the same way (SkeinError with the coordinator's
 * reason, code and retriability): a commit's own error comes in its answer; a broken stream fails
 * the commits waiting on it with the stream's status; a commit not answered within its timeout
 * fails with REQUEST_TIMED_OUT (DEADLINE_EXCEEDED, as the unary deadline would), and the stream
 * it waited on is dropped, failing its other commits the same way, since an instance that slow is
 * in trouble. Callers retry as they would a unary commit.
 */
import * as grpc from '@grpc/grpc-js';
import { fromServiceError, fromStatus, SkeinError } from '@skein/common/errors.js';
import { systemTimers, type Timers } from '@skein/common/timers.js';
import type { CommitOffsetsRequest, CommitStreamRequest, CommitStreamResponse, GroupCoordinatorServiceClient } from '@skein/proto/skein/group/v1/group.js';
import { callUnary } from './rpc.js';

interface Waiting {
  request: CommitOffsetsRequest;
  timeoutMs: number;
  resolve: () => void;
  reject: (err: unknown) => void;
  cancelTimer: () => void;
}

interface OpenStream {
  call: grpc.ClientDuplexStream<CommitStreamRequest, CommitStreamResponse>;
  waiting: Map<bigint, Waiting>;
  /** Failed or closed: its events no longer matter. */
  closed: boolean;
}

/** How a commit travels: 'stream' (CommitStream, unary on coordinators without it) or always 'unary'. */
export type CommitRpc = 'stream' | 'unary';

export class CommitChannel {
  private readonly streams = new Map<GroupCoordinatorServiceClient, OpenStream>();
  /** Instances that answered UNIMPLEMENTED: they predate CommitStream. */
  private readonly unaryOnly = new WeakSet<GroupCoordinatorServiceClient>();
  private nextId = 0n;

  constructor(
    private readonly rpc: CommitRpc = 'stream',
    private readonly timers: Timers = systemTimers,
  ) {}

  /** Resolves once the commit is durable; rejects with the SkeinError the unary call would. */
  commit(coordinator: GroupCoordinatorServiceClient, request: CommitOffsetsRequest, timeoutMs: number): Promise<void> {
    if (this.rpc === 'unary' || this.unaryOnly.has(coordinator)) return unaryCommit(coordinator, request, timeoutMs);
    const stream = this.streams.get(coordinator) ?? this.open(coordinator);
    return new Promise<void>((resolve, reject) => {
      const requestId = this.nextId++;
      const cancelTimer = this.timers.setTimeout(() => {
        this.fail(coordinator, stream, new SkeinError('REQUEST_TIMED_OUT', `the group coordinator did not answer a commit within ${timeoutMs} ms`));
      }, timeoutMs);
      stream.waiting.set(requestId, { request, timeoutMs, resolve, reject, cancelTimer });
      stream.call.write({ requestId, commit: request });
    });
  }

  private open(coordinator: GroupCoordinatorServiceClient): OpenStream {
    const stream: OpenStream = { call: coordinator.commitStream(), waiting: new Map(), closed: false };
    this.streams.set(coordinator, stream);
    stream.call.on('data', (r: CommitStreamResponse) => {
      const w = stream.waiting.get(r.requestId);
      if (!w) return;
      stream.waiting.delete(r.requestId);
      w.cancelTimer();
      if (!r.error) w.resolve();
      else w.reject(fromStatus(r.error) ?? new SkeinError('INTERNAL', r.error.message));
    });
    stream.call.on('error', (e: grpc.ServiceError) => {
      if (stream.closed) return;
      if (e.code === grpc.status.UNIMPLEMENTED) {
        // An older coordinator: it never read these, so sending them again cannot apply one twice.
        this.unaryOnly.add(coordinator);
        this.detach(coordinator, stream);
        for (const w of stream.waiting.values()) {
          w.cancelTimer();
          unaryCommit(coordinator, w.request, w.timeoutMs).then(w.resolve, w.reject);
        }
        stream.waiting.clear();
        return;
      }
      this.fail(coordinator, stream, fromServiceError(e));
    });
    stream.call.on('end', () => this.fail(coordinator, stream, new SkeinError('COORDINATOR_NOT_AVAILABLE', 'the group coordinator ended the commit stream')));
    return stream;
  }

  private detach(coordinator: GroupCoordinatorServiceClient, stream: OpenStream): void {
    stream.closed = true;
    if (this.streams.get(coordinator) === stream) this.streams.delete(coordinator);
  }

  /** Fails every commit waiting on `stream` with `err` and drops the stream. */
  private fail(coordinator: GroupCoordinatorServiceClient, stream: OpenStream, err: unknown): void {
    if (stream.closed) return;
    this.detach(coordinator, stream);
    for (const w of stream.waiting.values()) {
      w.cancelTimer();
      w.reject(err);
    }
    stream.waiting.clear();
    // Cancelled rather than half-closed: a half-closed call keeps its connection busy until the server ends it.
    stream.call.cancel();
  }

  /** Cancels every stream; commits still waiting fail with COORDINATOR_NOT_AVAILABLE. */
  close(): void {
    for (const [coordinator, stream] of [...this.streams])
      this.fail(coordinator, stream, new SkeinError('COORDINATOR_NOT_AVAILABLE', 'the commit stream was closed'));
  }
}

function unaryCommit(coordinator: GroupCoordinatorServiceClient, request: CommitOffsetsRequest, timeoutMs: number): Promise<void> {
  return callUnary(coordinator.commitOffsets.bind(coordinator), request, timeoutMs).then(
    () => undefined,
    (err: grpc.ServiceError) => {
      throw fromServiceError(err);
    },
  );
}
