/**
 * Reading many partitions the way Kafka's consumer does: ONE Fetch request per broker covering
 * every partition read from it (grouped by leader from the client's cached metadata, and grouped
 * again after a NOT_LEADER answer and a metadata refresh), long-polling with `minBytes` and
 * `maxWaitMs` (Kafka's fetch.min.bytes and fetch.max.wait.ms). An idle reader costs one request
 * per broker per `maxWaitMs`, and a record reaches it as soon as its broker has it: the broker
 * answers a long-poll when data arrives, and the next request is sent when the answer is taken, so
 * no timer paces delivery. Timers run only for the backoff after an error.
 *
 * Pipelining and bounds. Each answered partition's records become one chunk in a FIFO that the
 * owner drains with next(). A partition with a chunk waiting is left out of requests, and a
 * broker's next request goes out once every chunk of its previous answer has been taken (or
 * dropped); that request covers the partitions just taken, so it is in flight while the owner's
 * handler works on them (prefetch). Hence at most one request in flight per broker, and per
 * partition at most one chunk waiting (about `maxBytesPerPartition`; one batch can exceed it) plus
 * the one being handled.
 *
 * Offsets and generations. A partition's offset here is the next offset to FETCH, ahead of what
 * the owner has processed. assign() (a seek, an offset reset, an assignment), pause(), resume()
 * and remove() start a new generation of the partition: its waiting chunk is dropped, answers to
 * requests sent before are ignored, and every chunk carries the generation it was fetched under so
 * the owner can tell whether it went stale while a handler ran.
 *
 * Partition states:
 *   FETCHING     goes into the next request to its leader.
 *   BACKING_OFF  after an error, until `untilMs` on the injected clock (a timer wakes the fetcher).
 *   HELD         an error chunk went to the owner, which decides: backOff(), assign() (a seek or an
 *                offset reset), or nothing (it waits for a seek, as after a corrupt batch).
 * Retriable errors (NOT_LEADER_OR_FOLLOWER, a broker restarting) are retried here first, as the
 * client's own calls retry them (retry.ts: the same attempt budget and jittered backoff, metadata
 * refreshed in between); only then do they reach the owner.
 */
import { SkeinError } from '@skein/common/errors.js';
import type { ConsumedRecord } from '@skein/common/records/record-batch.js';
import { type Clock, systemClock, systemTimers, type Timers } from '@skein/common/timers.js';
import { type FetchRequest, type FetchResponse, IsolationLevel } from '@skein/proto/skein/broker/v1/broker.js';
import { partitionError, type SkeinClient } from './client.js';
import { DEFAULT_MAX_UNCOMPRESSED_BYTES, decodeFetchedBatches } from './fetched-batches.js';
import { backoffMs, shouldRetry } from './retry.js';

export interface FetcherOptions {
  /** Longest a broker holds a request while it has less than `minBytes` (Kafka: fetch.max.wait.ms). Default 500. */
  maxWaitMs?: number;
  /** Bytes a broker waits for before answering (Kafka: fetch.min.bytes). Default 1: answer as soon as anything is there. */
  minBytes?: number;
  /** Most bytes per request, all partitions together (Kafka: fetch.max.bytes). Default 50 MiB. */
  maxBytes?: number;
  /** Most bytes per partition per request (Kafka: max.partition.fetch.bytes). Default 1 MiB. */
  maxBytesPerPartition?: number;
  /** Most bytes one partition's compressed batches of one answer may decompress to (fetched-batches.ts). */
  maxUncompressedBytes?: number;
  /**
   * 'read_committed': only committed transactions' records, up to the last stable offset, with
   * aborted transactions' records dropped (Kafka's isolation.level). Default 'read_uncommitted'.
   * Transaction markers are skipped either way.
   */
  isolationLevel?: 'read_uncommitted' | 'read_committed';
  clock?: Clock;
  timers?: Timers;
}

export interface FetchedRecords {
  kind: 'records';
  topic: string;
  partition: number;
  /** The offset the request asked for (the first record's, or before it on a compacted log). */
  fetchOffset: bigint;
  records: ConsumedRecord[];
  highWatermark: bigint;
  generation: number;
}

