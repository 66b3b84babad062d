/**
 * gRPC handlers for skein.broker.v1.BrokerService: decode → call the replica manager / logs → map
 * errors. Produce and fetch see batches as Buffers (wire-codec.ts); the service is registered with
 * those codecs in place of the generated ones, under the same method paths, so clients use the
 * public typed contract unchanged.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { requestAuth } from '@skein/common/security/enforcement.js';
import { principalString } from '@skein/common/security/authorizer.js';
import {
  Acks,
  BrokerServiceService,
  FetchRequest,
  GetMetadataRequest,
  type GetMetadataResponse,
  InitProducerIdRequest,
  type InitProducerIdResponse,
  IsolationLevel,
  ListOffsetsRequest,
  type ListOffsetsPartitionResponse,
  type ListOffsetsResponse,
  OffsetSpec,
  type PartitionProduceResponse,
  type ProduceResponse,
  ProduceStreamResponse,
  ReadReplicaLogRequest,
  type ReadReplicaLogResponse,
  SubscribeRequest,
} from '@skein/proto/skein/broker/v1/broker.js';
import type { ClusterMetadata } from '@skein/proto/skein/metadata/v1/metadata.js';
import { peekProducerId, ProduceAdmission } from '../log/batch-validation.js';
import { LogError } from '../log/log-error.js';
import type { Partition, ReplicaManager, LeaderInfo } from '../replica-manager.js';
import type { ProducerIdManager } from '../producer-id-manager.js';
import { ProducerIdOwners } from '../producer-id-owners.js';
import type { QuotaManager } from '../quota/quota-manager.js';
import type { QuotaKind } from '@skein/common/quota/client-quotas.js';
import type { Timers } from '../runtime/timers.js';
import type { SchemaValidator } from '../runtime/schema-validation.js';
import type { BrokerMetrics } from '../runtime/broker-metrics.js';
import { errorMappers, toLogError, toServiceError } from './error-mapping.js';
import {
  decodeProduceRequest,
  encodeFetchResponse,
  encodeSubscribeResponse,
  type PartitionFetchResponseWire,
  type ProduceRequestWire,
} from './wire-codec.js';
import {
  checkClientId,
  checkPartition,
  checkPartitionEntries,
  checkTopicList,
  checkTopicName,
  DEFAULT_MAX_PARTITIONS_PER_REQUEST,
  PRODUCE_STREAM_MAX_IN_FLIGHT_BYTES,
  PRODUCE_STREAM_MAX_IN_FLIGHT_REQUESTS,
  produceRequestBytes,
  produceTimeoutMs,
  quoteName,
} from './request-limits.js';

/** What the broker's metadata cache answers (wired to the ClusterCache by the metadata follower). */
export interface BrokerMetadataView {
  /** The cluster metadata, limited to `topics` (all when empty). */
  getMetadata(topics: readonly string[]): ClusterMetadata;
  /** Who leads a partition this broker does not host, for NOT_LEADER hints; undefined if unknown. */
  leaderOf(topic: string, partition: number): LeaderInfo | undefined;
  /** Where a broker listens, for LeaderHint.leader_endpoint; undefined if unknown. */
  brokerEndpoint?(brokerId: number): { host: string; port: number } | undefined;
  /** How many partitions a topic has, or undefined when the topic is unknown to the cache. */
  partitionCount?(topic: string): number | undefined;
}

export interface BrokerServiceDeps {
  replicas: ReplicaManager;
  metadata: BrokerMetadataView;
  producerIds: ProducerIdManager;
  timers: Timers;
  logger: Logger;
  /** Default and cap for FetchRequest.max_bytes. */
  fetchMaxBytes?: number;
  /** Cap on SubscribeRequest.max_bytes (bytes of batches per stream message). */
  subscribeMaxBytes?: number;
  /** Most partition entries one Produce, ProduceStream, Fetch or ListOffsets request may list. */
  maxPartitionsPerRequest?: number;
  /** Serve ReadReplicaLog (config replicaLogReadEnabled); refused when not true. */
  replicaLogReadEnabled?: boolean;
  /** Bytes and records out per topic, errors by reason (bytes in are counted at the append). */
  metrics?: BrokerMetrics;
  /** Which principal owns which producer id (producer-id-owners.ts); a fresh one per broker by default. */
  producerIdOwners?: ProducerIdOwners;
  /** Produce and fetch byte-rate quotas (quota/quota-manager.ts); none: nobody is throttled. */
  quotas?: QuotaManager;
  /** Wall-clock time for the quotas' rate windows (default Date.now). */
  nowMs?: () => number;
  /**
   * Checks records of topics with key/value.schema.validation against the schema registry
   * (runtime/schema-validation.ts). Without it such topics refuse every batch with UNAVAILABLE
   * (fail closed).
   */
  schemaValidation?: SchemaValidator;
}

