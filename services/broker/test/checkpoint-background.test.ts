import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildRecordBatch, encodeRecordBatch } from '@skein/common/records/record-batch.js';
import { DEFAULT_LOG_CONFIG } from '../src/log/log-config.js';
import { PartitionLog } from '../src/log/partition-log.js';

const batch = (n: number) => encodeRecordBatch(buildRecordBatch(Array.from({ length: n }, (_, i) => ({ key: null, value: `v${i}`, timestampMs: 1 }))));
const storedHw = (dir: string) => JSON.parse(readFileSync(join(dir, 'partition.checkpoint'), 'utf8')).highWatermark as string;

describe('checkpoints written by the background pass', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const open = () => {
    dir = mkdtempSync(join(tmpdir(), 'skein-checkpoint-bg-'));
    return PartitionLog.open({ dir, topicId: 'id', config: DEFAULT_LOG_CONFIG, clock: { nowMs: () => 1 } });
  };

  it('are written off the event loop: the call returns before the file changes, and the file holds the content once it resolves', async () => {
    const log = open();
    log.appendAsLeader(batch(4), 0);
    log.updateHighWatermark(4n);
    const pass = log.writeCheckpointsInBackground();
    expect(storedHw(dir!), 'not replaced synchronously').toBe('0');
    await pass;
    expect(storedHw(dir!)).toBe('4');
    expect(
      readdirSync(dir!).filter((f) => f.endsWith('.tmp')),
      'no temp file left',
    ).toEqual([]);
    await log.close();
  });

  it('never replace what a synchronous write stored meanwhile', async () => {
    const log = open();
    log.appendAsLeader(batch(4), 0);
    log.updateHighWatermark(2n);
    const pass = log.writeCheckpointsInBackground();
    // While the pass's fsync runs, something writes newer content synchronously (truncation, close).
    log.updateHighWatermark(4n);
    log.writeCheckpoints();
    await pass;
    expect(storedHw(dir!), 'the older content of the pass was discarded').toBe('4');
    expect(readdirSync(dir!).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    await log.close();
  });
});