export interface FetchFailure {
  kind: 'error';
  topic: string;
  partition: number;
  fetchOffset: bigint;
  error: unknown;
  generation: number;
}

export type FetchedChunk = FetchedRecords | FetchFailure;

type PartitionState = { kind: 'FETCHING' } | { kind: 'BACKING_OFF'; untilMs: number } | { kind: 'HELD' };

interface Queued {
  chunk: FetchedChunk;
  /** The broker whose answer it came in (its next request waits until the chunk is taken). */
  broker: string;
  dropped: boolean;
}

interface Slot {
  topic: string;
  partition: number;
  /** The next offset to fetch. */
  offset: bigint;
  generation: number;
  state: PartitionState;
  paused: boolean;
  /** The request it is in now. */
  inFlight?: Request;
  /** Its chunk in the queue, not taken yet. */
  waiting?: Queued;
  /** Retriable failures in a row retried here; reset by any answer without an error. */
  retries: number;
  /** Back-offs the owner asked for in a row (the owner's backoff grows with it); reset likewise. */
  failures: number;
}

interface Request {
  address: string;
  abort: AbortController;
}

interface Part {
  slot: Slot;
  generation: number;
  offset: bigint;
}

/**
 * Groups the partitions to fetch by the address of their leader. Pure. Partitions whose leader is
 * unknown come back in `leaderless`.
 */
export function groupByLeader<T extends { topic: string; partition: number }>(partitions: Iterable<T>, leaderOf: (topic: string, partition: number) => string | undefined): { byLeader: Map<string, T[]>; leaderless: T[] } {
  const byLeader = new Map<string, T[]>();
  const leaderless: T[] = [];
  for (const p of partitions) {
    const address = leaderOf(p.topic, p.partition);
    if (address === undefined) leaderless.push(p);
    else byLeader.set(address, [...(byLeader.get(address) ?? []), p]);
  }
  return { byLeader, leaderless };
}

/** One FetchRequest for `parts` (topics in first-seen order, partitions in the order given). Pure. */
export function buildFetchRequest(parts: ReadonlyArray<{ topic: string; partition: number; offset: bigint }>, limits: { maxWaitMs: number; minBytes: number; maxBytes: number; maxBytesPerPartition: number }, readCommitted = false): FetchRequest {
  const topics = new Map<string, FetchRequest['topics'][number]>();
  for (const p of parts) {
    let t = topics.get(p.topic);
    if (!t) topics.set(p.topic, (t = { topic: p.topic, partitions: [] }));
    t.partitions.push({ partition: p.partition, fetchOffset: p.offset, partitionMaxBytes: limits.maxBytesPerPartition, currentLeaderEpoch: -1 });
  }
  return { maxWaitMs: limits.maxWaitMs, minBytes: limits.minBytes, maxBytes: limits.maxBytes, topics: [...topics.values()], ...(readCommitted ? { isolationLevel: IsolationLevel.ISOLATION_LEVEL_READ_COMMITTED } : {}) };
}

const key = (topic: string, partition: number) => `${topic}\u0000${partition}`;

export class Fetcher {
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly limits: { maxWaitMs: number; minBytes: number; maxBytes: number; maxBytesPerPartition: number };
  private readonly maxUncompressedBytes: number;
  private readonly readCommitted: boolean;
  private readonly slots = new Map<string, Slot>();
  private readonly queue: Queued[] = [];
  /** The request in flight per broker address. */
  private readonly requests = new Map<string, Request>();
  /** Chunks of each broker's last answer not taken yet. */
  private readonly undelivered = new Map<string, number>();
  private generations = 0;
  private waiter: (() => void) | undefined;
  private pumpQueued = false;
  private refreshing: Promise<void> | undefined;
  private refreshedOnce = false;
  private wake: { atMs: number; cancel: () => void } | undefined;
  private closed = false;
  /** Fetch requests sent, per broker address (for monitoring and tests). */
  readonly requestsSent = new Map<string, number>();

