/**
 * The transactional producer (Kafka's KIP-98 producer API): records sent between
 * beginTransaction() and commitTransaction() become visible to read_committed consumers together,
 * on every partition, or (after abortTransaction(), a failure, or the transaction timeout) never.
 * Offsets a consumer group read can join the transaction (sendOffsetsToTransaction), which makes
 * a consume-transform-produce loop exactly once (see exactly-once.ts).
 *
 * The batching, partitioning and idempotent sequencing are the Producer's (producer.ts); this
 * class steers it through TransactionHooks and talks to the transaction coordinator
 * (skein.txn.v1, served by every group coordinator instance):
 *   initTransactions()   InitProducerId: producer id + epoch; fences any earlier instance with the
 *                        same transactional id (its open transaction is aborted)
 *   send()               before a partition's first batch in a transaction, AddPartitionsToTxn
 *                        (coalesced: partitions waiting at once go in one call); batches carry the
 *                        producer id, epoch and is_transactional
 *   sendOffsetsToTransaction()  TxnOffsetCommit with the group member's id and epoch
 *   commitTransaction()  flush, then EndTxn(COMMIT); the answer's epoch is the next transaction's
 *   abortTransaction()   drop unsent batches, wait for those in flight, EndTxn(ABORT)
 *
 * Errors: PRODUCER_FENCED (a newer instance took the transactional id over, or an operator aborted
 * the transaction) is fatal: close this producer. A failed batch, a group fence
 * (STALE_MEMBER_EPOCH, UNKNOWN_MEMBER) or TRANSACTION_TIMED_OUT makes the transaction abortable
 * only: call abortTransaction() (which also recovers the producer after a timeout), then start
 * again. Retriable coordinator answers (CONCURRENT_TRANSACTIONS, an instance going away) are
 * retried here with backoff, on the next instance when one fails.
 */
import * as grpc from '@grpc/grpc-js';
import { backoffDelayMs } from '@skein/common/backoff.js';
import { fromServiceError, SkeinError } from '@skein/common/errors.js';
import { sleep } from '@skein/common/timers.js';
import { TransactionCoordinatorServiceClient, TransactionResult } from '@skein/proto/skein/txn/v1/txn.js';
import type { SkeinClient } from './client.js';
import { CoordinatorPool } from './coordinators.js';
import { Producer, type ProducerOptions, type ProducerRecord, type RecordMetadata } from './producer.js';
import { isRetriableError } from './retry.js';
import { callUnary, type UnaryStub } from './rpc.js';

export interface TransactionalProducerOptions extends Omit<ProducerOptions, 'idempotent'> {
  /** The application's stable name for this producer (Kafka: transactional.id): 1-255 of [a-zA-Z0-9._-]. */
  transactionalId: string;
  /** A transaction open longer than this is aborted by the coordinator (Kafka: transaction.timeout.ms). Default 60,000. */
  transactionTimeoutMs?: number;
  /** Coordinator addresses; left out, found from the metadata service (any group coordinator instance serves transactions). */
  coordinator?: string[];
  /** How long one coordinator call may keep retrying retriable answers. Default 30,000 ms. */
  coordinatorRetryMs?: number;
}

/** Who consumed the offsets being committed (GroupConsumer.groupMetadata()); a bare group id stands for a group without members. */
export interface ConsumerGroupMetadata {
  groupId: string;
  memberId: string;
  memberEpoch: number;
}

export type TransactionalProducerState = 'UNINITIALIZED' | 'READY' | 'IN_TRANSACTION' | 'COMMITTING' | 'ABORTING' | 'ABORTABLE_ERROR' | 'FATAL_ERROR';

// From the coordinator only: a broker's PRODUCER_FENCED for a batch may mean the transaction timed
// out (the coordinator bumped the epoch), which abortTransaction() tells apart by asking it.
const FATAL = new Set(['PRODUCER_FENCED', 'INVALID_PRODUCER_EPOCH', 'UNKNOWN_TRANSACTIONAL_ID']);
const COORDINATOR_BACKOFF = { initialMs: 20, maxMs: 500 };

