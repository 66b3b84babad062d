/**
 * Idempotent producer state of one partition. Pure: the partition log persists snapshots.
 *
 * Per producer id: the latest epoch and the last 5 appended batches (first/last sequence, offsets).
 * A batch from a known producer is a duplicate when it matches a remembered batch exactly (its
 * original offset is returned and nothing is appended), in sequence when its base sequence follows
 * the last batch's, and refused otherwise. Five batches are remembered because a producer keeps
 * at most five batches in flight per partition, as in Kafka.
 *
 * Transactions (issue 16; Kafka KIP-98 with KIP-890's defence, Redpanda's begin_tx). Per producer
 * the entry also holds the highest coordinator_epoch seen in a control batch and the open
 * transaction, if any: its first offset (the BEGIN control batch) and coordinator_epoch. The rules
 * (broker.proto, BrokerTxnService, states them for the coordinator):
 * - a transactional data batch needs the producer's transaction open here at exactly its epoch
 *   (older epoch: PRODUCER_FENCED; none open or another epoch: INVALID_TXN_STATE), and a
 *   non-transactional batch is refused while one is open (INVALID_TXN_STATE);
 * - BEGIN opens a transaction unless it is a retry of the open one (no-op), stale (its
 *   coordinator_epoch at or below one already seen and not open: TRANSACTION_COORDINATOR_FENCED,
 *   so a late BeginTxn never reopens an ended transaction), or an earlier one is still open;
 * - COMMIT/ABORT ends the open transaction with the same coordinator_epoch, is a no-op for a
 *   transaction already over (older coordinator_epoch: idempotent markers), and is written even
 *   with nothing open when its coordinator_epoch is new (it records that epoch, fencing a late BEGIN).
 * The last stable offset is bounded by the smallest first offset of the open transactions, kept
 * in `ongoing` so it costs nothing per fetch.
 *
 * Snapshot format (`producer-state.snapshot`): JSON {version, offset, producers:[...]}, where
 * offset is the log end offset the snapshot reflects; entries after it are replayed from the log.
 * Version 2 adds coordinatorEpoch, txnFirstOffset and txnCoordinatorEpoch per producer; version 1
 * snapshots (no transactions) still load.
 */
import { ControlRecordType } from '@skein/proto/skein/broker/v1/broker.js';
import { LogError } from './log-error.js';

export const MAX_BATCHES_PER_PRODUCER = 5;
const INT32_MAX = 0x7fffffff;

export interface BatchMetadata {
  firstSeq: number;
  lastSeq: number;
  baseOffset: bigint;
  lastOffset: bigint;
  maxTimestampMs: bigint;
}

export interface ProducerEntry {
  producerId: bigint;
  epoch: number;
  batches: BatchMetadata[];
  lastTimestampMs: bigint;
  /** Highest coordinator_epoch seen in this producer's control batches; -1 when none. */
  coordinatorEpoch: bigint;
  /** The open transaction on this partition: first offset (its BEGIN) and coordinator_epoch. */
  txnFirstOffset?: bigint;
  txnCoordinatorEpoch?: bigint;
}

/** A transaction a COMMIT or ABORT control batch ended: its producer and offset range. */
export interface CompletedTxn {
  producerId: bigint;
  /** The BEGIN's offset (or the log start offset when the BEGIN was before it, on replay). */
  firstOffset: bigint;
  /** The marker's offset. */
  lastOffset: bigint;
  aborted: boolean;
}

/** What a control batch would do: be appended, or nothing (a retry, a transaction already over). */
export type ControlCheck = { kind: 'append' } | { kind: 'noop' };

export interface ProducerAppend {
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
  recordCount: number;
}

export type SequenceCheck = { kind: 'append' } | { kind: 'duplicate'; baseOffset: bigint };

function lastSequence(firstSeq: number, recordCount: number): number {
  // Sequences wrap at int32 max back to 0, as in Kafka.
  const last = firstSeq + recordCount - 1;
  return last > INT32_MAX ? last - INT32_MAX - 1 : last;
}

function nextSequence(lastSeq: number): number {
  return lastSeq === INT32_MAX ? 0 : lastSeq + 1;
}

export class ProducerStateManager {
  private readonly producers = new Map<bigint, ProducerEntry>();
  /** producer id -> first offset of its open transaction (the entries with txnFirstOffset set). */
  private readonly ongoing = new Map<bigint, bigint>();

  get size(): number {
    return this.producers.size;
  }