  constructor(
    private readonly client: SkeinClient,
    options: FetcherOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.timers = options.timers ?? systemTimers;
    this.limits = {
      maxWaitMs: options.maxWaitMs ?? 500,
      minBytes: options.minBytes ?? 1,
      maxBytes: options.maxBytes ?? 50 << 20,
      maxBytesPerPartition: options.maxBytesPerPartition ?? 1 << 20,
    };
    this.maxUncompressedBytes = options.maxUncompressedBytes ?? DEFAULT_MAX_UNCOMPRESSED_BYTES;
    this.readCommitted = options.isolationLevel === 'read_committed';
    for (const [name, v] of Object.entries(this.limits)) {
      if (!Number.isSafeInteger(v) || v < 0 || v > 0x7fffffff) throw new SkeinError('INVALID_REQUEST', `${name} must be an integer from 0 to 2^31-1, got ${v}`);
    }
  }

  /** Starts (or restarts) fetching a partition at `offset`: a seek, an offset reset or a new assignment. A paused partition stays paused. */
  assign(topic: string, partition: number, offset: bigint): void {
    const k = key(topic, partition);
    const slot = this.slots.get(k);
    if (slot) this.invalidate(slot);
    const next: Slot = slot ?? { topic, partition, offset, generation: 0, state: { kind: 'FETCHING' }, paused: false, retries: 0, failures: 0 };
    next.offset = offset;
    next.state = { kind: 'FETCHING' };
    next.retries = 0;
    next.failures = 0;
    next.generation = ++this.generations;
    this.slots.set(k, next);
    this.pump();
  }

  /** Stops fetching a partition and drops what was fetched for it. */
  remove(topic: string, partition: number): void {
    const slot = this.slots.get(key(topic, partition));
    if (!slot) return;
    this.invalidate(slot);
    this.slots.delete(key(topic, partition));
    this.pump();
  }

  /** Stops fetching a partition (it stays assigned) and drops what was fetched for it. */
  pause(topic: string, partition: number): void {
    const slot = this.slots.get(key(topic, partition));
    if (!slot || slot.paused) return;
    this.invalidate(slot);
    slot.paused = true;
    slot.generation = ++this.generations;
    this.pump();
  }

  /** Fetches a paused partition again from `offset` (what was dropped at pause() is fetched again). */
  resume(topic: string, partition: number, offset: bigint): void {
    const slot = this.slots.get(key(topic, partition));
    if (!slot?.paused) return;
    slot.paused = false;
    slot.offset = offset;
    slot.generation = ++this.generations;
    this.pump();
  }

  /** After an error chunk: fetch the partition again `delayMs` from now. */
  backOff(topic: string, partition: number, delayMs: number): void {
    const slot = this.slots.get(key(topic, partition));
    if (!slot) return;
    slot.failures++;
    slot.state = { kind: 'BACKING_OFF', untilMs: this.clock.nowMs() + delayMs };
    this.pump();
  }

  /** The partition's current generation (undefined when not assigned): a chunk of another one is stale. */
  generation(topic: string, partition: number): number | undefined {
    return this.slots.get(key(topic, partition))?.generation;
  }

  /** Back-offs asked for this partition in a row (0 after any answer without an error). */
  failures(topic: string, partition: number): number {
    return this.slots.get(key(topic, partition))?.failures ?? 0;
  }

