/**
 * gRPC handlers for skein.broker.v1.BrokerTxnService, the broker's side of transactions, called by
 * the transaction coordinator (broker.proto states the contract): BeginTxn and WriteTxnMarkers
 * append control batches to partitions this broker leads and answer per partition once the ISR has
 * them; DescribeProducers reads the producer state. The rules that decide whether a control batch
 * is written, skipped as a retry, or refused live in log/producer-state.ts; this file only decodes,
 * fans out over partitions and maps errors.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import {
  type BeginTxnRequest,
  type BeginTxnResponse,
  ControlRecordType,
  type DescribeProducersRequest,
  type DescribeProducersResponse,
  type TxnTopicPartitions,
  type TxnTopicResult,
  type WriteTxnMarkersRequest,
  type WriteTxnMarkersResponse,
} from '@skein/proto/skein/broker/v1/broker.js';
import { LogError } from '../log/log-error.js';
import type { ControlMarker } from '../log/control-batch.js';
import type { LeaderInfo, ReplicaManager } from '../replica-manager.js';
import type { BrokerMetadataView } from './broker-service.js';
import { errorMappers, toLogError } from './error-mapping.js';
import { checkPartitionEntries, DEFAULT_MAX_PARTITIONS_PER_REQUEST, produceTimeoutMs, quoteName } from './request-limits.js';

export const BROKER_TXN_SERVICE_NAME = 'skein.broker.v1.BrokerTxnService';

export interface TxnServiceDeps {
  replicas: ReplicaManager;
  metadata: BrokerMetadataView;
  logger: Logger;
  maxPartitionsPerRequest?: number;
}

const INT32_MAX = 0x7fffffff;

/** Checks what BeginTxn and every marker share; the message, or undefined when fine. */
export function checkTxnIdentity(producerId: bigint, producerEpoch: number, coordinatorEpoch: bigint): string | undefined {
  if (producerId <= 0n) return `producer_id must be positive, got ${producerId}`;
  if (producerEpoch < 0 || producerEpoch > INT32_MAX) return `producer_epoch must be 0 or more, got ${producerEpoch}`;
  if (coordinatorEpoch < 0n) return `coordinator_epoch must be 0 or more, got ${coordinatorEpoch}`;
  return undefined;
}

