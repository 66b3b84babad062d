// The entry format across the change to one CRC pass per append (entry-format.ts): segments written
// by earlier brokers open and read; a damaged payload is still found by recovery and by the
// follower when the leader's replication read leaves the payload to it.
import * as fs from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RecordBatch } from '@skein/proto/skein/broker/v1/broker.js';
import { buildRecordBatch, decodeRecordBatch, encodeRecordBatch } from '@skein/common/records/record-batch.js';
import { PartitionLog, type LogEvent } from '../src/log/partition-log.js';
import { DEFAULT_LOG_CONFIG } from '../src/log/log-config.js';
import { legacyEncodeEntryHeader } from './fixtures/legacy-entry.js';
import { ManualClock, tempDir } from './helpers.js';

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

function open(at = dir): PartitionLog {
  return PartitionLog.open({ dir: at, topicId: 't-id', config: { ...DEFAULT_LOG_CONFIG, indexIntervalBytes: 4096 }, clock, onEvent: (e) => events.push(e) });
}

/** A batch of `n` records of ~1 KiB: from 9 records on, over the size where the CRC is combined. */
function batch(n: number, tag: string): Buffer {
  return encodeRecordBatch(buildRecordBatch(Array.from({ length: n }, (_, i) => ({ key: `${tag}-${i}`, value: Buffer.alloc(1000, 97 + (i % 26)), timestampMs: 1_700_000_000_000 + i }))));
}

function readAll(log: PartitionLog): string[] {
  const keys: string[] = [];
  let next = log.logStartOffset;
  while (next < log.logEndOffset) {
    for (const e of log.read(next, 1 << 20, log.logEndOffset)) {
      for (const r of decodeRecordBatch(RecordBatch.decode(e.batch), e.baseOffset)) if (r.offset >= next) keys.push(r.key.toString());
      next = e.lastOffset + 1n;
    }
  }
  return keys;
}

/** Flips one bit at `at` bytes into the entry holding `baseOffset`'s batch payload (counted from the entry start). */
function flip(file: string, position: number): void {
  const bytes = fs.readFileSync(file);
  bytes[position] = bytes[position]! ^ 0x04;
  fs.writeFileSync(file, bytes);
}

/** What a crash leaves for recovery: no checkpoint (recovery point 0), no indexes. */
function forgetCleanShutdown(at: string): void {
  for (const f of fs.readdirSync(at)) if (!f.endsWith('.log')) fs.rmSync(join(at, f));
}

describe('entry format compatibility and corruption detection', () => {
  it('opens a segment written by the two-pass encoder of earlier brokers, reads it, recovers it and appends after it', async () => {
    const old = [batch(2, 'a'), batch(30, 'b'), batch(1, 'c'), batch(12, 'd')];
    const parts: Buffer[] = [];
    let offset = 0n;
    for (const b of old) {
      const count = RecordBatch.decode(b).recordCount;
      parts.push(legacyEncodeEntryHeader({ baseOffset: offset, leaderEpoch: 0, recordCount: count, maxTimestampMs: 1_700_000_000_000n + BigInt(count - 1), producerId: -1n, producerEpoch: -1, baseSequence: -1 }, b), b);
      offset += BigInt(count);
    }
    fs.writeFileSync(join(dir, '00000000000000000000.log'), Buffer.concat(parts));
    const log = open();
    // Every entry was checked (no index files): none was cut.
    const recovered = events.find((e) => e.type === 'recovered');
    expect(recovered?.type === 'recovered' && recovered.report).toMatchObject({ entriesScanned: 4 });
    expect(recovered?.type === 'recovered' && recovered.report.truncatedBytes).toBeUndefined();
    expect(log.logEndOffset).toBe(45n);
    log.appendAsLeader(batch(20, 'e'), 0);
    const want = [...['a', 'b', 'c', 'd'].flatMap((t, i) => Array.from({ length: [2, 30, 1, 12][i]! }, (_, j) => `${t}-${j}`)), ...Array.from({ length: 20 }, (_, j) => `e-${j}`)];
    expect(readAll(log)).toEqual(want);
    await log.close();
    // Old and new entries side by side pass a full recovery.
    forgetCleanShutdown(dir);
    events = [];
    const again = open();
    const r = events.find((e) => e.type === 'recovered');
    expect(r?.type === 'recovered' && r.report).toMatchObject({ entriesScanned: 5 });
    expect(r?.type === 'recovered' && r.report.truncatedBytes).toBeUndefined();
    expect(readAll(again)).toEqual(want);
    await again.close();
  });

  it('recovery still finds a damaged payload in an entry whose CRC was combined on append', async () => {
    const log = open();
    log.appendAsLeader(batch(10, 'a'), 0);
    const second = log.appendAsLeader(batch(10, 'b'), 0);
    log.appendAsLeader(batch(10, 'c'), 0);
    const [entry] = log.read(second.baseOffset, 1, log.logEndOffset);
    await log.close();
    forgetCleanShutdown(dir);
    // A bit deep inside the second batch's records (its payload CRC is not recomputed on append).
    flip(join(dir, '00000000000000000000.log'), entry!.size + Math.floor(entry!.size / 2));
    const again = open();
    const r = events.find((e) => e.type === 'recovered');
    expect(r?.type === 'recovered' && r.report.truncationReason).toMatch(/crc32c mismatch/);
    expect(again.logEndOffset).toBe(10n);
    expect(readAll(again)).toEqual(Array.from({ length: 10 }, (_, i) => `a-${i}`));
    await again.close();
  });

  it("leaves a damaged payload to the follower on replication reads, which refuses it; consumer reads and a damaged entry header fail on the leader", async () => {
    const log = open();
    log.appendAsLeader(batch(10, 'a'), 0);
    const entrySize = log.read(0n, 1, log.logEndOffset)[0]!.size;
    await log.close();
    const file = join(dir, '00000000000000000000.log');
    flip(file, Math.floor(entrySize / 2));
    const leader = open();
    // A consumer read checks every byte.
    expect(() => leader.read(0n, 1 << 20, leader.logEndOffset)).toThrow(expect.objectContaining({ reason: 'CORRUPT_MESSAGE' }));
    // The replication read does not read the payload; the follower's append does, and refuses it.
    const [sent] = leader.read(0n, 1 << 20, leader.logEndOffset, 'header');
    expect(sent!.baseOffset).toBe(0n);
    const followerDir = join(dir, 'follower');
    const follower = open(followerDir);
    expect(() => follower.appendAsFollower(Buffer.from(sent!.batch), sent!.baseOffset, sent!.leaderEpoch)).toThrow(expect.objectContaining({ reason: 'CORRUPT_MESSAGE', message: expect.stringMatching(/crc32c mismatch/) }));
    expect(follower.logEndOffset).toBe(0n);
    await follower.close();
    await leader.close();
    // The entry header (here its leader epoch, which opening the log does not look at) is still
    // checked on the replication read.
    flip(file, Math.floor(entrySize / 2));
    flip(file, 23);
    const again = open();
    expect(again.logEndOffset).toBe(10n);
    expect(() => again.read(0n, 1 << 20, again.logEndOffset, 'header')).toThrow(expect.objectContaining({ reason: 'CORRUPT_MESSAGE' }));
    await again.close();
  });
});
