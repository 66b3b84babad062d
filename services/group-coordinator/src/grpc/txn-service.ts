/**
 * The transaction coordinator (skein.txn.v1.TransactionCoordinatorService): the I/O shell around
 * the pure state machine in domain/transaction.ts. Each request reads the transactional id's key,
 * runs the decision, writes the next state with a compare-and-set on the revision it read
 * (deciding again on a lost race), and only then acts (BeginTxn on the leaders, markers) and
 * answers. Stateless: any instance serves any transactional id, and any instance finishes a
 * transaction another one decided (`sweepTransactions`, run by every instance).
 *
 * Order of effects, and what a crash at each point leaves (every case ends in the recorded
 * direction, because a PrepareX state is only ever left for CompleteX of the same direction):
 *   AddPartitionsToTxn: record partitions (CAS) → BeginTxn on leaders → answer.
 *     Crash after the CAS: the partitions are in the transaction; it times out or the producer
 *     ends it, and markers go to every recorded partition, begun or not (BrokerTxnService rule 3).
 *   EndTxn: decision + group offsets (ONE CAS) → failpoint txn.afterDecision → markers on every
 *     partition → failpoint txn.afterMarkers → CompleteX (CAS) → answer.
 *     Crash after the decision: the offsets are committed with it; any instance's sweep (or the
 *     next request for the id) writes the markers (idempotent) and completes.
 */
import { failpoint } from '@skein/common/failpoints.js';
import { SkeinError } from '@skein/common/errors.js';
import { unary } from '@skein/common/grpc-server.js';
import type { MetadataStore } from '@skein/common/store/types.js';
import {
  TransactionCoordinatorServiceService,
  type TransactionCoordinatorServiceServer,
  TransactionResult,
  TransactionState,
  type TopicPartitions,
} from '@skein/proto/skein/txn/v1/txn.js';
import type { Logger } from 'pino';
import { type TopicPartition, topicOf, tp } from '../domain/assignors.js';
import { emptyGroup, trackEmptiness } from '../domain/group.js';
import { groupIdProblem } from '../domain/request-limits.js';
import {
  abortTimedOut,
  addOffsets,
  addPartitions,
  adminAbort,
  completeTxn,
  endTxn,
  groupOffsetsProblem,
  initProducerId,
  isPrepare,
  type TransactionMetadata,
  type TxnProblem,
  type TxnState,
  transactionalIdProblem,
} from '../domain/transaction.js';
import type { TxnBrokerGateway } from '../runtime/txn-brokers.js';
import { GroupStore } from '../store/group-store.js';
import { type DecisionGroupWrite, MetadataStoreTransactionLog, type TransactionLog } from '../store/txn-store.js';

export { TransactionCoordinatorServiceService };
export const TXN_SERVICE_NAME = 'skein.txn.v1.TransactionCoordinatorService';

export interface TxnCoordinatorDeps {
  store: MetadataStore;
  prefix: string;
  logger: Logger;
  brokers: TxnBrokerGateway;
  /** A producer id never handed out before (from the metadata service's blocks). */
  newProducerId: () => Promise<bigint>;
  /** Topic name → partition count, from the metadata service. */
  /** Partition counts by topic, cached briefly; `fresh` asks past the cache (a topic just created). */
  topics: (fresh?: boolean) => Promise<Map<string, number>>;
  /** How long a request waits for markers (and a BeginTxn) before answering without them. */
  completionWaitMs: number;
  /** The sweep leaves a decided transaction this long to the instance that decided it before finishing it itself. */
  completionGraceMs: number;
  offsetMetadataMaxBytes?: number;
  nowMs?: () => number;
  /** Optional log backend (default: the metadata store). */
  log?: TransactionLog;
}

const MAX_CAS_ATTEMPTS = 10;

