/**
 * Hand-written codecs for the few BrokerService messages that carry record batches, following the
 * wire view in proto/skein/broker/internal/v1/wire.proto: the batch is read as a Buffer view into
 * the request (no copy, no record decode) and fetched batches are written as the stored bytes.
 * Everything else uses the generated public codecs.
 */
import { BinaryReader, BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { PartitionError } from '@skein/proto/skein/broker/v1/broker.js';

export interface ProduceRequestWire {
  correlationId: bigint;
  acks: number;
  timeoutMs: number;
  topics: Array<{ topic: string; partitions: Array<{ partition: number; batch: Buffer }> }>;
}

function view(u8: Uint8Array): Buffer {
  return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}

function decodePartition(r: BinaryReader, end: number): { partition: number; batch: Buffer } {
  const out: { partition: number; batch: Buffer } = { partition: 0, batch: Buffer.alloc(0) };
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === (1 << 3 | WireType.Varint)) out.partition = r.int32();
    else if (tag === (2 << 3 | WireType.LengthDelimited)) out.batch = view(r.bytes());
    else r.skip(tag & 7);
  }
  return out;
}

function decodeTopic(r: BinaryReader, end: number): ProduceRequestWire['topics'][number] {
  const out: ProduceRequestWire['topics'][number] = { topic: '', partitions: [] };
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === (1 << 3 | WireType.LengthDelimited)) out.topic = r.string();
    else if (tag === (2 << 3 | WireType.LengthDelimited)) {
      const len = r.uint32();
      out.partitions.push(decodePartition(r, r.pos + len));
    } else r.skip(tag & 7);
  }
  return out;
}

/**
 * Decodes skein.broker.v1.ProduceRequest (`stream` false: fields acks=1, timeout_ms=2, topics=3) or
 * ProduceStreamRequest (`stream` true: correlation_id=1, acks=2, timeout_ms=3, topics=4).
 */
export function decodeProduceRequest(buf: Buffer, stream: boolean): ProduceRequestWire {
  const r = new BinaryReader(buf);
  const out: ProduceRequestWire = { correlationId: 0n, acks: 0, timeoutMs: 0, topics: [] };
  const shift = stream ? 1 : 0;
  while (r.pos < r.len) {
    const tag = r.uint32();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (stream && field === 1 && wire === WireType.Varint) out.correlationId = BigInt(r.int64().toString());
    else if (field === 1 + shift && wire === WireType.Varint) out.acks = r.int32();
    else if (field === 2 + shift && wire === WireType.Varint) out.timeoutMs = r.int32();
    else if (field === 3 + shift && wire === WireType.LengthDelimited) {
      const len = r.uint32();
      out.topics.push(decodeTopic(r, r.pos + len));
    } else r.skip(wire);
  }
  return out;
}

export interface FetchedBatchWire {
  baseOffset: bigint;
  leaderEpoch: number;
  batch: Buffer;
}

export interface PartitionFetchResponseWire {
  partition: number;
  error?: PartitionError;
  highWatermark: bigint;
  logStartOffset: bigint;
  batches: FetchedBatchWire[];
}

function writeBatches(w: BinaryWriter, field: number, batches: readonly FetchedBatchWire[]): void {
  for (const b of batches) {
    w.uint32((field << 3) | WireType.LengthDelimited).fork();
    w.uint32(8).int64(b.baseOffset);
    if (b.leaderEpoch !== 0) w.uint32(16).int32(b.leaderEpoch);
    // The stored RecordBatch bytes, appended as a chunk: copied once, into the final buffer.
    w.uint32(26).bytes(b.batch);
    w.join();
  }
}

function finish(w: BinaryWriter): Buffer {
  return view(w.finish());
}

/** Encodes skein.broker.v1.FetchResponse. */
export function encodeFetchResponse(topics: ReadonlyArray<{ topic: string; partitions: readonly PartitionFetchResponseWire[] }>): Buffer {
  const w = new BinaryWriter();
  for (const t of topics) {
    w.uint32(10).fork();
    w.uint32(10).string(t.topic);
    for (const p of t.partitions) {
      w.uint32(18).fork();
      w.uint32(8).int32(p.partition);
      if (p.error) {
        w.uint32(18).fork();
        PartitionError.encode(p.error, w);
        w.join();
      }
      w.uint32(24).int64(p.highWatermark);
      w.uint32(32).int64(p.logStartOffset);
      writeBatches(w, 5, p.batches);
      w.join();
    }
    w.join();
  }
  return finish(w);
}

/** Encodes skein.broker.v1.SubscribeResponse. */
export function encodeSubscribeResponse(highWatermark: bigint, logStartOffset: bigint, batches: readonly FetchedBatchWire[]): Buffer {
  const w = new BinaryWriter();
  w.uint32(8).int64(highWatermark);
  w.uint32(16).int64(logStartOffset);
  writeBatches(w, 3, batches);
  return finish(w);
}