/** The call metadata key a client names itself with for client-id quotas (the client's clientId option). */
export const CLIENT_ID_METADATA_KEY = 'skein-client-id';

interface Malformed {
  malformed: string;
}

function isMalformed(x: unknown): x is Malformed {
  return typeof x === 'object' && x !== null && 'malformed' in x;
}

/** Decoding never throws inside grpc-js (which would answer INTERNAL): the handler says INVALID_ARGUMENT. */
function safe<T>(decode: (b: Buffer) => T): (b: Buffer) => T | Malformed {
  return (b) => {
    try {
      return decode(b);
    } catch (e) {
      return { malformed: (e as Error).message };
    }
  };
}

const identity = (b: Buffer): Buffer => b;

/** BrokerService with the broker's own codecs for batch-carrying messages. */
export const brokerServiceDefinition = {
  produce: { ...BrokerServiceService.produce, requestDeserialize: safe((b) => decodeProduceRequest(b, false)) },
  produceStream: { ...BrokerServiceService.produceStream, requestDeserialize: safe((b) => decodeProduceRequest(b, true)) },
  fetch: { ...BrokerServiceService.fetch, requestDeserialize: safe(FetchRequest.decode), responseSerialize: identity },
  subscribe: { ...BrokerServiceService.subscribe, requestDeserialize: safe(SubscribeRequest.decode), responseSerialize: identity },
  listOffsets: { ...BrokerServiceService.listOffsets, requestDeserialize: safe(ListOffsetsRequest.decode) },
  initProducerId: { ...BrokerServiceService.initProducerId, requestDeserialize: safe(InitProducerIdRequest.decode) },
  getMetadata: { ...BrokerServiceService.getMetadata, requestDeserialize: safe(GetMetadataRequest.decode) },
  readReplicaLog: { ...BrokerServiceService.readReplicaLog, requestDeserialize: safe(ReadReplicaLogRequest.decode) },
} as unknown as grpc.ServiceDefinition;

function invalid(message: string): LogError {
  return new LogError('INVALID_REQUEST', message);
}

const DEFAULT_FETCH_MAX_BYTES = 50 * 1024 * 1024;
/** Subscribe max_bytes when the request leaves it 0. */
const DEFAULT_SUBSCRIBE_MAX_BYTES = 1024 * 1024;
/** Default cap on Subscribe max_bytes: what one stream whose reader stalls holds, about (see subscribe). */
const DEFAULT_SUBSCRIBE_MAX_BYTES_CAP = 8 * 1024 * 1024;
const MAX_WAIT_CAP_MS = 60_000;

/**
 * ReadReplicaLog: this broker's own replica of a partition (leader or follower), batches as stored up
 * to its log end offset, with its offsets. An operator and test tool for comparing replicas byte for
 * byte; refused unless the broker was started with it enabled, since nothing authorizes it yet.
 * Bounded like Fetch: max_bytes is capped to the fetch cap. One synchronous read, so the offsets and
 * batches describe the replica at one instant.
 */
