// Issue 12, "Validate what is stored": the broker checks the record framing of every produced batch
// before appending it (a lying batch is refused and costs nothing: no bytes, no offsets), and a
// batch that is unreadable once stored (written by an older broker, or damaged on disk) fails only
// the reads that need its records, never the partition.
import { crc32c } from '@node-rs/crc32';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CompressionCodec,
  type FetchResponse,
  OffsetSpec,
  type ProduceResponse,
  type RecordBatch,
  Records,
} from '@skein/proto/skein/broker/v1/broker.js';
import { compress } from '@skein/common/records/compression.js';
import { buildRecordBatch, decodeRecordBatch, encodeRecordBatch } from '@skein/common/records/record-batch.js';
import { compactLog } from '../src/log/log-cleaner.js';
import { DEFAULT_LOG_CONFIG } from '../src/log/log-config.js';
import { type LogEvent, PartitionLog } from '../src/log/partition-log.js';
import { assignment, call, type Harness, produceOne, produceRaw, startBroker } from './broker-harness.js';
import { ManualClock, tempDir } from './helpers.js';

let dir: string;
let cleanup: () => void;
let h: Harness;

beforeEach(async () => {
  ({ dir, cleanup } = tempDir());
  h = await startBroker(dir);
});
afterEach(async () => {
  await h.stop();
  cleanup();
});

/** A batch around `payload` with a correct CRC and the given header: only the records can lie. */
function lyingBatch(header: Partial<RecordBatch>, payload: Uint8Array): Buffer {
  const p = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  return encodeRecordBatch({
    formatVersion: 1,
    compression: CompressionCodec.COMPRESSION_CODEC_NONE,
    recordCount: 1,
    producerId: -1n,
    producerEpoch: -1,
    baseSequence: -1,
    firstTimestampMs: 1000n,
    maxTimestampMs: 1000n,
    ...header,
    crc32c: crc32c(p) >>> 0,
    records: p,
  });
}

const oneRecord = (value: string, deltaMs = 0n) => Records.encode({ records: [{ key: Buffer.from('k'), value: Buffer.from(value), headers: [], timestampDeltaMs: deltaMs }] }).finish();

function errorOf(r: ProduceResponse | FetchResponse, topicIndex = 0) {
  return r.topics[topicIndex]!.partitions[0]!.error;
}

function fetch(topic: string, offset: bigint): Promise<FetchResponse> {
  return call(h.client.fetch.bind(h.client), {
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 1 << 20,
    topics: [{ topic, partitions: [{ partition: 0, fetchOffset: offset, partitionMaxBytes: 0, currentLeaderEpoch: -1 }] }],
  });
}

function values(r: FetchResponse, from = 0n): string[] {
  return r.topics[0]!.partitions[0]!.batches.flatMap((b) => decodeRecordBatch(b.batch!, b.baseOffset)).filter((x) => x.offset >= from).map((x) => x.value!.toString());
}

function byTimestamp(topic: string, timestampMs: bigint) {
  return call(h.client.listOffsets.bind(h.client), { topics: [{ topic, partitions: [{ partition: 0, spec: OffsetSpec.OFFSET_SPEC_TIMESTAMP, timestampMs }] }] }).then((r) => r.topics[0]!.partitions[0]!);
}

