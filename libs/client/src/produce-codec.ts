/**
 * The produce request, encoded with the batch's records copied once. The generated encoder copies
 * a megabyte of records four or five times on its way out (its writer doubles and zero-fills as it
 * grows, shifts the payload when a nested length needs more than one byte, copies it in finish(),
 * and the generated serializer copies it again into a Buffer): through `skein perf produce` that
 * and its garbage were a large part of the client's CPU (bench/PROFILE.md §8). Here the small
 * fields still go through the generated encoders and only the layout around `records` is written
 * by hand; produce-codec.test.ts checks the bytes equal the generated encoder's.
 */
import {
  BrokerServiceService,
  PartitionProduceData,
  type ProduceRequest,
  ProduceRequest as ProduceRequestCodec,
  type ProduceResponse,
  RecordBatch,
  TopicProduceData,
} from '@skein/proto/skein/broker/v1/broker.js';
import type * as grpc from '@grpc/grpc-js';
import type { UnaryStub } from './rpc.js';

const LEN = 2;
const tagByte = (field: number, wire: number) => (field << 3) | wire;

function varintBytes(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

const view = (u8: Uint8Array) => Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);

/** Encodes `req` as skein.broker.v1.ProduceRequest, byte for byte what ProduceRequest.encode writes. */
export function encodeProduceRequest(req: ProduceRequest): Buffer {
  // Pieces in order; the records payloads are referenced, not copied, until the one concat.
  const pieces: Buffer[] = [view(ProduceRequestCodec.encode({ acks: req.acks, timeoutMs: req.timeoutMs, topics: [] }).finish())];
  for (const t of req.topics) {
    const topicPieces: Buffer[] = [view(TopicProduceData.encode({ topic: t.topic, partitions: [] }).finish())];
    for (const p of t.partitions) {
      const partPieces: Buffer[] = [view(PartitionProduceData.encode({ partition: p.partition, batch: undefined }).finish())];
      if (p.batch) {
        const { records, isTransactional, ...header } = p.batch;
        const batchPieces: Buffer[] = [view(RecordBatch.encode({ ...header, records: Buffer.alloc(0) }).finish())];
        if (records.length > 0) batchPieces.push(Buffer.from([tagByte(10, LEN), ...varintBytes(records.length)]), view(records));
        if (isTransactional !== undefined) batchPieces.push(Buffer.from([tagByte(11, 0), isTransactional ? 1 : 0]));
        const batchLen = batchPieces.reduce((n, b) => n + b.length, 0);
        partPieces.push(Buffer.from([tagByte(2, LEN), ...varintBytes(batchLen)]), ...batchPieces);
      }
      const partLen = partPieces.reduce((n, b) => n + b.length, 0);
      topicPieces.push(Buffer.from([tagByte(2, LEN), ...varintBytes(partLen)]), ...partPieces);
    }
    const topicLen = topicPieces.reduce((n, b) => n + b.length, 0);
    pieces.push(Buffer.from([tagByte(3, LEN), ...varintBytes(topicLen)]), ...topicPieces);
  }
  return Buffer.concat(pieces);
}

/** BrokerService.Produce on `broker`, with the single-copy request encoder. */
export function produceStub(broker: grpc.Client): UnaryStub<ProduceRequest, ProduceResponse> {
  const m = BrokerServiceService.produce;
  return (request, metadata, options, callback) =>
    broker.makeUnaryRequest(m.path, encodeProduceRequest, m.responseDeserialize, request, metadata, options, (err, res) =>
      callback(err, res as ProduceResponse),
    );
}