export class TransactionalProducer {
  private readonly inner: Producer;
  private readonly pool: CoordinatorPool<TransactionCoordinatorServiceClient>;
  private producerId = -1n;
  private producerEpoch = -1;
  private txnState: TransactionalProducerState = 'UNINITIALIZED';
  private lastError: unknown;
  /** Partitions added to the open transaction, as "topic\0partition". */
  private readonly added = new Set<string>();
  private readonly adding = new Map<string, Promise<void>>();
  private readonly toAdd = new Map<string, { topic: string; partition: number }>();
  private addRound: Promise<void> | undefined;
  private offsetsAdded = false;
  private readonly retryMs: number;

  constructor(
    client: SkeinClient,
    private readonly options: TransactionalProducerOptions,
  ) {
    if (typeof options.transactionalId !== 'string' || options.transactionalId === '') throw new SkeinError('INVALID_REQUEST', 'transactionalId is required');
    this.retryMs = options.coordinatorRetryMs ?? 30_000;
    this.pool = new CoordinatorPool<TransactionCoordinatorServiceClient>(
      options.coordinator?.length ? options.coordinator : () => client.findCoordinators(),
      client.credentials,
      (address, credentials, clientOptions) => new TransactionCoordinatorServiceClient(address, credentials, clientOptions),
      client.clientOptions,
    );
    this.inner = new Producer(
      client,
      { ...options, idempotent: true },
      {
        identity: () => ({ producerId: this.producerId, producerEpoch: this.producerEpoch }),
        beforeSend: (topic, partition) => this.ensureAdded(topic, partition),
        failed: (err) => this.batchFailed(err),
      },
    );
  }

  get transactionalId(): string {
    return this.options.transactionalId;
  }

  /** The producer id and epoch in use (-1 before initTransactions()). */
  get identity(): { producerId: bigint; producerEpoch: number } {
    return { producerId: this.producerId, producerEpoch: this.producerEpoch };
  }

  get state(): TransactionalProducerState {
    return this.txnState;
  }

  /** One coordinator call, retrying retriable answers with backoff and moving on from a failing instance. */
  private async call<Req, Res>(rpc: (c: TransactionCoordinatorServiceClient) => UnaryStub<Req, Res>, req: Req): Promise<Res> {
    const deadline = Date.now() + this.retryMs;
    for (let attempt = 0; ; attempt++) {
      try {
        const c = await this.pool.current();
        try {
          return await callUnary(rpc(c), req, Math.max(1000, Math.min(15_000, deadline - Date.now())));
        } catch (err) {
          const e = err as grpc.ServiceError;
          if (e.code === grpc.status.UNAVAILABLE || e.code === grpc.status.DEADLINE_EXCEEDED) this.pool.failed();
          throw fromServiceError(e);
        }
      } catch (err) {
        if (!isRetriableError(err) || Date.now() >= deadline) throw err;
        await sleep(Math.min(backoffDelayMs(COORDINATOR_BACKOFF, attempt), Math.max(0, deadline - Date.now())));
      }
    }
  }

  private fail(err: unknown): void {
    if (this.txnState === 'FATAL_ERROR') return;
    this.lastError = err;
    this.txnState = FATAL.has((err as SkeinError).reason) ? 'FATAL_ERROR' : 'ABORTABLE_ERROR';
  }

  private batchFailed(err: unknown): void {
    if (this.txnState === 'FATAL_ERROR' || this.lastError) return;
    this.lastError = err;
    if (this.txnState === 'IN_TRANSACTION') this.txnState = 'ABORTABLE_ERROR';
  }

  private requireState(wanted: TransactionalProducerState, what: string): void {
    if (this.txnState === wanted) return;
    const why = this.lastError ? `: ${(this.lastError as Error).message}` : '';
    throw new SkeinError('INVALID_TXN_STATE', `cannot ${what} in state ${this.txnState}${why}`, { cause: this.lastError });
  }