export function readReplicaLog(
  deps: Pick<BrokerServiceDeps, 'replicas' | 'fetchMaxBytes' | 'replicaLogReadEnabled' | 'logger'>,
  call: grpc.ServerUnaryCall<ReadReplicaLogRequest | Malformed, ReadReplicaLogResponse>,
  callback: grpc.sendUnaryData<ReadReplicaLogResponse>,
): void {
  const req = call.request;
  if (deps.replicaLogReadEnabled !== true) {
    return callback(toServiceError(new LogError('REPLICA_LOG_READ_DISABLED', 'ReadReplicaLog is disabled on this broker: it reads any replica without authorization; start the broker with --replica-log-read-enabled (SKEIN_REPLICA_LOG_READ_ENABLED=true) to allow it')));
  }
  if (isMalformed(req)) return callback(toServiceError(invalid(`malformed ReadReplicaLogRequest: ${req.malformed}`)));
  const bad =
    req.topic === '' ? 'topic must not be empty'
    : req.partition < 0 ? `partition must not be negative, got ${req.partition}`
    : req.startOffset < 0n ? `start_offset must not be negative, got ${req.startOffset}`
    : req.maxBytes < 0 ? `max_bytes must not be negative, got ${req.maxBytes}`
    : undefined;
  if (bad) return callback(toServiceError(invalid(bad)));
  const cap = deps.fetchMaxBytes ?? DEFAULT_FETCH_MAX_BYTES;
  const maxBytes = req.maxBytes === 0 ? cap : Math.min(req.maxBytes, cap);
  try {
    const p = deps.replicas.getPartition(req.topic, req.partition);
    if (!p || p.topic !== req.topic || p.partition !== req.partition) {
      throw new LogError('UNKNOWN_TOPIC_OR_PARTITION', `this broker hosts no replica of partition ${req.partition} of topic ${JSON.stringify(req.topic.slice(0, 256))}`, {});
    }
    const log = p.log;
    const logStartOffset = log.logStartOffset;
    const logEndOffset = log.logEndOffset;
    if (req.startOffset < logStartOffset || req.startOffset > logEndOffset) {
      throw new LogError('OFFSET_OUT_OF_RANGE', `start_offset ${req.startOffset} is outside this replica's log [${logStartOffset}, ${logEndOffset}]`, { offsetRange: { logStartOffset, logEndOffset } });
    }
    // Read up to the log end, not the high watermark: the point is to see what this replica holds.
    const entries = log.read(req.startOffset, maxBytes, logEndOffset);
    callback(null, {
      brokerId: deps.replicas.brokerId,
      isLeader: p.isLeader,
      leaderEpoch: p.leaderEpoch,
      logStartOffset,
      logEndOffset,
      highWatermark: log.highWatermark,
      batches: entries.map((e) => ({ baseOffset: e.baseOffset, lastOffset: e.lastOffset, leaderEpoch: e.leaderEpoch, batch: e.batch })),
    });
  } catch (e) {
    callback(toServiceError(toLogError(e, (err) => deps.logger.error({ err, rpc: 'ReadReplicaLog', topic: req.topic.slice(0, 256), partition: req.partition }, 'unexpected error'))));
  }
}

