import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ReplicaManager } from '../src/replica-manager.js';
import { systemClock, systemTimers } from '../src/runtime/timers.js';
import { partitionDir, topicNameProblem } from '../src/log/topic-dir.js';

const BAD = ['', '.', '..', '../escape', 'a/b', '/abs', 'nul\u0000byte', 'back\\slash', 'x'.repeat(250), 'sp ace', 'ü'];

describe('topic names as directories', () => {
  it('accepts Kafka-legal names and refuses every other one', () => {
    for (const ok of ['orders', 'a.b-c_d', 'x'.repeat(249), '...x', '-']) expect(topicNameProblem(ok), ok).toBeUndefined();
    for (const bad of BAD) expect(topicNameProblem(bad), JSON.stringify(bad)).toBeDefined();
  });

  it('builds <dataDir>/<topic>-<partition> or throws INVALID_TOPIC_NAME', () => {
    expect(partitionDir('/data', 'orders', 3)).toBe('/data/orders-3');
    for (const bad of BAD) expect(() => partitionDir('/data', bad, 0), JSON.stringify(bad)).toThrow(expect.objectContaining({ reason: 'INVALID_TOPIC_NAME' }));
    expect(() => partitionDir('/data', 'orders', -1)).toThrow(expect.objectContaining({ reason: 'INVALID_REQUEST' }));
  });
});

describe('the replica manager re-validates topic names before touching the data directory', () => {
  let root: string | undefined;
  afterEach(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('refuses an assignment or a delete naming a path, and creates nothing anywhere', async () => {
    root = mkdtempSync(join(tmpdir(), 'skein-topic-dir-'));
    const dataDir = join(root, 'data');
    const replicas = new ReplicaManager({ brokerId: 1, dataDir, clock: systemClock, timers: systemTimers, logger: pino({ level: 'silent' }) });
    try {
      const assignment = (topic: string) => ({ topic, topicId: 'id', partition: 0, leaderId: 1, leaderEpoch: 0, replicas: [1], isr: [1], configs: {} });
      for (const bad of ['../escape', '../../tmp/x', 'a/b', 'nul\u0000', '..', 'x'.repeat(250)]) {
        await expect(replicas.applyPartitionAssignment(assignment(bad)), JSON.stringify(bad)).rejects.toMatchObject({ reason: 'INVALID_TOPIC_NAME' });
        await expect(replicas.deletePartition({ topic: bad, partition: 0 })).rejects.toMatchObject({ reason: 'INVALID_TOPIC_NAME' });
        expect(replicas.getPartition(bad, 0)).toBeUndefined();
      }
      expect(readdirSync(root)).toEqual(['data']);
      expect(readdirSync(dataDir)).toEqual([]);
      // A good name still works after the refusals.
      await replicas.applyPartitionAssignment(assignment('good'));
      expect(readdirSync(dataDir)).toEqual(['good-0']);
    } finally {
      await replicas.close();
    }
  });
});
