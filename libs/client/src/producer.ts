/**
 * The producer: records accumulate per partition into batches that are sent when they reach
 * `batchSize` bytes or have waited `lingerMs`, like Kafka's producer. Each record's promise
 * resolves with its partition and offset once the batch is acknowledged.
 *
 * Sending. A batch is due when it is full (`batchSize`) or has waited `lingerMs`; with `lingerMs: 0`
 * it is due at once, and goes out at the end of the send() that filled it, with no timer between.
 * A due batch whose partition cannot send yet (a batch of it in flight) stays open and keeps
 * taking records until it can, as Kafka's accumulator does: under load, batches grow instead of
 * queueing up one small request per send().
 *
 * Ordering and idempotence: with idempotence (on by default) one batch per PARTITION is in flight
 * at a time and each carries the producer id and its partition's next sequence number, so a batch
 * retried after a lost answer is acknowledged as a duplicate by the broker instead of being
 * appended twice, and order is kept. Not more: the broker (producer-state.ts) remembers five
 * batches per producer for duplicates but appends only the batch whose sequence follows the last
 * one appended, and a batch's retries happen inside SkeinClient.produceBatch, so a second batch in
 * flight could overtake a first being retried and be refused (OUT_OF_ORDER_SEQUENCE). Without
 * idempotence up to `maxInFlightPerBroker` batches of a partition may be in flight (as in Kafka, a
 * retry can then reorder or duplicate). Across partitions, up to `maxInFlightPerBroker` requests
 * per broker are in flight either way. Retries (inside SkeinClient.produceBatch) are for retriable errors only,
 * with jittered backoff, re-routing on NOT_LEADER hints; a batch that still fails rejects its
 * records' promises, and the producer takes a fresh producer id so that later batches of that
 * partition are not refused as out of sequence.
 *
 * Partitioning: keyed records go where Kafka's default partitioner would put them (murmur2);
 * keyless records stick to one partition until its batch is sent, then move on (KIP-480's sticky
 * partitioner: full batches instead of one small batch per partition); or pass `partitioner`.
 */
import { SkeinError } from '@skein/common/errors.js';
import type { RecordInput } from '@skein/common/records/record-batch.js';
import { systemTimers, type Timers } from '@skein/common/timers.js';
import { Acks, CompressionCodec } from '@skein/proto/skein/broker/v1/broker.js';
import type { SkeinClient } from './client.js';
import { partitionForKey } from './murmur2.js';

export interface ProducerOptions {
  /** Default ACKS_ALL: acknowledged by every in-sync replica. */
  acks?: Acks;
  /**
   * How each batch's records are compressed (Kafka: compression.type): NONE (the default), GZIP,
   * SNAPPY (raw block), LZ4 (frame) or ZSTD (frame); every one works on Node 20 and later.
   */
  compression?: CompressionCodec;
  /** Default true: retries never duplicate records. */
  idempotent?: boolean;
  /**
   * How long a batch waits for more records before it is sent (Kafka: linger.ms). Default 5. With 0
   * a batch is sent as soon as its send() returns (no timer), unless its partition already has one
   * in flight, in which case it takes more records until that one is answered.
   */
  lingerMs?: number;
  /**
   * Bytes (approximate, uncompressed) at which a batch is sent at once (Kafka: batch.size).
   * Default 1 MiB: each request costs more over gRPC than over Kafka's own protocol, and with one
   * batch per partition in flight, bigger batches carry more per round trip (1 KiB records, 3
   * partitions, one client: 35 MB/s at 256 KiB, 55 MB/s at 1 MiB). linger.ms still bounds the wait.
   */
  batchSize?: number;
  /** Requests in flight per broker (Kafka: max.in.flight.requests.per.connection). Default 5. */
  maxInFlightPerBroker?: number;
  /** Chooses a record's partition; the default is Kafka's (murmur2 for keys, sticky without). */
  partitioner?: (key: Buffer | undefined, partitionCount: number, topic: string) => number;
  /** Timers for linger.ms (tests pass manual ones). Default the system's. */
  timers?: Timers;
}

