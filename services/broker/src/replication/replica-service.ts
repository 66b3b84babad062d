/**
 * Leader side of replication: answers followers' ReplicaFetch long-polls with stored batches (as
 * bytes, never re-encoded), records each follower's log end offset to advance the high watermark,
 * and tells a follower whose log diverged where to truncate (KIP-279: the end offset of the last
 * epoch both logs share).
 */
import type * as grpc from '@grpc/grpc-js';
import { ReplicaServiceService, type ReplicaFetchRequest, type ReplicaFetchResponse, type ReplicateRequest } from '@skein/proto/skein/broker/v1/replica.js';
import type { Logger } from 'pino';
import { toLogError, toPartitionError, toServiceError } from '../grpc/error-mapping.js';
import { LeaderSession } from './leader-session.js';
import { checkPartition, checkTopicName } from '../grpc/request-limits.js';
import { LogError } from '../log/log-error.js';
import { leaderFetchDecision } from './replication-core.js';
import type { ReplicaManager } from '../replica-manager.js';
import type { Clock, Timers } from '../runtime/timers.js';

export { ReplicaServiceService };
export const REPLICA_SERVICE_NAME = 'skein.broker.v1.ReplicaService';
/** Cap on ReplicaFetchRequest.max_bytes (docs/limits.md). */
export const REPLICA_FETCH_MAX_BYTES = 16 * 1024 * 1024;

export function createReplicaServiceHandlers(deps: { replicas: ReplicaManager; clock: Clock; timers: Timers; logger: Logger }): grpc.UntypedServiceImplementation {
  const { replicas, clock, timers, logger } = deps;

  async function replicaFetch(req: ReplicaFetchRequest): Promise<ReplicaFetchResponse> {
    // Refused before any lookup, like the client data path (grpc/request-limits.ts).
    const bad = checkTopicName(req.topic) ?? checkPartition(req.topic, req.partition);
    if (bad) throw new LogError('INVALID_REQUEST', bad);
    const p = replicas.leaderPartition(req.topic, req.partition, req.leaderEpoch);
    if (!p.replicas.includes(req.replicaId) || req.replicaId === p.leaderId) {
      throw new LogError('INVALID_REQUEST', `broker ${req.replicaId} is not a follower of ${req.topic}-${req.partition}`);
    }
    if (req.fetchOffset < 0n) throw new LogError('INVALID_REQUEST', `fetch_offset must not be negative, got ${req.fetchOffset}`);
    const log = p.log;
    const decision = leaderFetchDecision(log, req.fetchOffset, req.lastFetchedEpoch);
    if (decision.kind === 'below-log-start') {
      // No batches: the follower truncates fully and starts at log_start_offset (followerAction).
      return { error: undefined, highWatermark: log.highWatermark, logStartOffset: log.logStartOffset, divergingEpoch: undefined, batches: [] };
    }
    if (decision.kind === 'diverging') {
      return { error: undefined, highWatermark: log.highWatermark, logStartOffset: log.logStartOffset, divergingEpoch: { epoch: decision.epoch, endOffset: decision.endOffset }, batches: [] };
    }
    p.recordFollowerFetch(req.replicaId, req.fetchOffset, clock.nowMs());
    // Bounded whatever the follower asks: one answer holds at most this much (plus one batch).
    const maxBytes = req.maxBytes > 0 ? Math.min(req.maxBytes, REPLICA_FETCH_MAX_BYTES) : 1024 * 1024;
    const read = () => log.read(req.fetchOffset, maxBytes, log.logEndOffset);
    let entries = read();
    if (entries.length === 0 && req.maxWaitMs > 0) {
      await new Promise<void>((resolve) => {
        let cancel = () => {};
        const off = p.onChange(() => { off(); cancel(); resolve(); });
        cancel = timers.setTimeout(() => { off(); resolve(); }, Math.min(req.maxWaitMs, 10_000));
      });
      if (!p.isLeader) throw new LogError('NOT_LEADER_OR_FOLLOWER', `no longer the leader of ${req.topic}-${req.partition}`, { leaderHint: { leaderId: p.leaderId, leaderEpoch: p.leaderEpoch } });
      entries = read();
    }
    return {
      error: undefined,
      highWatermark: log.highWatermark,
      logStartOffset: log.logStartOffset,
      divergingEpoch: undefined,
      batches: entries.map((e) => ({ baseOffset: e.baseOffset, leaderEpoch: e.leaderEpoch, batch: e.batch })),
    };
  }

  return {
    replicate: (call: grpc.ServerDuplexStream<ReplicateRequest, Buffer>) => {
      const session = new LeaderSession({ replicas, clock, timers, logger }, call);
      call.on('data', (req: ReplicateRequest) => {
        try {
          session.receive(req);
        } catch (e) {
          const err = toLogError(e, (x) => logger.error({ err: x }, 'unexpected error in Replicate'));
          session.close();
          call.emit('error', toServiceError(err));
        }
      });
      call.on('end', () => session.close());
      call.on('cancelled', () => session.close());
      call.on('error', () => session.close());
    },
    replicaFetch: (call: grpc.ServerUnaryCall<ReplicaFetchRequest, ReplicaFetchResponse>, callback: grpc.sendUnaryData<ReplicaFetchResponse>) => {
      replicaFetch(call.request).then((res) => callback(null, res), (e: unknown) => {
        const err = toLogError(e, (x) => logger.error({ err: x }, 'unexpected error in ReplicaFetch'));
        callback(null, { error: toPartitionError(err), highWatermark: -1n, logStartOffset: -1n, divergingEpoch: undefined, batches: [] });
      });
    },
  };
}
