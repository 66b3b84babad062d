import { describe, expect, it } from 'vitest';
import { type ClusterState, type ConnectorRecord, connectorKey, encodeConnector, replay } from './cluster-state.js';
import { connectorStatus, encodeStatus, replayStatus, taskStatusKey } from './status.js';

const rec: ConnectorRecord = {
  name: 'c1',
  type: 'sink',
  config: { 'connector.class': 'FileSink' },
  tasks: [{}, {}],
  generation: 1,
  paused: false,
  taskRestarts: [0, 0],
};

describe('config topic replay', () => {
  it('a record sets a connector, a tombstone deletes it, and the old state is never mutated', () => {
    const s0: ClusterState = new Map();
    const s1 = replay(s0, connectorKey('c1'), encodeConnector(rec));
    expect(s0.size).toBe(0);
    expect(s1.get('c1')).toEqual(rec);
    const s2 = replay(s1, connectorKey('c1'), null);
    expect(s2.has('c1')).toBe(false);
    expect(s1.has('c1')).toBe(true);
  });

  it('skips unknown keys and unparseable values without losing state', () => {
    const skipped: string[] = [];
    const s1 = replay(new Map(), connectorKey('c1'), encodeConnector(rec));
    expect(replay(s1, 'whatever', Buffer.from('x'), (w) => skipped.push(w))).toBe(s1);
    expect(replay(s1, connectorKey('c1'), Buffer.from('{nope'), (w) => skipped.push(w)).get('c1')).toEqual(rec);
    expect(skipped).toHaveLength(2);
  });
});

describe('status', () => {
  it('FAILED beats PAUSED beats RUNNING; tasks without a record are UNASSIGNED', () => {
    let st = replayStatus(
      new Map(),
      taskStatusKey('c1', 0),
      encodeStatus({ connector: 'c1', task: 0, state: 'RUNNING', workerId: 'w1', trace: '', updatedAtMs: 1 }),
    );
    expect(connectorStatus(rec, st).state).toBe('UNASSIGNED');
    expect(connectorStatus(rec, st).tasks[1]!.state).toBe('UNASSIGNED');
    st = replayStatus(st, taskStatusKey('c1', 1), encodeStatus({ connector: 'c1', task: 1, state: 'RUNNING', workerId: 'w2', trace: '', updatedAtMs: 2 }));
    expect(connectorStatus(rec, st).state).toBe('RUNNING');
    expect(connectorStatus({ ...rec, paused: true }, st).state).toBe('PAUSED');
    st = replayStatus(st, taskStatusKey('c1', 1), encodeStatus({ connector: 'c1', task: 1, state: 'FAILED', workerId: 'w2', trace: 'boom', updatedAtMs: 3 }));
    const s = connectorStatus({ ...rec, paused: true }, st);
    expect(s.state).toBe('FAILED');
    expect(s.tasks[1]!.trace).toBe('boom');
  });
});
