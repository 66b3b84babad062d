import { describe, expect, it } from 'vitest';
import { loadOf, placeReplicas, PlacementError } from './placement.js';

function counts(lists: number[][], leadersOnly: boolean): Map<number, number> {
  const m = new Map<number, number>();
  for (const l of lists) for (const id of leadersOnly ? l.slice(0, 1) : l) m.set(id, (m.get(id) ?? 0) + 1);
  return m;
}

describe('placeReplicas', () => {
  it('never places a broker twice in one partition and spreads leaders and replicas evenly', () => {
    for (let brokers = 1; brokers <= 7; brokers++) {
      for (let rf = 1; rf <= brokers; rf++) {
        for (const partitions of [1, 3, brokers * 4, 50]) {
          const lists = placeReplicas({ partitionCount: partitions, replicationFactor: rf, brokers: Array.from({ length: brokers }, (_, i) => ({ brokerId: i + 10 })) });
          expect(lists).toHaveLength(partitions);
          for (const l of lists) {
            expect(l).toHaveLength(rf);
            expect(new Set(l).size).toBe(rf);
          }
          const leaders = [...counts(lists, true).values()];
          const replicas = [...counts(lists, false).values()];
          if (partitions >= brokers) expect(Math.max(...leaders) - Math.min(...leaders)).toBeLessThanOrEqual(1);
          if (partitions * rf >= brokers) expect(Math.max(...replicas) - Math.min(...replicas)).toBeLessThanOrEqual(1);
        }
      }
    }
  });

  it('puts each replica of a partition in a different rack when racks allow', () => {
    const brokers = [
      { brokerId: 1, rack: 'a' }, { brokerId: 2, rack: 'a' },
      { brokerId: 3, rack: 'b' }, { brokerId: 4, rack: 'b' },
      { brokerId: 5, rack: 'c' }, { brokerId: 6, rack: 'c' },
    ];
    const rackOf = new Map(brokers.map((b) => [b.brokerId, b.rack]));
    const lists = placeReplicas({ partitionCount: 12, replicationFactor: 3, brokers });
    for (const l of lists) expect(new Set(l.map((id) => rackOf.get(id))).size).toBe(3);
    const leaders = [...counts(lists, true).values()];
    expect(Math.max(...leaders) - Math.min(...leaders)).toBeLessThanOrEqual(1);
  });

  it('keeps the balance when partitions are added to a loaded cluster', () => {
    const brokers = [1, 2, 3].map((brokerId) => ({ brokerId }));
    const first = placeReplicas({ partitionCount: 2, replicationFactor: 2, brokers });
    const more = placeReplicas({ partitionCount: 4, replicationFactor: 2, brokers, load: loadOf(first) });
    const leaders = [...counts([...first, ...more], true).values()];
    expect(Math.max(...leaders) - Math.min(...leaders)).toBe(0);
  });

  it('is deterministic', () => {
    const brokers = [3, 1, 2].map((brokerId) => ({ brokerId }));
    const a = placeReplicas({ partitionCount: 9, replicationFactor: 2, brokers, seed: 5 });
    const b = placeReplicas({ partitionCount: 9, replicationFactor: 2, brokers: [...brokers].reverse(), seed: 5 });
    expect(a).toEqual(b);
  });

  it('refuses more replicas than brokers', () => {
    expect(() => placeReplicas({ partitionCount: 1, replicationFactor: 3, brokers: [{ brokerId: 1 }, { brokerId: 2 }] })).toThrow(PlacementError);
  });
});