const STATE_TO_WIRE: Record<TxnState, TransactionState> = {
  Empty: TransactionState.TRANSACTION_STATE_EMPTY,
  Ongoing: TransactionState.TRANSACTION_STATE_ONGOING,
  PrepareCommit: TransactionState.TRANSACTION_STATE_PREPARE_COMMIT,
  PrepareAbort: TransactionState.TRANSACTION_STATE_PREPARE_ABORT,
  CompleteCommit: TransactionState.TRANSACTION_STATE_COMPLETE_COMMIT,
  CompleteAbort: TransactionState.TRANSACTION_STATE_COMPLETE_ABORT,
};

function fail(problem: TxnProblem | { reason: SkeinError['reason']; message: string }, id: string): never {
  throw new SkeinError(problem.reason, problem.message, { metadata: { transactional_id: id } });
}

function toTps(list: readonly TopicPartitions[]): TopicPartition[] {
  return list.flatMap((t) => t.partitions.map((p) => tp(t.topic, p)));
}

function fromTps(list: readonly TopicPartition[]): TopicPartitions[] {
  const byTopic = new Map<string, number[]>();
  for (const p of list) {
    const topic = topicOf(p);
    if (!byTopic.has(topic)) byTopic.set(topic, []);
    byTopic.get(topic)!.push(Number(p.slice(topic.length + 1)));
  }
  return [...byTopic.entries()].map(([topic, partitions]) => ({ topic, partitions: partitions.sort((a, b) => a - b) }));
}

/**
 * The coordinator's operations, shared by the gRPC handlers and the background sweep. One per
 * process: `completing` makes concurrent completions of one transactional id on this instance
 * share one run of the markers.
 */
export class TransactionCoordinator {
  readonly log: TransactionLog;
  private readonly groups: GroupStore;
  private readonly completing = new Map<string, Promise<boolean>>();
  private readonly now: () => number;

  constructor(private readonly deps: TxnCoordinatorDeps) {
    this.groups = new GroupStore(deps.store, deps.prefix);
    this.log = deps.log ?? new MetadataStoreTransactionLog(deps.store, deps.prefix, this.groups);
    this.now = deps.nowMs ?? Date.now;
  }

  private deadline(): number {
    return this.now() + this.deps.completionWaitMs;
  }

