import { describe, expect, it } from 'vitest';
import { completedDirectoryChanges, decideRegistrationDirectory, directoryIdProblem, fencedBrokers } from './broker-directories.js';
import { NO_LEADER, type PartitionRecord, initialPartitionRecord, reconcilePartition } from './partition-state.js';
import type { BrokerDirectoryRecord } from './records.js';

const recorded = (brokerId: number, directoryId: string, pendingDirectoryId?: string): BrokerDirectoryRecord =>
  ({ v: 1, brokerId, directoryId, ...(pendingDirectoryId ? { pendingDirectoryId } : {}), updatedAtMs: 0 });

describe('decideRegistrationDirectory', () => {
  it('does not check a broker that sends no directory id', () => {
    expect(decideRegistrationDirectory(recorded(1, 'd1'), { brokerId: 1, directoryId: '' }, 5)).toEqual({ kind: 'unchecked' });
  });

  it('records the first directory a broker registers with', () => {
    expect(decideRegistrationDirectory(undefined, { brokerId: 1, directoryId: 'd1' }, 5))
      .toEqual({ kind: 'first', record: { v: 1, brokerId: 1, directoryId: 'd1', updatedAtMs: 5 } });
  });

  it('recognizes the same directory after a restart', () => {
    expect(decideRegistrationDirectory(recorded(1, 'd1'), { brokerId: 1, directoryId: 'd1' }, 5)).toEqual({ kind: 'recognized' });
  });

  it('marks a new directory pending, keeping the accepted one until the controller has fenced', () => {
    expect(decideRegistrationDirectory(recorded(1, 'd1'), { brokerId: 1, directoryId: 'd2' }, 5)).toEqual({
      kind: 'replaced',
      record: { v: 1, brokerId: 1, directoryId: 'd1', pendingDirectoryId: 'd2', updatedAtMs: 5 },
      previousDirectoryId: 'd1',
    });
  });

  it('waits on a retried registration of the same pending directory, and replaces a different pending one', () => {
    expect(decideRegistrationDirectory(recorded(1, 'd1', 'd2'), { brokerId: 1, directoryId: 'd2' }, 5)).toEqual({ kind: 'pending' });
    expect(decideRegistrationDirectory(recorded(1, 'd1', 'd2'), { brokerId: 1, directoryId: 'd3' }, 5))
      .toMatchObject({ kind: 'replaced', record: { directoryId: 'd1', pendingDirectoryId: 'd3' } });
    // The old disk came back while a change was pending: the broker may already be fenced, so the
    // change back to it goes through the controller too.
    expect(decideRegistrationDirectory(recorded(1, 'd1', 'd2'), { brokerId: 1, directoryId: 'd1' }, 5))
      .toMatchObject({ kind: 'replaced', record: { directoryId: 'd1', pendingDirectoryId: 'd1' } });
  });
});

describe('directoryIdProblem', () => {
  it('accepts UUIDs and empty, refuses long or odd ids', () => {
    expect(directoryIdProblem('')).toBeUndefined();
    expect(directoryIdProblem('6f1c1c1e-7a0b-4a57-9b0e-0a3c1f6c2d11')).toBeUndefined();
    expect(directoryIdProblem('x'.repeat(65))).toMatch(/longer than 64/);
    expect(directoryIdProblem('a/b')).toMatch(/only letters/);
  });
});

/**
 * The controller's loop, without I/O: fence every partition, then accept the directories whose
 * fencing is complete. Returns the partitions and directory records after the pass.
 */
function controllerPass(partitions: PartitionRecord[], directories: BrokerDirectoryRecord[], live: Set<number>, unclean = false) {
  const fenced = fencedBrokers(directories);
  const next = partitions.map((p) => reconcilePartition(p, live, { uncleanLeaderElection: unclean, fenced }) ?? p);
  const accepted = completedDirectoryChanges(directories, next, 9);
  const dirs = directories.map((d) => accepted.find((a) => a.brokerId === d.brokerId) ?? d);
  return { partitions: next, directories: dirs };
}

