import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { buildRecordBatch, encodeRecordBatch } from '@skein/common/records/record-batch.js';
import { ManualTimers } from '@skein/common/timers.js';
import { ReplicateResponse } from '@skein/proto/skein/broker/v1/replica.js';
import { ReplicaManager } from '../replica-manager.js';
import { LeaderSession } from './leader-session.js';

/** The server side of a Replicate call, as far as the session uses it: what it writes, decoded. */
class FakeCall extends EventEmitter {
  readonly sent: ReplicateResponse[] = [];
  writableEnded = false;
  write(b: Buffer): boolean {
    this.sent.push(ReplicateResponse.decode(b));
    return true;
  }
  end(): void {
    this.writableEnded = true;
  }
}

const batch = (n: number) => encodeRecordBatch(buildRecordBatch(Array.from({ length: n }, (_, i) => ({ key: null, value: `v${i}`, timestampMs: 1 }))));
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('LeaderSession pushes', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('sends an append in the same event-loop turn and lets the next push carry a moved high watermark', async () => {
    dir = mkdtempSync(join(tmpdir(), 'skein-leader-session-'));
    const timers = new ManualTimers(1_000);
    const logger = pino({ level: 'silent' });
    const replicas = new ReplicaManager({ brokerId: 1, dataDir: dir, clock: timers, timers, logger });
    const call = new FakeCall();
    const session = new LeaderSession({ replicas, clock: timers, timers, logger, hwDelayMs: 25 }, call as never);
    try {
      await replicas.applyPartitionAssignment({
        topic: 't',
        topicId: 'id',
        partition: 0,
        leaderId: 1,
        leaderEpoch: 0,
        replicas: [1, 2],
        isr: [1, 2],
        configs: {},
      });
      const p = replicas.getPartition('t', 0)!;
      const position = (logEndOffset: bigint) => ({
        topic: 't',
        partition: 0,
        leaderEpoch: 0,
        logEndOffset,
        lastFetchedEpoch: logEndOffset > 0n ? 0 : -1,
        positionEpoch: 1,
      });
      session.receive({ replicaId: 2, positions: [position(0n)], removed: [] });
      await turn();
      expect(
        call.sent.map((m) => m.partitions[0]!.highWatermark),
        'the first answer states the watermark',
      ).toEqual([0n]);

      // No setImmediate in between: the push is written by a microtask of the append.
      await replicas.appendToLeader(p, batch(3), false);
      expect(call.sent).toHaveLength(2);
      expect(call.sent[1]!.partitions[0]!.batches.map((b) => b.baseOffset)).toEqual([0n]);

      // The follower acknowledges: the watermark moves to 3, and no message carries only that.
      session.receive({ replicaId: 2, positions: [position(3n)], removed: [] });
      await turn();
      expect(p.log.highWatermark).toBe(3n);
      expect(call.sent, 'no watermark-only message while data flows').toHaveLength(2);

      // The next append's push carries it.
      await replicas.appendToLeader(p, batch(2), false);
      await turn();
      expect(call.sent).toHaveLength(3);
      expect(call.sent[2]!.partitions[0]!.batches.map((b) => b.baseOffset)).toEqual([3n]);
      expect(call.sent[2]!.partitions[0]!.highWatermark).toBe(3n);

      // The last acknowledgement moves it to 5 with nothing more to push: it goes alone, once the delay is over.
      session.receive({ replicaId: 2, positions: [position(5n)], removed: [] });
      await turn();
      expect(call.sent).toHaveLength(3);
      timers.advance(24);
      await turn();
      expect(call.sent).toHaveLength(3);
      timers.advance(1);
      await turn();
      expect(call.sent).toHaveLength(4);
      expect(call.sent[3]!.partitions[0]!.batches).toEqual([]);
      expect(call.sent[3]!.partitions[0]!.highWatermark).toBe(5n);
      timers.advance(1_000);
      await turn();
      expect(call.sent, 'nothing more is owed').toHaveLength(4);
    } finally {
      session.close();
      await replicas.close();
    }
  });
});
