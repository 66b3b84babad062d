/**
 * The Skein client: admin calls go to the metadata service; produce and fetch go to partition
 * leaders, found from cluster metadata and re-routed on NOT_LEADER hints. Errors are SkeinErrors
 * with a `reason` (check it, not the class) and `retriable`.
 */
import * as grpc from '@grpc/grpc-js';
import { fromServiceError, REASONS, SkeinError, type Reason } from '@skein/common/errors.js';
import { channelCredentials, type ClientTlsConfig } from '@skein/common/tls.js';
import { buildRecordBatch, type ConsumedRecord, type RecordInput } from '@skein/common/records/record-batch.js';
import { Acks, BrokerServiceClient, CompressionCodec, type FetchRequest, type FetchResponse, IsolationLevel, OffsetSpec, type PartitionError } from '@skein/proto/skein/broker/v1/broker.js';
import {
  MetadataServiceClient, ServiceRole, type ClusterMetadata, type DescribeTopicResponse,
  type ListTopicsResponse_TopicSummary, type ServiceInstance, type Topic,
} from '@skein/proto/skein/metadata/v1/metadata.js';

export type { ClusterMetadata, DescribeTopicResponse, ListTopicsResponse_TopicSummary as TopicSummary, ServiceInstance, Topic };
export { ServiceRole };
import { Producer, type ProducerOptions, type ProducerRecord, stampRecords } from './producer.js';
import { TransactionalProducer, type TransactionalProducerOptions } from './transactional-producer.js';
import { backoffMs, shouldRetry } from './retry.js';
import { decodeFetchedBatches, DEFAULT_MAX_UNCOMPRESSED_BYTES } from './fetched-batches.js';
import { produceStub } from './produce-codec.js';
import { callUnary, type UnaryStub } from './rpc.js';
import { bearerTokenInterceptor, clientIdInterceptor, type TokenSource, tokenSource } from './token.js';
import { ClientQuotaServiceClient } from '@skein/proto/skein/metadata/v1/quota.js';
import type { ClientQuota, ClientQuotaAlteration, QuotaEntity } from '@skein/common/quota/client-quotas.js';
import { alterationToProto, quotaFromProto } from '@skein/common/quota/quota-codec.js';

export { Acks, CompressionCodec, OffsetSpec, SkeinError };
export type { ConsumedRecord, RecordInput };

export interface ClientOptions {
  /** Metadata service addresses, host:port. */
  metadata: string[];
  /**
   * TLS to every service (metadata, brokers, coordinators): the CA that signed their certificates,
   * a client certificate for mTLS, a server-name override; files re-read when they change.
   * clientTlsFromEnv() reads SKEIN_TLS_CA_FILE, SKEIN_TLS_CERT_FILE, SKEIN_TLS_KEY_FILE, SKEIN_TLS_SERVER_NAME.
   */
  tls?: ClientTlsConfig;
  /** Ready-made channel credentials instead of `tls` (plaintext when neither is given). */
  credentials?: grpc.ChannelCredentials;
  /**
   * A bearer token (JWT) sent as `authorization: Bearer <token>` on every call to every service, or
   * a function returning the current one; over TLS or plaintext (token.ts). SKEIN_TOKEN in the CLI.
   */
  token?: TokenSource;
  /** A file holding the token, re-read when it changes (ignored when `token` is given). */
  tokenFile?: string;
  /** Names this client to the brokers (`skein-client-id` call metadata) for client-id quotas (Kafka's client.id). */
  clientId?: string;
  requestTimeoutMs?: number;
  /**
   * Attempts per call while a broker answers UNKNOWN_TOPIC_OR_PARTITION (default 5, metadata
   * refreshed before each): enough for a broker to apply a topic just created, few enough that a
   * deleted topic fails the call quickly.
   */
  unknownTopicAttempts?: number;
}

/** A generated stub called with a deadline, its failure decoded into a SkeinError. */
function unary<Req, Res>(stub: UnaryStub<Req, Res>, req: Req, timeoutMs: number): Promise<Res> {
  return callUnary(stub, req, timeoutMs).catch((err: grpc.ServiceError) => {
    throw fromServiceError(err);
  });
}

