import { describe, expect, it } from 'vitest';
import type { ConnectorRecord } from './cluster-state.js';
import { desiredTasks, reconcile, slotOf } from './assignment.js';

const record = (name: string, tasks: number, extra: Partial<ConnectorRecord> = {}): ConnectorRecord => ({
  name,
  type: 'source',
  config: {},
  tasks: Array.from({ length: tasks }, () => ({})),
  generation: 1,
  paused: false,
  taskRestarts: Array.from({ length: tasks }, () => 0),
  ...extra,
});

describe('task slots', () => {
  it('a task keeps its slot whatever other connectors exist', () => {
    const slots = 32;
    const before = new Map([['a', record('a', 3)]]);
    const after = new Map([...before, ['b', record('b', 5)], ['c', record('c', 1)]]);
    const all = new Set(Array.from({ length: slots }, (_, i) => i));
    const owned = new Set([slotOf('a', 0, slots), slotOf('a', 2, slots)]);
    const d1 = desiredTasks(before, owned, slots);
    const d2 = desiredTasks(after, owned, slots);
    for (const id of d1.keys()) expect(d2.has(id)).toBe(true);
    // Every task is somewhere: the union over all slots is every task.
    expect(desiredTasks(after, all, slots).size).toBe(9);
  });

  it('spreads tasks over slots (no slot takes more than a fair share times 4 of 1,000 tasks)', () => {
    const counts = new Array(32).fill(0);
    for (let c = 0; c < 100; c++) for (let t = 0; t < 10; t++) counts[slotOf(`conn-${c}`, t, 32)]++;
    expect(Math.max(...counts)).toBeLessThan((1000 / 32) * 4);
    expect(counts.filter((n) => n === 0)).toHaveLength(0);
  });

  it('reconcile stops changed and unowned tasks, starts new ones, pauses and resumes', () => {
    const state = new Map([
      ['a', record('a', 2, { generation: 2 })],
      ['p', record('p', 1, { paused: true })],
    ]);
    const all = new Set(Array.from({ length: 8 }, (_, i) => i));
    const desired = desiredTasks(state, all, 8);
    const running = new Map([
      ['a/0', { runKey: '1.0', paused: false }], // old generation: restart
      ['a/1', { runKey: '2.0', paused: false }], // unchanged
      ['gone/0', { runKey: '1.0', paused: false }], // deleted
      ['p/0', { runKey: '1.0', paused: false }], // to pause
    ]);
    const c = reconcile(running, desired);
    expect(c.stop.sort()).toEqual(['a/0', 'gone/0']);
    expect(c.start.map((d) => `${d.connector}/${d.task}`)).toEqual(['a/0']);
    expect(c.pause).toEqual(['p/0']);
    expect(c.resume).toEqual([]);
    const c2 = reconcile(new Map([['p/0', { runKey: '1.0', paused: true }]]), desiredTasks(new Map([['p', record('p', 1)]]), all, 8));
    expect(c2.resume).toEqual(['p/0']);
  });

  it('a restart of one task changes only its run key', () => {
    const all = new Set(Array.from({ length: 8 }, (_, i) => i));
    const before = desiredTasks(new Map([['a', record('a', 2)]]), all, 8);
    const after = desiredTasks(new Map([['a', record('a', 2, { taskRestarts: [0, 1] })]]), all, 8);
    expect(after.get('a/0')!.runKey).toBe(before.get('a/0')!.runKey);
    expect(after.get('a/1')!.runKey).not.toBe(before.get('a/1')!.runKey);
  });
});