  /**
   * Gets the producer id and epoch, fencing earlier instances of this transactional id (their open
   * transaction is aborted, a decided one finished first). Call once before the first transaction.
   */
  async initTransactions(): Promise<void> {
    if (this.txnState !== 'UNINITIALIZED') throw new SkeinError('INVALID_TXN_STATE', `initTransactions() was already called (state ${this.txnState})`);
    const res = await this.call((c) => c.initProducerId.bind(c), {
      transactionalId: this.options.transactionalId,
      transactionTimeoutMs: this.options.transactionTimeoutMs ?? 0,
      producerId: -1n,
      producerEpoch: -1,
    });
    this.producerId = res.producerId;
    this.producerEpoch = res.producerEpoch;
    this.txnState = 'READY';
  }

  /** Starts a transaction (locally; the coordinator learns of it with its first partition or offsets). */
  beginTransaction(): void {
    this.requireState('READY', 'begin a transaction');
    this.added.clear();
    this.offsetsAdded = false;
    this.lastError = undefined;
    this.txnState = 'IN_TRANSACTION';
  }

  /** Sends records in the open transaction; resolves with each record's partition and offset once written (not yet committed). */
  async send(topic: string, records: ProducerRecord[]): Promise<RecordMetadata[]> {
    this.requireState('IN_TRANSACTION', 'send');
    return this.inner.send(topic, records);
  }

  async sendRecord(topic: string, record: ProducerRecord): Promise<RecordMetadata> {
    return (await this.send(topic, [record]))[0]!;
  }