  get(producerId: bigint): ProducerEntry | undefined {
    return this.producers.get(producerId);
  }

  /** Decides what to do with a batch before it is appended. Throws LogError when it is refused. */
  check(b: ProducerAppend, isTransactional = false): SequenceCheck {
    const entry = this.producers.get(b.producerId);
    if (isTransactional) checkTransactionalData(b, entry);
    else if (entry?.txnFirstOffset !== undefined) {
      throw new LogError(
        'INVALID_TXN_STATE',
        `producer ${b.producerId} has a transaction open on this partition: a non-transactional batch is refused until it ends`,
      );
    }
    if (!entry) return { kind: 'append' };
    if (b.producerEpoch < entry.epoch) {
      throw new LogError('INVALID_PRODUCER_EPOCH', `producer ${b.producerId} epoch ${b.producerEpoch} is fenced by epoch ${entry.epoch}`);
    }
    if (b.producerEpoch > entry.epoch) {
      if (b.baseSequence !== 0) {
        throw new LogError('OUT_OF_ORDER_SEQUENCE', `producer ${b.producerId} new epoch ${b.producerEpoch} must start at sequence 0, got ${b.baseSequence}`);
      }
      return { kind: 'append' };
    }
    const lastSeq = lastSequence(b.baseSequence, b.recordCount);
    for (const m of entry.batches) {
      if (m.firstSeq === b.baseSequence && m.lastSeq === lastSeq) return { kind: 'duplicate', baseOffset: m.baseOffset };
    }
    const last = entry.batches[entry.batches.length - 1];
    if (last && b.baseSequence !== nextSequence(last.lastSeq)) {
      throw new LogError('OUT_OF_ORDER_SEQUENCE', `producer ${b.producerId} expected sequence ${nextSequence(last.lastSeq)}, got ${b.baseSequence}`);
    }
    return { kind: 'append' };
  }

  /** Records an appended batch (also used when replaying the log during recovery). */
  update(b: ProducerAppend, baseOffset: bigint, maxTimestampMs: bigint): void {
    const entry = this.entryAtEpoch(b.producerId, b.producerEpoch, maxTimestampMs);
    entry.batches.push({
      firstSeq: b.baseSequence,
      lastSeq: lastSequence(b.baseSequence, b.recordCount),
      baseOffset,
      lastOffset: baseOffset + BigInt(b.recordCount) - 1n,
      maxTimestampMs,
    });
    if (entry.batches.length > MAX_BATCHES_PER_PRODUCER) entry.batches.shift();
    if (maxTimestampMs > entry.lastTimestampMs) entry.lastTimestampMs = maxTimestampMs;
  }

  /**
   * The producer's entry, created or moved to `epoch` when that is newer (a new epoch forgets the
   * remembered batches; the transaction fields carry over).
   */
  private entryAtEpoch(producerId: bigint, epoch: number, nowMs: bigint): ProducerEntry {
    let entry = this.producers.get(producerId);
    if (!entry) {
      entry = { producerId, epoch, batches: [], lastTimestampMs: nowMs, coordinatorEpoch: -1n };
      this.producers.set(producerId, entry);
    } else if (epoch > entry.epoch) {
      entry.epoch = epoch;
      entry.batches = [];
    }
    return entry;
  }

  /** Decides what a BEGIN / COMMIT / ABORT control batch does before it is appended; throws when refused. */
  checkControl(producerId: bigint, producerEpoch: number, type: ControlRecordType, coordinatorEpoch: bigint): ControlCheck {
    const e = this.producers.get(producerId);
    const open = e?.txnCoordinatorEpoch;
    const who = `producer ${producerId}`;
    if (type === ControlRecordType.CONTROL_RECORD_TYPE_BEGIN) {
      if (e && producerEpoch < e.epoch) throw new LogError('PRODUCER_FENCED', `${who} epoch ${producerEpoch} is fenced by epoch ${e.epoch} on this partition`);
      if (open !== undefined) {
        if (coordinatorEpoch === open && producerEpoch === e!.epoch) return { kind: 'noop' };
        if (coordinatorEpoch < open)
          throw new LogError('TRANSACTION_COORDINATOR_FENCED', `${who}: transaction ${coordinatorEpoch} is older than the open transaction ${open}`);
        throw new LogError('INVALID_TXN_STATE', `${who}: transaction ${open} is still open on this partition (write its markers first)`);
      }
      if (e && coordinatorEpoch <= e.coordinatorEpoch) {
        throw new LogError(
          'TRANSACTION_COORDINATOR_FENCED',
          `${who}: transaction ${coordinatorEpoch} is not newer than transaction ${e.coordinatorEpoch}, already ended on this partition`,
        );
      }
      return { kind: 'append' };
    }
    if (open !== undefined) {
      if (coordinatorEpoch < open) return { kind: 'noop' }; // a marker of an earlier transaction, over here
      if (coordinatorEpoch > open) throw new LogError('INVALID_TXN_STATE', `${who}: an earlier transaction ${open} is still open on this partition`);
      if (producerEpoch < e!.epoch) throw new LogError('PRODUCER_FENCED', `${who}: marker epoch ${producerEpoch} is below the transaction's epoch ${e!.epoch}`);
      return { kind: 'append' };
    }
    if (e && coordinatorEpoch <= e.coordinatorEpoch) return { kind: 'noop' }; // already over here
    if (e && producerEpoch < e.epoch)
      throw new LogError('PRODUCER_FENCED', `${who}: marker epoch ${producerEpoch} is below epoch ${e.epoch} on this partition`);
    return { kind: 'append' };
  }

