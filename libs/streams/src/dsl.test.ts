// The DSL's operators, windows and joins, driven in memory (TopologyTestDriver). Expected outputs
// are written out by hand or computed by a small reference model in the test, not by the library.
import { describe, expect, it } from 'vitest';
import { StreamsBuilder } from './dsl.js';
import { Serdes, type Windowed, windowedSerde } from './serdes.js';
import { TopologyTestDriver } from './test-driver.js';
import { JoinWindows, SessionWindows, SlidingWindows, TimeWindows } from './windows.js';

const S = Serdes.String();
const J = Serdes.JSON<unknown>();
const rec = (key: string | null, value: string | null, timestamp: number) => ({ key, value, timestamp });

describe('stateless operators', () => {
  it('map, mapValues, filter, flatMap, selectKey, peek, merge, branch/split and to', () => {
    const b = new StreamsBuilder();
    const seen: string[] = [];
    const input = b.stream('in');
    const upper = input.mapValues((v) => v.toUpperCase()).peek((k) => seen.push(k));
    upper.filter((_k, v) => v.startsWith('A')).to('a-words');
    input.flatMap((k, v) => v.split(' ').map((w) => [`${k}:${w}`, w] as [string, string])).to('words');
    input
      .map((k, v) => [v, k] as [string, string])
      .selectKey((k) => `#${k}`)
      .to('swapped');
    const branches = input
      .split('b-')
      .branch((_k, v) => v.length < 4, 'short')
      .defaultBranch('long');
    branches['b-short']!.merge(branches['b-long']!.mapValues(() => 'LONG')).to('merged');
    const d = new TopologyTestDriver(b.build());
    d.pipe('in', S, S, [rec('k1', 'apple pie', 1), rec('k2', 'fig', 2), rec('k3', 'avocado', 3)]);
    expect(d.readOutput('a-words', S, S)).toEqual([rec('k1', 'APPLE PIE', 1), rec('k3', 'AVOCADO', 3)]);
    expect(d.readOutput('words', S, S).map((r) => [r.key, r.value])).toEqual([
      ['k1:apple', 'apple'],
      ['k1:pie', 'pie'],
      ['k2:fig', 'fig'],
      ['k3:avocado', 'avocado'],
    ]);
    expect(d.readOutput('swapped', S, S).map((r) => [r.key, r.value])).toEqual([
      ['#apple pie', 'k1'],
      ['#fig', 'k2'],
      ['#avocado', 'k3'],
    ]);
    expect(d.readOutput('merged', S, S).map((r) => r.value)).toEqual(['LONG', 'fig', 'LONG']);
    expect(seen).toEqual(['k1', 'k2', 'k3']);
  });

  it('branch() sends each record to the first matching predicate only, and drops unmatched ones', () => {
    const b = new StreamsBuilder();
    const [small, even] = b.stream('n').branch(
      (_k, v) => Number(v) < 3,
      (_k, v) => Number(v) % 2 === 0,
    );
    small!.to('small');
    even!.to('even');
    const d = new TopologyTestDriver(b.build());
    d.pipe(
      'n',
      S,
      S,
      ['1', '2', '3', '4', '5', '6'].map((v, i) => rec('k', v, i)),
    );
    expect(d.readOutput('small', S, S).map((r) => r.value)).toEqual(['1', '2']);
    expect(d.readOutput('even', S, S).map((r) => r.value)).toEqual(['4', '6']);
  });
});

describe('aggregations', () => {
  it('word count: flatMap to words, groupBy word (through a repartition topic), count', () => {
    const b = new StreamsBuilder();
    b.stream('lines')
      .flatMapValues((v) => v.toLowerCase().split(/\W+/).filter(Boolean))
      .groupBy((_k, w) => w)
      .count({ storeName: 'counts' })
      .toStream()
      .to('counts-out', { valueSerde: J as never });
    const topology = b.build();
    expect(topology.subtopologies.length).toBe(2);
    expect(topology.repartitionTopics.length).toBe(1);
    const d = new TopologyTestDriver(topology);
    const lines = ['the cat', 'The dog', 'a cat and THE bird'];
    d.pipe(
      'lines',
      S,
      S,
      lines.map((l, i) => rec(null, l, i)),
    );
    // Reference: running counts per word, in input order.
    const running = new Map<string, number>();
    const expected: Array<[string, number]> = [];
    for (const l of lines)
      for (const w of l.toLowerCase().split(' ')) {
        running.set(w, (running.get(w) ?? 0) + 1);
        expected.push([w, running.get(w)!]);
      }
    expect(d.readOutput('counts-out', S, J).map((r) => [r.key, r.value])).toEqual(expected);
    expect(d.storeGet('counts', 'the', S, Serdes.Long())).toBe(3);
  });

  it('reduce and aggregate skip null keys and values', () => {
    const b = new StreamsBuilder();
    const g = b.stream('n').groupByKey();
    g.reduce((a, v) => String(Number(a) + Number(v)), { storeName: 'sum' })
      .toStream()
      .to('sums');
    const d = new TopologyTestDriver(b.build());
    d.pipe('n', S, S, [rec('a', '1', 0), rec('a', '2', 1), rec(null, '5', 2), rec('a', null, 3), rec('b', '7', 4)]);
    expect(d.readOutput('sums', S, S).map((r) => [r.key, r.value])).toEqual([
      ['a', '1'],
      ['a', '3'],
      ['b', '7'],
    ]);
    expect(d.events()['skipped-null']).toBe(2);
  });
});

