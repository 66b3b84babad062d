/**
 * A transactional id's state as a pure state machine, in the model of Kafka's TransactionMetadata
 * (KIP-98), with KIP-890's epoch bump at the end of every transaction and KIP-447's group-fenced
 * offsets. Every operation takes the current state (undefined: the id was never seen), the request
 * and the time, and returns the next state and what the shell must do; nothing here mutates its
 * input or does I/O, so the shell can persist the next state with a compare-and-set before acting.
 *
 *           addPartitions / addOffsets                endTxn(COMMIT)
 *   Empty ──────────────────────────────▶ Ongoing ─────────────────────▶ PrepareCommit ──▶ CompleteCommit
 *     ▲  ▲                                   │   endTxn(ABORT), timeout,                  (markers written)
 *     │  │                                   └─▶ fence (init), admin ──▶ PrepareAbort  ──▶ CompleteAbort
 *     │  └──────────── initProducerId (bumps the epoch) ◀────────────────────────────────────┘
 *     └── addPartitions from CompleteX starts the next transaction directly (Ongoing)
 *
 * Invariants (checked by the unit tests, and relied on by the shell):
 * - A decision (PrepareCommit/PrepareAbort) is final: the only way out of PrepareX is CompleteX
 *   of the same direction. Recovery after any crash therefore finishes in the recorded direction.
 * - Every decision bumps the producer epoch. Markers carry the bumped epoch, so a batch of the
 *   ended transaction that arrives late at a broker is refused (the partition knows a newer
 *   epoch), and a producer that was fenced cannot end or extend any later transaction.
 * - `coordinatorEpoch` grows by one per transaction, naming it among the producer's transactions
 *   on every broker (ControlRecord.coordinator_epoch).
 * - Group offsets are never part of the state after the decision: a commit decision carries them
 *   out (the shell writes them in the same compare-and-set), an abort drops them.
 */
import { type TopicPartition, tp } from './assignors.js';
import type { GroupState } from './group.js';

export type TxnState = 'Empty' | 'Ongoing' | 'PrepareCommit' | 'PrepareAbort' | 'CompleteCommit' | 'CompleteAbort';
export type TxnResult = 'commit' | 'abort';
/** Who ended (or is ending) the last transaction. */
export type EndedBy = 'client' | 'timeout' | 'fence' | 'admin';

export interface TxnOffsetEntry {
  topic: string;
  partition: number;
  offset: bigint;
  metadata: string;
}

/** A group's offsets waiting in the open transaction, with the member that read the records. */
export interface PendingOffsets {
  groupId: string;
  /** '' and -1 for a group without members. */
  memberId: string;
  memberEpoch: number;
  offsets: TxnOffsetEntry[];
}

export interface TransactionMetadata {
  transactionalId: string;
  producerId: bigint;
  /** The epoch the live producer must use now. */
  producerEpoch: number;
  /**
   * The epoch before the last bump (-1: none): lets a retried EndTxn whose answer was lost succeed
   * again, and a producer whose transaction timed out go on (InitProducerId with its epoch).
   */
  lastProducerEpoch: number;
  timeoutMs: number;
  state: TxnState;
  /** Number of the open (or last) transaction of this id; 0 before the first. */
  coordinatorEpoch: number;
  /** Partitions of the open or completing transaction (sorted, unique). */
  partitions: TopicPartition[];
  /** Offsets to commit with the open transaction, one entry per group. */
  pendingOffsets: PendingOffsets[];
  /** When the open (or last) transaction started; 0 when none ever did. */
  startedAtMs: number;
  updatedAtMs: number;
  /** Who ended the last transaction (decided its outcome); absent before the first end. */
  endedBy?: EndedBy;
}

/** Problems a request can meet; `reason` is a reason of libs/common/src/errors.ts. */
export type TxnProblem = {
  reason: 'PRODUCER_FENCED' | 'TRANSACTION_TIMED_OUT' | 'INVALID_PRODUCER_EPOCH' | 'UNKNOWN_TRANSACTIONAL_ID' | 'INVALID_TXN_STATE' | 'INVALID_REQUEST';
  message: string;
};