  /**
   * Records an appended control batch (also on followers and when replaying the log). Returns the
   * transaction a COMMIT or ABORT ended. `logStartOffset` stands for the first offset of a
   * transaction whose BEGIN is no longer in the log (replay after retention).
   */
  applyControl(
    producerId: bigint,
    producerEpoch: number,
    type: ControlRecordType,
    coordinatorEpoch: bigint,
    offset: bigint,
    nowMs: bigint,
    logStartOffset = 0n,
  ): CompletedTxn | undefined {
    const e = this.entryAtEpoch(producerId, producerEpoch, nowMs);
    if (coordinatorEpoch > e.coordinatorEpoch) e.coordinatorEpoch = coordinatorEpoch;
    if (nowMs > e.lastTimestampMs) e.lastTimestampMs = nowMs;
    if (type === ControlRecordType.CONTROL_RECORD_TYPE_BEGIN) {
      e.txnFirstOffset = offset;
      e.txnCoordinatorEpoch = coordinatorEpoch;
      this.ongoing.set(producerId, offset);
      return undefined;
    }
    if (type !== ControlRecordType.CONTROL_RECORD_TYPE_COMMIT && type !== ControlRecordType.CONTROL_RECORD_TYPE_ABORT) return undefined;
    const aborted = type === ControlRecordType.CONTROL_RECORD_TYPE_ABORT;
    const first = e.txnFirstOffset;
    if (first === undefined || (e.txnCoordinatorEpoch !== undefined && coordinatorEpoch < e.txnCoordinatorEpoch)) {
      // Nothing of this transaction is open here (a marker written to fence a late BEGIN). On a
      // replay that started after the BEGIN (retention removed it), an abort still needs an
      // index entry: its data may be in the log from the log start on.
      return first === undefined && aborted && this.replayingFromStart ? { producerId, firstOffset: logStartOffset, lastOffset: offset, aborted } : undefined;
    }
    e.txnFirstOffset = undefined;
    e.txnCoordinatorEpoch = undefined;
    this.ongoing.delete(producerId);
    return { producerId, firstOffset: first, lastOffset: offset, aborted };
  }

  /**
   * Set while the log is replayed from its start without a snapshot: a marker with no open
   * transaction may then end one whose BEGIN retention removed.
   */
  replayingFromStart = false;

  /** The first offset of the earliest transaction open on the partition, if any. */
  firstUnstableOffset(): bigint | undefined {
    let min: bigint | undefined;
    for (const o of this.ongoing.values()) if (min === undefined || o < min) min = o;
    return min;
  }

  /** Whether any producer has transaction state (truncation must then replay the log). */
  get hasTransactionState(): boolean {
    for (const e of this.producers.values()) if (e.coordinatorEpoch >= 0n) return true;
    return false;
  }

  /** Every producer entry (DescribeProducers). */
  entries(): IterableIterator<ProducerEntry> {
    return this.producers.values();
  }

  /** Forgets batches at or above `offset` (log truncation); producers left empty are removed. */
  truncateTo(offset: bigint): void {
    for (const [id, e] of this.producers) {
      e.batches = e.batches.filter((m) => m.lastOffset < offset);
      if (e.txnFirstOffset !== undefined && e.txnFirstOffset >= offset) {
        e.txnFirstOffset = undefined;
        e.txnCoordinatorEpoch = undefined;
        this.ongoing.delete(id);
      }
      if (e.batches.length === 0 && e.coordinatorEpoch < 0n) this.producers.delete(id);
    }
  }