/**
 * A record to send. Without `timestampMs`, the producer stamps the time of the send() call
 * (Kafka's CreateTime), so retention and time lookups always have a time to go by.
 */
export type ProducerRecord = Omit<RecordInput, 'timestampMs'> & {
  timestampMs?: bigint | number;
  /** The partition to write to, bypassing the partitioner (Kafka's ProducerRecord.partition); e.g. a stream task's changelog partition. */
  partition?: number;
};

export interface RecordMetadata {
  topic: string;
  partition: number;
  /** The record's offset; -1 with acks=0 (nobody answers). */
  offset: bigint;
}

/**
 * How a transactional producer (transactional-producer.ts) steers this one, which does the
 * batching: the producer id and epoch to stamp (from the transaction coordinator), a step before a
 * partition's batch is sent (adding the partition to the transaction), and word of a failed batch
 * (the transaction can then only abort). Batches are then marked transactional and sequenced per
 * epoch (each epoch starts at sequence 0).
 */
export interface TransactionHooks {
  identity(): { producerId: bigint; producerEpoch: number };
  beforeSend(topic: string, partition: number): Promise<void>;
  failed(err: unknown): void;
}

/** The records one send() put into one batch: contiguous from `first`, settled together. */
interface Pending {
  first: number;
  count: number;
  resolve: (baseOffset: bigint) => void;
  reject: (err: unknown) => void;
}

interface Batch {
  topic: string;
  partition: number;
  records: RecordInput[];
  pending: Pending[];
  bytes: number;
  /** Full or lingered out: send it as soon as its partition and broker can take a request. */
  due: boolean;
  cancelLinger?: () => void;
}

const isBytes = (v: unknown) => typeof v === 'string' || v instanceof Uint8Array;

/**
 * Why a record cannot be sent, or undefined. Checked for every record of a send() before any is
 * put in a batch: a bad record fails its own send() at once, instead of failing inside a batch
 * shared with other sends' records (or leaving half a send in flight).
 */
export function invalidRecord(r: unknown): string | undefined {
  if (typeof r !== 'object' || r === null) return 'a record must be an object';
  const { key, value, headers, timestampMs } = r as Record<string, unknown>;
  if (key != null && !isBytes(key)) return 'key must be a string, bytes, null or absent';
  if (value !== null && !isBytes(value)) return 'value must be a string, bytes or null (a tombstone)';
  if (timestampMs != null && !(typeof timestampMs === 'bigint' || (typeof timestampMs === 'number' && Number.isSafeInteger(timestampMs)))) return 'timestampMs must be an integer (ms since the epoch) or absent';
  if (headers !== undefined) {
    if (!Array.isArray(headers)) return 'headers must be an array';
    for (const h of headers as unknown[]) {
      if (typeof h !== 'object' || h === null || typeof (h as { key?: unknown }).key !== 'string' || !((h as { value?: unknown }).value instanceof Uint8Array)) return 'each header needs a string key and a bytes value';
    }
  }
  return undefined;
}

const size = (v: Uint8Array | string | null | undefined) => (v == null ? 0 : typeof v === 'string' ? Buffer.byteLength(v) : v.length);
const recordBytes = (r: RecordInput) => 16 + size(r.key) + size(r.value) + (r.headers ?? []).reduce((n, h) => n + 8 + h.key.length + size(h.value), 0);

/** The records with a timestamp each: `nowMs` for those without one (Kafka's CreateTime). */
export const stampRecords = (records: readonly ProducerRecord[], nowMs: number): RecordInput[] =>
  records.map((r) => (r.timestampMs == null ? { ...r, timestampMs: nowMs } : (r as RecordInput)));