/**
 * What the shell does with an operation's outcome:
 * - `write`: persist `next` (CAS), then answer `response` (for a decision: then write markers);
 * - `answer`: nothing to persist, answer as is;
 * - `complete`: a decided transaction must be finished first (markers, then CompleteX), after
 *   which the shell runs the operation again; `next`, when present, is a decision to persist first
 *   (an Ongoing transaction being fenced or aborted);
 * - `problem`: refuse.
 */
export type Outcome<R> =
  | { kind: 'write'; next: TransactionMetadata; response: R }
  | { kind: 'answer'; response: R }
  | { kind: 'complete'; next?: TransactionMetadata }
  | { kind: 'problem'; problem: TxnProblem };

export const TXN_LIMITS = Object.freeze({
  /** Partitions in one transaction: they are stored in the transactional id's one key. */
  partitionsPerTxn: 10_000,
  /** Group offsets in one transaction, all groups together: they are written in one store transaction (etcd allows 128 operations). */
  offsetsPerTxn: 100,
  /** Epochs are int32 on the wire; past this the id gets a new producer id (epoch 0). */
  maxEpoch: 2 ** 31 - 2,
  minTimeoutMs: 1000,
  maxTimeoutMs: 900_000,
  defaultTimeoutMs: 60_000,
});

const TRANSACTIONAL_ID = /^[a-zA-Z0-9._-]{1,255}$/;

export function transactionalIdProblem(id: string): TxnProblem | undefined {
  if (TRANSACTIONAL_ID.test(id)) return undefined;
  const shown = id.length <= 64 ? `"${id}"` : `"${id.slice(0, 64)}…" (${id.length} characters)`;
  return { reason: 'INVALID_REQUEST', message: `transactional id must be 1-255 characters of [a-zA-Z0-9._-], got ${shown}` };
}

const isPrepare = (s: TxnState) => s === 'PrepareCommit' || s === 'PrepareAbort';
const isComplete = (s: TxnState) => s === 'CompleteCommit' || s === 'CompleteAbort';

/** The decision's next state: epoch bumped, offsets gone (a commit's are carried out by the shell). */
function decide(t: TransactionMetadata, result: TxnResult, endedBy: EndedBy, nowMs: number): TransactionMetadata {
  return {
    ...t,
    state: result === 'commit' ? 'PrepareCommit' : 'PrepareAbort',
    lastProducerEpoch: t.producerEpoch,
    producerEpoch: t.producerEpoch + 1,
    pendingOffsets: [],
    updatedAtMs: nowMs,
    endedBy,
  };
}

export interface InitRequest {
  timeoutMs: number;
  /** -1n, or the producer id this caller holds (KIP-360 recovery after a timeout). */
  producerId: bigint;
  producerEpoch: number;
}

/**
 * InitProducerId. `freshProducerId` is needed for a new id or when the epoch would overflow; the
 * outcome asks for one (`needsProducerId`) otherwise, so the shell allocates only when it must.
 */