describe('record framing on produce', () => {
  it('refuses lying batches with CORRUPT_MESSAGE, appends nothing of them, burns no offsets, and leaves other partitions of the request alone', async () => {
    await h.server.replicas.applyPartitionAssignment(assignment('v', 0));
    await h.server.replicas.applyPartitionAssignment(assignment('w', 0));
    const log = h.server.replicas.getPartition('v', 0)!.log;
    expect(errorOf(await produceOne(h.client, 'v', 0, buildRecordBatch([{ key: 'k', value: 'first', timestampMs: 1000 }])))).toBeUndefined();
    const sizeBefore = log.sizeBytes;

    const gzip = CompressionCodec.COMPRESSION_CODEC_GZIP;
    const lz4 = CompressionCodec.COMPRESSION_CODEC_LZ4;
    const cases: Array<[string, Buffer, RegExp]> = [
      // The finding: record_count claims 2^31-1 records; one request would have burnt them all.
      ['count', lyingBatch({ recordCount: 0x7fffffff }, oneRecord('x')), /record_count 2147483647 but holds 1 records/],
      ['count, gzip', lyingBatch({ compression: gzip, recordCount: 5 }, compress(gzip, oneRecord('x'))), /record_count 5 but holds 1/],
      ['garbage gzip', lyingBatch({ compression: gzip }, Buffer.from('not gzip at all')), /does not decompress as COMPRESSION_CODEC_GZIP/],
      ['garbage lz4', lyingBatch({ compression: lz4 }, Buffer.from('not lz4 at all!')), /does not decompress as COMPRESSION_CODEC_LZ4/],
      ['truncated', lyingBatch({}, Buffer.from(oneRecord('x')).subarray(0, 5)), /length \d+ runs past the end/],
      ['max timestamp lies', lyingBatch({ maxTimestampMs: 9_000_000_000_000n }, oneRecord('x')), /max_timestamp_ms 9000000000000 but its records' largest timestamp is 1000/],
    ];
    for (const [what, bytes, message] of cases) {
      const err = errorOf(await produceRaw(h.client, 'v', 0, bytes));
      expect(err, what).toMatchObject({ reason: 'CORRUPT_MESSAGE', code: 3, message: expect.stringMatching(message) });
    }

    // One request, two partitions: the good batch is appended, the lying one refused.
    const mixed = await call(h.client.produce.bind(h.client), {
      acks: 2,
      timeoutMs: 1000,
      topics: [
        { topic: 'w', partitions: [{ partition: 0, batch: buildRecordBatch([{ key: 'k', value: 'w-ok', timestampMs: 1 }], { compression: gzip }) }] },
        { topic: 'v', partitions: [{ partition: 0, batch: { ...buildRecordBatch([{ key: 'k', value: 'x', timestampMs: 1 }]), recordCount: 3 } }] },
      ],
    });
    expect(errorOf(mixed, 0)).toBeUndefined();
    expect(errorOf(mixed, 1)).toMatchObject({ reason: 'CORRUPT_MESSAGE' });
    expect(values(await fetch('w', 0n))).toEqual(['w-ok']);

    // Nothing of the refused batches is stored; the next batch gets the next offset.
    expect(log.logEndOffset).toBe(1n);
    expect(log.sizeBytes).toBe(sizeBefore);
    const next = await produceOne(h.client, 'v', 0, buildRecordBatch([{ key: 'k', value: 'second', timestampMs: 1001 }], { compression: lz4 }));
    expect(next.topics[0]!.partitions[0]!.baseOffset).toBe(1n);
    expect(values(await fetch('v', 0n))).toEqual(['first', 'second']);
  });

  it('ProduceStream keeps per-partition order when a compressed batch is followed by uncompressed ones', async () => {
    await h.server.replicas.applyPartitionAssignment(assignment('order', 0));
    const stream = h.client.produceStream();
    const acked = new Map<bigint, bigint>();
    const done = new Promise<void>((resolve, reject) => {
      stream.on('data', (r: { correlationId: bigint; topics: ProduceResponse['topics'] }) => {
        const p = r.topics[0]!.partitions[0]!;
        if (p.error) reject(new Error(p.error.message));
        acked.set(r.correlationId, p.baseOffset);
        if (acked.size === 4) resolve();
      });
      stream.on('error', reject);
    });
    const big = 'z'.repeat(200_000);
    const batches = [
      buildRecordBatch([{ key: 'k', value: `0${big}`, timestampMs: 1 }], { compression: CompressionCodec.COMPRESSION_CODEC_GZIP }),
      buildRecordBatch([{ key: 'k', value: '1', timestampMs: 2 }]),
      buildRecordBatch([{ key: 'k', value: `2${big}`, timestampMs: 3 }], { compression: CompressionCodec.COMPRESSION_CODEC_LZ4 }),
      buildRecordBatch([{ key: 'k', value: '3', timestampMs: 4 }]),
    ];
    batches.forEach((batch, i) => stream.write({ correlationId: BigInt(i), acks: 2, timeoutMs: 5000, topics: [{ topic: 'order', partitions: [{ partition: 0, batch }] }] }));
    await done;
    stream.end();
    expect([...acked.entries()].sort((a, b) => Number(a[0] - b[0])).map(([, o]) => o)).toEqual([0n, 1n, 2n, 3n]);
    expect(values(await fetch('order', 0n)).map((v) => v[0])).toEqual(['0', '1', '2', '3']);
  });
});

describe('stored batches that cannot be read', () => {
  it('a bad batch stored by an older broker fails only the reads that decode it: ListOffsets by timestamp, fetch and produce keep working', async () => {
    await h.server.replicas.applyPartitionAssignment(assignment('old', 0));
    const p = h.server.replicas.getPartition('old', 0)!;
    for (let i = 0; i < 3; i++) await produceOne(h.client, 'old', 0, buildRecordBatch([{ key: 'k', value: `before-${i}`, timestampMs: 1000 + i }]));
    // What the broker stored before framing validation: the header passes (CRC included), the
    // records do not (record_count says 4, one record is there). Its max timestamp is 2000.
    const bad = lyingBatch({ recordCount: 4, firstTimestampMs: 2000n, maxTimestampMs: 2000n }, oneRecord('bad'));
    expect(p.log.appendAsLeader(bad, p.leaderEpoch).baseOffset).toBe(3n);
    p.log.updateHighWatermark(p.log.logEndOffset);
    for (let i = 0; i < 2; i++) await produceOne(h.client, 'old', 0, buildRecordBatch([{ key: 'k', value: `after-${i}`, timestampMs: 3000 + i }]));

    // A timestamp answered by a good batch, before and after the bad one.
    expect(await byTimestamp('old', 1001n)).toMatchObject({ error: undefined, offset: 1n, timestampMs: 1001n });
    expect(await byTimestamp('old', 2500n)).toMatchObject({ error: undefined, offset: 7n, timestampMs: 3000n });
    // The timestamp that leads to the bad batch: a clear error naming it, reported as data loss.
    const lost = await byTimestamp('old', 1500n);
    expect(lost.error).toMatchObject({ reason: 'CORRUPT_MESSAGE', code: 15, message: expect.stringContaining('offsets 3 to 6') });
    // ... and nothing else broke: the partition is online, the same question gets the same answer.
    expect(p.log.isOffline).toBe(false);
    expect((await byTimestamp('old', 1500n)).error).toMatchObject({ reason: 'CORRUPT_MESSAGE' });
    expect(await byTimestamp('old', 3001n)).toMatchObject({ error: undefined, offset: 8n });
    // Fetch serves stored bytes (it never decodes them) and produce appends after them.
    expect(errorOf(await fetch('old', 0n))).toBeUndefined();
    expect(values(await fetch('old', 7n), 7n)).toEqual(['after-0', 'after-1']);
    const produced = await produceOne(h.client, 'old', 0, buildRecordBatch([{ key: 'k', value: 'later', timestampMs: 4000 }]));
    expect(produced.topics[0]!.partitions[0]).toMatchObject({ error: undefined, baseOffset: 9n });
    expect(p.log.corruptBatchesSeen).toBe(2);
  });
});

describe('compaction over a batch that cannot be decoded', () => {
  it('compacts around it, keeps it byte for byte, and reports it (it used to fail the cleaner for the partition, every run)', async () => {
    const clock = new ManualClock();
    const events: LogEvent[] = [];
    const logDir = `${dir}/compact-0`;
    const log = PartitionLog.open({
      dir: logDir,
      topicId: 'c-id',
      config: { ...DEFAULT_LOG_CONFIG, cleanupCompact: true, cleanupDelete: false, indexIntervalBytes: 256 },
      clock,
      onEvent: (e) => events.push(e),
    });
    const put = (key: string, value: string) => log.appendAsLeader(encodeRecordBatch(buildRecordBatch([{ key, value, timestampMs: clock.now }])), 0);
    put('a', 'a1'); // 0
    put('b', 'b1'); // 1
    // Stored by an older broker: record_count 3 but one record (offsets 2-4), key 'a'.
    const bad = lyingBatch({ recordCount: 3, firstTimestampMs: BigInt(clock.now), maxTimestampMs: BigInt(clock.now) }, oneRecord('never-decoded'));
    log.appendAsLeader(bad, 0);
    put('a', 'a2'); // 5
    log.roll();
    put('c', 'c1'); // 6, active segment
    log.updateHighWatermark(log.logEndOffset);

    const result = await compactLog(log, clock.now + 1);
    expect(result).toMatchObject({ segmentsCleaned: 1, recordsRemoved: 1 });
    expect(events).toContainEqual(expect.objectContaining({ type: 'corrupt-batch', baseOffset: 2n, lastOffset: 4n, during: 'compaction' }));
    expect(log.isOffline).toBe(false);
    const stored = log.read(0n, 1 << 20);
    // a1 (superseded by a2) is gone; b1, the unreadable batch (same bytes) and a2 remain at their offsets.
    expect(stored.map((e) => e.baseOffset)).toEqual([1n, 2n, 5n, 6n]);
    expect(Buffer.compare(stored[1]!.batch, bad)).toBe(0);
    expect(stored[1]!.lastOffset).toBe(4n);
    await log.close();
  });
});