describe('fencing a broker whose data directory was replaced', () => {
  const rf3 = initialPartitionRecord('t', [1, 2, 3]);

  it('moves leadership to another ISR member and removes the broker from the ISR before accepting its directory', () => {
    // Broker 1 (leader) died; before the controller noticed, it came back with an empty disk.
    const dirs = [recorded(1, 'd1', 'd1-new'), recorded(2, 'd2'), recorded(3, 'd3')];
    const { partitions: [p], directories } = controllerPass([rf3], dirs, new Set([2, 3]));
    expect(p).toMatchObject({ leaderId: 2, leaderEpoch: 1, isr: [2, 3], partitionEpoch: 1 });
    expect(directories[0]).toEqual({ v: 1, brokerId: 1, directoryId: 'd1-new', updatedAtMs: 9 });
    // Registered now, broker 1 is an ordinary live follower outside the ISR: nothing elects it.
    const after = controllerPass([p!], directories, new Set([1, 2, 3]));
    expect(after.partitions[0]).toEqual(p);
  });

  it('removes a follower from the ISR, leader and leader epoch unchanged', () => {
    const { partitions: [p] } = controllerPass([rf3], [recorded(3, 'd3', 'x')], new Set([1, 2]));
    expect(p).toMatchObject({ leaderId: 1, leaderEpoch: 0, isr: [1, 2], partitionEpoch: 1 });
  });

  it('leaves an offline partition offline when the replaced broker was its only ISR member', () => {
    // Brokers 2 and 3 left the ISR earlier; broker 1, the last member, died and lost its disk.
    const offline: PartitionRecord = { ...rf3, leaderId: NO_LEADER, leaderEpoch: 3, isr: [1], partitionEpoch: 5 };
    const { partitions: [p], directories } = controllerPass([offline], [recorded(1, 'd1', 'new')], new Set([2, 3]));
    expect(p).toMatchObject({ leaderId: NO_LEADER, leaderEpoch: 3, isr: [], partitionEpoch: 6 });
    expect(directories[0]!.directoryId).toBe('new');
    // With its disk accepted and registered, broker 1 is live but still not electable, nor are 2 and 3.
    expect(reconcilePartition(p!, new Set([1, 2, 3]), { uncleanLeaderElection: false })).toBeUndefined();
    // Only unclean election brings such a partition back.
    expect(reconcilePartition(p!, new Set([1, 2, 3]), { uncleanLeaderElection: true })).toMatchObject({ leaderId: 1, isr: [1] });
  });

  it('keeps the other ISR members of an offline partition so the first of them back leads (whole-cluster outage)', () => {
    const offline: PartitionRecord = { ...rf3, leaderId: NO_LEADER, leaderEpoch: 1, isr: [1, 2, 3], partitionEpoch: 1 };
    // Without fencing, the returning broker 1 (empty disk) would be elected from the old ISR:
    expect(reconcilePartition(offline, new Set([1]), { uncleanLeaderElection: false })).toMatchObject({ leaderId: 1 });
    const { partitions: [p], directories } = controllerPass([offline], [recorded(1, 'd1', 'new')], new Set());
    expect(p).toMatchObject({ leaderId: NO_LEADER, isr: [2, 3] });
    expect(reconcilePartition(p!, new Set([1]), { uncleanLeaderElection: false })).toBeUndefined();
    const back = controllerPass([p!], directories, new Set([1, 2]));
    expect(back.partitions[0]).toMatchObject({ leaderId: 2, isr: [2] });
  });

  it('does not accept the directory while a partition still lists the broker (its write lost a race)', () => {
    const dirs = [recorded(1, 'd1', 'new')];
    const stale = { ...rf3, isr: [1, 2] };
    expect(completedDirectoryChanges(dirs, [{ ...rf3, leaderId: 2, isr: [2, 3] }, stale], 9)).toEqual([]);
    expect(completedDirectoryChanges(dirs, [{ ...rf3, leaderId: 1, isr: [] }], 9)).toEqual([]);
    expect(completedDirectoryChanges(dirs, [{ ...rf3, leaderId: 2, isr: [2, 3] }], 9)).toHaveLength(1);
  });

  it('never leaves a fenced broker leader or in an ISR, over random partition states', () => {
    let seed = 12345;
    const rand = (n: number) => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n; };
    for (let i = 0; i < 2000; i++) {
      const replicas = [1, 2, 3, 4].slice(0, 1 + rand(4));
      const isr = replicas.filter(() => rand(2) === 0);
      const leaderId = isr.length > 0 && rand(4) > 0 ? isr[rand(isr.length)]! : NO_LEADER;
      const p: PartitionRecord = { topicId: 't', replicas, leaderId, leaderEpoch: rand(5), isr, partitionEpoch: rand(5) };
      const live = new Set(replicas.filter(() => rand(2) === 0));
      const fenced = new Set(replicas.filter(() => rand(3) === 0));
      const next = reconcilePartition(p, live, { uncleanLeaderElection: false, fenced }) ?? p;
      for (const id of fenced) {
        expect(next.isr).not.toContain(id);
        expect(next.leaderId).not.toBe(id);
      }
      // Never a leader outside the old ISR (no unclean election), and epochs never go back.
      if (next.leaderId !== NO_LEADER) expect(p.isr).toContain(next.leaderId);
      expect(next.leaderEpoch).toBeGreaterThanOrEqual(p.leaderEpoch);
      if (next !== p) expect(next.partitionEpoch).toBe(p.partitionEpoch + 1);
      if (next.leaderId !== p.leaderId) expect(next.leaderEpoch).toBe(p.leaderEpoch + 1);
    }
  });
});
