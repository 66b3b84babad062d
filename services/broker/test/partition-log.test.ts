import * as fs from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RecordBatch } from '@skein/proto/skein/broker/v1/broker.js';
import { decodeRecordBatch } from '@skein/common/records/record-batch.js';
import { PartitionLog, type LogEvent } from '../src/log/partition-log.js';
import { DEFAULT_LOG_CONFIG, type LogConfig } from '../src/log/log-config.js';
import { type LogError } from '../src/log/log-error.js';
import { batchBytes, ManualClock, simpleRecords, tempDir } from './helpers.js';

let dir: string;
let cleanup: () => void;
let clock: ManualClock;
let events: LogEvent[];

beforeEach(() => {
  ({ dir, cleanup } = tempDir());
  clock = new ManualClock();
  events = [];
});
afterEach(() => cleanup());

function open(config: Partial<LogConfig> = {}): PartitionLog {
  return PartitionLog.open({ dir, topicId: 't-id', config: { ...DEFAULT_LOG_CONFIG, indexIntervalBytes: 256, ...config }, clock, onEvent: (e) => events.push(e) });
}

function appendMany(log: PartitionLog, batches: number, perBatch = 3): void {
  for (let b = 0; b < batches; b++) {
    log.appendAsLeader(batchBytes(simpleRecords(perBatch, `b${b}`, clock.now)), 0);
    log.updateHighWatermark(log.logEndOffset);
    clock.advance(10);
  }
}

function readAll(log: PartitionLog, from = log.logStartOffset): bigint[] {
  const offsets: bigint[] = [];
  let next = from;
  while (next < log.highWatermark) {
    const entries = log.read(next, 4096);
    for (const e of entries) {
      for (const r of decodeRecordBatch(RecordBatch.decode(e.batch), e.baseOffset)) if (r.offset >= next) offsets.push(r.offset);
      next = e.lastOffset + 1n;
    }
  }
  return offsets;
}

function reasonOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return (e as LogError).reason;
  }
  return undefined;
}