export class Producer {
  private readonly lingerMs: number;
  private readonly batchSize: number;
  private readonly maxInFlight: number;
  private readonly idempotent: boolean;
  /** The batch still accepting records, per partition. */
  private readonly open = new Map<string, Batch>();
  /** Full batches waiting to be sent, in order, per partition. */
  private readonly ready = new Map<string, Batch[]>();
  /** Requests in flight per partition: at most one with idempotence (order and sequences), else up to maxInFlightPerBroker. */
  private readonly inFlightPerPartition = new Map<string, number>();
  private readonly inFlightPerBroker = new Map<number, number>();
  private readonly sticky = new Map<string, number>();
  private readonly sequences = new Map<string, number>();
  private producerId: bigint | undefined;
  private producerIdRequest: Promise<bigint> | undefined;
  private unsettled = 0;
  private readonly appending = new Set<Promise<unknown>>();
  private idleWaiters: Array<() => void> = [];
  private closed = false;
  private readonly timers: Timers;

  constructor(private readonly client: SkeinClient, private readonly options: ProducerOptions = {}, private readonly txn?: TransactionHooks) {
    this.lingerMs = options.lingerMs ?? 5;
    this.batchSize = options.batchSize ?? 1024 * 1024;
    this.maxInFlight = Math.max(1, options.maxInFlightPerBroker ?? 5);
    this.idempotent = options.idempotent ?? true;
    this.timers = options.timers ?? systemTimers;
  }

  /**
   * Sends records; resolves with each record's partition and offset, in the order given. Rejects
   * (never throws elsewhere) when a record is invalid, before any of them is sent, or when its
   * batch fails after the client's retries.
   */
  async send(topic: string, records: ProducerRecord[]): Promise<RecordMetadata[]> {
    if (this.closed) throw new SkeinError('INVALID_REQUEST', 'the producer is closed');
    if (!Array.isArray(records)) throw new SkeinError('INVALID_REQUEST', 'send() takes an array of records');
    for (let i = 0; i < records.length; i++) {
      const why = invalidRecord(records[i]);
      if (why) throw new SkeinError('INVALID_REQUEST', `record ${i}: ${why}`);
    }
    const nowMs = Date.now();
    const stamped = stampRecords(records, nowMs);
    // Tracked until its records are in batches, so that a flush() called meanwhile includes them.
    const appending = this.client.topic(topic).then((t) => this.appendAll(topic, stamped, t.partitions.length));
    this.appending.add(appending);
    try {
      return await (await appending)();
    } finally {
      this.appending.delete(appending);
    }
  }

  /** Sends one record; resolves once its batch is acknowledged. */
  async sendRecord(topic: string, record: ProducerRecord): Promise<RecordMetadata> {
    return (await this.send(topic, [record]))[0]!;
  }

  private choosePartition(topic: string, record: RecordInput, n: number): number {
    const explicit = (record as ProducerRecord).partition;
    if (explicit !== undefined) {
      if (!Number.isInteger(explicit) || explicit < 0 || explicit >= n) throw new SkeinError('INVALID_REQUEST', `partition ${explicit} is not in ${topic} (${n} partitions)`);
      return explicit;
    }
    const key = record.key === undefined || record.key === null ? undefined : typeof record.key === 'string' ? Buffer.from(record.key) : Buffer.from(record.key);
    if (this.options.partitioner) {
      const p = this.options.partitioner(key, n, topic);
      if (!Number.isInteger(p) || p < 0 || p >= n) throw new SkeinError('INVALID_REQUEST', `partitioner returned ${p} for a topic with ${n} partitions`);
      return p;
    }
    if (key) return partitionForKey(key, n);
    let p = this.sticky.get(topic);
    if (p === undefined || p >= n) this.sticky.set(topic, (p = Math.floor(Math.random() * n)));
    return p;
  }