  /**
   * Writes the markers of a decided transaction and moves it to CompleteX; true when done, false
   * when the markers did not all land before the deadline (the decision stands; retried later).
   */
  complete(id: string, t: TransactionMetadata, deadlineMs = this.deadline()): Promise<boolean> {
    const running = this.completing.get(id);
    if (running) return running;
    const run = (async () => {
      const done = await this.deps.brokers.writeMarkers(
        t.partitions,
        { producerId: t.producerId, producerEpoch: t.producerEpoch, coordinatorEpoch: t.coordinatorEpoch, commit: t.state === 'PrepareCommit' },
        deadlineMs,
      );
      if (!done) return false;
      failpoint('txn.afterMarkers');
      for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
        const loaded = await this.log.load(id);
        const cur = loaded.txn;
        // Someone else completed it (or already moved on): nothing left to do.
        if (!cur || cur.state !== t.state || cur.coordinatorEpoch !== t.coordinatorEpoch || cur.producerEpoch !== t.producerEpoch) return true;
        const next = completeTxn(cur, this.now())!;
        if ((await this.log.save(id, loaded.revision, next)) !== undefined) {
          this.deps.logger.info(
            { transactionalId: id, state: next.state, coordinatorEpoch: t.coordinatorEpoch, partitions: t.partitions.length },
            'transaction completed',
          );
          return true;
        }
      }
      return false;
    })().finally(() => this.completing.delete(id));
    this.completing.set(id, run);
    return run;
  }

  /** Persists a decision made outside EndTxn (a fence, a timeout, an operator's abort), then completes it. */
  private async decideAndComplete(id: string, revision: bigint, next: TransactionMetadata, deadlineMs: number): Promise<boolean | undefined> {
    if ((await this.log.save(id, revision, next)) === undefined) return undefined;
    this.deps.logger.info({ transactionalId: id, state: next.state, endedBy: next.endedBy, coordinatorEpoch: next.coordinatorEpoch }, 'transaction decided');
    failpoint('txn.afterDecision');
    return this.complete(id, next, deadlineMs);
  }

  private async checkPartitions(partitions: ReadonlyArray<{ topic: string; partition: number }>): Promise<void> {
    let counts = await this.deps.topics();
    // A topic created a moment ago may not be in the cached metadata yet: look again before refusing.
    const known = (c: Map<string, number>) => partitions.every((p) => (c.get(p.topic) ?? 0) > p.partition);
    if (!known(counts)) counts = await this.deps.topics(true);
    for (const p of partitions) {
      if (!Number.isInteger(p.partition) || p.partition < 0) {
        throw new SkeinError('UNKNOWN_PARTITION', `partition ${p.partition} of ${p.topic} does not exist`, {
          metadata: { topic: p.topic, partition: String(p.partition) },
        });
      }
      // Retriable, as Kafka answers it: even the refreshed metadata can trail a topic (or partitions)
      // created a moment ago, and a transactional producer failed its task on that (connect-postgres).
      const n = counts.get(p.topic);
      if (n === undefined || p.partition >= n) {
        throw new SkeinError('UNKNOWN_TOPIC_OR_PARTITION', `${p.topic}-${p.partition} is not known to the coordinator (not created yet, or deleted)`, {
          metadata: { topic: p.topic, partition: String(p.partition) },
        });
      }
    }
  }

  async initProducerId(
    id: string,
    req: { timeoutMs: number; producerId: bigint; producerEpoch: number },
  ): Promise<{ producerId: bigint; producerEpoch: number }> {
    const bad = transactionalIdProblem(id);
    if (bad) fail(bad, id);
    const deadlineMs = this.deadline();
    let fresh: bigint | undefined;
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const loaded = await this.log.load(id);
      const out = initProducerId(loaded.txn, id, req, { nowMs: this.now(), freshProducerId: fresh });
      switch (out.kind) {
        case 'needsProducerId':
          fresh = await this.deps.newProducerId();
          attempt--;
          continue;
        case 'problem':
          return fail(out.problem, id);
        case 'answer':
          return out.response;
        case 'write':
          if ((await this.log.save(id, loaded.revision, out.next)) === undefined) continue;
          this.deps.logger.info(
            { transactionalId: id, producerId: out.next.producerId.toString(), producerEpoch: out.next.producerEpoch },
            'producer epoch bumped',
          );
          return out.response;
        case 'complete': {
          // The previous transaction must end first: fenced (aborted) if open, finished if decided.
          const done = out.next ? await this.decideAndComplete(id, loaded.revision, out.next, deadlineMs) : await this.complete(id, loaded.txn!, deadlineMs);
          if (done === undefined) continue;
          if (!done)
            throw new SkeinError('CONCURRENT_TRANSACTIONS', `the previous transaction of ${id} is still being completed; retry`, {
              metadata: { transactional_id: id },
            });
          attempt--;
          continue;
        }
      }
    }
    throw new SkeinError('CONCURRENT_MODIFICATION', `transactional id ${id} kept changing; retry`);
  }

  async addPartitions(
    id: string,
    req: { producerId: bigint; producerEpoch: number; partitions: TopicPartition[] },
    wire: ReadonlyArray<{ topic: string; partition: number }>,
  ): Promise<void> {
    const bad = transactionalIdProblem(id);
    if (bad) fail(bad, id);
    if (wire.length === 0) return;
    await this.checkPartitions(wire);
    const deadlineMs = this.deadline();
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const loaded = await this.log.load(id);
      const out = addPartitions(loaded.txn, id, req, this.now());
      let txn: TransactionMetadata;
      if (out.kind === 'problem') fail(out.problem, id);
      if (out.kind === 'complete') {
        if (!(await this.complete(id, loaded.txn!, deadlineMs)))
          throw new SkeinError('CONCURRENT_TRANSACTIONS', `the previous transaction of ${id} is still being completed; retry`, {
            metadata: { transactional_id: id },
          });
        continue;
      }
      if (out.kind === 'write') {
        if ((await this.log.save(id, loaded.revision, out.next)) === undefined) continue;
        txn = out.next;
      } else txn = loaded.txn!;
      // Only now that the partitions are recorded may a broker open the transaction (rule 2 of
      // BrokerTxnService): whatever happens next, the transaction's end reaches them.
      failpoint('txn.beforeBegin');
      await this.deps.brokers.beginTxn(
        req.partitions,
        { producerId: txn.producerId, producerEpoch: txn.producerEpoch, coordinatorEpoch: txn.coordinatorEpoch },
        deadlineMs,
      );
      return;
    }
    throw new SkeinError('CONCURRENT_MODIFICATION', `transactional id ${id} kept changing; retry`);
  }

  async txnOffsetCommit(
    id: string,
    req: {
      producerId: bigint;
      producerEpoch: number;
      groupId: string;
      memberId: string;
      memberEpoch: number;
      offsets: Array<{ topic: string; partition: number; offset: bigint; metadata: string }>;
    },
  ): Promise<void> {
    const bad = transactionalIdProblem(id) ?? groupIdProblem(req.groupId);
    if (bad) fail(bad, id);
    const maxMeta = this.deps.offsetMetadataMaxBytes ?? 4096;
    for (const o of req.offsets) {
      if (o.offset < 0n)
        throw new SkeinError('OFFSET_OUT_OF_RANGE', `offset must not be negative, got ${o.offset}`, {
          metadata: { topic: o.topic, partition: String(o.partition) },
        });
      if (Buffer.byteLength(o.metadata, 'utf8') > maxMeta)
        throw new SkeinError('INVALID_REQUEST', `offset metadata is over ${maxMeta} bytes`, { metadata: { topic: o.topic, partition: String(o.partition) } });
    }
    await this.checkPartitions(req.offsets);
    // Checked now so a fenced member learns it before producing more; checked again in the decision.
    const { group } = await this.groups.loadState(req.groupId);
    const fenced = groupOffsetsProblem(group, { groupId: req.groupId, memberId: req.memberId, memberEpoch: req.memberEpoch, offsets: req.offsets });
    if (fenced) throw new SkeinError(fenced.reason, fenced.message, { metadata: { group_id: req.groupId, transactional_id: id } });
    const deadlineMs = this.deadline();
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const loaded = await this.log.load(id);
      const out = addOffsets(loaded.txn, id, req, this.now());
      if (out.kind === 'problem') fail(out.problem, id);
      if (out.kind === 'complete') {
        if (!(await this.complete(id, loaded.txn!, deadlineMs)))
          throw new SkeinError('CONCURRENT_TRANSACTIONS', `the previous transaction of ${id} is still being completed; retry`, {
            metadata: { transactional_id: id },
          });
        continue;
      }
      if (out.kind === 'answer' || (await this.log.save(id, loaded.revision, out.next)) !== undefined) return;
    }
    throw new SkeinError('CONCURRENT_MODIFICATION', `transactional id ${id} kept changing; retry`);
  }

  async endTxn(
    id: string,
    req: { producerId: bigint; producerEpoch: number; result: 'commit' | 'abort' },
  ): Promise<{ producerId: bigint; producerEpoch: number; completed: boolean }> {
    const bad = transactionalIdProblem(id);
    if (bad) fail(bad, id);
    const deadlineMs = this.deadline();
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const loaded = await this.log.load(id);
      const nowMs = this.now();
      const out = endTxn(loaded.txn, id, req, nowMs);
      if (out.kind === 'problem') fail(out.problem, id);
      if (out.kind === 'answer') return { ...out.response, completed: true };
      if (out.kind === 'complete') {
        const t = loaded.txn!;
        return { producerId: t.producerId, producerEpoch: t.producerEpoch, completed: await this.complete(id, t, deadlineMs) };
      }
      // The decision and the group offsets, in one compare-and-set, each member re-checked on the
      // group state that compare-and-set is guarded by.
      const writes: DecisionGroupWrite[] = [];
      for (const p of out.commitOffsets ?? []) {
        const { group, revision } = await this.groups.loadState(p.groupId);
        const fenced = groupOffsetsProblem(group, p);
        if (fenced)
          throw new SkeinError(fenced.reason, `${fenced.message}: abort the transaction`, { metadata: { group_id: p.groupId, transactional_id: id } });
        writes.push({ groupId: p.groupId, groupRevision: revision, offsets: p.offsets, createGroup: trackEmptiness(emptyGroup(p.groupId), nowMs) });
      }
      if ((await this.log.saveDecision(id, loaded.revision, out.next, writes, nowMs)) === undefined) continue;
      this.deps.logger.info(
        {
          transactionalId: id,
          state: out.next.state,
          coordinatorEpoch: out.next.coordinatorEpoch,
          partitions: out.next.partitions.length,
          groups: writes.length,
        },
        'transaction decided',
      );
      failpoint('txn.afterDecision');
      return { ...out.response, completed: await this.complete(id, out.next, deadlineMs) };
    }
    throw new SkeinError('CONCURRENT_MODIFICATION', `transactional id ${id} kept changing; retry`);
  }

  async abort(id: string): Promise<{ previous: TxnState; state: TxnState }> {
    const bad = transactionalIdProblem(id);
    if (bad) fail(bad, id);
    const deadlineMs = this.deadline();
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const loaded = await this.log.load(id);
      if (!loaded.txn) throw new SkeinError('UNKNOWN_TRANSACTIONAL_ID', `transactional id ${id} is unknown`, { metadata: { transactional_id: id } });
      const out = adminAbort(loaded.txn, this.now());
      if (out.kind === 'problem') fail(out.problem, id);
      if (out.kind === 'answer' || out.kind === 'write') return { previous: loaded.txn.state, state: loaded.txn.state };
      const t = out.next ?? loaded.txn;
      const done = out.next ? await this.decideAndComplete(id, loaded.revision, out.next, deadlineMs) : await this.complete(id, t, deadlineMs);
      if (done === undefined) continue;
      if (out.next)
        this.deps.logger.warn({ transactionalId: id, producerId: t.producerId.toString() }, 'transaction aborted by an operator; its producer is fenced');
      return { previous: loaded.txn.state, state: done ? completeTxn(t, 0)!.state : t.state };
    }
    throw new SkeinError('CONCURRENT_MODIFICATION', `transactional id ${id} kept changing; retry`);
  }

  /**
   * One pass of the recovery sweep every instance runs: finishes decided transactions left
   * unfinished (their coordinator crashed, or markers could not all be written in time) and aborts
   * open ones past their timeout. Idempotent and CAS-guarded, so instances need no coordination.
   */
  async sweep(): Promise<{ completed: number; timedOut: number }> {
    let completed = 0;
    let timedOut = 0;
    const work: Array<Promise<void>> = [];
    for (const { txn, revision } of await this.log.list()) {
      const id = txn.transactionalId;
      const nowMs = this.now();
      if (this.completing.has(id)) continue;
      if (isPrepare(txn.state)) {
        if (nowMs - txn.updatedAtMs < this.deps.completionGraceMs) continue;
        work.push(
          this.complete(id, txn).then((done) => {
            if (done) completed++;
          }),
        );
        continue;
      }
      const aborted = abortTimedOut(txn, nowMs);
      if (aborted) {
        work.push(
          this.decideAndComplete(id, revision, aborted, this.deadline()).then((done) => {
            if (done === undefined) return;
            timedOut++;
            this.deps.logger.warn(
              { transactionalId: id, producerId: txn.producerId.toString(), timeoutMs: txn.timeoutMs, partitions: txn.partitions.length },
              'transaction timed out; aborted and its producer fenced',
            );
          }),
        );
      }
    }
    await Promise.all(work);
    return { completed, timedOut };
  }
}