/** Reference model: counts per (key, window) with grace, dropping records whose windows are all closed. */
function referenceWindowCounts(records: Array<{ key: string; t: number }>, size: number, advance: number, grace: number) {
  let streamTime = -1;
  const counts = new Map<string, number>();
  const updates: string[] = [];
  let dropped = 0;
  for (const r of records) {
    streamTime = Math.max(streamTime, r.t);
    let any = false;
    for (let s = 0; s <= r.t; s += advance) {
      if (r.t >= s + size) continue;
      if (s + size + grace <= streamTime) continue; // closed
      const k = `${r.key}@${s}`;
      counts.set(k, (counts.get(k) ?? 0) + 1);
      updates.push(`${k}=${counts.get(k)}`);
      any = true;
    }
    if (!any) dropped++;
  }
  return { counts, updates, dropped, streamTime };
}

describe('time windows', () => {
  const W = windowedSerde(S);
  // Out of order and late: 25 arrives after stream time 32 (window [20,30) closes at 30 + grace 5 = 35: still open);
  // 12 arrives at stream time 41 (window [10,20) closed at 25): dropped.
  const input = [
    { key: 'u1', t: 1 },
    { key: 'u2', t: 4 },
    { key: 'u1', t: 12 },
    { key: 'u1', t: 32 },
    { key: 'u1', t: 25 },
    { key: 'u2', t: 41 },
    { key: 'u1', t: 12 },
    { key: 'u1', t: 38 },
    { key: 'u1', t: 29 },
  ];

  for (const [name, size, advance] of [
    ['tumbling', 10, 10],
    ['hopping', 10, 5],
  ] as const) {
    it(`${name} count with grace: out-of-order records counted while their window is open, late ones dropped`, () => {
      const b = new StreamsBuilder();
      b.stream('clicks')
        .groupByKey()
        .windowedBy(TimeWindows.ofSizeAndGrace(size, 5).advanceBy(advance))
        .count()
        .toStream()
        .to('out', { keySerde: W, valueSerde: Serdes.Long() });
      const d = new TopologyTestDriver(b.build());
      d.pipe(
        'clicks',
        S,
        S,
        input.map((r) => rec(r.key, 'x', r.t)),
      );
      const ref = referenceWindowCounts(input, size, advance, 5);
      const got = d.readOutput('out', W, Serdes.Long()).map((r) => `${(r.key as Windowed<string>).key}@${(r.key as Windowed<string>).window.start}=${r.value}`);
      expect(got).toEqual(ref.updates);
      expect(d.events()['dropped-late'] ?? 0).toBe(ref.dropped);
      expect(ref.dropped).toBeGreaterThan(0);
    });
  }

  it('suppress(untilWindowCloses) emits one final result per window, when stream time passes end + grace', () => {
    const b = new StreamsBuilder();
    b.stream('clicks')
      .groupByKey()
      .windowedBy(TimeWindows.ofSizeAndGrace(10, 5))
      .count()
      .suppressUntilWindowCloses()
      .toStream()
      .to('final', { keySerde: W, valueSerde: Serdes.Long() });
    const d = new TopologyTestDriver(b.build());
    d.pipe(
      'clicks',
      S,
      S,
      input.map((r) => rec(r.key, 'x', r.t)),
    );
    const ref = referenceWindowCounts(input, 10, 10, 5);
    // Final results: windows whose end + grace <= final stream time, each with its final count, in order of window end.
    const closed = [...ref.counts.entries()]
      .map(([k, n]) => ({ k, n, end: Number(k.split('@')[1]) + 10 }))
      .filter((x) => x.end + 5 <= ref.streamTime)
      .sort((a, b) => a.end - b.end || (a.k < b.k ? -1 : 1))
      .map((x) => `${x.k}=${x.n}`);
    const got = d.readOutput('final', W, Serdes.Long()).map((r) => `${(r.key as Windowed<string>).key}@${(r.key as Windowed<string>).window.start}=${r.value}`);
    expect(got).toEqual(closed);
    expect(got.length).toBeGreaterThan(0);
  });

  it('purges windows past retention at commit', () => {
    const b = new StreamsBuilder();
    b.stream('c').groupByKey().windowedBy(TimeWindows.ofSizeAndGrace(10, 0)).count({ storeName: 'wc' });
    const topology = b.build();
    const d = new TopologyTestDriver(topology);
    d.pipe('c', S, S, [rec('a', 'x', 1), rec('a', 'x', 100)]);
    d.commit();
    // Window [0,10) ended long before stream time 100: gone; its late record would be dropped anyway.
    d.pipe('c', S, S, [rec('a', 'x', 2)]);
    expect(d.events()['dropped-late']).toBe(1);
  });
});

