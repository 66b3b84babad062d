/**
 * Turns the batches of one fetch answer into records. Pure (no I/O).
 *
 * A fetched batch is never trusted: its CRC, framing and record count are checked, and a
 * compressed one is decompressed under a byte budget, so a batch that claims little and expands
 * to gigabytes (or a fetch of many such batches) costs at most `maxUncompressedBytes` of memory,
 * never an out-of-memory crash. Kafka's fetcher behaves the same way on a bad batch: the records
 * of the batches before it are returned, and the error comes with the next read, which starts at
 * the bad batch. So a caller always sees every good record before a bad one, then a clear error.
 *
 * Transactions (broker.proto, ISOLATION_LEVEL_READ_COMMITTED): control batches (commit/abort
 * markers) hold no application records and are skipped; with the answer's aborted_transactions,
 * the transactional batches of aborted transactions are dropped too. `nextOffset` says where the
 * next fetch starts even when every batch was skipped (a fetch of only a marker has no records).
 */
import { SkeinError } from '@skein/common/errors.js';
import { DecompressionLimitError } from '@skein/common/records/compression.js';
import { decodeRecordBatch, type ConsumedRecord } from '@skein/common/records/record-batch.js';
import { CompressionCodec, ControlRecord, ControlRecordType, type RecordBatch } from '@skein/proto/skein/broker/v1/broker.js';

/** The default byte budget for decompressed records per fetch: the client's largest gRPC message. */
export const DEFAULT_MAX_UNCOMPRESSED_BYTES = 64 << 20;

export interface DecodedFetch {
  /** Records at or after the fetch offset, from the batches before the first bad one. */
  records: ConsumedRecord[];
  /** Why decoding stopped early at a bad batch (with no records before it, the caller throws it). */
  error?: SkeinError;
  /** The offset after the last batch consumed (records returned or skipped); undefined when none was. */
  nextOffset?: bigint;
}

/** An aborted transaction as a READ_COMMITTED fetch answer lists it. */
export interface AbortedTransactionInput {
  producerId: bigint;
  firstOffset: bigint;
}

const recordBytes = (r: ConsumedRecord) => r.key.length + (r.value?.length ?? 0) + r.headers.reduce((n, h) => n + h.key.length + h.value.length, 0);

export function decodeFetchedBatches(
  where: { topic: string; partition: number; fetchOffset: bigint },
  batches: ReadonlyArray<{ baseOffset: bigint; batch?: RecordBatch }>,
  maxUncompressedBytes: number = DEFAULT_MAX_UNCOMPRESSED_BYTES,
  abortedTransactions: readonly AbortedTransactionInput[] = [],
): DecodedFetch {
  const records: ConsumedRecord[] = [];
  let budget = maxUncompressedBytes;
  let nextOffset: bigint | undefined;
  // Kafka's consumer algorithm: a producer is "aborted" from its aborted transaction's first offset
  // until its ABORT marker; its transactional batches in between are dropped.
  const pending = [...abortedTransactions].sort((a, b) => (a.firstOffset < b.firstOffset ? -1 : a.firstOffset > b.firstOffset ? 1 : 0));
  const abortedProducers = new Set<bigint>();
  for (const b of batches) {
    if (b.batch) {
      while (pending.length > 0 && pending[0]!.firstOffset <= b.baseOffset) abortedProducers.add(pending.shift()!.producerId);
      const end = b.baseOffset + BigInt(Math.max(b.batch.recordCount, 1));
      if (b.batch.isControl === true) {
        if (abortedProducers.has(b.batch.producerId) && controlType(b.batch) === ControlRecordType.CONTROL_RECORD_TYPE_ABORT) abortedProducers.delete(b.batch.producerId);
        nextOffset = end;
        continue;
      }
      if (b.batch.isTransactional === true && abortedProducers.has(b.batch.producerId)) {
        nextOffset = end;
        continue;
      }
    }
    const compressed = b.batch !== undefined && b.batch.compression !== CompressionCodec.COMPRESSION_CODEC_NONE;
    let decoded: ConsumedRecord[];
    try {
      if (!b.batch) throw new Error('the fetch answer carries no batch');
      decoded = decodeRecordBatch(b.batch, b.baseOffset, compressed ? { maxUncompressedBytes: budget } : {});
    } catch (err) {
      // Over the rest of this fetch's budget but within a whole one: stop here; the next fetch
      // starts at this batch with the full budget.
      if (err instanceof DecompressionLimitError && budget < maxUncompressedBytes && records.length > 0) return { records, nextOffset };
      return { records, error: batchError(where, b.baseOffset, err, maxUncompressedBytes), nextOffset };
    }
    for (const r of decoded) {
      if (compressed) budget -= recordBytes(r);
      if (r.offset >= where.fetchOffset) records.push(r);
    }
    nextOffset = b.baseOffset + BigInt(decoded.length);
  }
  return { records, nextOffset };
}

/** The type of a control batch's ControlRecord; UNSPECIFIED when it cannot be read. */
function controlType(batch: RecordBatch): ControlRecordType {
  try {
    const value = decodeRecordBatch(batch, 0n)[0]?.value;
    return value ? ControlRecord.decode(value).type : ControlRecordType.CONTROL_RECORD_TYPE_UNSPECIFIED;
  } catch {
    return ControlRecordType.CONTROL_RECORD_TYPE_UNSPECIFIED;
  }
}

function batchError(where: { topic: string; partition: number }, baseOffset: bigint, err: unknown, limit: number): SkeinError {
  const tp = `${where.topic}-${where.partition}`;
  const metadata = { topic: where.topic, partition: String(where.partition), baseOffset: String(baseOffset) };
  if (err instanceof DecompressionLimitError) {
    return new SkeinError('MESSAGE_TOO_LARGE', `${tp}: the batch at offset ${baseOffset} decompresses to more than ${limit} bytes (the consumer's maxUncompressedBytes)`, { metadata, cause: err });
  }
  if ((err as { reason?: unknown }).reason === 'UNSUPPORTED_COMPRESSION_TYPE') {
    return new SkeinError('UNSUPPORTED_COMPRESSION_TYPE', `${tp}: the batch at offset ${baseOffset}: ${(err as Error).message}`, { metadata, cause: err });
  }
  return new SkeinError('CORRUPT_MESSAGE', `${tp}: the batch at offset ${baseOffset} is corrupt: ${(err as Error).message ?? String(err)}`, { metadata, cause: err });
}