const RESULT: Partial<Record<TransactionResult, 'commit' | 'abort'>> = {
  [TransactionResult.TRANSACTION_RESULT_COMMIT]: 'commit',
  [TransactionResult.TRANSACTION_RESULT_ABORT]: 'abort',
};

const WIRE_TO_STATE = new Map(Object.entries(STATE_TO_WIRE).map(([k, v]) => [v, k as TxnState]));

export function txnServiceHandlers(coordinator: TransactionCoordinator): TransactionCoordinatorServiceServer {
  return {
    initProducerId: unary(async (req) =>
      coordinator.initProducerId(req.transactionalId, { timeoutMs: req.transactionTimeoutMs, producerId: req.producerId, producerEpoch: req.producerEpoch }),
    ),

    addPartitionsToTxn: unary(async (req) => {
      const partitions = toTps(req.partitions);
      await coordinator.addPartitions(
        req.transactionalId,
        { producerId: req.producerId, producerEpoch: req.producerEpoch, partitions },
        req.partitions.flatMap((t) => t.partitions.map((partition) => ({ topic: t.topic, partition }))),
      );
      return {};
    }),

    txnOffsetCommit: unary(async (req) => {
      await coordinator.txnOffsetCommit(req.transactionalId, {
        producerId: req.producerId,
        producerEpoch: req.producerEpoch,
        groupId: req.groupId,
        memberId: req.memberId,
        memberEpoch: req.memberEpoch,
        offsets: req.offsets,
      });
      return {};
    }),

    endTxn: unary(async (req) => {
      const result = RESULT[req.result];
      if (!result) throw new SkeinError('INVALID_REQUEST', 'result must be COMMIT or ABORT', { metadata: { transactional_id: req.transactionalId } });
      return coordinator.endTxn(req.transactionalId, { producerId: req.producerId, producerEpoch: req.producerEpoch, result });
    }),

    listTransactions: unary(async (req) => {
      const wanted = new Set(req.states.map((s) => WIRE_TO_STATE.get(s)).filter((s) => s !== undefined));
      if (req.states.length > 0 && wanted.size === 0) throw new SkeinError('INVALID_REQUEST', 'states lists no known transaction state');
      const all = await coordinator.log.list();
      return {
        transactions: all
          .filter(({ txn }) => wanted.size === 0 || wanted.has(txn.state))
          .map(({ txn }) => ({ transactionalId: txn.transactionalId, producerId: txn.producerId, state: STATE_TO_WIRE[txn.state] })),
      };
    }),

    describeTransactions: unary(async (req) => {
      if (req.transactionalIds.length === 0 || req.transactionalIds.length > 100)
        throw new SkeinError('INVALID_REQUEST', `describe 1-100 transactional ids, got ${req.transactionalIds.length}`);
      for (const id of req.transactionalIds) {
        const bad = transactionalIdProblem(id);
        if (bad) fail(bad, id);
      }
      const loaded = await Promise.all(req.transactionalIds.map((id) => coordinator.log.load(id)));
      return {
        transactions: loaded.map(({ txn }, i) =>
          txn
            ? {
                transactionalId: txn.transactionalId,
                found: true,
                state: STATE_TO_WIRE[txn.state],
                producerId: txn.producerId,
                producerEpoch: txn.producerEpoch,
                transactionTimeoutMs: txn.timeoutMs,
                transactionStartMs: BigInt(txn.startedAtMs),
                lastUpdateMs: BigInt(txn.updatedAtMs),
                partitions: fromTps(txn.partitions),
                pendingOffsets: txn.pendingOffsets.map((p) => ({ groupId: p.groupId, memberId: p.memberId, memberEpoch: p.memberEpoch, offsets: p.offsets })),
              }
            : {
                transactionalId: req.transactionalIds[i]!,
                found: false,
                state: TransactionState.TRANSACTION_STATE_UNSPECIFIED,
                producerId: -1n,
                producerEpoch: -1,
                transactionTimeoutMs: 0,
                transactionStartMs: 0n,
                lastUpdateMs: 0n,
                partitions: [],
                pendingOffsets: [],
              },
        ),
      };
    }),

    abortTransaction: unary(async (req) => {
      const { previous, state } = await coordinator.abort(req.transactionalId);
      return { previousState: STATE_TO_WIRE[previous], state: STATE_TO_WIRE[state] };
    }),
  };
}
