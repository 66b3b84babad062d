// The Processor API (KStream.process) with typed state stores and punctuation, driven in memory by
// the TopologyTestDriver with its mock wall clock. Expected outputs are written out by hand.
import { describe, expect, it } from 'vitest';
import { StreamsBuilder } from './dsl.js';
import type { RecordProcessorContext, TypedKeyValueStore } from './processor-api.js';
import type { Cancellable } from './punctuation.js';
import { Serdes } from './serdes.js';
import { TopologyTestDriver } from './test-driver.js';

const S = Serdes.String();
const L = Serdes.Long();
const rec = (key: string, value: string, timestamp: number) => ({ key, value, timestamp });

/** Counts per key in a store; every `intervalMs` (of `type`) forwards "key=count" for every key. */
function summaryApp(type: 'stream-time' | 'wall-clock', intervalMs: number, opts: { cancelAfter?: number } = {}) {
  const b = new StreamsBuilder();
  b.addStateStore({ name: 'seen', keySerde: S, valueSerde: L });
  const closed: string[] = [];
  b.stream<string, string>('in')
    .process<string, string>(() => {
      let ctx!: RecordProcessorContext<string, string>;
      let store!: TypedKeyValueStore<string, number>;
      let handle!: Cancellable;
      let fired = 0;
      return {
        init(c) {
          ctx = c;
          store = c.getStateStore<string, number>('seen');
          handle = c.schedule(intervalMs, type, (t) => {
            for (const [k, n] of store.all()) ctx.forward(k, `${k}=${n}@${t}`);
            if (++fired === opts.cancelAfter) handle.cancel();
          });
        },
        process(r) {
          store.put(r.key, (store.get(r.key) ?? 0) + 1);
        },
        close() {
          closed.push(ctx.taskId);
        },
      };
    }, 'seen')
    .to('summaries', { keySerde: S, valueSerde: S });
  return { driver: new TopologyTestDriver(b.build(), { initialWallClockTimeMs: 1_000 }), closed };
}

const values = (d: TopologyTestDriver) => d.readOutput('summaries', S, S).map((r) => [r.value, r.timestamp]);