  /** The next chunk of records or error, in arrival order; undefined once closed. */
  async next(): Promise<FetchedChunk | undefined> {
    for (;;) {
      if (this.closed) return undefined;
      const q = this.queue.shift();
      if (q) {
        if (q.dropped) continue;
        // Taken: a records chunk's partition goes into the next request (prefetch); an error
        // chunk's stays HELD until the owner decides.
        const slot = this.slots.get(key(q.chunk.topic, q.chunk.partition));
        if (slot?.waiting === q) slot.waiting = undefined;
        this.delivered(q);
        return q.chunk;
      }
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  /** Stops: requests in flight are cancelled, next() resolves undefined. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const r of this.requests.values()) r.abort.abort();
    this.requests.clear();
    this.wake?.cancel();
    this.wake = undefined;
    this.waiter?.();
  }

  /**
   * Drops the partition's waiting chunk, and cancels the request it is in: that request's answer
   * for it is stale now, and a long-poll left open would hold back its broker's next request
   * (which carries the partition's new position) for up to maxWaitMs. The request's other
   * partitions go into that next request.
   */
  private invalidate(slot: Slot): void {
    if (slot.waiting) {
      slot.waiting.dropped = true;
      this.delivered(slot.waiting);
      slot.waiting = undefined;
    }
    const request = slot.inFlight;
    if (!request) return;
    for (const s of this.slots.values()) if (s.inFlight === request) s.inFlight = undefined;
    if (this.requests.get(request.address) === request) this.requests.delete(request.address);
    request.abort.abort();
  }

  /** A chunk left the queue (taken or dropped): its broker's next request may be due. */
  private delivered(q: Queued): void {
    const left = (this.undelivered.get(q.broker) ?? 1) - 1;
    if (left > 0) this.undelivered.set(q.broker, left);
    else this.undelivered.delete(q.broker);
    if (left <= 0) this.pump();
  }

  private enqueue(slot: Slot, chunk: FetchedChunk, broker: string): void {
    const q: Queued = { chunk, broker, dropped: false };
    slot.waiting = q;
    this.queue.push(q);
    this.undelivered.set(broker, (this.undelivered.get(broker) ?? 0) + 1);
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /**
   * Sends requests at the end of the current synchronous step (a microtask, not a timer): changes
   * made together (50 partitions assigned in one loop, a resume of many) go into one request per
   * broker instead of a first request for the first partition alone.
   */
  private pump(): void {
    if (this.pumpQueued || this.closed) return;
    this.pumpQueued = true;
    queueMicrotask(() => {
      this.pumpQueued = false;
      this.pumpNow();
    });
  }

  /** Sends a request to every broker that has fetchable partitions and none in flight. */
  private pumpNow(): void {
    if (this.closed) return;
    const now = this.clock.nowMs();
    let wakeAt = Infinity;
    const fetchable: Slot[] = [];
    for (const s of this.slots.values()) {
      if (s.paused || s.waiting || s.inFlight !== undefined || s.state.kind === 'HELD') continue;
      if (s.state.kind === 'BACKING_OFF') {
        if (s.state.untilMs > now) {
          wakeAt = Math.min(wakeAt, s.state.untilMs);
          continue;
        }
        s.state = { kind: 'FETCHING' };
      }
      fetchable.push(s);
    }
    const { byLeader, leaderless } = groupByLeader(fetchable, (t, p) => this.client.cachedLeader(t, p)?.address);
    for (const [address, slots] of byLeader) {
      if (!this.requests.has(address) && !this.undelivered.has(address)) this.send(address, slots);
    }
    if (leaderless.length > 0) {
      // The first time, the cache may simply be empty: load it and look again. After that, no
      // leader is an error, retried with backoff like any other.
      if (!this.refreshedOnce) this.refreshMetadata();
      else {
        for (const s of leaderless) {
          const known = this.client.cachedLeaderId(s.topic, s.partition) !== undefined;
          this.failed(s, new SkeinError(known ? 'PARTITION_OFFLINE' : 'UNKNOWN_TOPIC_OR_PARTITION', `${s.topic}-${s.partition} has no live leader in the cluster metadata`, { metadata: { topic: s.topic, partition: String(s.partition) } }));
        }
        // failed() put them in BACKING_OFF (or HELD): schedule their wake-up.
        return this.pumpNow();
      }
    }
    this.scheduleWake(wakeAt, now);
  }

  private scheduleWake(atMs: number, now: number): void {
    if (atMs === Infinity || (this.wake && this.wake.atMs <= atMs)) return;
    this.wake?.cancel();
    const cancel = this.timers.setTimeout(() => {
      this.wake = undefined;
      this.pump();
    }, atMs - now);
    this.wake = { atMs, cancel };
  }

  private refreshMetadata(): void {
    this.refreshing ??= this.client
      .refreshMetadata()
      .then(
        () => {
          this.refreshedOnce = true;
        },
        () => {
          // Unreachable metadata service: partitions without a leader back off and ask again.
          this.refreshedOnce = true;
        },
      )
      .finally(() => {
        this.refreshing = undefined;
        this.pump();
      });
  }

  private send(address: string, slots: Slot[]): void {
    const controller: Request = { address, abort: new AbortController() };
    this.requests.set(address, controller);
    this.requestsSent.set(address, (this.requestsSent.get(address) ?? 0) + 1);
    const parts: Part[] = slots.map((slot) => ({ slot, generation: slot.generation, offset: slot.offset }));
    for (const s of slots) s.inFlight = controller;
    const request = buildFetchRequest(
      parts.map((p) => ({ topic: p.slot.topic, partition: p.slot.partition, offset: p.offset })),
      this.limits,
      this.readCommitted,
    );
    this.client.fetchFrom(address, request, this.limits.maxWaitMs + this.client.timeoutMs, controller.abort.signal).then(
      (res) => this.answered(address, controller, parts, res),
      (err: unknown) => this.answered(address, controller, parts, undefined, err),
    );
  }

  /** An answer (or a failed call: `callError`) for `parts`; parts whose partition moved on since are ignored. */
  private answered(address: string, controller: Request, parts: Part[], res: FetchResponse | undefined, callError?: unknown): void {
    if (this.requests.get(address) === controller) this.requests.delete(address);
    if (this.closed || controller.abort.signal.aborted) return;
    const answers = new Map<string, FetchResponse['topics'][number]['partitions'][number]>();
    for (const t of res?.topics ?? []) for (const p of t.partitions) answers.set(key(t.topic, p.partition), p);
    for (const { slot, generation, offset } of parts) {
      // Only the partitions still waiting on this very request: not removed, re-assigned or seeked since.
      if (this.slots.get(key(slot.topic, slot.partition)) !== slot || slot.generation !== generation || slot.inFlight !== controller) continue;
      slot.inFlight = undefined;
      const where = { topic: slot.topic, partition: slot.partition };
      const r = answers.get(key(slot.topic, slot.partition));
      if (callError !== undefined || !r) {
        this.failed(slot, callError ?? new SkeinError('INTERNAL', `the broker's answer left out ${slot.topic}-${slot.partition}`), address);
        continue;
      }
      if (r.error) {
        this.failed(slot, partitionError(r.error, where), address);
        continue;
      }
      slot.retries = 0;
      slot.failures = 0;
      const { records, error, nextOffset } = decodeFetchedBatches({ ...where, fetchOffset: offset }, r.batches, this.maxUncompressedBytes, r.abortedTransactions);
      // Only skipped batches (transaction markers, an aborted transaction's records): move past them.
      if (records.length === 0 && !error && nextOffset !== undefined && nextOffset > offset) slot.offset = nextOffset;
      if (records.length > 0) {
        slot.offset = records[records.length - 1]!.offset + 1n;
        this.enqueue(slot, { kind: 'records', ...where, fetchOffset: offset, records, highWatermark: r.highWatermark, generation }, address);
      } else if (error) {
        slot.state = { kind: 'HELD' };
        this.enqueue(slot, { kind: 'error', ...where, fetchOffset: offset, error, generation }, address);
      }
    }
    this.pump();
  }

  /** A partition's fetch failed: retried here while the client's policy says so, else handed to the owner. */
  private failed(slot: Slot, err: unknown, broker = ''): void {
    if (shouldRetry(err, slot.retries)) {
      // Re-routed on the next request: the metadata refresh finds the new leader.
      slot.state = { kind: 'BACKING_OFF', untilMs: this.clock.nowMs() + backoffMs(slot.retries) };
      slot.retries++;
      this.client.stats.retries++;
      this.refreshMetadata();
      return;
    }
    slot.retries = 0;
    slot.state = { kind: 'HELD' };
    this.enqueue(slot, { kind: 'error', topic: slot.topic, partition: slot.partition, fetchOffset: slot.offset, error: err, generation: slot.generation }, broker);
  }
}