  /**
   * Puts records into their partitions' open batches, synchronously (so one send's records are
   * contiguous in each batch), with one settlement per batch rather than a promise per record.
   * Returns a function that waits for every record's metadata, in input order.
   */
  private appendAll(topic: string, records: RecordInput[], n: number): () => Promise<RecordMetadata[]> {
    const out = new Array<RecordMetadata>(records.length);
    const waits: Array<Promise<void>> = [];
    const mine = new Map<Batch, { pending: Pending; indices: number[] }>();
    // A user's partitioner may refuse: ask it about every record before any is appended.
    const chosen = this.options.partitioner || records.some((r) => (r as ProducerRecord).partition !== undefined) ? records.map((r) => this.choosePartition(topic, r, n)) : undefined;
    // The batch key, rebuilt only when the partition changes (keyless records stay on one).
    let lastPartition = -1;
    let k = '';
    records.forEach((record, i) => {
      const partition = chosen ? chosen[i]! : this.choosePartition(topic, record, n);
      if (partition !== lastPartition) {
        lastPartition = partition;
        k = `${topic}\u0000${partition}`;
      }
      const bytes = recordBytes(record);
      let batch = this.open.get(k);
      if (batch && batch.records.length > 0 && batch.bytes + bytes > this.batchSize) {
        this.seal(k, batch);
        batch = this.open.get(k); // sealing may have moved a sticky partition, not this key's batch
      }
      if (!batch) {
        const b: Batch = { topic, partition, records: [], pending: [], bytes: 0, due: this.lingerMs <= 0 };
        // The timer keeps this batch's key: `k` moves on with the next record's partition.
        const key = k;
        if (!b.due) b.cancelLinger = this.timers.setTimeout(() => this.lingered(key, b), this.lingerMs);
        this.open.set(k, b);
        batch = b;
      }
      let seg = mine.get(batch);
      if (!seg) {
        const indices: number[] = [];
        const pending: Pending = { first: batch.records.length, count: 0, resolve: () => {}, reject: () => {} };
        const wait = new Promise<void>((resolve, reject) => {
          pending.resolve = (base) => {
            // One bigint per record, not three.
            let offset = base < 0n ? -1n : base + BigInt(pending.first);
            for (const index of indices) {
              out[index] = { topic, partition, offset };
              if (base >= 0n) offset += 1n;
            }
            resolve();
          };
          pending.reject = reject;
        });
        // The send's caller gets this rejection through Promise.all below; the no-op handler keeps
        // a batch that fails before the caller is listening from being an unhandled rejection
        // (which ends a Node process).
        wait.catch(() => {});
        waits.push(wait);
        batch.pending.push(pending);
        mine.set(batch, (seg = { pending, indices }));
      }
      batch.records.push(record);
      batch.bytes += bytes;
      seg.pending.count++;
      seg.indices.push(i);
      this.unsettled++;
      if (batch.bytes >= this.batchSize) this.seal(k, batch);
    });
    // lingerMs 0: this send's batches are due now; they go out here, not on a timer.
    if (this.lingerMs <= 0) this.pump();
    return async () => {
      await Promise.all(waits);
      return out;
    };
  }

  /** A full batch (or every batch, on flush): closed to records, queued to be sent in order. */
  private seal(k: string, batch: Batch): void {
    if (this.open.get(k) !== batch) return;
    this.detach(k, batch);
    const queue = this.ready.get(k) ?? [];
    queue.push(batch);
    this.ready.set(k, queue);
    this.pump();
  }

  private lingered(k: string, batch: Batch): void {
    if (this.open.get(k) !== batch) return;
    batch.due = true;
    this.pump();
  }

  /** Closes an open batch to further records. */
  private detach(k: string, batch: Batch): void {
    batch.cancelLinger?.();
    this.open.delete(k);
    // Keyless records move to another partition once their batch is full or lingered out.
    if (this.sticky.get(batch.topic) === batch.partition) this.sticky.delete(batch.topic);
  }

  private leaderOf(topic: string, partition: number): number {
    return this.client.cachedLeaderId(topic, partition) ?? -1;
  }