  /**
   * Removes producers whose last write is older than `expireBeforeMs` (producer id expiry). A
   * producer with an open transaction is kept: it bounds the last stable offset until its marker.
   */
  expire(expireBeforeMs: bigint): number {
    let n = 0;
    for (const [id, e] of this.producers) {
      if (e.lastTimestampMs < expireBeforeMs && e.txnFirstOffset === undefined) {
        this.producers.delete(id);
        n++;
      }
    }
    return n;
  }

  clear(): void {
    this.producers.clear();
    this.ongoing.clear();
  }

  snapshot(offset: bigint): Buffer {
    const producers = [...this.producers.values()].map((e) => ({
      producerId: e.producerId.toString(),
      epoch: e.epoch,
      lastTimestampMs: e.lastTimestampMs.toString(),
      coordinatorEpoch: e.coordinatorEpoch.toString(),
      txnFirstOffset: e.txnFirstOffset?.toString(),
      txnCoordinatorEpoch: e.txnCoordinatorEpoch?.toString(),
      batches: e.batches.map((m) => ({
        firstSeq: m.firstSeq,
        lastSeq: m.lastSeq,
        baseOffset: m.baseOffset.toString(),
        lastOffset: m.lastOffset.toString(),
        maxTimestampMs: m.maxTimestampMs.toString(),
      })),
    }));
    return Buffer.from(JSON.stringify({ version: 2, offset: offset.toString(), producers }));
  }

  /** Loads a snapshot; returns the offset it reflects, or a reason it cannot be used. */
  static fromSnapshot(buf: Buffer): { state: ProducerStateManager; offset: bigint } | string {
    try {
      const raw = JSON.parse(buf.toString('utf8')) as {
        version: number;
        offset: string;
        producers: Array<{
          producerId: string;
          epoch: number;
          lastTimestampMs: string;
          coordinatorEpoch?: string;
          txnFirstOffset?: string;
          txnCoordinatorEpoch?: string;
          batches: Array<Record<string, string | number>>;
        }>;
      };
      if (raw.version !== 1 && raw.version !== 2) return `unknown snapshot version ${raw.version}`;
      const state = new ProducerStateManager();
      for (const p of raw.producers) {
        const open = p.txnFirstOffset !== undefined && p.txnCoordinatorEpoch !== undefined;
        if (open) state.ongoing.set(BigInt(p.producerId), BigInt(p.txnFirstOffset!));
        state.producers.set(BigInt(p.producerId), {
          producerId: BigInt(p.producerId),
          epoch: p.epoch,
          lastTimestampMs: BigInt(p.lastTimestampMs),
          coordinatorEpoch: BigInt(p.coordinatorEpoch ?? '-1'),
          ...(open ? { txnFirstOffset: BigInt(p.txnFirstOffset!), txnCoordinatorEpoch: BigInt(p.txnCoordinatorEpoch!) } : {}),
          batches: p.batches.map((m) => ({
            firstSeq: Number(m.firstSeq),
            lastSeq: Number(m.lastSeq),
            baseOffset: BigInt(m.baseOffset!),
            lastOffset: BigInt(m.lastOffset!),
            maxTimestampMs: BigInt(m.maxTimestampMs!),
          })),
        });
      }
      return { state, offset: BigInt(raw.offset) };
    } catch (e) {
      return `unreadable snapshot: ${(e as Error).message}`;
    }
  }
}

/** The transactional-data rule (see the module comment). */
function checkTransactionalData(b: ProducerAppend, entry: ProducerEntry | undefined): void {
  const who = `producer ${b.producerId}`;
  if (entry && b.producerEpoch < entry.epoch) {
    throw new LogError('PRODUCER_FENCED', `${who} epoch ${b.producerEpoch} is fenced by epoch ${entry.epoch} on this partition`);
  }
  if (entry?.txnFirstOffset === undefined) {
    throw new LogError(
      'INVALID_TXN_STATE',
      `${who} has no transaction open on this partition: the coordinator has not added it to the transaction, or the transaction has ended`,
    );
  }
  if (b.producerEpoch !== entry.epoch) {
    throw new LogError('INVALID_TXN_STATE', `${who}: the open transaction is at epoch ${entry.epoch}, the batch at ${b.producerEpoch}`);
  }
}
