/**
 * Writes any metadata instance may make, each one store transaction guarded by the revisions it
 * read (CAS), so concurrent instances serialize through the store: broker sessions, topic
 * create/delete/alter/add-partitions, producer-id blocks. Leader and ISR decisions are not here:
 * only the controller makes those.
 */

import { randomUUID } from 'node:crypto';
import { SkeinError } from '@skein/common/errors.js';
import type { MetadataStore, TxnOp } from '@skein/common/store/types.js';
import type { Logger } from 'pino';
import { initialPartitionRecord } from '../domain/partition-state.js';
import { decideRegistrationDirectory, directoryIdProblem } from '../domain/broker-directories.js';
import { loadOf, placeReplicas, PlacementError } from '../domain/placement.js';
import { type BrokerRecord, type MetadataKeys, type TopicRecord, decodeBroker, decodeBrokerDirectory, encodePartition, encodeRecord } from '../domain/records.js';
import { topicNameProblem, validateTopicConfigs } from '../domain/topic-config.js';
import type { MetadataView } from './metadata-view.js';

const MAX_OPS_PER_TXN = 100;
/**
 * How long a registration with a replaced data directory waits for the controller to fence the
 * broker's replicas, below the broker's 5 s registration deadline; after it the broker retries.
 */
const DIRECTORY_FENCE_WAIT_MS = 3000;
export const MAX_PARTITIONS_PER_TOPIC = 10_000;
export const MAX_REPLICATION_FACTOR = 32;

export interface AdminOptions {
  defaultPartitions: number;
  defaultReplicationFactor: number;
  brokerSessionTtlMs: number;
  minBrokerSessionTtlMs: number;
  maxBrokerSessionTtlMs: number;
}

export class MetadataAdmin {
  constructor(
    private readonly store: MetadataStore,
    private readonly keys: MetadataKeys,
    private readonly view: MetadataView,
    private readonly options: AdminOptions,
    private readonly logger: Logger,
    private readonly nowMs: () => number = Date.now,
  ) {}

  /** Writes the cluster id once; every instance agrees on the first writer's id. */
  async ensureClusterId(): Promise<string> {
    await this.store.txn({
      compare: [{ key: this.keys.clusterId(), target: 'createRevision', op: '=', value: 0n }],
      success: [{ type: 'put', key: this.keys.clusterId(), value: Buffer.from(randomUUID()) }],
    });
    const kv = await this.store.get(this.keys.clusterId());
    return kv!.value.toString('utf8');
  }

  async registerBroker(req: { brokerId: number; host: string; port: number; rack: string; sessionTtlMs: number; directoryId: string }) {
    if (!Number.isInteger(req.brokerId) || req.brokerId < 0) throw invalid('broker_id must be 0 or greater', { broker_id: String(req.brokerId) });
    if (req.host.trim() === '') throw invalid('endpoint.host is required');
    if (!Number.isInteger(req.port) || req.port < 1 || req.port > 65535) throw invalid(`endpoint.port must be 1-65535, got ${req.port}`);
    if (req.rack.length > 255) throw invalid('rack is longer than 255 characters');
    const dirProblem = directoryIdProblem(req.directoryId);
    if (dirProblem) throw invalid(dirProblem, { broker_id: String(req.brokerId) });
    const ttlMs = req.sessionTtlMs === 0 ? this.options.brokerSessionTtlMs : req.sessionTtlMs;
    if (ttlMs < this.options.minBrokerSessionTtlMs || ttlMs > this.options.maxBrokerSessionTtlMs) {
      throw invalid(`session_ttl_ms must be between ${this.options.minBrokerSessionTtlMs} and ${this.options.maxBrokerSessionTtlMs}, got ${ttlMs}`);
    }
    const key = this.keys.broker(req.brokerId);
    // A live session must be refused before the directory is looked at: a restarted broker's old
    // session still holds the id, and its new directory is settled once that session is gone.
    if (await this.store.get(key)) throw brokerIdInUse(req.brokerId);
    await this.settleDirectory(req.brokerId, req.directoryId);
    const lease = await this.store.grantLease(ttlMs);
    const record: BrokerRecord = { v: 1, brokerId: req.brokerId, host: req.host, port: req.port, rack: req.rack, registeredAtMs: this.nowMs(), directoryId: req.directoryId };
    const txn = await this.store.txn({
      compare: [{ key, target: 'createRevision', op: '=', value: 0n }],
      success: [{ type: 'put', key, value: encodeRecord(record), lease: lease.leaseId }],
    });
    if (!txn.succeeded) {
      await this.store.revokeLease(lease.leaseId).catch(() => {});
      throw brokerIdInUse(req.brokerId);
    }
    await this.view.waitForRevision(txn.revision);
    this.logger.info({ brokerId: req.brokerId, host: req.host, port: req.port, rack: req.rack, directoryId: req.directoryId }, 'broker registered');
    return { sessionId: lease.leaseId, sessionTtlMs: lease.ttlMs };
  }