  /** Sends every full or due batch whose partition and broker can take one more request now. */
  private pump(): void {
    const due = [...this.open].filter(([, b]) => b.due).map(([k]) => k);
    for (const k of new Set([...this.ready.keys(), ...due])) {
      const partitionInFlight = this.inFlightPerPartition.get(k) ?? 0;
      if (partitionInFlight >= (this.idempotent ? 1 : this.maxInFlight)) continue;
      // Full batches first: they hold the partition's older records.
      const queue = this.ready.get(k);
      const open = this.open.get(k);
      const batch = queue?.[0] ?? (open?.due ? open : undefined);
      if (!batch) continue;
      const broker = this.leaderOf(batch.topic, batch.partition);
      const inFlight = this.inFlightPerBroker.get(broker) ?? 0;
      if (inFlight >= this.maxInFlight) continue;
      if (queue?.[0] === batch) {
        queue.shift();
        if (queue.length === 0) this.ready.delete(k);
      } else this.detach(k, batch);
      this.inFlightPerPartition.set(k, partitionInFlight + 1);
      this.inFlightPerBroker.set(broker, inFlight + 1);
      void this.dispatch(k, batch).finally(() => {
        this.inFlightPerPartition.set(k, (this.inFlightPerPartition.get(k) ?? 1) - 1);
        this.inFlightPerBroker.set(broker, (this.inFlightPerBroker.get(broker) ?? 1) - 1);
        this.unsettled -= batch.records.length;
        if (this.unsettled === 0) for (const w of this.idleWaiters.splice(0)) w();
        this.pump();
      }).catch(() => {
        // dispatch() settles its batch's records itself (resolve or reject); nothing is left to
        // report here, and an unhandled rejection would end the process.
      });
    }
  }

  private async ensureProducerId(topic: string, partition: number): Promise<bigint> {
    if (this.producerId !== undefined) return this.producerId;
    this.producerIdRequest ??= this.client.initProducerId(topic, partition).finally(() => (this.producerIdRequest = undefined));
    this.producerId = await this.producerIdRequest;
    return this.producerId;
  }

  private async dispatch(k: string, batch: Batch): Promise<void> {
    try {
      let idempotence = {};
      if (this.txn) {
        await this.txn.beforeSend(batch.topic, batch.partition);
        const { producerId, producerEpoch } = this.txn.identity();
        const seqKey = `${producerId}\u0000${producerEpoch}\u0000${k}`;
        const baseSequence = this.sequences.get(seqKey) ?? 0;
        this.sequences.set(seqKey, (baseSequence + batch.records.length) % 2 ** 31);
        idempotence = { producerId, producerEpoch, baseSequence, isTransactional: true };
      } else if (this.idempotent) {
        const producerId = await this.ensureProducerId(batch.topic, batch.partition);
        const seqKey = `${producerId}\u0000${k}`;
        const baseSequence = this.sequences.get(seqKey) ?? 0;
        this.sequences.set(seqKey, (baseSequence + batch.records.length) % 2 ** 31);
        idempotence = { producerId, producerEpoch: 0, baseSequence };
      }
      const baseOffset = await this.client.produceBatch(batch.topic, batch.partition, batch.records, { acks: this.options.acks, compression: this.options.compression, ...idempotence });
      for (const p of batch.pending) p.resolve(baseOffset);
    } catch (err) {
      // The broker may or may not have this batch: later batches of the partition would be out of
      // sequence under this producer id, so continue under a fresh one.
      if (this.txn) this.txn.failed(err);
      else if (this.idempotent) this.producerId = undefined;
      for (const p of batch.pending) p.reject(err);
    }
  }

  /** Sends everything accumulated now and resolves when every record sent so far is settled. */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.appending]);
    for (const [k, batch] of [...this.open]) this.seal(k, batch);
    if (this.unsettled === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Fails every batch not yet sent with `err` (records still accepting or waiting to go out); batches
   * in flight settle as they will. The transactional producer's abort: nothing queued for the
   * aborted transaction may go out afterwards, under the next epoch.
   */
  async discard(err: unknown): Promise<void> {
    // Sends still looking up their topic put their records in batches first, to be dropped with them.
    await Promise.allSettled([...this.appending]);
    const dropped: Batch[] = [];
    for (const [k, batch] of [...this.open]) {
      batch.cancelLinger?.();
      this.open.delete(k);
      dropped.push(batch);
    }
    for (const queue of this.ready.values()) dropped.push(...queue.splice(0));
    this.ready.clear();
    for (const batch of dropped) {
      this.unsettled -= batch.records.length;
      for (const p of batch.pending) p.reject(err);
    }
    if (this.unsettled === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Flushes, then refuses further sends. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }
}
