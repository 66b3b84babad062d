/**
 * Hand-written codecs for the few BrokerService messages that carry record batches, following the
 * wire view in proto/skein/broker/internal/v1/wire.proto: the batch is read as a Buffer view into
 * the request (no copy, no record decode) and fetched batches are written as the stored bytes.
 * Everything else uses the generated public codecs.
 */
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import { PartitionError } from '@skein/proto/skein/broker/v1/broker.js';
import { ReplicaFetchResponse, ReplicaPartitionData } from '@skein/proto/skein/broker/v1/replica.js';

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
  /** PartitionFetchResponse.last_stable_offset (field 6); left out when undefined. */
  lastStableOffset?: bigint;
  /** PartitionFetchResponse.aborted_transactions (field 7), READ_COMMITTED only. */
  abortedTransactions?: readonly AbortedTransactionWire[];
}

export interface AbortedTransactionWire {
  producerId: bigint;
  firstOffset: bigint;
}

/** The last stable offset (field `lsoField`) and AbortedTransaction messages (field `abortedField`). */
function pushTxnFields(out: Buffer[], lsoField: number, abortedField: number, lso: bigint | undefined, aborted: readonly AbortedTransactionWire[] | undefined): number {
  let size = 0;
  if (lso !== undefined) {
    const b = varintFields([[lsoField, lso]]);
    out.push(b);
    size += b.length;
  }
  for (const a of aborted ?? []) {
    const inner = varintFields([[1, a.producerId], [2, a.firstOffset]]);
    const prefix = lengthPrefix(abortedField, inner.length);
    out.push(prefix, inner);
    size += prefix.length + inner.length;
  }
  return size;
}

// Responses that carry batches are built as a list of buffers (small headers, and the stored batch
// bytes as they are) whose sizes are known before anything is written, then joined by one
// Buffer.concat: each batch byte is copied once. (@bufbuild/protobuf's BinaryWriter copies it into a
// growing, zero-filled buffer, again on each doubling, shifts it on every join() whose length
// prefix outgrows the byte fork() reserved, and once more in finish().)

/** Size of a varint; int32/int64 values go as 64-bit two's complement, as protobuf encodes them. */
function varintSize(v: bigint | number): number {
  let x = BigInt.asUintN(64, BigInt(v));
  let n = 1;
  while (x >= 0x80n) {
    x >>= 7n;
    n++;
  }
  return n;
}

function putVarint(buf: Buffer, pos: number, v: bigint | number): number {
  let x = BigInt.asUintN(64, BigInt(v));
  while (x >= 0x80n) {
    buf[pos++] = Number(x & 0x7fn) | 0x80;
    x >>= 7n;
  }
  buf[pos++] = Number(x);
  return pos;
}

/**
 * Appends one FetchedBatch / ReplicaBatch (same layout) as field `field`; returns its size.
 * `skipDefaults` leaves out a zero base offset and empty batch bytes, as the generated encoder
 * does (the hand-written Fetch/Subscribe encoders always wrote the base offset).
 */
function pushBatch(out: Buffer[], field: number, b: FetchedBatchWire, skipDefaults = false): number {
  const withOffset = !skipDefaults || b.baseOffset !== 0n;
  const withBatch = !skipDefaults || b.batch.length > 0;
  const fixed = (withOffset ? 1 + varintSize(b.baseOffset) : 0) + (b.leaderEpoch !== 0 ? 1 + varintSize(b.leaderEpoch) : 0) + (withBatch ? 1 + varintSize(b.batch.length) : 0);
  const inner = fixed + b.batch.length;
  const head = Buffer.allocUnsafe(1 + varintSize(inner) + fixed);
  let p = 0;
  head[p++] = (field << 3) | WireType.LengthDelimited;
  p = putVarint(head, p, inner);
  if (withOffset) {
    head[p++] = 8;
    p = putVarint(head, p, b.baseOffset);
  }
  if (b.leaderEpoch !== 0) {
    head[p++] = 16;
    p = putVarint(head, p, b.leaderEpoch);
  }
  if (withBatch) {
    head[p++] = 26;
    putVarint(head, p, b.batch.length);
  }
  out.push(head, b.batch);
  return head.length + b.batch.length;
}

/** A header of varint fields; `undefined` values are left out (proto3 defaults). */
function varintFields(fields: ReadonlyArray<readonly [number, bigint | number | undefined]>): Buffer {
  const buf = Buffer.allocUnsafe(fields.length * 11);
  let p = 0;
  for (const [field, v] of fields) {
    if (v === undefined) continue;
    buf[p++] = field << 3;
    p = putVarint(buf, p, v);
  }
  return buf.subarray(0, p);
}

function lengthPrefix(field: number, size: number): Buffer {
  const buf = Buffer.allocUnsafe(1 + varintSize(size));
  buf[0] = (field << 3) | WireType.LengthDelimited;
  putVarint(buf, 1, size);
  return buf;
}

/**
 * Encodes skein.broker.v1.FetchResponse. Length prefixes are only known after their contents, so
 * each takes a placeholder slot in the one buffer list and is filled in afterwards: the list is
 * never spread into push() (a partition of more than ~55,000 batches overflowed the call stack).
 */
