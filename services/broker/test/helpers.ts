import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CompressionCodec } from '@skein/proto/skein/broker/v1/broker.js';
import { buildRecordBatch, encodeRecordBatch, type RecordInput } from '@skein/common/records/record-batch.js';

export function tempDir(prefix = 'skein-broker-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A clock the test moves by hand. */
export class ManualClock {
  constructor(public now = 1_700_000_000_000) {}
  nowMs(): number {
    return this.now;
  }
  advance(ms: number): void {
    this.now += ms;
  }
}

export function batchBytes(
  records: RecordInput[],
  opts: { compression?: CompressionCodec; producerId?: bigint; producerEpoch?: number; baseSequence?: number } = {},
): Buffer {
  return encodeRecordBatch(buildRecordBatch(records, opts));
}

export function simpleRecords(n: number, prefix: string, timestampMs: number): RecordInput[] {
  return Array.from({ length: n }, (_, i) => ({ key: `${prefix}-k${i}`, value: `${prefix}-v${i}`, timestampMs: timestampMs + i }));
}

/** Polls `cond` until it holds or the deadline passes; never asserts durations. */
export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, deadlineMs = 10_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