  private ensureAdded(topic: string, partition: number): Promise<void> {
    const k = `${topic}\u0000${partition}`;
    if (this.added.has(k)) return Promise.resolve();
    if (this.txnState !== 'IN_TRANSACTION' && this.txnState !== 'COMMITTING') {
      return Promise.reject(new SkeinError('INVALID_TXN_STATE', `no open transaction to add ${topic}-${partition} to (state ${this.txnState})`));
    }
    const running = this.adding.get(k);
    if (running) return running;
    this.toAdd.set(k, { topic, partition });
    // Partitions whose first batch is ready in the same turn of the event loop share one call.
    this.addRound ??= new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
      this.addRound = undefined;
      const batch = [...this.toAdd.entries()];
      this.toAdd.clear();
      try {
        const byTopic = new Map<string, number[]>();
        for (const [, p] of batch) byTopic.set(p.topic, [...(byTopic.get(p.topic) ?? []), p.partition]);
        await this.call((c) => c.addPartitionsToTxn.bind(c), {
          transactionalId: this.options.transactionalId,
          producerId: this.producerId,
          producerEpoch: this.producerEpoch,
          partitions: [...byTopic.entries()].map(([t, partitions]) => ({ topic: t, partitions })),
        });
        for (const [key] of batch) this.added.add(key);
      } finally {
        for (const [key] of batch) this.adding.delete(key);
      }
    });
    const round = this.addRound;
    this.adding.set(k, round);
    return round;
  }

  /**
   * Adds a consumer group's offsets (the next offset to read per partition) to the transaction:
   * committed to the group if and only if the transaction commits. Pass the consumer's
   * groupMetadata() (member id and epoch: the commit is fenced if the member loses the partition
   * before the transaction commits), or a group id for a group without members.
   */
  async sendOffsetsToTransaction(
    offsets: ReadonlyArray<{ topic: string; partition: number; offset: bigint; metadata?: string }>,
    group: string | ConsumerGroupMetadata,
  ): Promise<void> {
    this.requireState('IN_TRANSACTION', 'send offsets');
    if (offsets.length === 0) return;
    const g = typeof group === 'string' ? { groupId: group, memberId: '', memberEpoch: -1 } : group;
    try {
      await this.call((c) => c.txnOffsetCommit.bind(c), {
        transactionalId: this.options.transactionalId,
        producerId: this.producerId,
        producerEpoch: this.producerEpoch,
        groupId: g.groupId,
        memberId: g.memberId,
        memberEpoch: g.memberEpoch,
        offsets: offsets.map((o) => ({ topic: o.topic, partition: o.partition, offset: o.offset, metadata: o.metadata ?? '' })),
      });
      this.offsetsAdded = true;
    } catch (err) {
      this.fail(err);
      throw err;
    }
  }

  /**
   * Sends what is pending, then commits. Rejects (and the transaction can only be aborted) when a
   * batch failed, the group fenced the offsets, or the transaction timed out; PRODUCER_FENCED is fatal.
   */
  async commitTransaction(): Promise<void> {
    this.requireState('IN_TRANSACTION', 'commit');
    this.txnState = 'COMMITTING';
    await this.inner.flush();
    if (this.lastError) {
      // A batch failed: committing would lose its records from an otherwise committed transaction.
      this.txnState = 'ABORTABLE_ERROR';
      throw new SkeinError(
        (this.lastError as SkeinError).reason ?? 'INTERNAL',
        `the transaction cannot commit: a batch failed: ${(this.lastError as Error).message}`,
        { cause: this.lastError },
      );
    }
    if (this.added.size === 0 && !this.offsetsAdded) {
      this.txnState = 'READY';
      return;
    }
    try {
      const res = await this.call((c) => c.endTxn.bind(c), {
        transactionalId: this.options.transactionalId,
        producerId: this.producerId,
        producerEpoch: this.producerEpoch,
        result: TransactionResult.TRANSACTION_RESULT_COMMIT,
      });
      this.producerEpoch = res.producerEpoch;
      this.producerId = res.producerId;
      this.txnState = 'READY';
    } catch (err) {
      this.txnState = 'IN_TRANSACTION';
      this.fail(err);
      throw err;
    }
  }

  /**
   * Aborts the open transaction: unsent records are dropped (their send() rejects), records in flight
   * are waited for, then the coordinator writes abort markers. After TRANSACTION_TIMED_OUT (the
   * coordinator already aborted it) this recovers the producer with its current epoch instead.
   */
  async abortTransaction(): Promise<void> {
    if (this.txnState !== 'IN_TRANSACTION' && this.txnState !== 'ABORTABLE_ERROR') this.requireState('IN_TRANSACTION', 'abort');
    const error = this.lastError;
    this.txnState = 'ABORTING';
    await this.inner.discard(new SkeinError('INVALID_TXN_STATE', 'the transaction was aborted before this record was sent'));
    await this.inner.flush();
    try {
      if ((error as SkeinError | undefined)?.reason === 'TRANSACTION_TIMED_OUT') {
        await this.recoverAfterTimeout();
      } else if (this.added.size > 0 || this.offsetsAdded || this.adding.size > 0) {
        try {
          const res = await this.call((c) => c.endTxn.bind(c), {
            transactionalId: this.options.transactionalId,
            producerId: this.producerId,
            producerEpoch: this.producerEpoch,
            result: TransactionResult.TRANSACTION_RESULT_ABORT,
          });
          this.producerEpoch = res.producerEpoch;
          this.producerId = res.producerId;
        } catch (err) {
          if ((err as SkeinError).reason === 'TRANSACTION_TIMED_OUT') await this.recoverAfterTimeout();
          else if ((err as SkeinError).reason === 'INVALID_TXN_STATE') {
            // Nothing open at the coordinator (only a failed add): nothing to abort there.
          } else throw err;
        }
      }
      this.lastError = undefined;
      this.added.clear();
      this.offsetsAdded = false;
      this.txnState = 'READY';
    } catch (err) {
      this.lastError = err;
      this.txnState = 'FATAL_ERROR';
      throw err;
    }
  }

  /** KIP-360: the coordinator aborted our transaction on timeout (bumping the epoch); go on with ours. */
  private async recoverAfterTimeout(): Promise<void> {
    const res = await this.call((c) => c.initProducerId.bind(c), {
      transactionalId: this.options.transactionalId,
      transactionTimeoutMs: this.options.transactionTimeoutMs ?? 0,
      producerId: this.producerId,
      producerEpoch: this.producerEpoch,
    });
    this.producerId = res.producerId;
    this.producerEpoch = res.producerEpoch;
  }

  /** Aborts an open transaction (best effort), then releases the coordinator connections. */
  async close(): Promise<void> {
    if (this.txnState === 'IN_TRANSACTION' || this.txnState === 'ABORTABLE_ERROR') await this.abortTransaction().catch(() => {});
    this.txnState = 'FATAL_ERROR';
    this.lastError = new SkeinError('INVALID_REQUEST', 'the producer is closed');
    await this.inner.close().catch(() => {});
    this.pool.close();
  }
}
