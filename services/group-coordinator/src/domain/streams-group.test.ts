// A streams group through the group state machine: topology admission and refusals, active tasks
// as partitions under the incremental rules, standby tasks in the response.
import { describe, expect, it } from 'vitest';
import { emptyGroup, type GroupState, heartbeat, type HeartbeatResponse, type StreamsMemberRequest } from './group.js';

const COUNTS = new Map([
  ['lines', 2],
  ['app-repartition', 2],
]);
const TOPOLOGY: StreamsMemberRequest['subtopologies'] = [
  { subtopologyId: '0', sourceTopics: ['lines'], changelogTopics: [] },
  { subtopologyId: '1', sourceTopics: ['app-repartition'], changelogTopics: ['app-counts-changelog'] },
];

class Members {
  group: GroupState = emptyGroup('g', 'streams');
  now = 0;
  next = 0;
  readonly owned = new Map<string, string[]>();
  readonly epochs = new Map<string, number>();
  readonly standby = new Map<string, string[]>();

  beat(
    memberId: string,
    opts: { topology?: StreamsMemberRequest['subtopologies']; standbys?: number; offsets?: Record<string, number>; counts?: Map<string, number> } = {},
  ) {
    const res = heartbeat(
      this.group,
      {
        memberId,
        memberEpoch: this.epochs.get(memberId) ?? 0,
        clientId: 'c',
        topics: [],
        ownedPartitions: this.owned.get(memberId) ?? [],
        serverAssignor: 'streams',
        streams: { subtopologies: opts.topology ?? TOPOLOGY, numStandbyReplicas: opts.standbys ?? 1, taskOffsets: opts.offsets ?? {} },
      },
      { nowMs: this.now, sessionTimeoutMs: 10_000, partitionCounts: opts.counts ?? COUNTS, newMemberId: () => `m${this.next++}` },
    );
    if ('problem' in res) return res.problem;
    this.group = res.group;
    this.apply(res.response);
    return res.response;
  }

  apply(r: HeartbeatResponse): void {
    this.owned.set(r.memberId, r.assignment);
    this.epochs.set(r.memberId, r.memberEpoch);
    this.standby.set(r.memberId, r.standbyTasks);
    const seen = new Map<string, string>();
    for (const [id, list] of this.owned)
      for (const p of list) {
        if (seen.has(p)) throw new Error(`${p} owned by ${seen.get(p)} and ${id}`);
        seen.set(p, id);
      }
  }

  settle(): void {
    for (let i = 0; i < 6; i++) for (const id of [...this.owned.keys()]) this.beat(id);
  }
}