describe('session windows', () => {
  it('merges sessions a record bridges, emits deletions for merged-away sessions, drops late records', () => {
    const W = windowedSerde(S);
    const b = new StreamsBuilder();
    b.stream('s')
      .groupByKey()
      .windowedBy(SessionWindows.ofInactivityGapAndGrace(5, 20))
      .count()
      .toStream()
      .to('sessions', { keySerde: W, valueSerde: Serdes.Long() });
    const d = new TopologyTestDriver(b.build());
    d.pipe('s', S, S, [
      rec('a', 'x', 0),
      rec('a', 'x', 10),
      rec('a', 'x', 4),
      rec('a', 'x', 7),
      rec('a', 'x', 30),
      rec('a', 'x', 45),
      rec('a', 'x', 1),
      rec('b', 'x', 44),
    ]);
    const got = d
      .readOutput('sessions', W, Serdes.Long())
      .map((r) => `${(r.key as Windowed<string>).key}:${(r.key as Windowed<string>).window.start}-${(r.key as Windowed<string>).window.end}=${r.value}`);
    expect(got).toEqual([
      'a:0-0=1',
      'a:10-10=1',
      // 4 is within 5 of 0: session [0,4]
      'a:0-0=null',
      'a:0-4=2',
      // 7 bridges [0,4] and [10,10]
      'a:0-4=null',
      'a:10-10=null',
      'a:0-10=4',
      'a:30-30=1',
      'a:45-45=1',
      // 1 at stream time 45 would extend [0,10], which ended at 10 and 10 + 20 < 45: late, dropped
      'b:44-44=1',
    ]);
    expect(d.events()['dropped-late']).toBe(1);
  });
});

describe('sliding windows', () => {
  it('counts the records within size of each other, per window touched', () => {
    const W = windowedSerde(S);
    const b = new StreamsBuilder();
    b.stream('s')
      .groupByKey()
      .windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(10, 0))
      .count()
      .toStream()
      .to('out', { keySerde: W, valueSerde: Serdes.Long() });
    const d = new TopologyTestDriver(b.build());
    d.pipe('s', S, S, [rec('a', 'x', 10), rec('a', 'x', 15), rec('a', 'x', 30)]);
    const got = d
      .readOutput('out', W, Serdes.Long())
      .map((r) => `${(r.key as Windowed<string>).window.start}-${(r.key as Windowed<string>).window.end}=${r.value}`);
    // Record 10: window [0,10] = 1. Record 15: windows [5,15] (10,15) = 2 and [11,21] (15) = 1. Record 30: [20,30] = 1.
    expect(got).toEqual(['0-10=1', '5-15=2', '11-21=1', '20-30=1']);
  });
});