describe('Processor API', () => {
  it('stream-time punctuation fires as stream time passes each boundary, once per advance, with the stream time', () => {
    const { driver } = summaryApp('stream-time', 10);
    driver.pipe('in', S, S, [rec('a', 'x', 5)]); // first record: due at 0
    expect(values(driver)).toEqual([['a=1@5', 5]]);
    driver.pipe('in', S, S, [rec('b', 'x', 8), rec('a', 'x', 3)]); // 8 and an out-of-order 3: no boundary passed
    expect(values(driver)).toEqual([]);
    driver.pipe('in', S, S, [rec('b', 'x', 10)]);
    expect(values(driver)).toEqual([
      ['a=2@10', 10],
      ['b=2@10', 10],
    ]);
    driver.pipe('in', S, S, [rec('c', 'x', 45)]); // skips 20, 30, 40: one punctuation
    expect(values(driver).map(([v]) => v)).toEqual(['a=2@45', 'b=2@45', 'c=1@45']);
    // The wall clock does not drive stream-time punctuators.
    driver.advanceWallClockTime(1_000_000);
    expect(values(driver)).toEqual([]);
    expect(driver.punctuations()).toEqual({ 'stream-time': 3, 'wall-clock': 0 });
  });

  it('wall-clock punctuation fires while no input arrives, as the mock clock moves, with the wall-clock time', () => {
    const { driver } = summaryApp('wall-clock', 100);
    driver.pipe('in', S, S, [rec('a', 'x', 5), rec('a', 'x', 6), rec('b', 'x', 7)]);
    expect(values(driver)).toEqual([]); // records alone do not fire it
    driver.advanceWallClockTime(99);
    expect(values(driver)).toEqual([]);
    driver.advanceWallClockTime(1); // 1,100: one interval after init at 1,000
    expect(values(driver)).toEqual([
      ['a=2@1100', 1100],
      ['b=1@1100', 1100],
    ]);
    driver.advanceWallClockTime(350); // 1,450: 1,200 .. 1,400 missed, one firing; next at 1,500
    expect(values(driver).map(([v]) => v)).toEqual(['a=2@1450', 'b=1@1450']);
    driver.advanceWallClockTime(49);
    expect(values(driver)).toEqual([]);
    driver.advanceWallClockTime(1);
    expect(values(driver).map(([v]) => v)).toEqual(['a=2@1500', 'b=1@1500']);
    expect(driver.punctuations()).toEqual({ 'stream-time': 0, 'wall-clock': 3 });
  });

  it('a cancelled punctuator fires no more; close() reaches the processor', () => {
    const { driver, closed } = summaryApp('wall-clock', 100, { cancelAfter: 2 });
    driver.pipe('in', S, S, [rec('a', 'x', 1)]);
    for (let i = 0; i < 5; i++) driver.advanceWallClockTime(100);
    expect(values(driver).map(([v]) => v)).toEqual(['a=1@1100', 'a=1@1200']);
    driver.close();
    expect(closed).toEqual(['0_0']);
  });

  it('typed stores: put, get, delete, inclusive range by serialized key, all, count; state survives commit()', () => {
    const b = new StreamsBuilder();
    b.addStateStore({ name: 'kv', keySerde: S, valueSerde: Serdes.JSON<{ n: number }>() });
    const seen: unknown[] = [];
    b.stream<string, string>('in').process<string, string>(() => {
      let store!: TypedKeyValueStore<string, { n: number }>;
      return {
        init: (c) => {
          store = c.getStateStore('kv');
        },
        process: (r) => {
          if (r.value === 'del') seen.push(['deleted', store.delete(r.key)]);
          else if (r.value === 'dump') seen.push(['range', store.range('b', 'c')], ['all', store.all().length, store.approximateNumEntries()]);
          else store.put(r.key, { n: Number(r.value) });
        },
      };
    }, 'kv');
    const d = new TopologyTestDriver(b.build());
    d.pipe('in', S, S, [rec('a', '1', 1), rec('b', '2', 2), rec('c', '3', 3), rec('ca', '4', 4)]);
    d.commit();
    d.pipe('in', S, S, [rec('a', 'del', 5), rec('x', 'dump', 6)]);
    expect(seen).toEqual([
      ['deleted', { n: 1 }],
      [
        'range',
        [
          ['b', { n: 2 }],
          ['c', { n: 3 }],
        ],
      ],
      ['all', 3, 3],
    ]);
    expect(d.storeGet('kv', 'c', S, Serdes.JSON())).toEqual({ n: 3 });
  });

  it('forward() without a timestamp keeps the record time; processors refuse unconnected stores and bad schedules', () => {
    const b = new StreamsBuilder();
    b.addStateStore({ name: 'other', keySerde: S, valueSerde: S });
    b.addStateStore({ name: 'mine', keySerde: S, valueSerde: S });
    const errors: string[] = [];
    b.stream<string, string>('in')
      .process<string, string>(() => {
        let ctx!: RecordProcessorContext<string, string>;
        return {
          init: (c) => {
            ctx = c;
            for (const f of [
              () => c.getStateStore('other'),
              () => c.schedule(0, 'wall-clock', () => {}),
              () => c.schedule(5, 'bogus' as 'wall-clock', () => {}),
            ]) {
              try {
                f();
              } catch (err) {
                errors.push((err as Error).message);
              }
            }
          },
          process: (r) => {
            ctx.forward(r.key.toUpperCase(), r.value);
            ctx.forward(r.key, r.value, r.timestamp + 1_000);
          },
        };
      }, 'mine')
      .to('out', { keySerde: S, valueSerde: S });
    b.stream<string, string>('in2').process(() => ({ process: () => {} }), 'other');
    const d = new TopologyTestDriver(b.build());
    d.pipe('in', S, S, [rec('k', 'v', 7)]);
    expect(d.readOutput('out', S, S)).toEqual([rec('K', 'v', 7), rec('k', 'v', 1_007)]);
    expect(errors).toEqual([expect.stringMatching(/not connected/), expect.stringMatching(/interval/), expect.stringMatching(/punctuation type/)]);
    expect(() => b.stream('in3').process(() => ({ process: () => {} }), 'nope')).toThrow(/no store nope/);
    expect(() => b.addStateStore({ name: 'bad name!', keySerde: S, valueSerde: S })).toThrow(/name/);
  });
});
