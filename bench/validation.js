#!/usr/bin/env node
// What checking record framing costs on the produce path (issue 12), not run by the tests:
//   npx tsc -b services/broker && node bench/validation.js [--mb 256] [--rounds 3]
// In one process, side by side and interleaved batch by batch (so machine noise hits both alike):
//   append only   PartitionLog.appendAsLeader per batch (header + CRC check, write to a temp dir),
//                 what the broker did before;
//   validate+append  validateRecords (header, CRC, one pass over the records' framing) then the same
//                 append, what the broker does now for an uncompressed batch;
// and for compressed batches the check alone (bounded decompression on the libuv threadpool plus the
// framing pass), per GB of uncompressed records. CPU is process CPU (user + system, threadpool
// included) per GB of record bytes. Batches: 960 records of 1 KiB (~1 MiB), built once up front.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CompressionCodec } from '@skein/proto/skein/broker/v1/broker.js';
import { buildRecordBatch, encodeRecordBatch } from '@skein/common/records/record-batch.js';
import { isCodecSupported } from '@skein/common/records/compression.js';

const { values } = parseArgs({ options: { mb: { type: 'string', default: '256' }, rounds: { type: 'string', default: '3' } } });
const MB = Number(values.mb);
const ROUNDS = Number(values.rounds);
const { PartitionLog } = await import('../services/broker/dist/log/partition-log.js');
const { DEFAULT_LOG_CONFIG } = await import('../services/broker/dist/log/log-config.js');
const { validateBatch, validateRecords } = await import('../services/broker/dist/log/batch-validation.js');

const RECORD_BYTES = 1024;
const PER_BATCH = 960;
function pool(codec) {
  return Array.from({ length: 16 }, (_, b) =>
    encodeRecordBatch(
      buildRecordBatch(
        // Values vary per record so compression ratios are not absurd (as bench/broker.js).
        Array.from({ length: PER_BATCH }, (_, i) => ({ key: `key-${b}-${i}`, value: Buffer.alloc(RECORD_BYTES - 12, 97 + ((i + b) % 26)), timestampMs: 1_700_000_000_000 + i })),
        { compression: codec },
      ),
    ),
  );
}
const batchRecordBytes = RECORD_BYTES * PER_BATCH;
const batches = Math.ceil((MB * 1e6) / batchRecordBytes);
const GB = (batches * batchRecordBytes) / 1e9;

function cpuS(f) {
  const c0 = process.cpuUsage();
  f();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1e6;
}
async function cpuSAsync(f) {
  const c0 = process.cpuUsage();
  await f();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1e6;
}

const plain = pool(CompressionCodec.COMPRESSION_CODEC_NONE);
const totals = { append: 0, validateAppend: 0, headerOnly: 0, framingOnly: 0 };
const cpuNow = () => {
  const c = process.cpuUsage();
  return c.user + c.system;
};
for (let round = 0; round < ROUNDS; round++) {
  // Two logs, batch by batch alternating which goes first: both modes see the same machine state.
  const dirs = [0, 1].map(() => mkdtempSync(join(tmpdir(), 'skein-bench-validation-')));
  const logs = dirs.map((dir) => PartitionLog.open({ dir, topicId: 'bench', config: { ...DEFAULT_LOG_CONFIG, segmentBytes: 256 << 20 }, clock: { nowMs: () => Date.now() } }));
  try {
    for (let i = 0; i < batches; i++) {
      const b = plain[i % plain.length];
      for (const mode of i % 2 === 0 ? ['append', 'validateAppend'] : ['validateAppend', 'append']) {
        const t0 = cpuNow();
        if (mode === 'validateAppend') {
          validateRecords(b, DEFAULT_LOG_CONFIG.maxMessageBytes);
          logs[1].appendAsLeader(b, 0);
        } else logs[0].appendAsLeader(b, 0);
        totals[mode] += (cpuNow() - t0) / 1e6;
      }
    }
  } finally {
    for (const log of logs) await log.close();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
  // The checks alone, without the disk: what validateRecords adds over validateBatch.
  totals.headerOnly += cpuS(() => {
    for (let i = 0; i < batches; i++) validateBatch(plain[i % plain.length], DEFAULT_LOG_CONFIG.maxMessageBytes, isCodecSupported);
  });
  totals.framingOnly += cpuS(() => {
    for (let i = 0; i < batches; i++) validateRecords(plain[i % plain.length], DEFAULT_LOG_CONFIG.maxMessageBytes);
  });
}
const perGB = (s) => +(s / ROUNDS / GB).toFixed(3);
const rows = [
  { what: 'append only (header + CRC), uncompressed', cpuSPerGB: perGB(totals.append) },
  { what: 'validateRecords + append, uncompressed', cpuSPerGB: perGB(totals.validateAppend) },
  { what: '  difference: framing validation on the produce path', cpuSPerGB: perGB(totals.validateAppend - totals.append) },
  { what: '  ratio validate+append / append', cpuSPerGB: +(totals.validateAppend / totals.append).toFixed(3) },
  { what: 'check alone: validateBatch (header + CRC)', cpuSPerGB: perGB(totals.headerOnly) },
  { what: 'check alone: validateRecords (header + CRC + framing)', cpuSPerGB: perGB(totals.framingOnly) },
];

// Compressed: the whole check (decompress on the threadpool + framing), a few batches in flight as
// a busy partition would have, per GB of uncompressed record bytes.
for (const codec of [CompressionCodec.COMPRESSION_CODEC_GZIP, CompressionCodec.COMPRESSION_CODEC_LZ4, CompressionCodec.COMPRESSION_CODEC_ZSTD]) {
  if (!isCodecSupported(codec)) continue;
  const p = pool(codec);
  const n = Math.max(16, Math.floor(batches / 4));
  const s = await cpuSAsync(async () => {
    for (let i = 0; i < n; i += 4) await Promise.all([0, 1, 2, 3].map((k) => validateRecords(p[(i + k) % p.length], DEFAULT_LOG_CONFIG.maxMessageBytes)));
  });
  const ratio = (batchRecordBytes / p[0].length).toFixed(1);
  rows.push({ what: `check alone: validateRecords, ${CompressionCodec[codec].replace('COMPRESSION_CODEC_', '').toLowerCase()} (${ratio}x)`, cpuSPerGB: +(s / ((n * batchRecordBytes) / 1e9)).toFixed(3) });
}

console.log(`${batches} batches of ${PER_BATCH} x ${RECORD_BYTES} B records (${(GB * 1000).toFixed(0)} MB) per mode, ${ROUNDS} rounds interleaved, Node ${process.version}`);
console.table(rows);