describe('joins', () => {
  it('stream-table join and left join', () => {
    const b = new StreamsBuilder();
    const users = b.table('users');
    const clicks = b.stream('clicks');
    clicks.join(users, (c, u) => `${c} by ${u}`).to('joined');
    clicks.leftJoin(users, (c, u) => `${c} by ${u ?? '?'}`).to('left');
    const topology = b.build();
    expect(topology.subtopologies.length).toBe(1); // co-partitioned: one task reads both
    const d = new TopologyTestDriver(topology);
    d.pipe('clicks', S, S, [rec('u1', 'c0', 0)]);
    d.pipe('users', S, S, [rec('u1', 'Ann', 1)]);
    d.pipe('clicks', S, S, [rec('u1', 'c1', 2), rec('u2', 'c2', 3)]);
    d.pipe('users', S, S, [rec('u1', null, 4)]);
    d.pipe('clicks', S, S, [rec('u1', 'c3', 5)]);
    expect(d.readOutput('joined', S, S).map((r) => r.value)).toEqual(['c1 by Ann']);
    expect(d.readOutput('left', S, S).map((r) => r.value)).toEqual(['c0 by ?', 'c1 by Ann', 'c2 by ?', 'c3 by ?']);
  });

  it('stream-table join after a key change repartitions the stream', () => {
    const b = new StreamsBuilder();
    const users = b.table('users');
    b.stream('orders')
      .selectKey((_k, v) => v.split(',')[0]!)
      .join(users, (o, u) => `${o}:${u}`)
      .to('enriched');
    const topology = b.build();
    expect(topology.repartitionTopics.length).toBe(1);
    const d = new TopologyTestDriver(topology);
    d.pipe('users', S, S, [rec('u7', 'Bo', 0)]);
    d.pipe('orders', S, S, [rec('o1', 'u7,book', 1), rec('o2', 'u8,pen', 2)]);
    expect(d.readOutput('enriched', S, S).map((r) => [r.key, r.value])).toEqual([['u7', 'u7,book:Bo']]);
  });

  it('stream-stream windowed join: pairs within the time difference, both arrival orders, late records dropped', () => {
    const b = new StreamsBuilder();
    const left = b.stream('views');
    const right = b.stream('clicks');
    left.join(right, (v, c) => `${v}+${c}`, JoinWindows.ofTimeDifferenceAndGrace(5, 0)).to('pairs');
    const d = new TopologyTestDriver(b.build());
    d.pipe('views', S, S, [rec('a', 'v1', 10)]);
    d.pipe('clicks', S, S, [rec('a', 'c1', 14), rec('a', 'c2', 16), rec('b', 'c3', 12)]);
    d.pipe('views', S, S, [rec('a', 'v2', 12)]);
    d.pipe('clicks', S, S, [rec('a', 'c4', 30), rec('a', 'c5', 3)]);
    const got = d.readOutput('pairs', S, S);
    // Reference: every (view, click) of the same key with |tv - tc| <= 5, emitted when the later-arriving one arrives.
    expect(got.map((r) => [r.value, r.timestamp])).toEqual([
      ['v1+c1', 14],
      ['v2+c1', 14],
      ['v2+c2', 16],
    ]);
    expect(d.events()['dropped-late']).toBe(1); // c5 at 3 with stream time 30
  });

  it('table-table join follows both sides, deleting rows when the inner join stops holding', () => {
    const b = new StreamsBuilder();
    const a = b.table('a');
    const c = b.table('c');
    a.join(c, (x, y) => `${x}|${y}`)
      .toStream()
      .to('aj');
    a.leftJoin(c, (x, y) => `${x}|${y ?? '-'}`)
      .toStream()
      .to('alj');
    const d = new TopologyTestDriver(b.build());
    d.pipe('a', S, S, [rec('k', 'a1', 0)]);
    d.pipe('c', S, S, [rec('k', 'c1', 1)]);
    d.pipe('a', S, S, [rec('k', 'a2', 2)]);
    d.pipe('c', S, S, [rec('k', null, 3)]);
    expect(d.readOutput('aj', S, S).map((r) => r.value)).toEqual([null, 'a1|c1', 'a2|c1', null]);
    expect(d.readOutput('alj', S, S).map((r) => r.value)).toEqual(['a1|-', 'a1|c1', 'a2|c1', 'a2|-']);
  });

  it('stream-globalTable join by a key taken from the value', () => {
    const b = new StreamsBuilder();
    const products = b.globalTable('products');
    b.stream('orders')
      .joinGlobal(
        products,
        (_k, v) => v,
        (v, p) => `${v}=${p}`,
      )
      .to('out');
    b.stream('orders2')
      .leftJoinGlobal(
        products,
        (_k, v) => v,
        (v, p) => `${v}=${p ?? 'none'}`,
      )
      .to('out2');
    const d = new TopologyTestDriver(b.build());
    d.pipeGlobal('products', S, S, 'p1', 'Pen');
    d.pipe('orders', S, S, [rec('o1', 'p1', 0), rec('o2', 'p2', 1)]);
    d.pipe('orders2', S, S, [rec('o3', 'p2', 2)]);
    expect(d.readOutput('out', S, S).map((r) => r.value)).toEqual(['p1=Pen']);
    expect(d.readOutput('out2', S, S).map((r) => r.value)).toEqual(['p2=none']);
  });
});

describe('topology', () => {
  it('reading one topic in two sub-topologies is refused', () => {
    const b = new StreamsBuilder();
    b.stream('x').to('y');
    b.stream('x').to('z');
    expect(() => b.build()).toThrow(/read by two sub-topologies/);
  });

  it('describe() lists sub-topologies with their topics and stores', () => {
    const b = new StreamsBuilder();
    b.stream('lines')
      .groupBy((_k, v) => v)
      .count({ storeName: 'c' });
    const text = b.build().describe();
    expect(text).toMatch(/Sub-topology: 0 \(reads lines\)/);
    expect(text).toMatch(/stores: \[c\]/);
  });
});