type Handler<Req, Res> = (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => void;

export function createTxnServiceHandlers(deps: TxnServiceDeps): {
  beginTxn: Handler<BeginTxnRequest, BeginTxnResponse>;
  writeTxnMarkers: Handler<WriteTxnMarkersRequest, WriteTxnMarkersResponse>;
  describeProducers: Handler<DescribeProducersRequest, DescribeProducersResponse>;
} {
  const { replicas, metadata, logger } = deps;
  const { toPartitionError, toServiceError } = errorMappers((id) => metadata.brokerEndpoint?.(id));
  const maxEntries = deps.maxPartitionsPerRequest ?? DEFAULT_MAX_PARTITIONS_PER_REQUEST;
  const unexpected = (rpc: string, input: unknown) => (err: unknown) => logger.error({ err, rpc, input }, 'unexpected error');
  // As in BrokerService: a partition past the topic's count is unknown, otherwise hint at its leader.
  const hint = (t: string, p: number): LeaderInfo | undefined => {
    const count = metadata.partitionCount?.(t);
    if (count !== undefined && p >= count) {
      throw new LogError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${quoteName(t)} has ${count} partitions; partition ${p} does not exist`, {
        metadata: { partition: String(p), partitionCount: String(count) },
      });
    }
    return metadata.leaderOf(t, p);
  };
  const entries = (topics: readonly TxnTopicPartitions[]) =>
    topics.map((t) => ({ topic: t.topic, partitions: t.partitions.map((partition) => ({ partition })) }));

  /** Appends `marker` for the producer on every listed partition, concurrently; answers per partition. */
  function writeAll(
    rpc: string,
    topics: readonly TxnTopicPartitions[],
    producerId: bigint,
    producerEpoch: number,
    marker: ControlMarker,
    timeoutMs: number,
  ): Promise<TxnTopicResult[]> {
    return Promise.all(
      topics.map(async (t) => ({
        topic: t.topic,
        partitions: await Promise.all(
          t.partitions.map(async (partition) => {
            try {
              const p = replicas.leaderPartition(t.topic, partition, -1, hint);
              await replicas.appendControlToLeader(p, producerId, producerEpoch, marker, timeoutMs);
              return { partition, error: undefined };
            } catch (e) {
              const err = toLogError(e, unexpected(rpc, { topic: t.topic, partition, producerId: producerId.toString() }));
              return { partition, error: toPartitionError(err) };
            }
          }),
        ),
      })),
    );
  }

  return {
    beginTxn(call, callback) {
      const req = call.request;
      const bad =
        checkTxnIdentity(req.producerId, req.producerEpoch, req.coordinatorEpoch) ??
        (req.timeoutMs < 0 ? `timeout_ms must not be negative, got ${req.timeoutMs}` : undefined) ??
        checkPartitionEntries(entries(req.topics), maxEntries);
      if (bad) return callback(toServiceError(new LogError('INVALID_REQUEST', bad)));
      const marker = { type: ControlRecordType.CONTROL_RECORD_TYPE_BEGIN, coordinatorEpoch: req.coordinatorEpoch };
      writeAll('BeginTxn', req.topics, req.producerId, req.producerEpoch, marker, produceTimeoutMs(req.timeoutMs)).then(
        (topics) => callback(null, { topics }),
        (e) => callback(toServiceError(toLogError(e, unexpected('BeginTxn', undefined)))),
      );
    },

    writeTxnMarkers(call, callback) {
      const req = call.request;
      let count = 0;
      for (const m of req.markers) for (const t of m.topics) count += Math.max(1, t.partitions.length);
      const bad =
        (count > maxEntries ? `request lists ${count} partition entries; the limit is ${maxEntries} per request (--max-partitions-per-request)` : undefined) ??
        (req.timeoutMs < 0 ? `timeout_ms must not be negative, got ${req.timeoutMs}` : undefined) ??
        req.markers
          .map((m) => checkTxnIdentity(m.producerId, m.producerEpoch, m.coordinatorEpoch) ?? checkPartitionEntries(entries(m.topics), maxEntries))
          .find((x) => x !== undefined);
      if (bad) return callback(toServiceError(new LogError('INVALID_REQUEST', bad)));
      const timeoutMs = produceTimeoutMs(req.timeoutMs);
      Promise.all(
        req.markers.map(async (m) => ({
          producerId: m.producerId,
          topics: await writeAll(
            'WriteTxnMarkers',
            m.topics,
            m.producerId,
            m.producerEpoch,
            {
              type: m.commit ? ControlRecordType.CONTROL_RECORD_TYPE_COMMIT : ControlRecordType.CONTROL_RECORD_TYPE_ABORT,
              coordinatorEpoch: m.coordinatorEpoch,
            },
            timeoutMs,
          ),
        })),
      ).then(
        (markers) => callback(null, { markers }),
        (e) => callback(toServiceError(toLogError(e, unexpected('WriteTxnMarkers', undefined)))),
      );
    },

    describeProducers(call, callback) {
      const req = call.request;
      const bad = checkPartitionEntries(entries(req.topics), maxEntries);
      if (bad) return callback(toServiceError(new LogError('INVALID_REQUEST', bad)));
      const topics = req.topics.map((t) => ({
        topic: t.topic,
        partitions: t.partitions.map((partition) => {
          try {
            const p = replicas.leaderPartition(t.topic, partition, -1, hint);
            const producers = p.log.describeProducers().map((e) => ({
              producerId: e.producerId,
              producerEpoch: e.epoch,
              lastSequence: e.batches[e.batches.length - 1]?.lastSeq ?? -1,
              lastTimestampMs: e.lastTimestampMs,
              coordinatorEpoch: e.coordinatorEpoch,
              currentTxnStartOffset: e.txnFirstOffset ?? -1n,
            }));
            return { partition, error: undefined, producers };
          } catch (e) {
            return { partition, error: toPartitionError(toLogError(e, unexpected('DescribeProducers', { topic: t.topic, partition }))), producers: [] };
          }
        }),
      }));
      callback(null, { topics });
    },
  };
}
