// Interactive queries over fake local tasks (in-memory stores): which task holds a key (Kafka's
// partitioner, computed here independently), typed reads, windows, and the retriable error when the
// key's task restores here or runs elsewhere.
import { partitionForKey } from '@skein/client';
import { describe, expect, it } from 'vitest';
import { StreamsBuilder } from './dsl.js';
import { type LocalTasks, keyQueryMetadata, queryableKeyValueStore, queryableWindowStore } from './interactive-queries.js';
import { Serdes } from './serdes.js';
import { CachedStore, MemoryEngine } from './state/store-engine.js';
import type { KeyValueStore } from './topology.js';
import { TimeWindows } from './windows.js';

const L = Serdes.Long();

function setup(states: Record<string, 'RUNNING' | 'RESTORING'>) {
  const b = new StreamsBuilder();
  b.stream<string, string>('in').groupByKey().count({ storeName: 'counts' });
  b.stream<string, string>('clicks').groupByKey().windowedBy(TimeWindows.ofSizeWithNoGrace(1_000)).count({ storeName: 'per-second' });
  const topology = b.build();
  const tasks = new Map<string, { state: 'RUNNING' | 'RESTORING' | 'CLOSED'; stores: Map<string, KeyValueStore> }>();
  for (const [id, state] of Object.entries(states)) {
    const engine = new MemoryEngine();
    tasks.set(id, {
      state,
      stores: new Map([
        ['counts', new CachedStore('counts', engine)],
        ['per-second', new CachedStore('per-second', engine)],
      ]),
    });
  }
  const local: LocalTasks = {
    topology,
    partitionCount: () => 4,
    task: (id) => tasks.get(id),
    tasks: () => [...tasks.entries()].map(([id, t]) => ({ id, ...t })),
  };
  const sub = (store: string) => topology.subtopologies.find((s) => s.stores.includes(store))!.id;
  const put = (key: string, n: number) => {
    const p = partitionForKey(Buffer.from(key), 4);
    tasks
      .get(`${sub('counts')}_${p}`)!
      .stores.get('counts')!
      .put(Buffer.from(key), L.serialize(n));
  };
  return { local, tasks, put, sub };
}

describe('interactive queries', () => {
  it('get, range, all and count over the running tasks; metadata names the partition of the key', () => {
    const counts = { apple: 3, banana: 1, cherry: 7, date: 2, elder: 5 };
    const { local, put, sub } = setup({ [`0_0`]: 'RUNNING', [`0_1`]: 'RUNNING', [`0_2`]: 'RUNNING', [`0_3`]: 'RUNNING' });
    for (const [k, n] of Object.entries(counts)) put(k, n);
    const store = queryableKeyValueStore<string, number>(local, 'counts');
    for (const [k, n] of Object.entries(counts)) expect(store.get(k)).toBe(n);
    expect(store.get('fig')).toBeUndefined();
    expect(store.all()).toEqual(Object.entries(counts));
    expect(store.range('banana', 'date')).toEqual([
      ['banana', 1],
      ['cherry', 7],
      ['date', 2],
    ]);
    expect(store.approximateNumEntries()).toBe(5);
    const m = keyQueryMetadata(local, 'counts', 'cherry');
    const p = partitionForKey(Buffer.from('cherry'), 4);
    expect(m).toEqual({ store: 'counts', partition: p, taskId: `${sub('counts')}_${p}`, activeHere: true, state: 'RUNNING' });
  });

  it('a key whose task restores here or is not here: UNAVAILABLE (retriable), naming the partition; range/all refuse while a local task restores', () => {
    const keyOn = (p: number) => ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'].find((k) => partitionForKey(Buffer.from(k), 4) === p)!;
    const { local } = setup({ '0_0': 'RUNNING', '0_1': 'RESTORING' });
    const store = queryableKeyValueStore<string, number>(local, 'counts');
    expect(store.get(keyOn(0))).toBeUndefined();
    expect(() => store.get(keyOn(1))).toThrow(
      expect.objectContaining({ reason: 'UNAVAILABLE', retriable: true, message: expect.stringMatching(/partition 1 .*restoring/) }),
    );
    expect(() => store.get(keyOn(2))).toThrow(
      expect.objectContaining({ reason: 'UNAVAILABLE', message: expect.stringMatching(/partition 2 .*not active on this instance/) }),
    );
    expect(keyQueryMetadata(local, 'counts', keyOn(2))).toMatchObject({ partition: 2, activeHere: false, state: undefined });
    expect(() => store.all()).toThrow(expect.objectContaining({ reason: 'UNAVAILABLE' }));
    expect(() => queryableKeyValueStore(local, 'nope')).toThrow(
      expect.objectContaining({ reason: 'INVALID_REQUEST', message: 'no store nope in this topology' }),
    );
    expect(() => queryableKeyValueStore(local, 'per-second')).toThrow(/window store/);
  });

  it('window store: fetch(key, from, to) returns the key’s windows with start in range', () => {
    const { local, tasks, sub } = setup({ '1_0': 'RUNNING', '1_1': 'RUNNING', '1_2': 'RUNNING', '1_3': 'RUNNING' });
    const s = sub('per-second');
    const p = partitionForKey(Buffer.from('u1'), 4);
    const be = (n: number) => {
      const b = Buffer.alloc(8);
      b.writeBigInt64BE(BigInt(n));
      return b;
    };
    const w = tasks.get(`${s}_${p}`)!.stores.get('per-second')!;
    for (const [start, key, n] of [
      [0, 'u1', 1],
      [1_000, 'u1', 4],
      [1_000, 'u10', 9],
      [2_000, 'u1', 2],
    ] as const)
      w.put(Buffer.concat([be(start), Buffer.from(key)]), L.serialize(n));
    const store = queryableWindowStore<string, number>(local, 'per-second');
    expect(store.fetch('u1', 1_000, 2_000)).toEqual([
      { window: { start: 1_000, end: 2_000 }, value: 4 },
      { window: { start: 2_000, end: 3_000 }, value: 2 },
    ]);
    expect(() => store.fetch('u1', 5, 1)).toThrow(expect.objectContaining({ reason: 'INVALID_REQUEST' }));
    expect(() => store.fetch('u1', -1, 1)).toThrow(expect.objectContaining({ reason: 'INVALID_REQUEST' }));
  });
});