/** A per-partition error from a broker answer as a SkeinError, keeping its hints (leader, offset range). */
export function partitionError(e: PartitionError, where: { topic: string; partition: number }): SkeinError {
  const known = e.reason in REASONS;
  const err = new SkeinError(known ? (e.reason as Reason) : 'INTERNAL', e.message, {
    metadata: { topic: where.topic, partition: String(where.partition) },
    leaderHint: e.leaderHint,
    offsetRangeHint: e.offsetRange,
  });
  if (!known) Object.defineProperty(err, 'reason', { value: e.reason });
  // The broker's word on retriability and code wins over this client's copy of the table.
  Object.defineProperty(err, 'retriable', { value: e.retriable });
  Object.defineProperty(err, 'code', { value: e.code });
  return err;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Which records a reader sees (Kafka's isolation.level): everything below the high watermark, or only committed transactions' records below the last stable offset. */
export type IsolationLevelName = 'read_uncommitted' | 'read_committed';

export class SkeinClient {
  private readonly metadataClients: MetadataServiceClient[];
  private readonly quotaClients: ClientQuotaServiceClient[];
  private readonly brokers = new Map<string, BrokerServiceClient>();
  private cluster: ClusterMetadata | undefined;
  private next = 0;
  readonly timeoutMs: number;
  /** How this client dials every service; consumers, producers and admins made from it use the same. */
  readonly credentials: grpc.ChannelCredentials;
  /** Options for every stub (the bearer-token interceptor); pass them with `credentials` when making stubs from this client. */
  readonly clientOptions: grpc.ClientOptions;
  /**
   * Counters for monitoring: data-path calls retried after a retriable error; retries sent straight
   * to the leader a LeaderHint named (with its address), without a metadata refresh; metadata
   * refreshes (GetClusterMetadata calls).
   */
  readonly stats = { retries: 0, leaderHintReroutes: 0, metadataRefreshes: 0, throttledMs: 0 };
  /**
   * Per broker address: until when this client must not send it another produce or fetch, because
   * the broker said so in throttle_time_ms (KIP-219: over a byte-rate quota, the answer comes at
   * once and the client waits before its next request; the broker would hold an earlier one).
   */
  private readonly throttledUntil = new Map<string, number>();
  private readonly addressOf = new WeakMap<BrokerServiceClient, string>();

  constructor(private readonly options: ClientOptions) {
    if (options.metadata.length === 0) throw new SkeinError('INVALID_REQUEST', 'at least one metadata address is required');
    this.credentials = options.credentials ?? channelCredentials(options.tls);
    const token = tokenSource(options);
    const interceptors = [...(token ? [bearerTokenInterceptor(token)] : []), ...(options.clientId ? [clientIdInterceptor(options.clientId)] : [])];
    this.clientOptions = interceptors.length > 0 ? { interceptors } : {};
    this.metadataClients = options.metadata.map((a) => new MetadataServiceClient(a, this.credentials, this.clientOptions));
    this.quotaClients = options.metadata.map((a) => new ClientQuotaServiceClient(a, this.credentials, this.clientOptions));
    this.timeoutMs = options.requestTimeoutMs ?? 10_000;
  }

  /**
   * Calls the metadata service through a generated stub (`(c) => c.listTopics.bind(c)`), trying each
   * address in turn on UNAVAILABLE.
   */
  async meta<Req, Res>(rpc: (client: MetadataServiceClient) => UnaryStub<Req, Res>, req: Req): Promise<Res> {
    let last: unknown;
    for (let i = 0; i < this.metadataClients.length; i++) {
      const client = this.metadataClients[(this.next + i) % this.metadataClients.length]!;
      try {
        return await unary(rpc(client), req, this.timeoutMs);
      } catch (err) {
        last = err;
        if ((err as SkeinError).code !== grpc.status.UNAVAILABLE) throw err;
        this.next++;
      }
    }
    throw last;
  }

  /** Calls the metadata service's ClientQuotaService, trying each address in turn on UNAVAILABLE. */
  private async quotaCall<Req, Res>(rpc: (client: ClientQuotaServiceClient) => UnaryStub<Req, Res>, req: Req): Promise<Res> {
    let last: unknown;
    for (let i = 0; i < this.quotaClients.length; i++) {
      try {
        return await unary(rpc(this.quotaClients[(this.next + i) % this.quotaClients.length]!), req, this.timeoutMs);
      } catch (err) {
        last = err;
        if ((err as SkeinError).code !== grpc.status.UNAVAILABLE) throw err;
      }
    }
    throw last;
  }

  /**
   * Sets or removes client quotas (Kafka's AlterClientQuotas): produce and fetch byte rates per user
   * and/or client id ('<default>' for the default). Returns the altered entities' quotas.
   */
  async alterClientQuotas(alterations: ClientQuotaAlteration[]): Promise<ClientQuota[]> {
    const res = await this.quotaCall((c) => c.alterClientQuotas.bind(c), { alterations: alterations.map(alterationToProto) });
    return res.quotas.map(quotaFromProto);
  }

  /** Client quotas, all or those of one user and/or client id. */
  async describeClientQuotas(filter: QuotaEntity = {}): Promise<ClientQuota[]> {
    const res = await this.quotaCall((c) => c.describeClientQuotas.bind(c), { ...filter });
    return res.quotas.map(quotaFromProto);
  }

  /** Creates a topic; 0 partitions or replication factor take the cluster defaults. */
  async createTopic(name: string, options: { partitions?: number; replicationFactor?: number; configs?: Record<string, string>; validateOnly?: boolean } = {}): Promise<Topic> {
    const res = await this.meta((c) => c.createTopic.bind(c), { name, partitions: options.partitions ?? 0, replicationFactor: options.replicationFactor ?? 0, configs: options.configs ?? {}, validateOnly: options.validateOnly ?? false });
    return res.topic!;
  }

  async listTopics(): Promise<ListTopicsResponse_TopicSummary[]> {
    return (await this.meta((c) => c.listTopics.bind(c), {})).topics;
  }

  /** Partitions (leader, epoch, replicas, ISR) and every effective config, overrides and defaults. */
  async describeTopic(name: string): Promise<DescribeTopicResponse> {
    return this.meta((c) => c.describeTopic.bind(c), { name });
  }

  /** Sets and removes config overrides of a topic. */
  async alterTopicConfigs(name: string, changes: { set?: Record<string, string>; remove?: string[]; validateOnly?: boolean }): Promise<Topic> {
    return (await this.meta((c) => c.alterTopicConfigs.bind(c), { name, set: changes.set ?? {}, remove: changes.remove ?? [], validateOnly: changes.validateOnly ?? false })).topic!;
  }

  /** Grows a topic to `totalCount` partitions (keyed records then map differently, as in Kafka). */
  async createPartitions(name: string, totalCount: number, validateOnly = false): Promise<Topic> {
    return (await this.meta((c) => c.createPartitions.bind(c), { name, totalCount, validateOnly })).topic!;
  }

  /** Deletes a topic and its data; resolves with the deleted topic's id. */
  async deleteTopic(name: string): Promise<string> {
    return (await this.meta((c) => c.deleteTopic.bind(c), { name })).topicId;
  }

  /** Brokers, controller, cluster id and every topic's partitions (also refreshes the routing cache). */
  describeCluster(): Promise<ClusterMetadata> {
    return this.refreshMetadata();
  }

  /** The live instances of a role (every role for SERVICE_ROLE_UNSPECIFIED), as registered with the metadata service. */
  async findServiceInstances(role: ServiceRole = ServiceRole.SERVICE_ROLE_UNSPECIFIED): Promise<ServiceInstance[]> {
    return (await this.meta((c) => c.findServiceInstances.bind(c), { role })).instances;
  }

  /**
   * host:port of every live group coordinator, from the metadata service (Kafka's FindCoordinator):
   * what GroupConsumer and GroupAdmin use when given no coordinator address. COORDINATOR_NOT_AVAILABLE
   * (retriable) while none is registered.
   */
  async findCoordinators(): Promise<string[]> {
    const found = await this.findServiceInstances(ServiceRole.SERVICE_ROLE_GROUP_COORDINATOR);
    const addresses = found.flatMap((i) => (i.endpoint ? [`${i.endpoint.host}:${i.endpoint.port}`] : []));
    if (addresses.length === 0) throw new SkeinError('COORDINATOR_NOT_AVAILABLE', 'no group coordinator is registered with the metadata service; is one running?');
    return addresses;
  }

  async refreshMetadata(): Promise<ClusterMetadata> {
    this.stats.metadataRefreshes++;
    const res = await this.meta((c) => c.getClusterMetadata.bind(c), { topics: [] });
    this.cluster = res.metadata!;
    return this.cluster;
  }

  async topic(name: string, refresh = false): Promise<Topic> {
    const cluster = refresh || !this.cluster ? await this.refreshMetadata() : this.cluster;
    let t = cluster.topics.find((x) => x.name === name);
    if (!t && !refresh) t = (await this.refreshMetadata()).topics.find((x) => x.name === name);
    if (!t) throw new SkeinError('UNKNOWN_TOPIC', `topic ${name} does not exist`, { metadata: { topic: name } });
    return t;
  }

  private async leader(topic: string, partition: number, refresh: boolean): Promise<BrokerServiceClient> {
    let t = await this.topic(topic, refresh);
    // Partitions added since metadata was cached: look again before calling the partition unknown.
    if (!refresh && !t.partitions.some((x) => x.partition === partition)) t = await this.topic(topic, true);
    const p = t.partitions.find((x) => x.partition === partition);
    if (!p) throw new SkeinError('UNKNOWN_PARTITION', `partition ${partition} of ${topic} does not exist`);
    const broker = this.cluster!.brokers.find((b) => b.brokerId === p.leaderId);
    if (!broker?.endpoint) throw new SkeinError('PARTITION_OFFLINE', `${topic}-${partition} has no live leader`);
    return this.brokerClient(`${broker.endpoint.host}:${broker.endpoint.port}`);
  }

  private brokerClient(address: string): BrokerServiceClient {
    let c = this.brokers.get(address);
    if (!c) {
      c = new BrokerServiceClient(address, this.credentials, {
        ...this.clientOptions,
        'grpc.max_receive_message_length': 64 << 20,
        'grpc.max_send_message_length': 64 << 20,
        // Fetch responses run to megabytes; with grpc-js's 64 KiB default window every 64 KiB waits
        // for a WINDOW_UPDATE round trip (bench/PROFILE.md: catch-up reads about 2x faster at 16 MiB).
        'grpc-node.flow_control_window': 16 << 20,
      });
      this.brokers.set(address, c);
      this.addressOf.set(c, address);
    }
    return c;
  }

  /** Waits out a throttle time a broker handed this client, before the next produce or fetch to it. */
  private async throttleWait(address: string | undefined): Promise<void> {
    const until = address === undefined ? undefined : this.throttledUntil.get(address);
    if (until === undefined) return;
    const ms = until - Date.now();
    if (ms > 0) {
      this.stats.throttledMs += ms;
      await sleep(ms);
    }
    if (this.throttledUntil.get(address!) === until) this.throttledUntil.delete(address!);
  }

  /** Notes a broker's throttle_time_ms (0: none). */
  private noteThrottle(address: string | undefined, throttleTimeMs: number | undefined): void {
    if (address === undefined || !throttleTimeMs || throttleTimeMs <= 0) return;
    const until = Date.now() + throttleTimeMs;
    if (until > (this.throttledUntil.get(address) ?? 0)) this.throttledUntil.set(address, until);
  }

  /**
   * Runs `fn` against the partition leader, re-routing (metadata refreshed) and retrying with
   * jittered backoff what retry.ts calls retriable: the error's own flag or the reason table, and
   * UNKNOWN_TOPIC_OR_PARTITION only a few times (a broker that has not applied a new topic yet).
   */
  async withLeader<T>(topic: string, partition: number, fn: (broker: BrokerServiceClient) => Promise<T>, attempts = 8): Promise<T> {
    let refresh = false;
    let hinted: string | undefined;
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn(hinted ? this.brokerClient(hinted) : await this.leader(topic, partition, refresh));
      } catch (err) {
        if (!shouldRetry(err, attempt, { maxAttempts: attempts, maxUnknownTopicAttempts: this.options.unknownTopicAttempts ?? 5 })) throw err;
        this.stats.retries++;
        // A hint with the leader's address re-routes at once, without a metadata round trip (the
        // contract's promise). Only once in a row: if that broker refuses too, refresh as usual.
        hinted = hinted === undefined ? this.followLeaderHint(topic, partition, err) : undefined;
        if (hinted !== undefined) {
          this.stats.leaderHintReroutes++;
          continue;
        }
        refresh = true;
        await sleep(backoffMs(attempt));
      }
    }
  }

  /**
   * The address a NOT_LEADER-style error's LeaderHint gives for the partition's leader, also noted
   * in the cached metadata so later calls go there; undefined when the hint names no leader or no
   * address, or is older than what the cache knows.
   */
  private followLeaderHint(topic: string, partition: number, err: unknown): string | undefined {
    const hint = (err as SkeinError | undefined)?.leaderHint;
    const ep = hint?.leaderEndpoint;
    if (!hint || !ep || hint.leaderId < 0 || ep.host === '' || ep.port <= 0) return undefined;
    const cached = this.cluster?.topics.find((t) => t.name === topic)?.partitions.find((p) => p.partition === partition);
    if (cached && hint.leaderEpoch < cached.leaderEpoch) return undefined;
    if (cached && this.cluster) {
      cached.leaderId = hint.leaderId;
      cached.leaderEpoch = hint.leaderEpoch;
      const known = this.cluster.brokers.find((b) => b.brokerId === hint.leaderId);
      if (known) known.endpoint = { host: ep.host, port: ep.port };
      else this.cluster.brokers.push({ brokerId: hint.leaderId, endpoint: { host: ep.host, port: ep.port }, rack: '' });
    }
    return `${ep.host}:${ep.port}`;
  }

  /**
   * Produces records to one partition as one batch; resolves with the base offset. A record
   * without `timestampMs` gets the time of this call (Kafka's CreateTime).
   */
  async produceBatch(topic: string, partition: number, records: ProducerRecord[], options: { acks?: Acks; compression?: CompressionCodec; producerId?: bigint; producerEpoch?: number; baseSequence?: number; isTransactional?: boolean } = {}): Promise<bigint> {
    const batch = buildRecordBatch(stampRecords(records, Date.now()), { compression: options.compression, producerId: options.producerId, producerEpoch: options.producerEpoch, baseSequence: options.baseSequence, isTransactional: options.isTransactional });
    return this.withLeader(topic, partition, async (broker) => {
      const address = this.addressOf.get(broker);
      await this.throttleWait(address);
      const res = await unary(produceStub(broker), {
        acks: options.acks ?? Acks.ACKS_ALL, timeoutMs: this.timeoutMs, topics: [{ topic, partitions: [{ partition, batch }] }],
      }, this.timeoutMs + 2000);
      this.noteThrottle(address, res.throttleTimeMs);
      const r = res.topics[0]!.partitions[0]!;
      if (r.error) throw partitionError(r.error, { topic, partition });
      return r.baseOffset;
    });
  }

  /**
   * A batching producer (see producer.ts): Kafka-compatible key partitioning, idempotent by default.
   * With `transactionalId`, a transactional producer (transactional-producer.ts): initTransactions(),
   * beginTransaction(), send(), sendOffsetsToTransaction(), commitTransaction(), abortTransaction().
   */
  producer(options: TransactionalProducerOptions): TransactionalProducer;
  producer(options?: ProducerOptions): Producer;
  producer(options: ProducerOptions | TransactionalProducerOptions = {}): Producer | TransactionalProducer {
    if ('transactionalId' in options && options.transactionalId !== undefined) return new TransactionalProducer(this, options);
    return new Producer(this, options);
  }

  /**
   * The partition's leader broker and its address per cached metadata, without a call (undefined
   * when the cache has no live leader for it): what a caller that groups partitions by leader (the
   * consumer's fetcher) asks; after NOT_LEADER it refreshes with refreshMetadata() and asks again.
   */
  cachedLeader(topic: string, partition: number): { brokerId: number; address: string } | undefined {
    const leaderId = this.cachedLeaderId(topic, partition);
    const ep = leaderId === undefined ? undefined : this.cluster?.brokers.find((b) => b.brokerId === leaderId)?.endpoint;
    return leaderId === undefined || !ep ? undefined : { brokerId: leaderId, address: `${ep.host}:${ep.port}` };
  }

  /**
   * One Fetch call to one broker, for any number of partitions (see fetcher.ts), without retries:
   * per-partition errors stay in the answer (partitionError() turns one into a SkeinError); a
   * failed call rejects with a SkeinError. `signal` cancels the call (a long-poll being dropped).
   */
  async fetchFrom(address: string, request: FetchRequest, timeoutMs: number, signal?: AbortSignal): Promise<FetchResponse> {
    const broker = this.brokerClient(address);
    await this.throttleWait(address);
    const res = await new Promise<FetchResponse>((resolve, reject) => {
      // A gRPC deadline is wall-clock time by definition, whatever clock the caller runs on.
      const call = broker.fetch(request, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, r) => (err ? reject(fromServiceError(err)) : resolve(r)));
      signal?.addEventListener('abort', () => call.cancel(), { once: true });
    });
    this.noteThrottle(address, res.throttleTimeMs);
    return res;
  }

  /** The partition's leader per cached metadata, without a call (undefined when unknown). */
  cachedLeaderId(topic: string, partition: number): number | undefined {
    return this.cluster?.topics.find((t) => t.name === topic)?.partitions.find((p) => p.partition === partition)?.leaderId;
  }

  /** A producer id for idempotent produce, from the partition's leader (which asks the metadata service for a block). */
  initProducerId(topic: string, partition: number): Promise<bigint> {
    return this.withLeader(topic, partition, async (b) => (await unary(b.initProducerId.bind(b), { clientId: 'skein-client' }, this.timeoutMs)).producerId);
  }

  /** An offset by spec; with isolationLevel 'read_committed' LATEST is the last stable offset, and a timestamp lookup finds only below it. */
  async listOffset(topic: string, partition: number, spec: OffsetSpec, timestampMs = 0n, isolationLevel?: IsolationLevelName): Promise<bigint> {
    return this.withLeader(topic, partition, async (broker) => {
      const isolation = isolationLevel === 'read_committed' ? { isolationLevel: IsolationLevel.ISOLATION_LEVEL_READ_COMMITTED } : {};
      const res = await unary(broker.listOffsets.bind(broker), { topics: [{ topic, partitions: [{ partition, spec, timestampMs }] }], ...isolation }, this.timeoutMs);
      const r = res.topics[0]!.partitions[0]!;
      if (r.error) throw partitionError(r.error, { topic, partition });
      return r.offset;
    });
  }

  /**
   * Fetches records from `offset` (long-polling up to maxWaitMs when there are none).
   *
   * Batches are checked (CRC, framing, record count) and decompressed within `maxUncompressedBytes`
   * per fetch (default 64 MiB). A bad batch ends the answer: the records of the batches before it
   * are returned, and a fetch that starts at it fails with CORRUPT_MESSAGE (MESSAGE_TOO_LARGE
   * over the decompression limit), naming the batch's offset. An offset outside the partition
   * fails with OFFSET_OUT_OF_RANGE carrying `offsetRangeHint` (log start and end offsets).
   */
  async fetch(topic: string, partition: number, offset: bigint, options: { maxWaitMs?: number; maxBytes?: number; maxUncompressedBytes?: number; isolationLevel?: IsolationLevelName } = {}): Promise<{ records: ConsumedRecord[]; highWatermark: bigint; lastStableOffset: bigint; nextOffset?: bigint }> {
    return this.withLeader(topic, partition, async (broker) => {
      const maxBytes = options.maxBytes ?? 4 << 20;
      const address = this.addressOf.get(broker);
      await this.throttleWait(address);
      const res = await unary(broker.fetch.bind(broker), {
        maxWaitMs: options.maxWaitMs ?? 0, minBytes: 1, maxBytes, topics: [{ topic, partitions: [{ partition, fetchOffset: offset, partitionMaxBytes: maxBytes, currentLeaderEpoch: -1 }] }],
        ...(options.isolationLevel === 'read_committed' ? { isolationLevel: IsolationLevel.ISOLATION_LEVEL_READ_COMMITTED } : {}),
      }, this.timeoutMs + (options.maxWaitMs ?? 0));
      this.noteThrottle(address, res.throttleTimeMs);
      const r = res.topics[0]!.partitions[0]!;
      if (r.error) throw partitionError(r.error, { topic, partition });
      // Control batches (transaction markers) are skipped; under read_committed the aborted
      // transactions' batches too. `nextOffset` moves a reader past a fetch of only skipped batches.
      const { records, error, nextOffset } = decodeFetchedBatches({ topic, partition, fetchOffset: offset }, r.batches, options.maxUncompressedBytes ?? DEFAULT_MAX_UNCOMPRESSED_BYTES, r.abortedTransactions);
      if (error && records.length === 0) throw error;
      return { records, highWatermark: r.highWatermark, lastStableOffset: r.lastStableOffset, nextOffset };
    });
  }

  close(): void {
    for (const c of this.metadataClients) c.close();
    for (const c of this.quotaClients) c.close();
    for (const c of this.brokers.values()) c.close();
    this.brokers.clear();
  }
}