describe('streams group', () => {
  it('turns active tasks into partitions, hands them over only once released, and answers standby tasks', () => {
    const g = new Members();
    const a = g.beat('') as HeartbeatResponse;
    expect(a.assignment).toEqual(['app-repartition:0', 'app-repartition:1', 'lines:0', 'lines:1']);
    expect(a.standbyTasks).toEqual([]); // nobody else to hold a copy
    const b = g.beat('') as HeartbeatResponse;
    // b's tasks are still a's until a releases them: the incremental rule holds.
    expect(b.assignment).toEqual([]);
    g.settle();
    const tasksOf = (id: string) => g.group.streams!.tasks[id]!;
    for (const [self, other] of [
      [a.memberId, b.memberId],
      [b.memberId, a.memberId],
    ] as const) {
      expect(tasksOf(self).active).toHaveLength(2);
      // Each member's stateful task has its standby on the other member.
      expect(g.standby.get(self)).toEqual(tasksOf(other).active.filter((t) => t.startsWith('1_')));
    }
    expect(g.owned.get(a.memberId)!.length + g.owned.get(b.memberId)!.length).toBe(4);
    // Task offsets are not structural: a heartbeat that only refreshes them changes no stored state.
    const before = g.group;
    g.beat(a.memberId, { offsets: { '1_0': 42 } });
    expect(g.group.groupEpoch).toBe(before.groupEpoch);
  });

  it("keeps a standby listed while it is becoming the member's active task, until its partitions arrive", () => {
    const g = new Members();
    const a = g.beat('') as HeartbeatResponse;
    const b = g.beat('') as HeartbeatResponse;
    g.settle();
    const bStandby = g.standby.get(b.memberId)!;
    expect(bStandby.length).toBe(1);
    // a leaves: b gets a's tasks; its standby becomes active and is no longer listed once granted.
    const leave = heartbeat(
      g.group,
      { memberId: a.memberId, memberEpoch: -1, clientId: 'c', topics: [], ownedPartitions: [] },
      { nowMs: 0, sessionTimeoutMs: 10_000, partitionCounts: COUNTS, newMemberId: () => 'x' },
    );
    if ('problem' in leave) throw new Error(leave.problem.message);
    g.group = leave.group;
    g.owned.delete(a.memberId);
    const r = g.beat(b.memberId) as HeartbeatResponse;
    expect(r.assignment).toHaveLength(4);
    expect(r.standbyTasks).toEqual([]);
  });

  it('refuses a member whose topology or standby count differs, and a subtopology that is not co-partitioned', () => {
    const g = new Members();
    g.beat('');
    const other = g.beat('', { topology: [TOPOLOGY[0]!, { subtopologyId: '1', sourceTopics: ['app-repartition'], changelogTopics: ['app-other-changelog'] }] });
    expect(other).toMatchObject({ reason: 'INVALID_TOPOLOGY' });
    expect((other as { message: string }).message).toMatch(/subtopology 1: the group's has .*app-counts-changelog.*this member's has .*app-other-changelog/);
    expect(g.beat('', { standbys: 2 })).toMatchObject({
      reason: 'INVALID_TOPOLOGY',
      message: expect.stringMatching(/num_standby_replicas 2 differs from the 1/),
    });
    const fresh = new Members();
    const joinTopology = [{ subtopologyId: '0', sourceTopics: ['orders', 'customers'], changelogTopics: [] }];
    const refused = fresh.beat('', {
      topology: joinTopology,
      counts: new Map([
        ['orders', 3],
        ['customers', 2],
      ]),
    });
    expect(refused).toMatchObject({ reason: 'INVALID_TOPOLOGY', message: expect.stringMatching(/customers has 2 partitions and orders has 3/) });
  });

  it('a streams member cannot join a group run by another assignor while that group has members, nor a plain member a streams group', () => {
    const plain = emptyGroup('g', 'uniform');
    const joined = heartbeat(
      plain,
      { memberId: '', memberEpoch: 0, clientId: 'c', topics: ['lines'], ownedPartitions: [] },
      { nowMs: 0, sessionTimeoutMs: 10_000, partitionCounts: COUNTS, newMemberId: () => 'p' },
    );
    if ('problem' in joined) throw new Error(joined.problem.message);
    const streamsMember = heartbeat(
      joined.group,
      {
        memberId: '',
        memberEpoch: 0,
        clientId: 'c',
        topics: [],
        ownedPartitions: [],
        serverAssignor: 'streams',
        streams: { subtopologies: TOPOLOGY, numStandbyReplicas: 0, taskOffsets: {} },
      },
      { nowMs: 0, sessionTimeoutMs: 10_000, partitionCounts: COUNTS, newMemberId: () => 's' },
    );
    expect(streamsMember).toMatchObject({ problem: { reason: 'INVALID_REQUEST' } });
    const g = new Members();
    g.beat('');
    const plainMember = heartbeat(
      g.group,
      { memberId: '', memberEpoch: 0, clientId: 'c', topics: ['lines'], ownedPartitions: [] },
      { nowMs: 0, sessionTimeoutMs: 10_000, partitionCounts: COUNTS, newMemberId: () => 'q' },
    );
    expect(plainMember).toMatchObject({ problem: { reason: 'INVALID_REQUEST' } });
  });
});