export function initProducerId(
  current: TransactionMetadata | undefined,
  transactionalId: string,
  req: InitRequest,
  ctx: { nowMs: number; freshProducerId?: bigint },
): Outcome<{ producerId: bigint; producerEpoch: number }> | { kind: 'needsProducerId' } {
  const timeoutMs = req.timeoutMs === 0 ? TXN_LIMITS.defaultTimeoutMs : req.timeoutMs;
  if (!Number.isInteger(timeoutMs) || timeoutMs < TXN_LIMITS.minTimeoutMs || timeoutMs > TXN_LIMITS.maxTimeoutMs) {
    return { kind: 'problem', problem: { reason: 'INVALID_REQUEST', message: `transaction_timeout_ms must be ${TXN_LIMITS.minTimeoutMs}-${TXN_LIMITS.maxTimeoutMs} (0 for ${TXN_LIMITS.defaultTimeoutMs}), got ${req.timeoutMs}` } };
  }
  if (!current) {
    if (req.producerId >= 0n) return { kind: 'problem', problem: { reason: 'PRODUCER_FENCED', message: `transactional id ${transactionalId} has no producer ${req.producerId}` } };
    if (ctx.freshProducerId === undefined) return { kind: 'needsProducerId' };
    const next: TransactionMetadata = {
      transactionalId, producerId: ctx.freshProducerId, producerEpoch: 0, lastProducerEpoch: -1, timeoutMs, state: 'Empty',
      coordinatorEpoch: 0, partitions: [], pendingOffsets: [], startedAtMs: 0, updatedAtMs: ctx.nowMs,
    };
    return { kind: 'write', next, response: { producerId: next.producerId, producerEpoch: 0 } };
  }
  if (req.producerId >= 0n) {
    // Recovery (KIP-360): only the holder of the current epoch, or the holder whose transaction
    // timed out, may go on; anyone else was fenced by a newer instance and must not fence it back.
    const holds = req.producerId === current.producerId
      && (req.producerEpoch === current.producerEpoch || (req.producerEpoch === current.lastProducerEpoch && current.endedBy === 'timeout'));
    if (!holds) return { kind: 'problem', problem: { reason: 'PRODUCER_FENCED', message: `producer ${req.producerId} epoch ${req.producerEpoch} no longer holds transactional id ${transactionalId}` } };
  }
  if (isPrepare(current.state)) return { kind: 'complete' };
  if (current.state === 'Ongoing') return { kind: 'complete', next: decide(current, 'abort', 'fence', ctx.nowMs) };
  // Empty or CompleteX: bump the epoch (fences whoever held the previous one).
  if (current.producerEpoch + 1 > TXN_LIMITS.maxEpoch) {
    if (ctx.freshProducerId === undefined) return { kind: 'needsProducerId' };
    const next: TransactionMetadata = { ...current, producerId: ctx.freshProducerId, producerEpoch: 0, lastProducerEpoch: -1, timeoutMs, state: 'Empty', partitions: [], pendingOffsets: [], updatedAtMs: ctx.nowMs };
    delete next.endedBy;
    return { kind: 'write', next, response: { producerId: next.producerId, producerEpoch: 0 } };
  }
  const next: TransactionMetadata = { ...current, producerEpoch: current.producerEpoch + 1, lastProducerEpoch: current.producerEpoch, timeoutMs, state: 'Empty', partitions: [], pendingOffsets: [], updatedAtMs: ctx.nowMs };
  delete next.endedBy;
  return { kind: 'write', next, response: { producerId: next.producerId, producerEpoch: next.producerEpoch } };
}

export interface ProducerRef {
  producerId: bigint;
  producerEpoch: number;
}

/** Whether the caller holds the id's current epoch; the precise refusal otherwise. */
export function producerProblem(current: TransactionMetadata | undefined, transactionalId: string, req: ProducerRef): TxnProblem | undefined {
  if (!current) return { reason: 'UNKNOWN_TRANSACTIONAL_ID', message: `transactional id ${transactionalId} is unknown; call InitProducerId first` };
  if (req.producerId !== current.producerId) return { reason: 'PRODUCER_FENCED', message: `transactional id ${transactionalId} belongs to producer ${current.producerId} now, not ${req.producerId}` };
  if (req.producerEpoch === current.producerEpoch) return undefined;
  if (req.producerEpoch > current.producerEpoch) return { reason: 'INVALID_PRODUCER_EPOCH', message: `producer epoch ${req.producerEpoch} is newer than the current ${current.producerEpoch}` };
  if (req.producerEpoch === current.lastProducerEpoch && current.endedBy === 'timeout') {
    return { reason: 'TRANSACTION_TIMED_OUT', message: `the transaction of ${transactionalId} ran past its ${current.timeoutMs} ms timeout and was aborted; call InitProducerId with the current producer id and epoch to go on` };
  }
  return { reason: 'PRODUCER_FENCED', message: `producer epoch ${req.producerEpoch} of ${transactionalId} is fenced by epoch ${current.producerEpoch}` };
}

function begin(current: TransactionMetadata, nowMs: number): TransactionMetadata {
  return { ...current, state: 'Ongoing', coordinatorEpoch: current.coordinatorEpoch + 1, partitions: [], pendingOffsets: [], startedAtMs: nowMs, updatedAtMs: nowMs };
}

