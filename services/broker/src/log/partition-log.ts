/**
 * The log of one partition replica: an ordered set of segments plus the checkpoints that make it
 * restartable. Directory `<data dir>/<topic>-<partition>/` holds:
 *
 * - `<base offset>.log|.index|.timeindex`: the segments (see log-segment.ts);
 * - `partition.checkpoint`: JSON {topicId, recoveryPoint, logStartOffset, highWatermark}, written
 *   atomically on roll, flush-checkpoint and close;
 * - `leader-epoch-checkpoint`: the leader-epoch history (see leader-epoch-cache.ts);
 * - `producer-state.snapshot`: idempotent producer state (see producer-state.ts);
 * - `<base offset>.txnindex`: the aborted transactions whose ABORT marker is in that segment (see
 *   aborted-index.ts).
 *
 * Transactions (issue 16): control batches (BEGIN, COMMIT, ABORT; control-batch.ts) are appended by
 * `appendControlAsLeader` after the producer state's rules allow them, and replicated and recovered
 * like any batch; the producer state tracks each producer's open transaction, which bounds the last
 * stable offset (`lastStableOffset`); each ABORT adds an entry to the aborted index. Truncation
 * replays the log into a fresh producer state when it holds transaction state, since a truncated
 * marker must reopen its transaction.
 *
 * Invariants: segment base offsets strictly increase and each segment's offsets are below the next
 * segment's base; logStartOffset <= highWatermark <= logEndOffset; everything below recoveryPoint
 * has been fsynced, so after a crash only segments holding offsets >= recoveryPoint are scanned.
 *
 * I/O errors take the partition offline (every later call fails with PARTITION_OFFLINE) through
 * one funnel, `fail`, which reports an `offline` event. A stored batch that cannot be read (its
 * checksum no longer matches, or its records do not decode: damaged on disk, or stored by a broker
 * that did not check record framing) is not an I/O error: only the reads that need it fail, with
 * CORRUPT_MESSAGE (source=storage, answered as DATA_LOSS), each reported per read through
 * `reportCorruptBatch` as a `corrupt-batch` event; produce, fetch elsewhere and ListOffsets go on.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { RecordBatch } from '@skein/proto/skein/broker/v1/broker.js';
import { decodeRecordBatch } from '@skein/common/records/record-batch.js';
import { isCodecSupported } from '@skein/common/records/compression.js';
import { maxDecompressedBytes, validateBatch, type BatchHeader } from './batch-validation.js';
import { type Entry, lastOffsetOf } from './entry-format.js';
import { LeaderEpochCache } from './leader-epoch-cache.js';
import { type LogConfig } from './log-config.js';
import { isLogError, LogError } from './log-error.js';
import { LogSegment, type SegmentReport } from './log-segment.js';
import { ProducerStateManager, type CompletedTxn, type ProducerEntry } from './producer-state.js';
import { AbortedTxnIndex, type AbortedTxn } from './aborted-index.js';
import { buildControlBatch, readControlMarker, readTxnAttributes, type ControlMarker } from './control-batch.js';
import { segmentsToDelete, type RetentionDecision } from './retention.js';
import { readFileIfExists, writeFileAtomic, writeFileAtomicInBackground } from './checkpoint-file.js';
import { failpoint } from '@skein/common/failpoints.js';

export interface Clock {
  nowMs(): number;
}

/** What the log wants its owner to know (the owner logs it). */
export type LogEvent =
  | { type: 'recovered'; segment: bigint; report: SegmentReport }
  | { type: 'segments-deleted-after-truncation'; count: number }
  | { type: 'producer-state-rebuilt'; fromOffset: bigint; reason: string }
  | { type: 'rolled'; newBaseOffset: bigint }
  | { type: 'retention'; deleted: number; reason: RetentionDecision['reason']; logStartOffset: bigint }
  | { type: 'offline'; error: unknown }
  /** A stored batch could not be read (see the class comment); the read that needed it failed. */
  | { type: 'corrupt-batch'; baseOffset: bigint; lastOffset: bigint | undefined; during: 'fetch' | 'list-offsets' | 'compaction'; why: string }
  | { type: 'truncated'; offset: bigint };

export interface PartitionLogOptions {
  dir: string;
  topicId: string;
  config: LogConfig;
  clock: Clock;
  onEvent?: (e: LogEvent) => void;
}

export interface AppendResult {
  baseOffset: bigint;
  duplicate: boolean;
  recordCount: number;
  /** Resolves once the batch is fsynced, when the flush policy asked for it; undefined otherwise. */
  flushed?: Promise<void>;
}

export interface FetchedEntry {
  baseOffset: bigint;
  leaderEpoch: number;
  lastOffset: bigint;
  batch: Buffer;
  size: number;
}

interface PartitionCheckpoint {
  topicId: string;
  recoveryPoint: string;
  logStartOffset: string;
  highWatermark: string;
}

