/**
 * The transaction coordinator's calls to partition leaders (skein.broker.v1.BrokerTxnService):
 * BeginTxn when partitions join a transaction, WriteTxnMarkers after the decision. Partitions are
 * grouped by their leader, one call per leader; partitions that fail retriably (leader moved,
 * not enough replicas, a broker down) are retried on fresh metadata with jittered backoff until
 * they succeed or the deadline passes.
 *
 * Markers are idempotent on the broker, so "retried until done" is safe from any number of
 * coordinator instances at once; a deadline only ends this attempt (the recovery sweep, or the
 * next request for the transactional id, tries again). A topic deleted meanwhile needs no marker.
 */
import * as grpc from '@grpc/grpc-js';
import { backoffDelayMs } from '@skein/common/backoff.js';
import { fromServiceError, REASONS, type Reason, SkeinError } from '@skein/common/errors.js';
import { sleep } from '@skein/common/timers.js';
import { BrokerTxnServiceClient, type TxnTopicResult } from '@skein/proto/skein/broker/v1/broker.js';
import type { Logger } from 'pino';
import { type TopicPartition, topicOf } from '../domain/assignors.js';

export interface TxnIdentity {
  producerId: bigint;
  producerEpoch: number;
  coordinatorEpoch: number;
}

/** What the coordinator needs of the brokers; a fake in unit tests. */
export interface TxnBrokerGateway {
  /** Opens the transaction on every partition; throws the first non-retriable per-partition error, or the last retriable one at the deadline. */
  beginTxn(partitions: readonly TopicPartition[], txn: TxnIdentity, deadlineMs: number): Promise<void>;
  /** Writes the markers; true once every partition has its marker, false at the deadline. */
  writeMarkers(partitions: readonly TopicPartition[], txn: TxnIdentity & { commit: boolean }, deadlineMs: number): Promise<boolean>;
}

export interface LeaderLookup {
  /** host:port of the partition's leader; undefined while it has none; throws UNKNOWN_TOPIC when the topic is gone. */
  leaderAddress(topic: string, partition: number, refresh: boolean): Promise<string | undefined>;
}

const BACKOFF = { initialMs: 50, maxMs: 1000 };
/** Reasons after which a marker's partition needs nothing more: the partition (or its topic) is gone. */
const GONE = new Set(['UNKNOWN_TOPIC', 'UNKNOWN_PARTITION']);

const partitionOf = (p: TopicPartition) => Number(p.slice(p.lastIndexOf(':') + 1));

function byTopic(partitions: readonly TopicPartition[]): Array<{ topic: string; partitions: number[] }> {
  const m = new Map<string, number[]>();
  for (const p of partitions) {
    const t = topicOf(p);
    if (!m.has(t)) m.set(t, []);
    m.get(t)!.push(partitionOf(p));
  }
  return [...m.entries()].map(([topic, ps]) => ({ topic, partitions: ps }));
}

export class GrpcTxnBrokerGateway implements TxnBrokerGateway {
  private readonly clients = new Map<string, BrokerTxnServiceClient>();

  constructor(private readonly leaders: LeaderLookup, private readonly logger: Logger, private readonly credentials = grpc.credentials.createInsecure()) {}

  private client(address: string): BrokerTxnServiceClient {
    let c = this.clients.get(address);
    if (!c) this.clients.set(address, (c = new BrokerTxnServiceClient(address, this.credentials)));
    return c;
  }

  async beginTxn(partitions: readonly TopicPartition[], txn: TxnIdentity, deadlineMs: number): Promise<void> {
    const failed = await this.untilDone(partitions, deadlineMs, 'begin', (client, topics, timeoutMs) => new Promise((resolve, reject) => {
      client.beginTxn({ producerId: txn.producerId, producerEpoch: txn.producerEpoch, coordinatorEpoch: BigInt(txn.coordinatorEpoch), topics, timeoutMs }, new grpc.Metadata(), { deadline: Date.now() + timeoutMs + 2000 },
        (err, res) => (err ? reject(fromServiceError(err)) : resolve(res.topics)));
    }), false);
    if (failed) throw failed;
  }