/** AddPartitionsToTxn: starts the transaction if none is open; `partitions` are "topic:partition". */
export function addPartitions(current: TransactionMetadata | undefined, transactionalId: string, req: ProducerRef & { partitions: readonly TopicPartition[] }, nowMs: number): Outcome<{ coordinatorEpoch: number }> {
  const problem = producerProblem(current, transactionalId, req);
  if (problem) return { kind: 'problem', problem };
  const t = current!;
  if (isPrepare(t.state)) return { kind: 'complete' };
  const open = t.state === 'Ongoing' ? t : begin(t, nowMs);
  const merged = [...new Set([...open.partitions, ...req.partitions])].sort();
  if (merged.length > TXN_LIMITS.partitionsPerTxn) {
    return { kind: 'problem', problem: { reason: 'INVALID_REQUEST', message: `a transaction may hold at most ${TXN_LIMITS.partitionsPerTxn} partitions; this one would hold ${merged.length}` } };
  }
  if (open === t && merged.length === t.partitions.length) return { kind: 'answer', response: { coordinatorEpoch: t.coordinatorEpoch } };
  return { kind: 'write', next: { ...open, partitions: merged, updatedAtMs: nowMs }, response: { coordinatorEpoch: open.coordinatorEpoch } };
}

/** TxnOffsetCommit: records the group's offsets in the open transaction (starting one if needed). */
export function addOffsets(current: TransactionMetadata | undefined, transactionalId: string, req: ProducerRef & Omit<PendingOffsets, 'offsets'> & { offsets: readonly TxnOffsetEntry[] }, nowMs: number): Outcome<Record<string, never>> {
  const problem = producerProblem(current, transactionalId, req);
  if (problem) return { kind: 'problem', problem };
  const t = current!;
  if (isPrepare(t.state)) return { kind: 'complete' };
  const open = t.state === 'Ongoing' ? t : begin(t, nowMs);
  const previous = open.pendingOffsets.find((p) => p.groupId === req.groupId);
  const byPartition = new Map((previous?.offsets ?? []).map((o) => [tp(o.topic, o.partition), o]));
  for (const o of req.offsets) byPartition.set(tp(o.topic, o.partition), { topic: o.topic, partition: o.partition, offset: o.offset, metadata: o.metadata });
  const entry: PendingOffsets = { groupId: req.groupId, memberId: req.memberId, memberEpoch: req.memberEpoch, offsets: [...byPartition.values()].sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1)) };
  const pendingOffsets = [...open.pendingOffsets.filter((p) => p.groupId !== req.groupId), entry].sort((a, b) => (a.groupId < b.groupId ? -1 : 1));
  const total = pendingOffsets.reduce((n, p) => n + p.offsets.length, 0);
  if (total > TXN_LIMITS.offsetsPerTxn) {
    return { kind: 'problem', problem: { reason: 'INVALID_REQUEST', message: `a transaction may commit at most ${TXN_LIMITS.offsetsPerTxn} group offsets; this one would commit ${total}` } };
  }
  return { kind: 'write', next: { ...open, pendingOffsets, updatedAtMs: nowMs }, response: {} };
}

/**
 * EndTxn. A commit's outcome carries the group offsets to write in the decision's compare-and-set
 * (`commitOffsets`); the shell re-checks each member's epoch and ownership on the group state it
 * reads for that same compare-and-set.
 */