export function createBrokerServiceHandlers(deps: BrokerServiceDeps): grpc.UntypedServiceImplementation {
  const { replicas, metadata, logger } = deps;
  // Every error of the handlers below leaves through these (they shadow the plain mappers): a
  // leader hint gets the leader's address from the cluster cache (LeaderHint.leader_endpoint).
  const { toPartitionError, toServiceError } = errorMappers((id) => metadata.brokerEndpoint?.(id));
  const admission = new ProduceAdmission();
  const producerIdOwners = deps.producerIdOwners ?? new ProducerIdOwners();
  const nowMs = deps.nowMs ?? Date.now;
  /**
   * Who a call's bytes count against: its principal's name (ANONYMOUS without the authorizer) and
   * its client id. Internal principals (the cluster's own services) are never throttled.
   */
  const quotaCaller = (call: { metadata: grpc.Metadata }): { user: string; clientId: string } | undefined => {
    if (!deps.quotas || deps.quotas.quotaCount === 0) return undefined;
    const p = requestAuth(call).principal;
    if (p.internal) return undefined;
    const id = call.metadata.get(CLIENT_ID_METADATA_KEY)[0];
    return { user: p.name, clientId: typeof id === 'string' ? id.slice(0, 255) : '' };
  };
  /** Records bytes against the caller's quota; the throttle time to tell it (0 when none). */
  const throttle = (kind: QuotaKind, caller: { user: string; clientId: string } | undefined, bytes: number): number => {
    if (!caller || !deps.quotas) return 0;
    const { throttleMs } = deps.quotas.record(kind, caller.user, caller.clientId, bytes, nowMs());
    if (throttleMs > 0) {
      deps.metrics?.quotaThrottled.inc({ quota: kind });
      deps.metrics?.quotaThrottleSeconds.inc({ quota: kind }, throttleMs / 1000);
    }
    return throttleMs;
  };
  /** Runs `fn` once the caller's budget is no longer muted (KIP-219: a request sent before its throttle time ended waits it out here). */
  const afterMute = (kind: QuotaKind, caller: { user: string; clientId: string } | undefined, fn: () => void): void => {
    const wait = caller && deps.quotas ? deps.quotas.delayMs(kind, caller.user, caller.clientId, nowMs()) : 0;
    if (wait <= 0) fn();
    else deps.timers.setTimeout(fn, wait);
  };
  /** Refuses a batch under a producer id another principal owns here (producer-id-owners.ts). */
  const checkProducerId = (principal: string, batch: Buffer): void => {
    const producerId = peekProducerId(batch);
    const check = producerIdOwners.check(producerId, principal);
    if (!check.allowed) {
      throw new LogError('PRODUCER_ID_AUTHORIZATION_FAILED', `${principal} may not write with producer id ${producerId}: it belongs to another principal on this broker`, {
        metadata: { principal, producer_id: producerId.toString() },
      });
    }
  };
  const unexpected = (what: string, input?: unknown) => (e: unknown) => logger.error({ err: e, rpc: what, input }, 'unexpected error');
  const maxPartitionsPerRequest = deps.maxPartitionsPerRequest ?? DEFAULT_MAX_PARTITIONS_PER_REQUEST;
  /** The schema check of a batch to `p`, when its topic validates keys or values (undefined: none). */
  const schemaCheck = (p: Partition) => {
    const { keySchemaValidation: key, valueSchemaValidation: value } = p.log.config;
    if (!key && !value) return undefined;
    if (!deps.schemaValidation) {
      throw new LogError('UNAVAILABLE', `topic ${quoteName(p.topic)} has schema validation on but this broker has no schema registry client`);
    }
    return deps.schemaValidation.forTopic(p.topic, key, value);
  };
  // Called by leaderPartition for a partition this broker does not host, so every lookup of the data
  // path passes here: a partition at or above the topic's partition count is refused outright
  // (UNKNOWN_TOPIC_OR_PARTITION, whatever the leader hint would say); otherwise, the leader hint.
  const hint = (t: string, p: number): LeaderInfo | undefined => {
    const count = metadata.partitionCount?.(t);
    if (count !== undefined && p >= count) {
      throw new LogError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${quoteName(t)} has ${count} partitions; partition ${p} does not exist`, { metadata: { partition: String(p), partitionCount: String(count) } });
    }
    return metadata.leaderOf(t, p);
  };

  /** Refuses a malformed produce request before any work; clamps its timeout (request-limits.ts). */
  function checkProduce(req: ProduceRequestWire): void {
    if (req.timeoutMs < 0) throw invalid(`timeout_ms must not be negative, got ${req.timeoutMs}`);
    if (!(req.acks in Acks) || req.acks < 0) throw invalid(`unknown acks value ${req.acks}`);
    const bad = checkPartitionEntries(req.topics, maxPartitionsPerRequest);
    if (bad) throw invalid(bad);
    // Clamped like Fetch's max_wait_ms: an acks=all produce holds its request until it times out.
    req.timeoutMs = produceTimeoutMs(req.timeoutMs);
  }

  /** Appends every batch of a request (synchronously, in order) and resolves with the response. */
  function produce(req: ProduceRequestWire, principal: string): { response: Promise<ProduceResponse> } {
    const acksAll = req.acks === Acks.ACKS_ALL || req.acks === Acks.ACKS_UNSPECIFIED;
    const topics = req.topics.map((t) => ({
      topic: t.topic,
      partitions: t.partitions.map(async (pd): Promise<PartitionProduceResponse> => {
        try {
          const p = replicas.leaderPartition(t.topic, pd.partition, -1, hint);
          checkProducerId(principal, pd.batch);
          // Record framing is checked before the append (compressed batches off the event loop),
          // appends to a partition kept in arrival order; leadership is checked again at the append.
          // With key/value.schema.validation, the same scan collects the records' schema ids and
          // the registry (cached) decides on them before the append.
          const r = await admission.admit(
            p,
            pd.batch,
            p.log.config.maxMessageBytes,
            () => replicas.appendToLeader(replicas.leaderPartition(t.topic, pd.partition, -1, hint), pd.batch, acksAll, req.timeoutMs),
            schemaCheck(p),
          );
          return { partition: pd.partition, error: undefined, baseOffset: r.baseOffset, logStartOffset: p.log.logStartOffset, duplicate: r.duplicate };
        } catch (e) {
          const err = toLogError(e, unexpected('Produce', { topic: t.topic, partition: pd.partition }));
          deps.metrics?.produceErrors.inc({ reason: err.reason });
          return { partition: pd.partition, error: toPartitionError(err), baseOffset: -1n, logStartOffset: -1n, duplicate: false };
        }
      }),
    }));
    const response = Promise.all(topics.map(async (t) => ({ topic: t.topic, partitions: await Promise.all(t.partitions) }))).then((ts) => ({ topics: ts, throttleTimeMs: 0 }));
    return { response };
  }

  interface Read {
    responses: Array<{ topic: string; partitions: PartitionFetchResponseWire[] }>;
    bytes: number;
    errors: number;
    partitions: Partition[];
    /** What each partition entry carries, for the bytes-out metrics once the answer is sent. */
    served: Array<{ topic: string; entries: Array<{ size: number; baseOffset: bigint; lastOffset: bigint }> }>;
  }

  /** The aborted transactions overlapping the entries read (READ_COMMITTED answers). */
  function abortedIn(p: Partition, entries: ReadonlyArray<{ baseOffset: bigint; lastOffset: bigint }>): Array<{ producerId: bigint; firstOffset: bigint }> {
    const first = entries[0];
    const last = entries[entries.length - 1];
    if (!first || !last) return [];
    return p.log.abortedTransactions(first.baseOffset, last.lastOffset + 1n).map((a) => ({ producerId: a.producerId, firstOffset: a.firstOffset }));
  }

  function readAll(req: FetchRequest, maxBytes: number): Read {
    const out: Read = { responses: [], bytes: 0, errors: 0, partitions: [], served: [] };
    let remaining = maxBytes;
    for (const t of req.topics) {
      const parts: PartitionFetchResponseWire[] = [];
      for (const pf of t.partitions) {
        try {
          if (pf.fetchOffset < 0n) {
            throw new LogError('OFFSET_OUT_OF_RANGE', `fetch_offset must not be negative, got ${pf.fetchOffset}`);
          }
          const p = replicas.leaderPartition(t.topic, pf.partition, pf.currentLeaderEpoch, hint);
          out.partitions.push(p);
          const limit = Math.min(pf.partitionMaxBytes > 0 ? pf.partitionMaxBytes : remaining, remaining);
          // READ_COMMITTED stops at the last stable offset and lists the aborts in what it returns.
          const lso = p.log.lastStableOffset;
          const readCommitted = req.isolationLevel === IsolationLevel.ISOLATION_LEVEL_READ_COMMITTED;
          const entries = limit > 0 ? p.log.read(pf.fetchOffset, limit, readCommitted ? lso : p.log.highWatermark) : [];
          let size = 0;
          for (const e of entries) size += e.size;
          remaining -= size;
          out.bytes += size;
          if (entries.length > 0) out.served.push({ topic: t.topic, entries });
          parts.push({
            partition: pf.partition,
            highWatermark: p.log.highWatermark,
            logStartOffset: p.log.logStartOffset,
            batches: entries.map((e) => ({ baseOffset: e.baseOffset, leaderEpoch: e.leaderEpoch, batch: e.batch })),
            lastStableOffset: lso,
            abortedTransactions: readCommitted ? abortedIn(p, entries) : undefined,
          });
        } catch (e) {
          let err = toLogError(e, unexpected('Fetch', { topic: t.topic, partition: pf.partition }));
          if (err.reason === 'OFFSET_OUT_OF_RANGE' && !err.offsetRange) {
            const p = replicas.getPartition(t.topic, pf.partition);
            if (p) err = new LogError(err.reason, err.message, { offsetRange: { logStartOffset: p.log.logStartOffset, logEndOffset: p.log.highWatermark } });
          }
          out.errors++;
          deps.metrics?.fetchErrors.inc({ reason: err.reason });
          parts.push({ partition: pf.partition, error: toPartitionError(err), highWatermark: -1n, logStartOffset: -1n, batches: [] });
        }
      }
      out.responses.push({ topic: t.topic, partitions: parts });
    }
    return out;
  }

  return {
    produce(call: grpc.ServerUnaryCall<ProduceRequestWire | Malformed, ProduceResponse>, callback: grpc.sendUnaryData<ProduceResponse>) {
      const req = call.request;
      if (isMalformed(req)) return callback(toServiceError(new LogError('CORRUPT_MESSAGE', `malformed ProduceRequest: ${req.malformed}`)));
      try {
        checkProduce(req);
      } catch (e) {
        return callback(toServiceError(toLogError(e)));
      }
      const caller = quotaCaller(call);
      afterMute('producer_byte_rate', caller, () => {
        const { response } = produce(req, principalString(requestAuth(call).principal));
        response.then(
          (r) => callback(null, { ...r, throttleTimeMs: throttle('producer_byte_rate', caller, produceRequestBytes(req.topics)) }),
          (e) => callback(toServiceError(toLogError(e, unexpected('Produce')))),
        );
      });
    },

    produceStream(call: grpc.ServerDuplexStream<ProduceRequestWire | Malformed, ProduceStreamResponse>) {
      const principal = principalString(requestAuth(call).principal);
      const caller = quotaCaller(call);
      // Over its produce quota the stream is paused (not read) until this time; the in-flight
      // limits below pause it too, and it resumes only when neither holds it.
      let throttledUntilMs = 0;
      // Replies go out in request order: each waits for the one before it.
      let tail: Promise<void> = Promise.resolve();
      let failed = false;
      // Bounded in flight (request-limits.ts): past the limits the stream is paused, so grpc-js stops
      // reading it and HTTP/2 flow control holds the client back; it resumes as answers go out.
      let inFlight = 0;
      let inFlightBytes = 0;
      let paused = false;
      const settle = (bytes: number) => {
        inFlight--;
        inFlightBytes -= bytes;
        maybeResume();
      };
      const maybeResume = () => {
        if (paused && inFlight < PRODUCE_STREAM_MAX_IN_FLIGHT_REQUESTS && inFlightBytes < PRODUCE_STREAM_MAX_IN_FLIGHT_BYTES && nowMs() >= throttledUntilMs) {
          paused = false;
          call.resume();
        }
      };
      /** Counts a message's bytes against the quota; over it, stops reading the stream for the throttle time. */
      const account = (bytes: number): number => {
        const ms = throttle('producer_byte_rate', caller, bytes);
        if (ms > 0) {
          throttledUntilMs = Math.max(throttledUntilMs, nowMs() + ms);
          if (!paused) {
            paused = true;
            call.pause();
          }
          deps.timers.setTimeout(maybeResume, ms);
        }
        return ms;
      };
      call.on('data', (req: ProduceRequestWire | Malformed) => {
        if (failed) return;
        try {
          if (isMalformed(req)) throw new LogError('CORRUPT_MESSAGE', `malformed ProduceStreamRequest: ${req.malformed}`);
          checkProduce(req);
        } catch (e) {
          failed = true;
          call.emit('error', toServiceError(toLogError(e)));
          return;
        }
        const bytes = produceRequestBytes(req.topics);
        inFlight++;
        inFlightBytes += bytes;
        if (!paused && (inFlight >= PRODUCE_STREAM_MAX_IN_FLIGHT_REQUESTS || inFlightBytes >= PRODUCE_STREAM_MAX_IN_FLIGHT_BYTES)) {
          paused = true;
          call.pause();
        }
        const { response } = produce(req, principal);
        if (req.acks === Acks.ACKS_NONE) {
          response.then(
            () => {
              account(bytes);
              settle(bytes);
            },
            () => settle(bytes),
          );
          return;
        }
        tail = tail.then(async () => {
          const r = await response;
          const throttleTimeMs = account(bytes);
          if (!call.cancelled) call.write({ correlationId: req.correlationId, topics: r.topics, throttleTimeMs }, () => settle(bytes));
        }).catch((e: unknown) => {
          // Partition errors are answers; anything thrown here is a bug or a broken stream: it is
          // logged as unexpected and fails the stream instead of becoming an unhandled rejection,
          // and the chain stays resolved for the 'end' handler.
          if (failed) return;
          failed = true;
          call.emit('error', toServiceError(toLogError(e, unexpected('ProduceStream'))));
        });
      });
      call.on('end', () => {
        void tail.then(() => {
          if (!failed) call.end();
        });
      });
      call.on('error', () => undefined);
    },

    fetch(call: grpc.ServerUnaryCall<FetchRequest | Malformed, Buffer>, callback: grpc.sendUnaryData<Buffer>) {
      const req = call.request;
      if (isMalformed(req)) return callback(toServiceError(invalid(`malformed FetchRequest: ${req.malformed}`)));
      const badEntries = checkPartitionEntries(req.topics, maxPartitionsPerRequest);
      if (badEntries) return callback(toServiceError(invalid(badEntries)));
      const bad =
        req.maxWaitMs < 0 ? `max_wait_ms must not be negative, got ${req.maxWaitMs}`
        : req.minBytes < 0 ? `min_bytes must not be negative, got ${req.minBytes}`
        : req.maxBytes < 0 ? `max_bytes must not be negative, got ${req.maxBytes}`
        : req.topics.flatMap((t) => t.partitions).some((p) => p.partitionMaxBytes < 0) ? 'partition_max_bytes must not be negative'
        : undefined;
      if (bad) return callback(toServiceError(invalid(bad)));
      const cap = deps.fetchMaxBytes ?? DEFAULT_FETCH_MAX_BYTES;
      const maxBytes = req.maxBytes === 0 ? cap : Math.min(req.maxBytes, cap);
      let done = false;
      const cleanups: Array<() => void> = [];
      const caller = quotaCaller(call);
      const finish = (read: Read) => {
        if (done) return;
        done = true;
        for (const c of cleanups.splice(0)) c();
        try {
          callback(null, encodeFetchResponse(read.responses, throttle('consumer_byte_rate', caller, read.bytes)));
          for (const s of read.served) deps.metrics?.sent(s.topic, s.entries);
        } catch (e) {
          callback(toServiceError(toLogError(e, unexpected('Fetch'))));
        }
      };
      const attempt = (final: boolean) => {
        if (done) return;
        let read: Read;
        try {
          read = readAll(req, maxBytes);
        } catch (e) {
          done = true;
          for (const c of cleanups.splice(0)) c();
          return callback(toServiceError(toLogError(e, unexpected('Fetch'))));
        }
        if (final || read.errors > 0 || read.bytes >= Math.max(req.minBytes, 1) || req.maxWaitMs === 0) return finish(read);
        if (cleanups.length === 0) {
          // Long-poll: re-read when any of the partitions gets new data, or answer at the deadline.
          for (const p of new Set(read.partitions)) cleanups.push(p.onChange(() => attempt(false)));
          cleanups.push(deps.timers.setTimeout(() => attempt(true), Math.min(req.maxWaitMs, MAX_WAIT_CAP_MS)));
          call.on('cancelled', () => {
            done = true;
            for (const c of cleanups.splice(0)) c();
          });
        }
      };
      afterMute('consumer_byte_rate', caller, () => attempt(false));
    },

    subscribe(call: grpc.ServerWritableStream<SubscribeRequest | Malformed, Buffer>) {
      const req = call.request;
      const fail = (e: unknown) => {
        if (call.cancelled) return;
        const err = toLogError(e, unexpected('Subscribe'));
        deps.metrics?.fetchErrors.inc({ reason: err.reason });
        call.emit('error', toServiceError(err));
      };
      if (isMalformed(req)) return fail(invalid(`malformed SubscribeRequest: ${req.malformed}`));
      if (req.maxBytes < 0) return fail(invalid(`max_bytes must not be negative, got ${req.maxBytes}`));
      if (req.offset < 0n) return fail(new LogError('OFFSET_OUT_OF_RANGE', `offset must not be negative, got ${req.offset}`));
      const badName = checkTopicName(req.topic) ?? checkPartition(req.topic, req.partition);
      if (badName) return fail(invalid(badName));
      // Clamped like Fetch: above the cap a message could outgrow the gRPC send limit and the stream
      // would never progress; the cap is also about what a stalled stream holds (see below).
      const cap = deps.subscribeMaxBytes ?? DEFAULT_SUBSCRIBE_MAX_BYTES_CAP;
      const maxBytes = Math.min(req.maxBytes === 0 ? DEFAULT_SUBSCRIBE_MAX_BYTES : req.maxBytes, cap);
      let offset = req.offset;
      const readCommitted = req.isolationLevel === IsolationLevel.ISOLATION_LEVEL_READ_COMMITTED;
      const caller = quotaCaller(call);
      let cancelled = false;
      let wake: (() => void) | undefined;
      call.on('cancelled', () => {
        cancelled = true;
        wake?.();
      });
      const pump = async () => {
        while (!cancelled) {
          const p = replicas.leaderPartition(req.topic, req.partition, req.currentLeaderEpoch, hint);
          let entries;
          const lso = p.log.lastStableOffset;
          try {
            entries = p.log.read(offset, maxBytes, readCommitted ? lso : p.log.highWatermark);
          } catch (e) {
            const err = toLogError(e);
            if (err.reason === 'OFFSET_OUT_OF_RANGE' && !err.offsetRange) {
              throw new LogError(err.reason, err.message, { offsetRange: { logStartOffset: p.log.logStartOffset, logEndOffset: p.log.highWatermark } });
            }
            throw err;
          }
          if (entries.length > 0) {
            const msg = encodeSubscribeResponse(
              p.log.highWatermark,
              p.log.logStartOffset,
              entries.map((e) => ({ baseOffset: e.baseOffset, leaderEpoch: e.leaderEpoch, batch: e.batch })),
              lso,
              readCommitted ? abortedIn(p, entries) : undefined,
            );
            offset = entries[entries.length - 1]!.lastOffset + 1n;
            // Flow control, one message at a time: the write callback fires once HTTP/2 has sent the
            // message, which waits for the client's flow-control window, so a reader that stops reading
            // stops the pump with this one message held. (Waiting for 'drain' only after write()
            // returned false let grpc-js's object-mode buffer take 16 messages first: 16 x max_bytes
            // per stalled stream.) A cancelled call never calls back; `wake` ends the wait then.
            await new Promise<void>((resolve) => {
              wake = resolve;
              call.write(msg, () => resolve());
            });
            if (!cancelled) deps.metrics?.sent(req.topic, entries);
            // Over its fetch quota the stream pauses for the throttle time before reading on.
            const pauseMs = throttle('consumer_byte_rate', caller, entries.reduce((n, e) => n + e.size, 0));
            if (pauseMs > 0 && !cancelled) {
              await new Promise<void>((resolve) => {
                const cancel = deps.timers.setTimeout(resolve, pauseMs);
                wake = () => {
                  cancel();
                  resolve();
                };
              });
            }
            continue;
          }
          await new Promise<void>((resolve) => {
            const off = p.onChange(() => {
              off();
              resolve();
            });
            wake = () => {
              off();
              resolve();
            };
          });
        }
      };
      pump().catch(fail);
    },

    listOffsets(call: grpc.ServerUnaryCall<ListOffsetsRequest | Malformed, ListOffsetsResponse>, callback: grpc.sendUnaryData<ListOffsetsResponse>) {
      const req = call.request;
      if (isMalformed(req)) return callback(toServiceError(invalid(`malformed ListOffsetsRequest: ${req.malformed}`)));
      const badEntries = checkPartitionEntries(req.topics, maxPartitionsPerRequest);
      if (badEntries) return callback(toServiceError(invalid(badEntries)));
      // READ_COMMITTED: the latest offset is the last stable offset, and a timestamp finds only below it.
      const readCommitted = req.isolationLevel === IsolationLevel.ISOLATION_LEVEL_READ_COMMITTED;
      const topics = req.topics.map((t) => ({
        topic: t.topic,
        partitions: t.partitions.map((lp): ListOffsetsPartitionResponse => {
          try {
            const p = replicas.leaderPartition(t.topic, lp.partition, -1, hint);
            const log = p.log;
            switch (lp.spec) {
              case OffsetSpec.OFFSET_SPEC_EARLIEST:
                return { partition: lp.partition, error: undefined, offset: log.logStartOffset, timestampMs: -1n, leaderEpoch: log.epochForOffset(log.logStartOffset) };
              case OffsetSpec.OFFSET_SPEC_LATEST:
                return { partition: lp.partition, error: undefined, offset: readCommitted ? log.lastStableOffset : log.highWatermark, timestampMs: -1n, leaderEpoch: p.leaderEpoch };
              case OffsetSpec.OFFSET_SPEC_TIMESTAMP: {
                if (lp.timestampMs < 0n) throw invalid(`timestamp_ms must not be negative, got ${lp.timestampMs}`);
                const lso = log.lastStableOffset;
                const found = log.findOffsetByTimestamp(lp.timestampMs);
                return found && (!readCommitted || found.offset < lso)
                  ? { partition: lp.partition, error: undefined, offset: found.offset, timestampMs: found.timestampMs, leaderEpoch: found.leaderEpoch }
                  : { partition: lp.partition, error: undefined, offset: -1n, timestampMs: -1n, leaderEpoch: -1 };
              }
              default:
                throw invalid(`unknown offset spec ${lp.spec}`);
            }
          } catch (e) {
            return { partition: lp.partition, error: toPartitionError(toLogError(e, unexpected('ListOffsets'))), offset: -1n, timestampMs: -1n, leaderEpoch: -1 };
          }
        }),
      }));
      callback(null, { topics });
    },

    initProducerId(call: grpc.ServerUnaryCall<InitProducerIdRequest | Malformed, InitProducerIdResponse>, callback: grpc.sendUnaryData<InitProducerIdResponse>) {
      if (isMalformed(call.request)) return callback(toServiceError(invalid(`malformed InitProducerIdRequest: ${call.request.malformed}`)));
      const clientId = call.request.clientId;
      const badClientId = checkClientId(clientId);
      if (badClientId) return callback(toServiceError(invalid(badClientId)));
      deps.producerIds.generate().then(
        (producerId) => {
          const principal = principalString(requestAuth(call).principal);
          producerIdOwners.issued(producerId, principal);
          logger.info({ clientId, producerId: producerId.toString(), principal }, 'producer id handed out');
          callback(null, { producerId, producerEpoch: 0 });
        },
        (e) => {
          logger.warn({ err: e }, 'producer id allocation failed');
          callback(toServiceError(new LogError('UNAVAILABLE', 'cannot allocate a producer id right now', { cause: e })));
        },
      );
    },

    getMetadata(call: grpc.ServerUnaryCall<GetMetadataRequest | Malformed, GetMetadataResponse>, callback: grpc.sendUnaryData<GetMetadataResponse>) {
      if (isMalformed(call.request)) return callback(toServiceError(invalid(`malformed GetMetadataRequest: ${call.request.malformed}`)));
      const badTopics = checkTopicList(call.request.topics, maxPartitionsPerRequest);
      if (badTopics) return callback(toServiceError(invalid(badTopics)));
      try {
        const md = metadata.getMetadata(call.request.topics);
        // Only topics the caller may describe (every topic with the authorizer off).
        const auth = requestAuth(call);
        callback(null, { metadata: { ...md, topics: md.topics.filter((t) => auth.allowed({ resourceType: 'topic', resourceName: t.name, operation: 'describe' })) } });
      } catch (e) {
        callback(toServiceError(toLogError(e, unexpected('GetMetadata'))));
      }
    },

    readReplicaLog: (call: grpc.ServerUnaryCall<ReadReplicaLogRequest | Malformed, ReadReplicaLogResponse>, callback: grpc.sendUnaryData<ReadReplicaLogResponse>) =>
      readReplicaLog(deps, call, callback),
  };
}
