// Kill -9 during sustained acks=1 produce with flush.messages=1, restart on the same disk: every
// acknowledged record is there, in order, the log ends on a valid batch and the indexes work.
// Runs the built broker (dist) in a child process.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { BrokerServiceClient, OffsetSpec, type ProduceStreamResponse } from '@skein/proto/skein/broker/v1/broker.js';
import { buildRecordBatch, decodeRecordBatch } from '@skein/common/records/record-batch.js';
import { call } from './broker-harness.js';
import { tempDir } from './helpers.js';

const fixture = fileURLToPath(new URL('./fixtures/broker-process.mjs', import.meta.url));
const built = existsSync(fileURLToPath(new URL('../dist/server.js', import.meta.url)));
const children: ChildProcess[] = [];

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
});

async function startProcess(dataDir: string, configs: Record<string, string>): Promise<{ child: ChildProcess; client: BrokerServiceClient }> {
  const child = spawn(process.execPath, [fixture], { env: { ...process.env, SKEIN_DATA_DIR: dataDir, SKEIN_TEST_CONFIGS: JSON.stringify(configs) }, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('broker process did not start')), 20_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /\{"port":(\d+)\}/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once('exit', (code) => reject(new Error(`broker process exited with ${code}`)));
  });
  return { child, client: new BrokerServiceClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) };
}

describe.skipIf(!built)('broker process crash (kill -9)', () => {
  it('keeps every acknowledged record across a SIGKILL during acks=1 produce with flush.messages=1', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const configs = { 'flush.messages': '1', 'segment.bytes': '65536', 'index.interval.bytes': '1024' };
      const first = await startProcess(dir, configs);
      const acked = new Map<bigint, string>();
      const stream = first.client.produceStream();
      stream.on('error', () => undefined);
      let sent = 0;
      let answered = 0;
      stream.on('data', (r: ProduceStreamResponse) => {
        answered++;
        const p = r.topics[0]!.partitions[0]!;
        if (!p.error) acked.set(p.baseOffset, `v${r.correlationId}`);
      });
      // Sustained produce with up to 32 batches in flight.
      const pump = setInterval(() => {
        for (; sent - answered < 32; sent++) {
          stream.write({ correlationId: BigInt(sent), acks: 2, timeoutMs: 5000, topics: [{ topic: 'crash', partitions: [{ partition: 0, batch: buildRecordBatch([{ key: `k${sent}`, value: `v${sent}`, timestampMs: 1000 + sent }]) }] }] });
        }
      }, 1);
      const deadline = Date.now() + 20_000;
      while (acked.size < 300 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      first.child.kill('SIGKILL');
      clearInterval(pump);
      await new Promise((r) => first.child.once('exit', r));
      first.client.close();
      expect(acked.size).toBeGreaterThanOrEqual(300);

      const second = await startProcess(dir, configs);
      const latest = await call(second.client.listOffsets.bind(second.client), { topics: [{ topic: 'crash', partitions: [{ partition: 0, spec: OffsetSpec.OFFSET_SPEC_LATEST, timestampMs: 0n }] }] });
      const end = latest.topics[0]!.partitions[0]!.offset;
      const values = new Map<bigint, string>();
      let next = 0n;
      while (next < end) {
        const r = await call(second.client.fetch.bind(second.client), { maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20, topics: [{ topic: 'crash', partitions: [{ partition: 0, fetchOffset: next, partitionMaxBytes: 0, currentLeaderEpoch: -1 }] }] });
        const p = r.topics[0]!.partitions[0]!;
        expect(p.error).toBeUndefined();
        for (const b of p.batches) for (const rec of decodeRecordBatch(b.batch!, b.baseOffset)) if (rec.offset >= next) values.set(rec.offset, rec.value!.toString());
        next = p.batches.length > 0 ? p.batches[p.batches.length - 1]!.baseOffset + BigInt(p.batches[p.batches.length - 1]!.batch!.recordCount) : end;
      }
      for (const [offset, value] of acked) expect(values.get(offset)).toBe(value);
      // Dense offsets, and the time index finds records after recovery.
      expect([...values.keys()]).toEqual(Array.from({ length: Number(end) }, (_, i) => BigInt(i)));
      const byTime = await call(second.client.listOffsets.bind(second.client), { topics: [{ topic: 'crash', partitions: [{ partition: 0, spec: OffsetSpec.OFFSET_SPEC_TIMESTAMP, timestampMs: 1100n }] }] });
      expect(values.get(byTime.topics[0]!.partitions[0]!.offset)).toBe('v100');
      // It still takes writes where the log ended.
      const after = await call(second.client.produce.bind(second.client), { acks: 2, timeoutMs: 1000, topics: [{ topic: 'crash', partitions: [{ partition: 0, batch: buildRecordBatch([{ key: 'k', value: 'after', timestampMs: 1 }]) }] }] });
      expect(after.topics[0]!.partitions[0]!.baseOffset).toBe(end);
      second.client.close();
      second.child.kill('SIGTERM');
    } finally {
      cleanup();
    }
  });
});