export function endTxn(current: TransactionMetadata | undefined, transactionalId: string, req: ProducerRef & { result: TxnResult }, nowMs: number):
  Outcome<{ producerId: bigint; producerEpoch: number }> & { commitOffsets?: PendingOffsets[] } {
  const wanted: [TxnState, TxnState] = req.result === 'commit' ? ['PrepareCommit', 'CompleteCommit'] : ['PrepareAbort', 'CompleteAbort'];
  // A retry of the EndTxn that made the decision (its answer was lost): the same answer again.
  if (current && req.producerId === current.producerId && req.producerEpoch === current.lastProducerEpoch && current.endedBy === 'client' && wanted.includes(current.state)) {
    return isPrepare(current.state) ? { kind: 'complete' } : { kind: 'answer', response: { producerId: current.producerId, producerEpoch: current.producerEpoch } };
  }
  const problem = producerProblem(current, transactionalId, req);
  if (problem) return { kind: 'problem', problem };
  const t = current!;
  if (isPrepare(t.state)) return { kind: 'complete' };
  if (t.state !== 'Ongoing') {
    return { kind: 'problem', problem: { reason: 'INVALID_TXN_STATE', message: `transactional id ${transactionalId} has no open transaction to ${req.result} (state ${t.state})` } };
  }
  const next = decide(t, req.result, 'client', nowMs);
  return { kind: 'write', next, response: { producerId: next.producerId, producerEpoch: next.producerEpoch }, ...(req.result === 'commit' ? { commitOffsets: t.pendingOffsets } : {}) };
}

/** Whether an open transaction has run past its timeout (the sweep aborts it). */
export function timedOut(t: TransactionMetadata, nowMs: number): boolean {
  return t.state === 'Ongoing' && nowMs - t.startedAtMs > t.timeoutMs;
}

/** The sweep's abort of a transaction past its timeout; undefined when it is not one. */
export function abortTimedOut(t: TransactionMetadata, nowMs: number): TransactionMetadata | undefined {
  return timedOut(t, nowMs) ? decide(t, 'abort', 'timeout', nowMs) : undefined;
}

/** An operator's abort: fences the producer as a timeout does. Decided transactions are finished as decided. */
export function adminAbort(t: TransactionMetadata, nowMs: number): Outcome<Record<string, never>> {
  if (isPrepare(t.state)) return { kind: 'complete' };
  if (t.state !== 'Ongoing') return { kind: 'answer', response: {} };
  return { kind: 'complete', next: decide(t, 'abort', 'admin', nowMs) };
}

/** After every marker is written: PrepareX → CompleteX (partitions cleared). Undefined when not decided. */
export function completeTxn(t: TransactionMetadata, nowMs: number): TransactionMetadata | undefined {
  if (!isPrepare(t.state)) return undefined;
  return { ...t, state: t.state === 'PrepareCommit' ? 'CompleteCommit' : 'CompleteAbort', partitions: [], pendingOffsets: [], updatedAtMs: nowMs };
}

/** The decided direction of a PrepareX or CompleteX state. */
export function decidedResult(state: TxnState): TxnResult | undefined {
  if (state === 'PrepareCommit' || state === 'CompleteCommit') return 'commit';
  if (state === 'PrepareAbort' || state === 'CompleteAbort') return 'abort';
  return undefined;
}

export { isComplete, isPrepare };

export type GroupOffsetsProblem = { reason: 'STALE_MEMBER_EPOCH' | 'UNKNOWN_MEMBER' | 'GROUP_NOT_EMPTY'; message: string };

/**
 * KIP-447's fence, applied to the group state the decision is written against: the member must
 * still be in the group at the epoch it consumed at and own every partition it commits; with
 * member epoch -1 the group must have no members. The same rule as an ordinary commit.
 */
export function groupOffsetsProblem(group: GroupState | undefined, p: PendingOffsets): GroupOffsetsProblem | undefined {
  const members = group ? Object.values(group.members) : [];
  if (p.memberEpoch === -1) {
    return members.length > 0 ? { reason: 'GROUP_NOT_EMPTY', message: `group ${p.groupId} has members; commit offsets in a transaction as a member` } : undefined;
  }
  const member = group?.members[p.memberId];
  if (!member) return { reason: 'UNKNOWN_MEMBER', message: `member ${p.memberId} is not in group ${p.groupId}` };
  if (member.memberEpoch !== p.memberEpoch) return { reason: 'STALE_MEMBER_EPOCH', message: `member epoch ${p.memberEpoch} is not the current ${member.memberEpoch} in group ${p.groupId}` };
  const notOwned = p.offsets.find((o) => !member.owned.includes(tp(o.topic, o.partition)));
  if (notOwned) return { reason: 'STALE_MEMBER_EPOCH', message: `member ${p.memberId} does not own ${notOwned.topic}-${notOwned.partition} in group ${p.groupId}` };
  return undefined;
}