  async writeMarkers(partitions: readonly TopicPartition[], txn: TxnIdentity & { commit: boolean }, deadlineMs: number): Promise<boolean> {
    const failed = await this.untilDone(partitions, deadlineMs, txn.commit ? 'commit' : 'abort', (client, topics, timeoutMs) => new Promise((resolve, reject) => {
      client.writeTxnMarkers({ markers: [{ producerId: txn.producerId, producerEpoch: txn.producerEpoch, commit: txn.commit, coordinatorEpoch: BigInt(txn.coordinatorEpoch), topics }], timeoutMs }, new grpc.Metadata(), { deadline: Date.now() + timeoutMs + 2000 },
        (err, res) => (err ? reject(fromServiceError(err)) : resolve(res.markers[0]?.topics ?? [])));
    }), true);
    if (failed) this.logger.warn({ producerId: txn.producerId.toString(), coordinatorEpoch: txn.coordinatorEpoch, reason: failed.reason, err: failed.message }, 'transaction markers not all written yet; will retry');
    return failed === undefined;
  }

  /**
   * Calls `send` per leader for the partitions not done yet, until none is left or the deadline.
   * Returns undefined when all are done, else the error to report. `persist`: keep retrying
   * non-retriable per-partition errors too (markers must land eventually: an operator may have to
   * fix the broker meanwhile); otherwise they end the attempt at once.
   */
  private async untilDone(
    partitions: readonly TopicPartition[],
    deadlineMs: number,
    what: string,
    send: (client: BrokerTxnServiceClient, topics: Array<{ topic: string; partitions: number[] }>, timeoutMs: number) => Promise<TxnTopicResult[]>,
    persist: boolean,
  ): Promise<SkeinError | undefined> {
    let left = [...new Set(partitions)];
    let last: SkeinError | undefined;
    for (let attempt = 0; left.length > 0; attempt++) {
      if (attempt > 0) {
        const remaining = deadlineMs - Date.now();
        if (remaining <= 0) return last ?? new SkeinError('REQUEST_TIMED_OUT', `${what} not done on ${left.length} partitions before the deadline`);
        await sleep(Math.min(remaining, backoffDelayMs(BACKOFF, attempt - 1)));
      }
      const byLeader = new Map<string, TopicPartition[]>();
      const next: TopicPartition[] = [];
      for (const p of left) {
        let address: string | undefined;
        try {
          address = await this.leaders.leaderAddress(topicOf(p), partitionOf(p), attempt > 0);
        } catch (err) {
          const e = err as SkeinError;
          if (GONE.has(e.reason)) continue; // nothing to open or end on a partition that no longer exists
          last = e;
          next.push(p);
          continue;
        }
        if (!address) {
          last = new SkeinError('PARTITION_OFFLINE', `${p} has no live leader`);
          next.push(p);
          continue;
        }
        if (!byLeader.has(address)) byLeader.set(address, []);
        byLeader.get(address)!.push(p);
      }
      const timeoutMs = Math.max(1000, Math.min(30_000, deadlineMs - Date.now()));
      await Promise.all([...byLeader.entries()].map(async ([address, ps]) => {
        try {
          const results = await send(this.client(address), byTopic(ps), timeoutMs);
          for (const t of results) {
            for (const r of t.partitions) {
              if (!r.error) continue;
              const e = new SkeinError(r.error.reason in REASONS ? (r.error.reason as Reason) : 'INTERNAL', r.error.message, { metadata: { topic: t.topic, partition: String(r.partition) } });
              if (GONE.has(r.error.reason)) continue;
              if (!r.error.retriable && !persist) throw e;
              last = e;
              next.push(`${t.topic}:${r.partition}`);
            }
          }
        } catch (err) {
          const e = err as SkeinError;
          if (!persist && e.reason !== undefined && !e.retriable) throw e;
          last = e;
          next.push(...ps);
        }
      }));
      left = next;
    }
    return undefined;
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