  /**
   * Makes `directoryId` the broker's accepted data directory before the broker becomes live (see
   * domain/broker-directories.ts): at once for a first or unchanged directory; for a replaced one,
   * marks it pending and waits (bounded) until the controller has taken the broker out of every ISR
   * and accepted it. Throws a retriable REQUEST_TIMED_OUT when the controller has not done so in
   * time (e.g. no controller is elected): the broker retries, and stays unelectable meanwhile.
   */
  private async settleDirectory(brokerId: number, directoryId: string): Promise<void> {
    const key = this.keys.brokerDirectory(brokerId);
    for (let attempt = 0; attempt < 5; attempt++) {
      const kv = await this.store.get(key);
      const recorded = kv ? decodeBrokerDirectory(kv.value) : undefined;
      const decision = decideRegistrationDirectory(recorded, { brokerId, directoryId }, this.nowMs());
      if (decision.kind === 'unchecked' || decision.kind === 'recognized') return;
      if (decision.kind === 'first' || decision.kind === 'replaced') {
        const txn = await this.store.txn({
          compare: [{ key, target: 'modRevision', op: '=', value: kv?.modRevision ?? 0n }],
          success: [{ type: 'put', key, value: encodeRecord(decision.record) }],
        });
        if (!txn.succeeded) continue; // changed under us (the controller accepted a change): decide again
        await this.view.waitForRevision(txn.revision);
        if (decision.kind === 'first') {
          this.logger.info({ brokerId, directoryId }, 'broker data directory recorded');
          return;
        }
        this.logger.warn({ brokerId, directoryId, previousDirectoryId: decision.previousDirectoryId },
          'broker registered with a new data directory (empty or replaced disk): fencing its replicas before it may register');
      }
      if (await this.waitForDirectory(brokerId, directoryId, DIRECTORY_FENCE_WAIT_MS)) return;
      throw new SkeinError('REQUEST_TIMED_OUT', `the controller has not yet removed broker ${brokerId} (new data directory) from its partitions' ISRs; retry`, {
        metadata: { broker_id: String(brokerId) },
      });
    }
    throw new SkeinError('CONCURRENT_MODIFICATION', `the data directory record of broker ${brokerId} kept changing; retry`, { metadata: { broker_id: String(brokerId) } });
  }