describe('PartitionLog', () => {
  it('appends, rolls by segment.bytes, reads back every offset across segments and after reopen', async () => {
    const log = open({ segmentBytes: 2048 });
    appendMany(log, 60);
    expect(log.logEndOffset).toBe(180n);
    expect(log.segmentCount).toBeGreaterThan(3);
    expect(readAll(log)).toEqual(Array.from({ length: 180 }, (_, i) => BigInt(i)));
    // A read from the middle of a batch starts with the batch holding the offset.
    expect(log.read(4n, 1)[0]!.baseOffset).toBe(3n);
    await log.close();
    const again = open({ segmentBytes: 2048 });
    expect(again.logEndOffset).toBe(180n);
    expect(again.highWatermark).toBe(180n);
    expect(readAll(again)).toHaveLength(180);
    expect(events.filter((e) => e.type === 'recovered')).toHaveLength(0);
    await again.close();
  });

  it('rolls by segment.ms using the injected clock', async () => {
    const log = open({ segmentMs: 1000 });
    appendMany(log, 1);
    clock.advance(1000);
    appendMany(log, 1);
    expect(log.segmentCount).toBe(2);
    await log.close();
  });

  it('recovers from a torn tail: truncates at the last valid entry and rebuilds indexes', async () => {
    const log = open({ segmentBytes: 1 << 20 });
    appendMany(log, 20);
    // Simulate a crash: no clean close, the checkpoint says nothing was flushed.
    const logFile = join(dir, '00000000000000000000.log');
    const size = fs.statSync(logFile).size;
    fs.truncateSync(logFile, size - 17);
    fs.rmSync(join(dir, '00000000000000000000.index'));
    const again = open();
    expect(again.logEndOffset).toBe(57n);
    again.updateHighWatermark(again.logEndOffset);
    const recovered = events.find((e) => e.type === 'recovered');
    expect(recovered && recovered.type === 'recovered' && recovered.report.truncatedBytes).toBeGreaterThan(0);
    expect(readAll(again)).toEqual(Array.from({ length: 57 }, (_, i) => BigInt(i)));
    appendMany(again, 1);
    expect(again.logEndOffset).toBe(60n);
    await again.close();
    void log;
  });

  it('detects a flipped byte in a closed segment on read: the reads that need it fail and it is reported, the partition stays online', async () => {
    const log = open({ segmentBytes: 2048 });
    appendMany(log, 40);
    await log.close();
    const first = join(dir, '00000000000000000000.log');
    const bytes = fs.readFileSync(first);
    bytes[200] = bytes[200]! ^ 0x40;
    fs.writeFileSync(first, bytes);
    const again = open({ segmentBytes: 2048 });
    // The batches before the damaged one are served; a read starting at it fails as stored-data corruption.
    const before = again.read(0n, 1 << 20);
    expect(before.length).toBeGreaterThan(0);
    const damaged = before[before.length - 1]!.lastOffset + 1n;
    let err: unknown;
    try {
      again.read(damaged, 1 << 20);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ reason: 'CORRUPT_MESSAGE', metadata: { source: 'storage', offset: damaged.toString() } });
    expect(events).toContainEqual(expect.objectContaining({ type: 'corrupt-batch', baseOffset: damaged, during: 'fetch' }));
    // Not an I/O error: the partition stays online, later segments read, appends go on.
    expect(again.isOffline).toBe(false);
    expect(events.some((e) => e.type === 'offline')).toBe(false);
    expect(again.read(100n, 1 << 20)[0]!.lastOffset).toBeGreaterThanOrEqual(100n);
    const end = again.logEndOffset;
    expect(again.appendAsLeader(batchBytes(simpleRecords(1, 'x', 0)), 0).baseOffset).toBe(end);
    await again.close();
  });

  it('a read that stops inside a segment (budget ended mid-entry) returns no batch of the next segment: no gap in offsets', async () => {
    const log = open();
    const big = (n: number, ts: number) => batchBytes([{ key: 'k', value: 'x'.repeat(n), timestampMs: ts }]);
    log.appendAsLeader(big(1000, 1), 0); // offset 0
    log.appendAsLeader(big(1500, 2), 0); // offset 1, last of its segment
    log.roll();
    log.appendAsLeader(big(10, 3), 0); // offset 2, first of the next segment, small
    log.updateHighWatermark(log.logEndOffset);
    const [a, b, c] = [0n, 1n, 2n].map((o) => log.read(o, 1)[0]!);
    expect(b!.size).toBeGreaterThan(c!.size + 10);
    // Room for the first batch and the small one, not for the one between them.
    expect(log.read(0n, a!.size + c!.size + 10).map((e) => e.baseOffset)).toEqual([0n]);
    expect(log.read(0n, 1 << 20).map((e) => e.baseOffset)).toEqual([0n, 1n, 2n]);
    await log.close();
  });

  it('answers out-of-range offsets with the valid range and never reads above the high watermark', async () => {
    const log = open();
    appendMany(log, 2);
    log.appendAsLeader(batchBytes(simpleRecords(3, 'x', clock.now)), 0); // not yet below the HW
    expect(log.read(6n, 1000)).toEqual([]);
    expect(log.read(8n, 1000)).toEqual([]);
    expect(log.read(0n, 1 << 20).map((e) => e.baseOffset)).toEqual([0n, 3n]);
    try {
      log.read(10n, 100);
      expect.unreachable();
    } catch (e) {
      expect((e as LogError).reason).toBe('OFFSET_OUT_OF_RANGE');
      expect((e as LogError).offsetRange).toEqual({ logStartOffset: 0n, logEndOffset: 6n });
    }
    await log.close();
  });

  it('finds offsets by timestamp through the time index', async () => {
    const log = open({ segmentBytes: 4096 });
    for (let b = 0; b < 50; b++) {
      log.appendAsLeader(batchBytes(simpleRecords(4, `b${b}`, 1000 + b * 100)), 0);
    }
    log.updateHighWatermark(log.logEndOffset);
    expect(log.findOffsetByTimestamp(0n)).toMatchObject({ offset: 0n, timestampMs: 1000n });
    expect(log.findOffsetByTimestamp(1302n)).toMatchObject({ offset: 14n, timestampMs: 1302n });
    expect(log.findOffsetByTimestamp(1304n)).toMatchObject({ offset: 16n, timestampMs: 1400n });
    expect(log.findOffsetByTimestamp(4903n)).toMatchObject({ offset: 159n });
    expect(log.findOffsetByTimestamp(99999n)).toBeUndefined();
    await log.close();
    const again = open({ segmentBytes: 4096 });
    expect(again.findOffsetByTimestamp(3001n)).toMatchObject({ offset: 81n, timestampMs: 3001n });
    await again.close();
  });

  it('keeps idempotent producer state across a restart (and a crash)', async () => {
    const log = open();
    const b = (seq: number) => batchBytes(simpleRecords(2, `s${seq}`, clock.now), { producerId: 9n, producerEpoch: 0, baseSequence: seq });
    expect(log.appendAsLeader(b(0), 0).baseOffset).toBe(0n);
    expect(log.appendAsLeader(b(2), 0).baseOffset).toBe(2n);
    expect(log.appendAsLeader(b(2), 0)).toMatchObject({ baseOffset: 2n, duplicate: true });
    await log.close();
    const again = open();
    expect(again.appendAsLeader(b(2), 0)).toMatchObject({ baseOffset: 2n, duplicate: true });
    expect(reasonOf(() => again.appendAsLeader(b(8), 0))).toBe('OUT_OF_ORDER_SEQUENCE');
    expect(again.appendAsLeader(b(4), 0).baseOffset).toBe(4n);
    // Crash: the snapshot is older than the log; the entries after it are replayed.
    const third = open();
    expect(third.appendAsLeader(b(4), 0)).toMatchObject({ baseOffset: 4n, duplicate: true });
    expect(reasonOf(() => third.appendAsLeader(batchBytes(simpleRecords(1, 'z', 0), { producerId: 9n, producerEpoch: 0, baseSequence: 6 }), 0))).toBeUndefined();
    fs.rmSync(join(dir, 'producer-state.snapshot'));
    await third.close();
    void again;
  });

  it('truncates to an offset and keeps the leader-epoch history consistent', async () => {
    const log = open({ segmentBytes: 1024 });
    appendMany(log, 10);
    for (let b = 0; b < 10; b++) log.appendAsLeader(batchBytes(simpleRecords(3, `e${b}`, clock.now)), 3);
    expect(log.endOffsetForEpoch(0)).toEqual({ epoch: 0, endOffset: 30n });
    expect(log.endOffsetForEpoch(3)).toEqual({ epoch: 3, endOffset: 60n });
    await log.truncateTo(31n);
    expect(log.logEndOffset).toBe(30n);
    expect(log.endOffsetForEpoch(3)).toEqual({ epoch: 0, endOffset: 30n });
    appendMany(log, 1);
    expect(log.logEndOffset).toBe(33n);
    await log.close();
  });

  it('applies retention by bytes and by time, advancing the log start offset', async () => {
    const log = open({ segmentBytes: 1024, retentionBytes: 2048, retentionMs: -1 });
    appendMany(log, 40);
    const before = log.segmentCount;
    const deleted = await log.applyRetention(clock.now);
    expect(deleted).toBeGreaterThan(0);
    expect(log.segmentCount).toBe(before - deleted);
    expect(log.logStartOffset).toBeGreaterThan(0n);
    expect(log.sizeBytes).toBeLessThan(2048 + 1024);
    expect(readAll(log)[0]).toBe(log.logStartOffset);
    log.config = { ...log.config, retentionBytes: -1, retentionMs: 1000 };
    clock.advance(10_000);
    await log.applyRetention(clock.now);
    expect(log.segmentCount).toBe(1);
    await log.close();
    const again = open({ segmentBytes: 1024 });
    expect(again.logStartOffset).toBe(log.logStartOffset);
    await again.close();
  });

  it('flushes and moves the recovery point when flush.messages asks for it', async () => {
    const log = open({ flushMessages: 3 });
    const r = log.appendAsLeader(batchBytes(simpleRecords(3, 'f', clock.now)), 0);
    expect(r.flushed).toBeDefined();
    await r.flushed;
    expect(log.recoveryPoint).toBe(3n);
    await log.close();
  });
});
