// Every codec Kafka offers, end to end on the Node this project targets (20): a producer with
// `compression` set to none, gzip, snappy, lz4 or zstd sends through a real broker (metadata on
// its embedded store, no etcd), the broker checks each compressed batch's records after bounded
// decompression, stores it as sent, and a consumer reads back every record. The broker's check
// runs for each codec: a batch whose payload does not decompress is CORRUPT_MESSAGE, and one that
// would decompress past 16 x max.message.bytes is MESSAGE_TOO_LARGE, with nothing appended.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32c } from '@node-rs/crc32';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Acks, CompressionCodec, SkeinClient } from '@skein/client';
import { buildRecordBatch } from '@skein/common/records/record-batch.js';
import { compress } from '@skein/common/records/compression.js';
import type { RecordBatch } from '@skein/proto/skein/broker/v1/broker.js';
import { brokerClient } from './harness/clients.js';
import { startService, stopAll, waitFor, type ServiceProcess } from './harness/services.js';
import { BROKER_ENTRY, METADATA_ENTRY } from './harness/entries.js';

const CODECS = [
  CompressionCodec.COMPRESSION_CODEC_NONE,
  CompressionCodec.COMPRESSION_CODEC_GZIP,
  CompressionCodec.COMPRESSION_CODEC_SNAPPY,
  CompressionCodec.COMPRESSION_CODEC_LZ4,
  CompressionCodec.COMPRESSION_CODEC_ZSTD,
];
const name = (codec: CompressionCodec) => CompressionCodec[codec]!.replace('COMPRESSION_CODEC_', '').toLowerCase();

const storeDir = mkdtempSync(join(tmpdir(), 'skein-codecs-store-'));
let broker: ServiceProcess;
let client: SkeinClient;

beforeAll(async () => {
  const metadata = await startService({ name: 'metadata', entry: METADATA_ENTRY, args: ['--store', `embedded:${join(storeDir, 'store.db')}`] });
  broker = await startService({ name: 'broker-1', entry: BROKER_ENTRY, dataDirFlag: '--data-dir', args: ['--broker-id', '1', '--metadata-addresses', metadata.address] });
  client = new SkeinClient({ metadata: [metadata.address] });
  await waitFor(async () => (await client.describeCluster()).brokers.length === 1, { timeoutMs: 15_000, message: 'broker registered' });
}, 60_000);

afterAll(async () => {
  client?.close();
  await stopAll();
  rmSync(storeDir, { recursive: true, force: true });
});

async function createTopic(topic: string, configs: Record<string, string> = {}): Promise<void> {
  await client.createTopic(topic, { partitions: 1, replicationFactor: 1, configs });
  await waitFor(async () => (await client.topic(topic, true)).partitions.every((p) => p.leaderId > 0), { timeoutMs: 15_000, message: `${topic} has a leader` });
}

/** The batches stored in partition 0, as the broker serves them (compression as sent). */
async function storedBatches(topic: string): Promise<RecordBatch[]> {
  const b = brokerClient(broker.address);
  try {
    const res = await b.fetch({ maxWaitMs: 0, minBytes: 1, maxBytes: 8 << 20, topics: [{ topic, partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 8 << 20, currentLeaderEpoch: -1 }] }] });
    return res.topics[0]!.partitions[0]!.batches.map((x) => x.batch!);
  } finally {
    b.close();
  }
}

/** Produces one raw batch to partition 0 and returns the partition's answer. */
async function produceRaw(topic: string, batch: RecordBatch) {
  const b = brokerClient(broker.address);
  try {
    const res = await b.produce({ acks: Acks.ACKS_LEADER, timeoutMs: 10_000, topics: [{ topic, partitions: [{ partition: 0, batch }] }] });
    return res.topics[0]!.partitions[0]!;
  } finally {
    b.close();
  }
}

/** A batch whose `records` are replaced by `payload`, with a CRC that matches it. */
function withPayload(codec: CompressionCodec, payload: Uint8Array): RecordBatch {
  const batch = buildRecordBatch([{ value: 'x', timestampMs: 1 }], { compression: codec });
  return { ...batch, records: payload, crc32c: crc32c(Buffer.from(payload)) >>> 0 };
}

describe('codecs end to end', () => {
  for (const codec of CODECS) {
    it(`produces with ${name(codec)} through the client, stores the batch as sent and consumes every record back`, async () => {
      const topic = `codec-${name(codec)}`;
      await createTopic(topic);
      const producer = client.producer({ compression: codec, lingerMs: 50 });
      const values = Array.from({ length: 500 }, (_, i) => `2026-11-30T12:00:00Z INFO ${name(codec)} record ${i} path=/items/${i % 97} status=200`);
      await Promise.all(values.map((value, i) => producer.sendRecord(topic, { key: `k${i % 7}`, value })));
      await producer.close();

      const batches = await storedBatches(topic);
      expect(batches.length).toBeGreaterThan(0);
      for (const b of batches) expect(CompressionCodec[b.compression]).toBe(CompressionCodec[codec]);
      if (codec !== CompressionCodec.COMPRESSION_CODEC_NONE) {
        // Compressed on the wire and on disk: well under the records' own size.
        const stored = batches.reduce((n, b) => n + b.records.length, 0);
        expect(stored).toBeLessThan(values.join('').length / 2);
      }

      const got: string[] = [];
      for (let offset = 0n; got.length < values.length;) {
        const { records } = await client.fetch(topic, 0, offset);
        expect(records.length).toBeGreaterThan(0);
        for (const r of records) got.push(r.value!.toString());
        offset = records[records.length - 1]!.offset + 1n;
      }
      expect(got).toEqual(values);
    });
  }

  for (const codec of CODECS.filter((c) => c !== CompressionCodec.COMPRESSION_CODEC_NONE)) {
    it(`the broker checks a ${name(codec)} batch after bounded decompression: garbage is CORRUPT_MESSAGE, a bomb MESSAGE_TOO_LARGE, nothing appended`, async () => {
      const topic = `codec-check-${name(codec)}`;
      // max.message.bytes 64 KiB: the broker's decompression limit is 16 x that, 1 MiB.
      await createTopic(topic, { 'max.message.bytes': String(64 << 10) });

      const garbage = await produceRaw(topic, withPayload(codec, Buffer.from('these bytes are not compressed by any codec at all')));
      expect(garbage.error).toMatchObject({ reason: 'CORRUPT_MESSAGE' });

      // Well-formed records, 1 MiB + 64 KiB of them, past the 1 MiB limit though the batch is
      // within max.message.bytes (snappy compresses at most about 21:1, the others far more).
      const bomb = buildRecordBatch([{ value: Buffer.alloc((1 << 20) + (64 << 10)), timestampMs: 1 }], { compression: codec });
      expect(bomb.records.length).toBeLessThan(64 << 10);
      expect((await produceRaw(topic, bomb)).error).toMatchObject({ reason: 'MESSAGE_TOO_LARGE' });

      // A payload that decompresses fine but is not the Records it claims.
      const notRecords = await produceRaw(topic, withPayload(codec, compress(codec, Buffer.from([0xff, 0xff, 0xff]))));
      expect(notRecords.error).toMatchObject({ reason: 'CORRUPT_MESSAGE' });

      expect(await storedBatches(topic)).toEqual([]);
      // The partition still takes a good batch of the same codec.
      const ok = await produceRaw(topic, buildRecordBatch([{ value: 'fine', timestampMs: 1 }], { compression: codec }));
      expect(ok.error).toBeUndefined();
      expect(ok.baseOffset).toBe(0n);
    });
  }
});