  /** Resolves true once the view shows `directoryId` accepted for the broker, false after timeoutMs. */
  private waitForDirectory(brokerId: number, directoryId: string, timeoutMs: number): Promise<boolean> {
    const accepted = () => {
      const d = this.view.current.directories.get(brokerId)?.record;
      return d !== undefined && d.directoryId === directoryId && d.pendingDirectoryId === undefined;
    };
    if (accepted()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const finish = (ok: boolean) => {
        clearTimeout(timer);
        sub.unsubscribe();
        resolve(ok);
      };
      const timer = setTimeout(() => finish(false), timeoutMs);
      const sub = this.view.subscribe(() => { if (accepted()) finish(true); });
    });
  }

  private async requireSession(brokerId: number, sessionId: bigint): Promise<void> {
    const kv = await this.store.get(this.keys.broker(brokerId));
    if (!kv || kv.lease !== sessionId) {
      throw new SkeinError('SESSION_EXPIRED', `broker ${brokerId} has no session ${sessionId}; register again`, { metadata: { broker_id: String(brokerId) } });
    }
  }

  async heartbeat(brokerId: number, sessionId: bigint): Promise<number> {
    await this.requireSession(brokerId, sessionId);
    const ttl = await this.store.keepAliveOnce(sessionId);
    if (ttl === undefined) throw new SkeinError('SESSION_EXPIRED', `session ${sessionId} of broker ${brokerId} has expired; register again`, { metadata: { broker_id: String(brokerId) } });
    return ttl;
  }

  async unregister(brokerId: number, sessionId: bigint): Promise<void> {
    await this.requireSession(brokerId, sessionId);
    await this.store.revokeLease(sessionId);
    this.logger.info({ brokerId }, 'broker unregistered');
  }

  private liveBrokers() {
    return [...this.view.current.brokers.values()].map((b) => ({ brokerId: b.record.brokerId, rack: b.record.rack || undefined }));
  }

  async createTopic(req: { name: string; partitions: number; replicationFactor: number; configs: Record<string, string>; validateOnly: boolean }) {
    const nameProblem = topicNameProblem(req.name);
    if (nameProblem) throw new SkeinError('INVALID_TOPIC_NAME', nameProblem, { metadata: { topic: req.name.slice(0, 300) } });
    const partitions = req.partitions === 0 ? this.options.defaultPartitions : req.partitions;
    if (!Number.isInteger(partitions) || partitions < 1 || partitions > MAX_PARTITIONS_PER_TOPIC) {
      throw new SkeinError('INVALID_PARTITIONS', `partitions must be between 1 and ${MAX_PARTITIONS_PER_TOPIC}, got ${partitions}`, { metadata: { topic: req.name } });
    }
    const rf = req.replicationFactor === 0 ? this.options.defaultReplicationFactor : req.replicationFactor;
    const brokers = this.liveBrokers();
    if (!Number.isInteger(rf) || rf < 1 || rf > MAX_REPLICATION_FACTOR) {
      throw new SkeinError('INVALID_REPLICATION_FACTOR', `replication factor must be between 1 and ${MAX_REPLICATION_FACTOR}, got ${rf}`, { metadata: { topic: req.name } });
    }
    if (rf > brokers.length) {
      throw new SkeinError('INVALID_REPLICATION_FACTOR', `replication factor ${rf} is larger than the number of live brokers (${brokers.length})`, {
        metadata: { topic: req.name, live_brokers: String(brokers.length) },
      });
    }
    const configs = this.validConfigs(req.name, req.configs, rf);
    const image = this.view.current;
    if (image.topics.has(req.name)) throw alreadyExists(req.name);
    const assignment = placeReplicas({
      partitionCount: partitions,
      replicationFactor: rf,
      brokers,
      load: loadOf([...image.topics.values()].flatMap((t) => t.record.assignment)),
      seed: image.topics.size,
    });
    const record: TopicRecord = { v: 1, name: req.name, topicId: randomUUID(), replicationFactor: rf, partitionCount: partitions, assignment, configs, createdAtMs: this.nowMs() };
    if (req.validateOnly) return record;
    const live = new Set(brokers.map((b) => b.brokerId));
    const partitionOps: TxnOp[] = assignment.map((replicas, p) => ({
      type: 'put',
      key: this.keys.partition(req.name, p),
      value: encodePartition({ ...initialPartitionRecord(record.topicId, replicas), isr: replicas.filter((id) => live.has(id)) }),
    }));
    const topicKey = this.keys.topic(req.name);
    const first = await this.store.txn({
      compare: [{ key: topicKey, target: 'createRevision', op: '=', value: 0n }],
      // A stale partition key of a deleted topic cannot exist: deletion removes the whole prefix in
      // the same transaction as the topic key.
      success: [{ type: 'put', key: topicKey, value: encodeRecord(record) }, ...partitionOps.slice(0, MAX_OPS_PER_TXN - 1)],
    });
    if (!first.succeeded) throw alreadyExists(req.name);
    let revision = first.revision;
    revision = await this.writeRemainingPartitions(req.name, record.topicId, partitionOps.slice(MAX_OPS_PER_TXN - 1), first.revision, revision);
    await this.view.waitForRevision(revision);
    this.logger.info({ topic: req.name, topicId: record.topicId, partitions, replicationFactor: rf }, 'topic created');
    return record;
  }

  /**
   * Writes partition states beyond the first transaction, each chunk guarded by the topic record
   * being unchanged. If this instance dies midway, the controller creates the missing states from
   * the topic's assignment, so a topic is never left half-created.
   */
  private async writeRemainingPartitions(topic: string, _topicId: string, ops: TxnOp[], topicModRevision: bigint, revision: bigint): Promise<bigint> {
    for (let i = 0; i < ops.length; i += MAX_OPS_PER_TXN - 1) {
      const chunk = ops.slice(i, i + MAX_OPS_PER_TXN - 1);
      const txn = await this.store.txn({
        compare: [
          { key: this.keys.topic(topic), target: 'modRevision', op: '=', value: topicModRevision },
          ...chunk.map((op) => ({ key: (op as { key: string }).key, target: 'createRevision' as const, op: '=' as const, value: 0n })),
        ],
        success: chunk,
      });
      if (!txn.succeeded) break; // deleted/altered concurrently, or the controller is filling them in
      revision = txn.revision;
    }
    await this.view.waitForRevision(revision);
    // If the controller took over part of the work, answer only once every state exists.
    const deadline = Date.now() + 10_000;
    while (this.view.current.topics.has(topic) && this.view.current.missingPartitionStates(topic).length > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    return revision;
  }

  private validConfigs(topic: string, configs: Record<string, string>, replicationFactor: number): Record<string, string> {
    const { configs: valid, problems } = validateTopicConfigs(configs, { replicationFactor });
    if (problems.length > 0) {
      const first = problems[0]!;
      const unknownOnly = problems.every((p) => p.problem === 'unknown config key');
      throw new SkeinError(unknownOnly ? 'UNKNOWN_CONFIG' : 'INVALID_CONFIG', problems.map((p) => `${p.key}: ${p.problem}`).join('; '), {
        metadata: { topic, config: first.key, configs: problems.map((p) => p.key).join(',') },
      });
    }
    return valid;
  }

  private requireTopic(name: string) {
    const topic = this.view.current.topics.get(name);
    if (!topic) throw new SkeinError('UNKNOWN_TOPIC', `topic ${name} does not exist`, { metadata: { topic: name.slice(0, 300) } });
    return topic;
  }

  async deleteTopic(name: string): Promise<string> {
    const topic = this.requireTopic(name);
    const txn = await this.store.txn({
      compare: [{ key: this.keys.topic(name), target: 'modRevision', op: '=', value: topic.modRevision }],
      success: [{ type: 'delete', key: this.keys.topic(name) }, { type: 'deletePrefix', prefix: this.keys.topicPartitionsPrefix(name) }],
    });
    if (!txn.succeeded) throw new SkeinError('CONCURRENT_MODIFICATION', `topic ${name} changed while deleting it; retry`, { metadata: { topic: name } });
    await this.view.waitForRevision(txn.revision);
    this.logger.info({ topic: name, topicId: topic.record.topicId }, 'topic deleted');
    return topic.record.topicId;
  }

  async alterConfigs(name: string, set: Record<string, string>, remove: string[], validateOnly: boolean): Promise<TopicRecord> {
    const topic = this.requireTopic(name);
    const unknownRemovals = remove.filter((k) => validateTopicConfigs({ [k]: '0' }, { replicationFactor: 1 }).problems.some((p) => p.problem === 'unknown config key'));
    if (unknownRemovals.length > 0) {
      throw new SkeinError('UNKNOWN_CONFIG', `unknown config key: ${unknownRemovals.join(', ')}`, { metadata: { topic: name, config: unknownRemovals[0]! } });
    }
    const both = remove.find((k) => k in set);
    if (both) throw new SkeinError('INVALID_CONFIG', `${both} is both set and removed`, { metadata: { topic: name, config: both } });
    const merged = { ...topic.record.configs, ...set };
    for (const k of remove) delete merged[k];
    const configs = this.validConfigs(name, merged, topic.record.replicationFactor);
    const next: TopicRecord = { ...topic.record, configs };
    if (validateOnly) return next;
    const txn = await this.store.txn({
      compare: [{ key: this.keys.topic(name), target: 'modRevision', op: '=', value: topic.modRevision }],
      success: [{ type: 'put', key: this.keys.topic(name), value: encodeRecord(next) }],
    });
    if (!txn.succeeded) throw new SkeinError('CONCURRENT_MODIFICATION', `topic ${name} changed concurrently; retry`, { metadata: { topic: name } });
    await this.view.waitForRevision(txn.revision);
    this.logger.info({ topic: name, configs }, 'topic configs altered');
    return next;
  }

  async createPartitions(name: string, totalCount: number, validateOnly: boolean): Promise<TopicRecord> {
    const topic = this.requireTopic(name);
    const current = topic.record.partitionCount;
    if (!Number.isInteger(totalCount) || totalCount <= current) {
      throw new SkeinError('INVALID_PARTITIONS', `total_count must be greater than the current ${current} partitions, got ${totalCount}`, { metadata: { topic: name } });
    }
    if (totalCount > MAX_PARTITIONS_PER_TOPIC) {
      throw new SkeinError('INVALID_PARTITIONS', `total_count must be at most ${MAX_PARTITIONS_PER_TOPIC}, got ${totalCount}`, { metadata: { topic: name } });
    }
    const brokers = this.liveBrokers();
    const rf = topic.record.replicationFactor;
    let added: number[][];
    try {
      added = placeReplicas({
        partitionCount: totalCount - current,
        replicationFactor: rf,
        brokers,
        load: loadOf([...this.view.current.topics.values()].flatMap((t) => t.record.assignment)),
      });
    } catch (err) {
      if (err instanceof PlacementError) throw new SkeinError('INVALID_REPLICATION_FACTOR', `cannot place ${rf} replicas: ${err.message}`, { metadata: { topic: name } });
      throw err;
    }
    const next: TopicRecord = { ...topic.record, partitionCount: totalCount, assignment: [...topic.record.assignment, ...added] };
    if (validateOnly) return next;
    const live = new Set(brokers.map((b) => b.brokerId));
    const ops: TxnOp[] = added.map((replicas, i) => ({
      type: 'put',
      key: this.keys.partition(name, current + i),
      value: encodePartition({ ...initialPartitionRecord(topic.record.topicId, replicas), isr: replicas.filter((id) => live.has(id)) }),
    }));
    const txn = await this.store.txn({
      compare: [{ key: this.keys.topic(name), target: 'modRevision', op: '=', value: topic.modRevision }],
      success: [{ type: 'put', key: this.keys.topic(name), value: encodeRecord(next) }, ...ops.slice(0, MAX_OPS_PER_TXN - 1)],
    });
    if (!txn.succeeded) throw new SkeinError('CONCURRENT_MODIFICATION', `topic ${name} changed concurrently; retry`, { metadata: { topic: name } });
    const revision = await this.writeRemainingPartitions(name, next.topicId, ops.slice(MAX_OPS_PER_TXN - 1), txn.revision, txn.revision);
    await this.view.waitForRevision(revision);
    this.logger.info({ topic: name, from: current, to: totalCount }, 'partitions added');
    return next;
  }

  async allocateProducerIds(brokerId: number, count: number): Promise<{ first: bigint; count: number }> {
    const n = count === 0 ? 1000 : count;
    if (!Number.isInteger(n) || n < 1 || n > 1_000_000) throw invalid(`count must be between 1 and 1000000, got ${count}`);
    const key = this.keys.nextProducerId();
    for (let attempt = 0; attempt < 20; attempt++) {
      const kv = await this.store.get(key);
      const first = kv ? BigInt(kv.value.toString('utf8')) : 0n;
      const txn = await this.store.txn({
        compare: [{ key, target: 'modRevision', op: '=', value: kv?.modRevision ?? 0n }],
        success: [{ type: 'put', key, value: Buffer.from((first + BigInt(n)).toString()) }],
      });
      if (txn.succeeded) {
        this.logger.info({ brokerId, first: first.toString(), count: n }, 'producer id block allocated');
        return { first, count: n };
      }
    }
    throw new SkeinError('CONCURRENT_MODIFICATION', 'producer id allocation kept conflicting; retry');
  }
}

function invalid(message: string, metadata: Record<string, string> = {}): SkeinError {
  return new SkeinError('INVALID_REQUEST', message, { metadata });
}

function brokerIdInUse(brokerId: number): SkeinError {
  return new SkeinError('BROKER_ID_IN_USE', `broker id ${brokerId} is held by a live session; it frees when that session ends`, { metadata: { broker_id: String(brokerId) } });
}

function alreadyExists(name: string): SkeinError {
  return new SkeinError('TOPIC_ALREADY_EXISTS', `topic ${name} already exists`, { metadata: { topic: name } });
}

export { decodeBroker };