const CHECKPOINT = 'partition.checkpoint';
const EPOCH_CHECKPOINT = 'leader-epoch-checkpoint';
const PRODUCER_SNAPSHOT = 'producer-state.snapshot';

export class PartitionLog {
  private segments: LogSegment[] = [];
  private readonly epochs: LeaderEpochCache;
  private producers: ProducerStateManager;
  private aborted!: AbortedTxnIndex;
  private offline: unknown;
  private unflushedMessages = 0;
  private firstUnflushedAtMs: number | undefined;
  logStartOffset = 0n;
  highWatermark = 0n;
  recoveryPoint = 0n;
  config: LogConfig;

  private constructor(private readonly opts: PartitionLogOptions) {
    this.config = opts.config;
    this.epochs = new LeaderEpochCache();
    this.producers = new ProducerStateManager();
  }

  get dir(): string {
    return this.opts.dir;
  }

  get topicId(): string {
    return this.opts.topicId;
  }

  get isOffline(): boolean {
    return this.offline !== undefined;
  }

  get logEndOffset(): bigint {
    return this.active.nextOffset;
  }

  get sizeBytes(): number {
    return this.segments.reduce((a, s) => a + s.size, 0);
  }

  /** Base offset of the active segment (changes when the log rolls). */
  get activeBaseOffset(): bigint {
    return this.active.baseOffset;
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  private get active(): LogSegment {
    return this.segments[this.segments.length - 1]!;
  }

  /** Reads the topic id a partition directory belongs to, if it has one. */
  static storedTopicId(dir: string): string | undefined {
    const raw = readFileIfExists(join(dir, CHECKPOINT));
    if (!raw) return undefined;
    try {
      return (JSON.parse(raw.toString('utf8')) as PartitionCheckpoint).topicId;
    } catch {
      return undefined;
    }
  }

  /** Opens (recovering as needed) or creates the log in `dir`. */
  static open(opts: PartitionLogOptions): PartitionLog {
    fs.mkdirSync(opts.dir, { recursive: true });
    const log = new PartitionLog(opts);
    log.load();
    return log;
  }

  private emit(e: LogEvent): void {
    this.opts.onEvent?.(e);
  }

  private load(): void {
    const { dir, clock, config } = this.opts;
    for (const name of fs.readdirSync(dir)) if (name.endsWith('.tmp') || name.endsWith('.cleaned')) fs.rmSync(join(dir, name), { force: true });
    const raw = readFileIfExists(join(dir, CHECKPOINT));
    let cp: PartitionCheckpoint | undefined;
    try {
      cp = raw ? (JSON.parse(raw.toString('utf8')) as PartitionCheckpoint) : undefined;
    } catch {
      cp = undefined;
    }
    const recoveryPoint = cp ? BigInt(cp.recoveryPoint) : 0n;
    const bases = fs
      .readdirSync(dir)
      .filter((n) => /^\d{20}\.log$/.test(n))
      .map((n) => BigInt(n.slice(0, 20)))
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const segOpts = { indexIntervalBytes: config.indexIntervalBytes };
    for (let i = 0; i < bases.length; i++) {
      const base = bases[i]!;
      const nextBase = bases[i + 1];
      const mayHoldUnflushed = nextBase === undefined || nextBase > recoveryPoint;
      const { segment, report } = LogSegment.open(dir, base, segOpts, clock.nowMs(), mayHoldUnflushed ? recoveryPoint : undefined);
      if (report.rebuiltIndexes !== undefined || report.truncatedBytes !== undefined) this.emit({ type: 'recovered', segment: base, report });
      this.segments.push(segment);
      if (report.truncatedBytes !== undefined && i < bases.length - 1) {
        // Entries after a torn or corrupt one cannot be trusted to follow on: drop the rest.
        for (const later of bases.slice(i + 1)) {
          for (const s of ['.log', '.index', '.timeindex']) fs.rmSync(join(dir, later.toString().padStart(20, '0') + s), { force: true });
        }
        this.emit({ type: 'segments-deleted-after-truncation', count: bases.length - i - 1 });
        break;
      }
    }
    const startCheckpoint = cp ? BigInt(cp.logStartOffset) : 0n;
    if (this.segments.length === 0) this.segments.push(LogSegment.create(dir, startCheckpoint, segOpts, clock.nowMs()));
    const leo = this.logEndOffset;
    this.logStartOffset = startCheckpoint > this.segments[0]!.baseOffset ? startCheckpoint : this.segments[0]!.baseOffset;
    if (this.logStartOffset > leo) this.logStartOffset = leo;
    this.highWatermark = cp ? BigInt(cp.highWatermark) : 0n;
    if (this.highWatermark > leo) this.highWatermark = leo;
    if (this.highWatermark < this.logStartOffset) this.highWatermark = this.logStartOffset;
    this.recoveryPoint = recoveryPoint > leo ? leo : recoveryPoint;

    const epochRaw = readFileIfExists(join(dir, EPOCH_CHECKPOINT));
    const epochs = epochRaw ? LeaderEpochCache.parse(epochRaw) : undefined;
    if (epochs instanceof LeaderEpochCache) for (const e of epochs.list()) this.epochs.assign(e.epoch, e.startOffset);
    else this.rebuildEpochs();
    this.epochs.truncateFromEnd(leo);
    this.epochs.truncateFromStart(this.logStartOffset);

    this.aborted = AbortedTxnIndex.load(dir, this.segments.map((s) => s.baseOffset), leo);
    this.loadProducerState();
    this.writeCheckpoints();
  }

  private rebuildEpochs(): void {
    for (const seg of this.segments) {
      seg.scan(0, false, (e) => {
        this.epochs.assign(e.leaderEpoch, e.baseOffset);
      });
    }
  }

  private loadProducerState(): void {
    const raw = readFileIfExists(join(this.opts.dir, PRODUCER_SNAPSHOT));
    const loaded = raw ? ProducerStateManager.fromSnapshot(raw) : 'no snapshot';
    let from = this.logStartOffset;
    if (typeof loaded !== 'string' && loaded.offset <= this.logEndOffset) {
      this.producers = loaded.state;
      from = loaded.offset;
    } else {
      this.producers = new ProducerStateManager();
      const reason = typeof loaded === 'string' ? loaded : `snapshot at ${loaded.offset} is past the log end ${this.logEndOffset}`;
      if (this.logEndOffset > this.logStartOffset) this.emit({ type: 'producer-state-rebuilt', fromOffset: from, reason });
    }
    // The replay re-derives the aborted transactions whose markers it passes.
    this.aborted.truncateFrom(from);
    this.replayProducerState(from, true);
  }

  /**
   * Replays the log from `from` into the producer state, and with `indexAborts` adds the aborts it
   * passes to the aborted index. Replayed producers count as active now (their append times are
   * not stored in the log).
   */
  private replayProducerState(from: bigint, indexAborts: boolean): void {
    const now = BigInt(this.opts.clock.nowMs());
    this.producers.replayingFromStart = from <= this.logStartOffset;
    try {
      for (const seg of this.segments) {
        if (seg.nextOffset <= from) continue;
        seg.scan(0, false, (e) => {
          if (e.baseOffset < from || e.producerId <= 0n) return;
          const attrs = readTxnAttributes(e.batch);
          if (!attrs.isControl) {
            this.producers.update(e, e.baseOffset, now);
            return;
          }
          const marker = readControlMarker(e.batch);
          if (!marker) return;
          const done = this.producers.applyControl(e.producerId, e.producerEpoch, marker.type, marker.coordinatorEpoch, e.baseOffset, now, this.logStartOffset);
          if (indexAborts && done?.aborted) this.aborted.add(done, seg.baseOffset);
        });
      }
    } finally {
      this.producers.replayingFromStart = false;
    }
  }

  /**
   * Writes the partition checkpoint, the epoch history and the producer snapshot, each only when
   * its content changed since the last write (the background pass calls this for every partition).
   */
  writeCheckpoints(): void {
    if (this.isOffline) return;
    const cp: PartitionCheckpoint = {
      topicId: this.opts.topicId,
      recoveryPoint: this.recoveryPoint.toString(),
      logStartOffset: this.logStartOffset.toString(),
      highWatermark: this.highWatermark.toString(),
    };
    try {
      this.writeIfChanged(CHECKPOINT, Buffer.from(JSON.stringify(cp)));
      this.writeIfChanged(EPOCH_CHECKPOINT, this.epochs.serialize());
      this.writeIfChanged(PRODUCER_SNAPSHOT, this.producers.snapshot(this.logEndOffset));
    } catch (e) {
      throw this.fail(e);
    }
  }

  /**
   * The background pass's writeCheckpoints: the same files with the same content rule, but the
   * fsyncs run off the event loop (writeFileAtomicInBackground). One pass at a time per log. A
   * synchronous write of a file meanwhile (truncation, a new epoch, close) supersedes the pass's
   * older content for that file, which is then discarded rather than renamed over the newer one.
   */
  writeCheckpointsInBackground(): Promise<void> {
    if (this.isOffline) return Promise.resolve();
    if (this.checkpointing) return this.checkpointing;
    const cp: PartitionCheckpoint = {
      topicId: this.opts.topicId,
      recoveryPoint: this.recoveryPoint.toString(),
      logStartOffset: this.logStartOffset.toString(),
      highWatermark: this.highWatermark.toString(),
    };
    const files: Array<[string, Buffer]> = [
      [CHECKPOINT, Buffer.from(JSON.stringify(cp))],
      [EPOCH_CHECKPOINT, this.epochs.serialize()],
      [PRODUCER_SNAPSHOT, this.producers.snapshot(this.logEndOffset)],
    ];
    const run = async () => {
      try {
        for (const [name, data] of files) {
          if (this.lastWritten.get(name)?.equals(data)) continue;
          const gen = this.checkpointGen.get(name) ?? 0;
          failpoint('log.beforeCheckpoint');
          const current = () => !this.isOffline && (this.checkpointGen.get(name) ?? 0) === gen;
          if (!(await writeFileAtomicInBackground(join(this.opts.dir, name), data, current))) continue;
          failpoint('log.afterCheckpoint');
          // Unless a synchronous write came during the directory fsync: then it holds the newer content.
          if ((this.checkpointGen.get(name) ?? 0) === gen) this.lastWritten.set(name, data);
        }
      } catch (e) {
        // Deleted or closed meanwhile: nothing to report. Otherwise a storage error, as in writeCheckpoints.
        if (!this.isOffline) throw this.fail(e);
      } finally {
        this.checkpointing = undefined;
      }
    };
    this.checkpointing = run();
    return this.checkpointing;
  }

  private checkpointing: Promise<void> | undefined;
  /** Per checkpoint file, bumped by every synchronous write (see writeCheckpointsInBackground). */
  private readonly checkpointGen = new Map<string, number>();
  private readonly lastWritten = new Map<string, Buffer>();

  private writeIfChanged(name: string, data: Buffer): void {
    // Even when unchanged: a background write of older content must not land after this call.
    this.checkpointGen.set(name, (this.checkpointGen.get(name) ?? 0) + 1);
    if (this.lastWritten.get(name)?.equals(data)) return;
    // Crash tests, and `throw` here stands in for a storage error (the log goes offline).
    failpoint('log.beforeCheckpoint');
    writeFileAtomic(join(this.opts.dir, name), data);
    failpoint('log.afterCheckpoint');
    this.lastWritten.set(name, data);
  }

  /** Stored batches found unreadable so far (each read that met one counts), for operators and tests. */
  corruptBatchesSeen = 0;

  /**
   * Reports a stored batch that cannot be read. Public for the cleaner, which skips such batches
   * (keeps them as they are) rather than fail compaction for the whole partition.
   */
  reportCorruptBatch(baseOffset: bigint, lastOffset: bigint | undefined, during: 'fetch' | 'list-offsets' | 'compaction', why: string): void {
    this.corruptBatchesSeen++;
    this.emit({ type: 'corrupt-batch', baseOffset, lastOffset, during, why });
  }

  /**
   * The funnel for read failures: an unreadable stored batch fails this read only (reported);
   * anything else is a storage failure (`fail`).
   */
  private readFailure(e: unknown, during: 'fetch' | 'list-offsets'): LogError {
    if (isLogError(e) && e.reason === 'CORRUPT_MESSAGE' && e.metadata['source'] === 'storage') {
      const at = e.metadata['offset'];
      this.reportCorruptBatch(at === undefined ? -1n : BigInt(at), undefined, during, e.message);
      return e;
    }
    return this.fail(e);
  }

  /** The single funnel for storage failures: marks the log offline and reports it once. */
  private fail(e: unknown): LogError {
    if (this.offline === undefined) {
      this.offline = e;
      this.emit({ type: 'offline', error: e });
    }
    if (isLogError(e) && e.reason === 'CORRUPT_MESSAGE') return e;
    return new LogError('PARTITION_OFFLINE', `partition log in ${this.opts.dir} is offline: ${(e as Error).message}`, { cause: e });
  }

  private ensureOnline(): void {
    if (this.offline !== undefined) {
      throw new LogError('PARTITION_OFFLINE', `partition log in ${this.opts.dir} is offline after a storage error`, { cause: this.offline });
    }
  }

  /**
   * Validates and appends a batch as leader at `leaderEpoch`. A duplicate retry of an idempotent
   * batch returns its original offset without appending. Throws LogError for refused batches.
   */
  appendAsLeader(batch: Buffer, leaderEpoch: number): AppendResult {
    this.ensureOnline();
    const header = validateBatch(batch, this.config.maxMessageBytes, isCodecSupported);
    return this.append(batch, header, leaderEpoch);
  }

  /**
   * Appends a batch copied from the leader at the offset and epoch the leader stored it with.
   * The follower's log must end exactly at `baseOffset` (the fetcher truncates first otherwise);
   * the checksum is verified, but sequence checks are the leader's job, so duplicates are not
   * filtered here (producer state is still updated, for when this replica leads).
   */
  appendAsFollower(batch: Buffer, baseOffset: bigint, leaderEpoch: number): AppendResult {
    this.ensureOnline();
    if (baseOffset !== this.logEndOffset) {
      throw new LogError('OFFSET_OUT_OF_RANGE', `replicated batch at ${baseOffset} does not follow the log end ${this.logEndOffset}`);
    }
    const header = validateBatch(batch, Number.MAX_SAFE_INTEGER, isCodecSupported);
    return this.append(batch, header, leaderEpoch, true);
  }

  /**
   * Appends a transaction control batch as leader, if the producer state's rules say it does
   * anything (see producer-state.ts); `undefined` when it is a no-op (a retry, a transaction
   * already over). Throws PRODUCER_FENCED, INVALID_TXN_STATE or TRANSACTION_COORDINATOR_FENCED.
   */
  appendControlAsLeader(producerId: bigint, producerEpoch: number, marker: ControlMarker, leaderEpoch: number): AppendResult | undefined {
    this.ensureOnline();
    if (this.producers.checkControl(producerId, producerEpoch, marker.type, marker.coordinatorEpoch).kind === 'noop') return undefined;
    const batch = buildControlBatch(producerId, producerEpoch, marker, this.opts.clock.nowMs());
    const header = validateBatch(batch, Number.MAX_SAFE_INTEGER, isCodecSupported);
    return this.append(batch, header, leaderEpoch, false, marker);
  }

  /**
   * The last stable offset: the first offset of the earliest open transaction, or the high
   * watermark when none is open or it starts at or above it. READ_COMMITTED reads stop here.
   */
  get lastStableOffset(): bigint {
    const first = this.producers.firstUnstableOffset();
    return first !== undefined && first < this.highWatermark ? first : this.highWatermark;
  }

  /** The aborted transactions a READ_COMMITTED read of [fromOffset, upTo) must list (aborted-index.ts). */
  abortedTransactions(fromOffset: bigint, upTo: bigint): AbortedTxn[] {
    return this.aborted.collect(fromOffset, upTo);
  }

  /** The producers this replica knows, with their transaction state (DescribeProducers). */
  describeProducers(): ProducerEntry[] {
    return [...this.producers.entries()];
  }

  private append(batch: Buffer, header: BatchHeader, leaderEpoch: number, asFollower = false, control?: ControlMarker): AppendResult {
    const idempotent = header.producerId > 0n;
    // Transaction attributes are read from the batch only where they can matter: an idempotent
    // batch (a control or transactional batch always is), or any batch from a producer, which
    // must not claim to be a control batch.
    const attrs = control ? { isTransactional: true, isControl: true } : idempotent || !asFollower ? readTxnAttributes(batch) : undefined;
    let marker = control;
    if (!asFollower && !control) {
      if (attrs?.isControl) throw new LogError('INVALID_RECORD', 'control batches are written by brokers only (is_control must not be set by a producer)');
      if (attrs?.isTransactional && !idempotent) throw new LogError('INVALID_RECORD', 'a transactional batch needs a producer id, epoch and sequence (an idempotent producer)');
    }
    if (asFollower && attrs?.isControl) marker = readControlMarker(batch);
    if (idempotent && !asFollower && !control) {
      const check = this.producers.check(header, attrs?.isTransactional === true);
      if (check.kind === 'duplicate') return { baseOffset: check.baseOffset, duplicate: true, recordCount: header.recordCount };
    }
    const now = this.opts.clock.nowMs();
    const baseOffset = this.logEndOffset;
    try {
      this.maybeRoll(batch.length, now, header.recordCount);
      if (this.epochs.assign(leaderEpoch, baseOffset)) this.writeIfChanged(EPOCH_CHECKPOINT, this.epochs.serialize());
      this.active.append(
        {
          baseOffset,
          leaderEpoch,
          recordCount: header.recordCount,
          maxTimestampMs: header.maxTimestampMs,
          producerId: header.producerId,
          producerEpoch: header.producerEpoch,
          baseSequence: header.baseSequence,
        },
        batch,
        header.records,
      );
    } catch (e) {
      throw this.fail(e);
    }
    // Producer expiry runs on broker time: record timestamps are the producer's and may be anything.
    if (attrs?.isControl) {
      if (marker) this.applyControl(header, marker, baseOffset, BigInt(now));
    } else if (idempotent) this.producers.update(header, baseOffset, BigInt(now));
    this.unflushedMessages += header.recordCount;
    this.firstUnflushedAtMs ??= now;
    const result: AppendResult = { baseOffset, duplicate: false, recordCount: header.recordCount };
    if (this.unflushedMessages >= this.config.flushMessages) result.flushed = this.flush();
    return result;
  }

  /** Updates the producer state for an appended control batch; an abort goes into the index. */
  private applyControl(header: BatchHeader, marker: ControlMarker, offset: bigint, nowMs: bigint): void {
    const done: CompletedTxn | undefined = this.producers.applyControl(header.producerId, header.producerEpoch, marker.type, marker.coordinatorEpoch, offset, nowMs);
    if (!done?.aborted) return;
    try {
      this.aborted.add(done, this.active.baseOffset);
    } catch (e) {
      throw this.fail(e);
    }
  }

  private maybeRoll(entryBytes: number, nowMs: number, recordCount: number): void {
    const a = this.active;
    if (a.size === 0) return;
    const full = a.size + entryBytes + 52 > this.config.segmentBytes;
    const old = nowMs - a.createdAtMs >= this.config.segmentMs;
    const offsetsFull = this.logEndOffset + BigInt(recordCount) - a.baseOffset > 0xfffffff0n;
    if (full || old || offsetsFull) this.roll(nowMs);
  }

  /** Starts a new active segment at the log end offset. */
  roll(nowMs = this.opts.clock.nowMs()): void {
    const old = this.active;
    if (old.size === 0) return;
    failpoint('log.beforeRoll');
    old.onBecomeInactive();
    const base = this.logEndOffset;
    this.segments.push(LogSegment.create(this.opts.dir, base, { indexIntervalBytes: this.config.indexIntervalBytes }, nowMs));
    // Crash tests: the new segment's files exist (empty), the old one is not flushed yet.
    failpoint('log.afterRoll');
    this.emit({ type: 'rolled', newBaseOffset: base });
    // As in Kafka, the rolled segment is flushed in the background; the recovery point follows.
    void this.flush(base).catch(() => undefined);
  }

  /**
   * fsyncs every segment holding offsets in [recoveryPoint, upTo) and moves the recovery point.
   * Off the request path unless the flush policy asks a produce to wait for it.
   */
  async flush(upTo: bigint = this.logEndOffset): Promise<void> {
    if (this.isOffline) return;
    const from = this.recoveryPoint;
    if (upTo <= from) return;
    const toSync = this.segments.filter((s) => s.nextOffset > from && s.baseOffset < upTo);
    if (upTo === this.logEndOffset) {
      this.unflushedMessages = 0;
      this.firstUnflushedAtMs = undefined;
    }
    try {
      await Promise.all(toSync.map((s) => s.flush()));
    } catch (e) {
      throw this.fail(e);
    }
    if (upTo > this.recoveryPoint) this.recoveryPoint = upTo;
  }

  /**
   * Forgets idempotent producers whose last batch is older than `expireBeforeMs` (Kafka's
   * producer.id.expiration.ms), so the state does not grow without bound.
   */
  expireProducers(expireBeforeMs: number): number {
    return this.producers.expire(BigInt(Math.floor(expireBeforeMs)));
  }

  /** Called periodically: applies flush.ms. */
  maybeFlushByTime(nowMs: number): Promise<void> | undefined {
    if (this.firstUnflushedAtMs === undefined) return undefined;
    if (nowMs - this.firstUnflushedAtMs < this.config.flushMs) return undefined;
    return this.flush();
  }

  /** Moves the high watermark (never backwards, never past the log end). */
  updateHighWatermark(offset: bigint): boolean {
    const hw = offset > this.logEndOffset ? this.logEndOffset : offset;
    if (hw <= this.highWatermark) return false;
    this.highWatermark = hw;
    return true;
  }

  private checkFetchOffset(offset: bigint, maxOffset: bigint): void {
    // Offsets between the high watermark and the log end exist but are not readable yet: empty.
    if (offset < this.logStartOffset || offset > this.logEndOffset) {
      throw new LogError('OFFSET_OUT_OF_RANGE', `offset ${offset} is outside [${this.logStartOffset}, ${maxOffset}]`, {
        offsetRange: { logStartOffset: this.logStartOffset, logEndOffset: maxOffset },
      });
    }
  }

  /**
   * Reads stored batches from `offset` up to about `maxBytes` (at least one batch when one is
   * available), never at or above `maxOffset` (the high watermark for consumers). The first batch
   * may start before `offset`. Throws OFFSET_OUT_OF_RANGE outside [logStartOffset, logEndOffset].
   * `check` 'header' is for replication: the follower verifies each batch's payload CRC itself, so
   * the leader checks the stored entry but that payload (see log-segment.ts).
   */
  read(offset: bigint, maxBytes: number, maxOffset: bigint = this.highWatermark, check: 'full' | 'header' = 'full'): FetchedEntry[] {
    this.ensureOnline();
    this.checkFetchOffset(offset, maxOffset);
    const out: FetchedEntry[] = [];
    if (offset >= maxOffset) return out;
    let i = this.segmentIndexFor(offset);
    let from = offset;
    let budget = maxBytes;
    try {
      for (; i < this.segments.length && budget > 0; i++) {
        const seg = this.segments[i]!;
        const entries: Entry[] = seg.read(from, budget, maxOffset, check);
        for (const e of entries) {
          if (out.length > 0 && e.size > budget) return out;
          out.push({ baseOffset: e.baseOffset, leaderEpoch: e.leaderEpoch, lastOffset: lastOffsetOf(e), batch: e.batch, size: e.size });
          budget -= e.size;
          if (budget <= 0) return out;
        }
        const last = out[out.length - 1];
        if (last && last.lastOffset + 1n >= maxOffset) return out;
        // Stopped inside this segment (the budget ended mid-entry, or at a damaged entry): batches
        // from the next segment would leave a gap in the offsets returned.
        if (last && last.lastOffset + 1n < seg.nextOffset) return out;
        from = last ? last.lastOffset + 1n : seg.nextOffset;
      }
    } catch (e) {
      // The good batches before a damaged one are still an answer; the next read starts at it and fails.
      if (out.length > 0 && isLogError(e) && e.reason === 'CORRUPT_MESSAGE') return out;
      throw this.readFailure(e, 'fetch');
    }
    return out;
  }

  private segmentIndexFor(offset: bigint): number {
    let lo = 0;
    let hi = this.segments.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.segments[mid]!.baseOffset <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /**
   * The first offset whose record timestamp is >= targetMs, below the high watermark. Decodes the
   * batches the time index leads to (usually one), the only place a record is read on the request
   * path. A batch there that cannot be decoded fails this lookup with CORRUPT_MESSAGE naming its
   * offsets (source=storage: DATA_LOSS), since a record at or after targetMs may be in it; the
   * partition stays online and lookups that do not need that batch still answer.
   */
  findOffsetByTimestamp(targetMs: bigint): { offset: bigint; timestampMs: bigint; leaderEpoch: number } | undefined {
    this.ensureOnline();
    const hw = this.highWatermark;
    const start = this.logStartOffset;
    let found: { offset: bigint; timestampMs: bigint; leaderEpoch: number } | undefined;
    let unreadable: LogError | undefined;
    const visit = (entry: Entry): boolean => {
      if (entry.baseOffset >= hw) return false;
      if (lastOffsetOf(entry) < start) return true;
      let records;
      try {
        records = decodeRecordBatch(RecordBatch.decode(entry.batch), entry.baseOffset, { maxUncompressedBytes: maxDecompressedBytes(this.config.maxMessageBytes) });
      } catch (e) {
        const last = lastOffsetOf(entry);
        const why = (e as Error).message;
        this.reportCorruptBatch(entry.baseOffset, last, 'list-offsets', why);
        unreadable = new LogError('CORRUPT_MESSAGE', `stored batch at offsets ${entry.baseOffset} to ${last} cannot be decoded: ${why}`, {
          cause: e,
          metadata: { source: 'storage', offset: entry.baseOffset.toString() },
        });
        return false;
      }
      for (const r of records) {
        if (r.timestampMs >= targetMs && r.offset >= start && r.offset < hw) {
          found = { offset: r.offset, timestampMs: r.timestampMs, leaderEpoch: entry.leaderEpoch };
          return false;
        }
      }
      return true;
    };
    try {
      for (const seg of this.segments) {
        if (seg.nextOffset <= start) continue;
        if (seg.scanFromTimestamp(targetMs, visit)) break;
      }
    } catch (e) {
      throw this.fail(e); // I/O errors only: decoding failures were caught above
    }
    if (unreadable) throw unreadable;
    return found;
  }

  /** The leader epoch history, for replication: end offset of `epoch` (KIP-279). */
  endOffsetForEpoch(epoch: number): { epoch: number; endOffset: bigint } {
    return this.epochs.endOffsetForEpoch(epoch, this.logEndOffset);
  }

  latestEpoch(): number {
    return this.epochs.latest()?.epoch ?? -1;
  }

  epochForOffset(offset: bigint): number {
    return this.epochs.epochForOffset(offset);
  }

  /**
   * Removes every batch holding an offset >= `offset` (a follower diverged from its leader). The
   * log then ends at the base offset of the batch that held `offset`.
   */
  async truncateTo(offset: bigint): Promise<void> {
    this.ensureOnline();
    if (offset >= this.logEndOffset) return;
    if (offset < this.logStartOffset) offset = this.logStartOffset;
    try {
      const removed: bigint[] = [];
      while (this.segments.length > 1 && this.active.baseOffset >= offset) {
        const s = this.segments.pop()!;
        removed.push(s.baseOffset);
        await s.delete();
      }
      this.active.truncateTo(offset);
      const leo = this.logEndOffset;
      this.epochs.truncateFromEnd(leo);
      this.aborted.deleteSegments(removed);
      this.aborted.truncateFrom(leo);
      if (this.producers.hasTransactionState) {
        // A truncated marker must reopen its transaction: only a replay knows (the index below the
        // new end is already right).
        this.producers = new ProducerStateManager();
        this.replayProducerState(this.logStartOffset, false);
      } else this.producers.truncateTo(leo);
      if (this.highWatermark > leo) this.highWatermark = leo;
      if (this.recoveryPoint > leo) this.recoveryPoint = leo;
      this.writeCheckpoints();
      this.emit({ type: 'truncated', offset: leo });
    } catch (e) {
      throw this.fail(e);
    }
  }

  /**
   * Deletes every segment and starts the log empty at `offset` (Kafka's truncateFullyAndStartAt): a
   * follower whose whole log lies below the leader's log start (an empty replacement disk, or a
   * replica that was away while retention deleted what it would need) cannot append after its
   * own end, and nothing it holds is above the leader's start, so nothing it holds is needed.
   */
  async truncateFullyAndStartAt(offset: bigint): Promise<void> {
    this.ensureOnline();
    try {
      const old = this.segments.splice(0);
      for (const s of old) await s.delete();
      this.aborted.deleteSegments(old.map((s) => s.baseOffset));
      this.segments.push(LogSegment.create(this.opts.dir, offset, { indexIntervalBytes: this.config.indexIntervalBytes }, this.opts.clock.nowMs()));
      this.logStartOffset = offset;
      this.highWatermark = offset;
      this.recoveryPoint = offset;
      this.epochs.truncateFromEnd(0n);
      this.producers = new ProducerStateManager();
      this.unflushedMessages = 0;
      this.firstUnflushedAtMs = undefined;
      this.writeCheckpoints();
      this.emit({ type: 'truncated', offset });
    } catch (e) {
      throw this.fail(e);
    }
  }

  /** Applies retention.ms / retention.bytes: deletes whole old segments, advances log start. */
  async applyRetention(nowMs: number): Promise<number> {
    if (this.isOffline || !this.config.cleanupDelete) return 0;
    const decision = segmentsToDelete(
      this.segments.map((s) => ({ baseOffset: s.baseOffset, nextOffset: s.nextOffset, sizeBytes: s.size, maxTimestampMs: s.maxTimestampMs })),
      { retentionMs: this.config.retentionMs, retentionBytes: this.config.retentionBytes },
      nowMs,
      this.highWatermark,
    );
    if (decision.deleteCount === 0) return 0;
    const doomed = this.segments.splice(0, decision.deleteCount);
    const start = this.segments[0]!.baseOffset;
    if (start > this.logStartOffset) this.logStartOffset = start;
    this.epochs.truncateFromStart(this.logStartOffset);
    this.writeCheckpoints();
    try {
      this.aborted.deleteSegments(doomed.map((s) => s.baseOffset));
      for (const s of doomed) await s.delete();
    } catch (e) {
      throw this.fail(e);
    }
    this.emit({ type: 'retention', deleted: doomed.length, reason: decision.reason, logStartOffset: this.logStartOffset });
    return doomed.length;
  }

  /** Segments the cleaner may rewrite: all but the active one, wholly below the high watermark. */
  cleanableSegments(): readonly LogSegment[] {
    return this.segments.slice(0, -1).filter((s) => s.nextOffset <= this.highWatermark);
  }

  /** Every segment, oldest first (the cleaner reads them to build its key map). */
  allSegments(): readonly LogSegment[] {
    return this.segments;
  }

  /**
   * Swaps `replaced` (consecutive segments, oldest first) for `cleaned` (one segment file written
   * by the cleaner under `<base>.log.cleaned`, with the same base offset as the first replaced).
   * Synchronous, so no read sees a half-swapped log.
   */
  async replaceSegments(replaced: readonly LogSegment[], cleanedPath: string, keepAborted?: (e: AbortedTxn) => boolean): Promise<void> {
    const first = replaced[0];
    if (!first) return;
    const at = this.segments.indexOf(first);
    if (at < 0 || replaced.some((s, i) => this.segments[at + i] !== s)) return; // log changed meanwhile
    for (const s of replaced) await s.close();
    for (const s of replaced) for (const suf of ['.log', '.index', '.timeindex'] as const) fs.rmSync(s.path(suf), { force: true });
    fs.renameSync(cleanedPath, first.path('.log'));
    const { segment } = LogSegment.open(this.opts.dir, first.baseOffset, { indexIntervalBytes: this.config.indexIntervalBytes }, this.opts.clock.nowMs(), -1n);
    this.segments.splice(at, replaced.length, segment);
    this.aborted.mergeSegments(replaced.map((s) => s.baseOffset), keepAborted);
  }

  async close(): Promise<void> {
    if (!this.isOffline) {
      try {
        this.active.onBecomeInactive();
        await this.flush();
        this.writeCheckpoints();
      } catch {
        // Offline now; the segments still need closing.
      }
    }
    for (const s of this.segments) await s.close();
  }

  /** Closes the log and removes its directory (topic deleted or replica moved away). */
  async delete(): Promise<void> {
    this.offline ??= new Error('deleted');
    for (const s of this.segments) await s.close();
    fs.rmSync(this.opts.dir, { recursive: true, force: true });
  }
}