export function encodeFetchResponse(topics: ReadonlyArray<{ topic: string; partitions: readonly PartitionFetchResponseWire[] }>, throttleTimeMs = 0): Buffer {
  const out: Buffer[] = [];
  const empty = Buffer.alloc(0);
  let total = 0;
  for (const t of topics) {
    const topicSlot = out.length;
    out.push(empty);
    const name = Buffer.from(t.topic, 'utf8');
    const namePrefix = lengthPrefix(1, name.length);
    out.push(namePrefix, name);
    let topicSize = namePrefix.length + name.length;
    for (const p of t.partitions) {
      const partSlot = out.length;
      out.push(empty);
      const head = varintFields([[1, p.partition]]);
      out.push(head);
      let partSize = head.length;
      if (p.error) {
        const e = view(PartitionError.encode(p.error).finish());
        const ePrefix = lengthPrefix(2, e.length);
        out.push(ePrefix, e);
        partSize += ePrefix.length + e.length;
      }
      const offsets = varintFields([[3, p.highWatermark], [4, p.logStartOffset]]);
      out.push(offsets);
      partSize += offsets.length;
      for (const b of p.batches) partSize += pushBatch(out, 5, b);
      partSize += pushTxnFields(out, 6, 7, p.lastStableOffset, p.abortedTransactions);
      const partPrefix = lengthPrefix(2, partSize);
      out[partSlot] = partPrefix;
      topicSize += partPrefix.length + partSize;
    }
    const topicPrefix = lengthPrefix(1, topicSize);
    out[topicSlot] = topicPrefix;
    total += topicPrefix.length + topicSize;
  }
  // FetchResponse.throttle_time_ms (field 2), left out at 0 as proto3 does.
  if (throttleTimeMs > 0) {
    const throttle = varintFields([[2, throttleTimeMs]]);
    out.push(throttle);
    total += throttle.length;
  }
  return Buffer.concat(out, total);
}

/** Encodes skein.broker.v1.SubscribeResponse. */
export function encodeSubscribeResponse(
  highWatermark: bigint,
  logStartOffset: bigint,
  batches: readonly FetchedBatchWire[],
  lastStableOffset?: bigint,
  abortedTransactions?: readonly AbortedTransactionWire[],
): Buffer {
  const out: Buffer[] = [varintFields([[1, highWatermark], [2, logStartOffset]])];
  let total = out[0]!.length;
  for (const b of batches) total += pushBatch(out, 3, b);
  total += pushTxnFields(out, 4, 5, lastStableOffset, abortedTransactions);
  return Buffer.concat(out, total);
}

/**
 * Encodes skein.broker.v1.ReplicaFetchResponse the same way (register it as the ReplicaFetch
 * responseSerialize); a response with an error or a diverging epoch carries no batches and goes
 * through the generated encoder.
 */
export function encodeReplicaFetchResponse(res: ReplicaFetchResponse): Buffer {
  if (res.error || res.divergingEpoch) return view(ReplicaFetchResponse.encode(res).finish());
  const out: Buffer[] = [varintFields([[2, res.highWatermark !== 0n ? res.highWatermark : undefined], [3, res.logStartOffset !== 0n ? res.logStartOffset : undefined]])];
  let total = out[0]!.length;
  for (const b of res.batches) total += pushBatch(out, 5, { baseOffset: b.baseOffset, leaderEpoch: b.leaderEpoch, batch: view(b.batch) }, true);
  return Buffer.concat(out, total);
}

/** One partition's entry of a ReplicateResponse, with batches as stored. */
export interface ReplicaPartitionDataWire {
  topic: string;
  partition: number;
  error?: PartitionError;
  highWatermark: bigint;
  logStartOffset: bigint;
  divergingEpoch?: { epoch: number; endOffset: bigint };
  batches: readonly FetchedBatchWire[];
  positionEpoch: number;
}

/**
 * Encodes skein.broker.v1.ReplicateResponse with one copy per stored batch, the same way as the
 * fetch encoders; entries with an error or a diverging epoch carry no batches and go through the
 * generated encoder. Byte-identical to ReplicateResponse.encode (wire-codec.test.ts).
 */
export function encodeReplicateResponse(partitions: readonly ReplicaPartitionDataWire[]): Buffer {
  const out: Buffer[] = [];
  const empty = Buffer.alloc(0);
  let total = 0;
  for (const p of partitions) {
    if (p.error || p.divergingEpoch) {
      const e = view(ReplicaPartitionData.encode({ ...p, error: p.error, divergingEpoch: p.divergingEpoch, batches: [] }).finish());
      const prefix = lengthPrefix(1, e.length);
      out.push(prefix, e);
      total += prefix.length + e.length;
      continue;
    }
    const slot = out.length;
    out.push(empty);
    const name = Buffer.from(p.topic, 'utf8');
    const namePrefix = name.length > 0 ? lengthPrefix(1, name.length) : empty;
    out.push(namePrefix, name);
    const head = varintFields([[2, p.partition !== 0 ? p.partition : undefined], [4, p.highWatermark !== 0n ? p.highWatermark : undefined], [5, p.logStartOffset !== 0n ? p.logStartOffset : undefined]]);
    out.push(head);
    let size = namePrefix.length + name.length + head.length;
    for (const b of p.batches) size += pushBatch(out, 7, b, true);
    if (p.positionEpoch !== 0) {
      const pe = varintFields([[8, p.positionEpoch]]);
      out.push(pe);
      size += pe.length;
    }
    const prefix = lengthPrefix(1, size);
    out[slot] = prefix;
    total += prefix.length + size;
  }
  return Buffer.concat(out, total);
}
