/**
 * Idempotent producer state of one partition. Pure: the partition log persists snapshots.
 *
 * Per producer id: the latest epoch and the last 5 appended batches (first/last sequence, offsets).
 * A batch from a known producer is a duplicate when it matches a remembered batch exactly (its
 * original offset is returned and nothing is appended), in sequence when its base sequence follows
 * the last batch's, and refused otherwise. Five batches are remembered because a producer keeps
 * at most five batches in flight per partition, as in Kafka.
 *
 * Snapshot format (`producer-state.snapshot`): JSON {version, offset, producers:[...]}, where
 * offset is the log end offset the snapshot reflects; entries after it are replayed from the log.
 */
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
}

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

  get size(): number {
    return this.producers.size;
  }

  get(producerId: bigint): ProducerEntry | undefined {
    return this.producers.get(producerId);
  }

  /** Decides what to do with a batch before it is appended. Throws LogError when it is refused. */
  check(b: ProducerAppend): SequenceCheck {
    const entry = this.producers.get(b.producerId);
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
    let entry = this.producers.get(b.producerId);
    if (!entry || b.producerEpoch > entry.epoch) {
      entry = { producerId: b.producerId, epoch: b.producerEpoch, batches: [], lastTimestampMs: maxTimestampMs };
      this.producers.set(b.producerId, entry);
    }
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

  /** Forgets batches at or above `offset` (log truncation); producers left empty are removed. */
  truncateTo(offset: bigint): void {
    for (const [id, e] of this.producers) {
      e.batches = e.batches.filter((m) => m.lastOffset < offset);
      if (e.batches.length === 0) this.producers.delete(id);
    }
  }

  /** Removes producers whose last write is older than `expireBeforeMs` (producer id expiry). */
  expire(expireBeforeMs: bigint): number {
    let n = 0;
    for (const [id, e] of this.producers) {
      if (e.lastTimestampMs < expireBeforeMs) {
        this.producers.delete(id);
        n++;
      }
    }
    return n;
  }

  clear(): void {
    this.producers.clear();
  }

  snapshot(offset: bigint): Buffer {
    const producers = [...this.producers.values()].map((e) => ({
      producerId: e.producerId.toString(),
      epoch: e.epoch,
      lastTimestampMs: e.lastTimestampMs.toString(),
      batches: e.batches.map((m) => ({
        firstSeq: m.firstSeq,
        lastSeq: m.lastSeq,
        baseOffset: m.baseOffset.toString(),
        lastOffset: m.lastOffset.toString(),
        maxTimestampMs: m.maxTimestampMs.toString(),
      })),
    }));
    return Buffer.from(JSON.stringify({ version: 1, offset: offset.toString(), producers }));
  }

  /** Loads a snapshot; returns the offset it reflects, or a reason it cannot be used. */
  static fromSnapshot(buf: Buffer): { state: ProducerStateManager; offset: bigint } | string {
    try {
      const raw = JSON.parse(buf.toString('utf8')) as {
        version: number;
        offset: string;
        producers: Array<{ producerId: string; epoch: number; lastTimestampMs: string; batches: Array<Record<string, string | number>> }>;
      };
      if (raw.version !== 1) return `unknown snapshot version ${raw.version}`;
      const state = new ProducerStateManager();
      for (const p of raw.producers) {
        state.producers.set(BigInt(p.producerId), {
          producerId: BigInt(p.producerId),
          epoch: p.epoch,
          lastTimestampMs: BigInt(p.lastTimestampMs),
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
