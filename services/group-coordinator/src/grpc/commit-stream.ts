/**
 * CommitStream: pipelined offset commits on one long-lived stream, for clients that commit often
 * (the contract is in proto/skein/group/v1/group.proto). A unary CommitOffsets costs the
 * coordinator an HTTP/2 stream, headers, trailers and a deadline timer per commit, which dominated
 * its CPU under load; on a stream a commit costs one message each way.
 *
 * Every request goes through the same function as CommitOffsets (validation, group commit,
 * fencing, commit metrics), after the same authorization rule, checked per request. Its outcome
 * is answered as soon as it is known, so answers may overtake each other. Commits of one
 * partition on one stream are still applied in request order: requests are handed to that
 * function in arrival order, it reaches the group committer's queue in the order it was called
 * (every request takes the same steps: synchronous checks, one await on the shared topic cache),
 * and the committer applies commits to one offset key in queue order (store/group-committer.ts).
 *
 * Bounded per stream: requests read and not yet answered (count, and an estimate of their decoded
 * size), and answers the client has not taken. Past any of them the stream is paused, so grpc-js
 * stops reading it and HTTP/2 flow control holds the client back; it resumes as answers go out.
 * Nothing is refused for being over a bound.
 */
import type * as grpc from '@grpc/grpc-js';
import { SkeinError, toStatus } from '@skein/common/errors.js';
import { requestAuth } from '@skein/common/security/enforcement.js';
import type { CommitOffsetsRequest, CommitStreamRequest, CommitStreamResponse } from '@skein/proto/skein/group/v1/group.js';
import type { Logger } from 'pino';
import { commitRequirements } from './group-authz.js';

/** The proto's documented bounds (keep the RPC's comment in group.proto in step). */
export const COMMIT_STREAM_LIMITS = Object.freeze({
  /** Requests read and not yet answered, per stream. */
  maxInFlightRequests: 1024,
  /** Estimated decoded size of those requests (see requestWeight), per stream. */
  maxInFlightBytes: 16 * 1024 * 1024,
});

export interface CommitStreamDeps {
  /** CommitOffsets' own path: resolves once durable, rejects with the error CommitOffsets would answer. */
  commit: (req: CommitOffsetsRequest) => Promise<void>;
  logger: Logger;
  /** Open streams, so that shutdown can end them (clients move to another instance at once). */
  streams?: Set<{ emit(event: string, ...args: unknown[]): boolean }>;
  limits?: Partial<typeof COMMIT_STREAM_LIMITS>;
}

const RPC = 'skein.group.v1.GroupCoordinatorService/CommitStream';

/**
 * What a request holds in memory while in flight, roughly: decoded objects cost more than their
 * wire bytes, so each offset is charged a fixed overhead besides its strings.
 */
function requestWeight(req: CommitStreamRequest): number {
  const c = req.commit;
  if (!c) return 64;
  let bytes = 128 + c.groupId.length + c.memberId.length;
  for (const o of c.offsets) bytes += 96 + o.topic.length + o.metadata.length;
  return bytes;
}

export function commitStreamHandler(deps: CommitStreamDeps): grpc.handleBidiStreamingCall<CommitStreamRequest, CommitStreamResponse> {
  const maxRequests = deps.limits?.maxInFlightRequests ?? COMMIT_STREAM_LIMITS.maxInFlightRequests;
  const maxBytes = deps.limits?.maxInFlightBytes ?? COMMIT_STREAM_LIMITS.maxInFlightBytes;
  const unexpected = (err: unknown) => deps.logger.error({ err, rpc: RPC }, 'unexpected error in a stream commit');

  return (call) => {
    const auth = requestAuth(call);
    let inFlight = 0;
    let inFlightBytes = 0;
    /** The last answer was not taken by the transport yet: wait for 'drain' before reading more. */
    let blocked = false;
    let paused = false;
    let halfClosed = false;
    /** Ended (by us, the client, or shutdown): nothing more is written. */
    let done = false;
    deps.streams?.add(call);

    const finish = () => {
      done = true;
      deps.streams?.delete(call);
    };
    const holdOrResume = () => {
      const hold = blocked || inFlight >= maxRequests || inFlightBytes >= maxBytes;
      if (hold && !paused) {
        paused = true;
        call.pause();
      } else if (!hold && paused) {
        paused = false;
        call.resume();
      }
    };
    const answer = (requestId: bigint, weight: number, error: unknown) => {
      inFlight--;
      inFlightBytes -= weight;
      if (done || call.cancelled) return;
      const ok = call.write(error === undefined ? { requestId } : { requestId, error: toStatus(error, unexpected) });
      if (!ok) blocked = true;
      if (halfClosed && inFlight === 0) {
        finish();
        call.end();
        return;
      }
      holdOrResume();
    };

    call.on('data', (req: CommitStreamRequest) => {
      if (done) return;
      const weight = requestWeight(req);
      inFlight++;
      inFlightBytes += weight;
      holdOrResume();
      const id = req.requestId;
      let result: Promise<void>;
      try {
        if (!req.commit) throw new SkeinError('INVALID_REQUEST', 'a CommitStream request carries a commit');
        auth.check(commitRequirements, req.commit, RPC);
        result = deps.commit(req.commit);
      } catch (err) {
        result = Promise.reject(err);
      }
      result.then(
        () => answer(id, weight, undefined),
        (err: unknown) => answer(id, weight, err),
      );
    });
    call.on('drain', () => {
      blocked = false;
      if (!done) holdOrResume();
    });
    call.on('end', () => {
      // The client sends no more: end once everything read is answered.
      halfClosed = true;
      if (!done && inFlight === 0) {
        finish();
        call.end();
      }
    });
    call.on('cancelled', finish);
    // A shutdown (SessionRegistry.closeAll) or a failed write: grpc-js ends the call with the status.
    call.on('error', finish);
  };
}
