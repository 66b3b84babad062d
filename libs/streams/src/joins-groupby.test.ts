// Left and outer joins (stream-stream with Kafka 3.1+ semantics, stream-table, stream-globalTable,
// table-table) and KTable.groupBy, driven in memory (TopologyTestDriver). Expected outputs come
// from reference models written from the definitions in the test, or are spelled out by hand.
import { describe, expect, it } from 'vitest';
import { StreamsBuilder } from './dsl.js';
import { changeSerde, Serdes } from './serdes.js';
import { TopologyTestDriver } from './test-driver.js';
import { JoinWindows } from './windows.js';
import { seededRandom as rng } from '@skein/common/seeded-random.js';

const S = Serdes.String();
const rec = (key: string | null, value: string | null, timestamp: number) => ({ key, value, timestamp });

type Side = 'L' | 'R';
interface Ev {
  side: Side;
  key: string;
  value: string;
  t: number;
}

/**
 * Kafka 3.1+ windowed left/outer join, per input record: a record is late (dropped) when
 * t + (after for the left, before for the right) + grace < stream time; otherwise the waiting
 * records whose window closed at the new stream time are emitted with null, then the record joins
 * every earlier record of the other side with the same key within [t - before, t + after] (as
 * seen from the left). An outer-side record that meets no partner waits; a later partner stops
 * its waiting.
 */
function referenceJoin(events: readonly Ev[], diff: number, grace: number, kind: 'left' | 'outer'): string[][] {
  let st = -1;
  const accepted: Array<Ev & { matched: boolean; emitted: boolean }> = [];
  const outerSide = (s: Side) => s === 'L' || kind === 'outer';
  const steps: string[][] = [];
  for (const e of events) {
    st = Math.max(st, e.t);
    const out: string[] = [];
    if (e.t + diff + grace < st) {
      steps.push(out);
      continue;
    }
    for (const w of accepted)
      if (outerSide(w.side) && !w.matched && !w.emitted && w.t + diff + grace < st) {
        w.emitted = true;
        out.push(w.side === 'L' ? `${w.key}:${w.value}+null@${w.t}` : `${w.key}:null+${w.value}@${w.t}`);
      }
    const me = { ...e, matched: false, emitted: false };
    for (const o of accepted)
      if (o.side !== e.side && o.key === e.key && Math.abs(o.t - e.t) <= diff) {
        me.matched = true;
        o.matched = true;
        const [l, r] = e.side === 'L' ? [e.value, o.value] : [o.value, e.value];
        out.push(`${e.key}:${l}+${r}@${Math.max(o.t, e.t)}`);
      }
    accepted.push(me);
    steps.push(out.sort());
  }
  return steps;
}

describe('stream-stream left and outer joins (KIP-633: null results only once the window has closed)', () => {
  for (const kind of ['left', 'outer'] as const)
    it(`${kind} join: every step's outputs equal the reference, with out-of-order and late records and commits (purges) between`, () => {
      const diff = 10;
      const grace = 5;
      const b = new StreamsBuilder();
      const l = b.stream('l');
      const r = b.stream('r');
      const joiner = (a: string | null, c: string | null) => `${a ?? 'null'}+${c ?? 'null'}`;
      const joined =
        kind === 'left'
          ? l.leftJoin(r, joiner, JoinWindows.ofTimeDifferenceAndGrace(diff, grace))
          : l.outerJoin(r, joiner, JoinWindows.ofTimeDifferenceAndGrace(diff, grace));
      joined.to('out');
      const d = new TopologyTestDriver(b.build());
      const rnd = rng(kind === 'left' ? 5 : 6);
      const events: Ev[] = [];
      let clock = 100;
      for (let i = 0; i < 300; i++) {
        clock += Math.floor(rnd() * 4);
        // Mostly in order; some up to 30 ms back (some within grace, some late).
        const t = rnd() < 0.2 ? clock - Math.floor(rnd() * 30) : clock;
        events.push({ side: rnd() < 0.5 ? 'L' : 'R', key: 'abcd'[Math.floor(rnd() * 4)]!, value: `v${i}`, t });
      }
      const expected = referenceJoin(events, diff, grace, kind);
      const got: string[][] = [];
      events.forEach((e, i) => {
        d.pipe(e.side === 'L' ? 'l' : 'r', S, S, [rec(e.key, e.value, e.t)]);
        got.push(
          d
            .readOutput('out', S, S)
            .map((o) => `${o.key}:${o.value}@${o.timestamp}`)
            .sort(),
        );
        if (i % 17 === 16) d.commit();
      });
      expect(got).toEqual(expected);
      const nulls = expected.flat().filter((x) => x.includes('null'));
      expect(nulls.length).toBeGreaterThan(5);
      if (kind === 'outer') expect(nulls.some((x) => x.includes(':null+'))).toBe(true);
      expect(d.events()['dropped-late']).toBeGreaterThan(0);
    });

  it('a left record waits while a partner may still come (within window and grace), by hand', () => {
    const b = new StreamsBuilder();
    b.stream('l')
      .leftJoin(b.stream('r'), (a, c) => `${a}+${c}`, JoinWindows.ofTimeDifferenceAndGrace(10, 5))
      .to('out');
    const d = new TopologyTestDriver(b.build());
    const out = () => d.readOutput('out', S, S).map((o) => `${o.key}:${o.value}@${o.timestamp}`);
    d.pipe('l', S, S, [rec('a', 'A1', 100)]);
    expect(out()).toEqual([]); // no spurious A1+null
    d.pipe('r', S, S, [rec('x', 'X', 124)]); // 100 + 10 + 5 = 115 < 124: A1's window has closed
    expect(out()).toEqual(['a:A1+null@100']);
    d.pipe('l', S, S, [rec('b', 'B1', 124)]);
    d.pipe('r', S, S, [rec('b', 'C1', 138)]); // 138 - 124 > 10: no pair; B1 (closes after 139) still waits
    expect(out()).toEqual([]);
    d.pipe('r', S, S, [rec('b', 'C2', 130)]); // out of order, within window: pairs with B1
    expect(out()).toEqual(['b:B1+C2@130']);
    d.pipe('l', S, S, [rec('z', 'Z', 200)]);
    expect(out()).toEqual([]); // B1 was joined: never emitted with null; right records never are in a left join
  });
});

describe('stream-table and stream-globalTable left joins', () => {
  it('a tombstone deletes the table row (later records join null); a null-valued stream record is joined by the left join only', () => {
    const b = new StreamsBuilder();
    const users = b.table('users');
    const clicks = b.stream('clicks');
    clicks.leftJoin(users, (c, u) => `${c ?? 'nil'} by ${u ?? '?'}`).to('left');
    clicks.join(users, (c, u) => `${c ?? 'nil'} by ${u}`).to('inner');
    const d = new TopologyTestDriver(b.build());
    d.pipe('users', S, S, [rec('u1', 'Ann', 1)]);
    d.pipe('clicks', S, S, [rec('u1', 'c1', 2), rec('u1', null, 3)]);
    d.pipe('users', S, S, [rec('u1', null, 4)]);
    d.pipe('clicks', S, S, [rec('u1', 'c2', 5)]);
    expect(d.readOutput('left', S, S).map((r) => r.value)).toEqual(['c1 by Ann', 'nil by Ann', 'c2 by ?']);
    expect(d.readOutput('inner', S, S).map((r) => r.value)).toEqual(['c1 by Ann']);
  });

  it('leftJoin(globalTable, keySelector, joiner)', () => {
    const b = new StreamsBuilder();
    const products = b.globalTable('products');
    b.stream('orders')
      .leftJoin(
        products,
        (_k, v) => v.split(',')[1]!,
        (o, p) => `${o}|${p ?? '-'}`,
      )
      .to('out');
    const d = new TopologyTestDriver(b.build());
    d.pipeGlobal('products', S, S, 'p1', 'pen');
    d.pipe('orders', S, S, [rec('o1', 'u1,p1', 1), rec('o2', 'u1,p9', 2)]);
    d.pipeGlobal('products', S, S, 'p1', null);
    d.pipe('orders', S, S, [rec('o3', 'u2,p1', 3)]);
    expect(d.readOutput('out', S, S).map((r) => r.value)).toEqual(['u1,p1|pen', 'u1,p9|-', 'u2,p1|-']);
  });
});

describe('table-table outer join', () => {
  it('a row while either side has one; a deletion of both deletes it', () => {
    const b = new StreamsBuilder();
    b.table('a')
      .outerJoin(b.table('b'), (x, y) => `${x ?? '-'}/${y ?? '-'}`)
      .toStream()
      .to('out');
    const d = new TopologyTestDriver(b.build());
    d.pipe('a', S, S, [rec('k', 'A1', 1)]);
    d.pipe('b', S, S, [rec('k', 'B1', 2), rec('j', 'B2', 3)]);
    d.pipe('a', S, S, [rec('k', null, 4)]);
    d.pipe('b', S, S, [rec('k', null, 5), rec('j', null, 6)]);
    expect(d.readOutput('out', S, S).map((r) => [r.key, r.value])).toEqual([
      ['k', 'A1/-'],
      ['k', 'A1/B1'],
      ['j', '-/B2'],
      ['k', '-/B1'],
      ['k', null],
      ['j', null],
    ]);
  });
});

describe('KTable.groupBy', () => {
  it('count, reduce and aggregate follow rows as they move between groups and are deleted (reference: recomputed from the table)', () => {
    const b = new StreamsBuilder();
    // Rows: user -> "region,amount".
    const users = b.table('users');
    const byRegion = users.groupBy((_u, v) => [v.split(',')[0]!, v.split(',')[1]!] as [string, string], { name: 'by-region' });
    byRegion.count({ storeName: 'region-counts' }).toStream().to('counts', { valueSerde: Serdes.Long() });
    byRegion
      .reduce(
        (agg, v) => String(Number(agg) + Number(v)),
        (agg, v) => String(Number(agg) - Number(v)),
        { storeName: 'region-sums' },
      )
      .toStream()
      .to('sums');
    byRegion
      .aggregate<string[]>(
        () => [],
        (_k, v, agg) => [...agg, v].sort(),
        (_k, v, agg) => {
          const i = agg.indexOf(v);
          return i < 0 ? agg : [...agg.slice(0, i), ...agg.slice(i + 1)];
        },
        { storeName: 'region-amounts' },
      )
      .toStream()
      .to('amounts', { valueSerde: Serdes.JSON<string[]>() });
    const topology = b.build();
    expect(topology.repartitionTopics).toEqual(['by-region-repartition']);
    const d = new TopologyTestDriver(topology);
    const rnd = rng(9);
    const table = new Map<string, string>();
    const everSeen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const user = `u${Math.floor(rnd() * 8)}`;
      const value = rnd() < 0.2 ? null : `${'NSEW'[Math.floor(rnd() * 4)]},${1 + Math.floor(rnd() * 9)}`;
      d.pipe('users', S, S, [rec(user, value, i)]);
      if (value === null) table.delete(user);
      else table.set(user, value);
      const regions = [...table.values()].map((v) => v.split(','));
      for (const [r] of regions) everSeen.add(r!);
      const counts = d.readOutput('counts', S, Serdes.Long());
      const sums = d.readOutput('sums', S, S);
      const amounts = d.readOutput('amounts', S, Serdes.JSON<string[]>());
      // What each touched group must read now, from the table as it is.
      for (const o of counts) expect(o.value, `count of ${o.key} after step ${i}`).toBe(regions.filter(([r]) => r === o.key).length);
      const last = <V>(list: Array<{ key: string | null; value: V | null }>) => new Map(list.map((o) => [o.key!, o.value]));
      for (const [g, v] of last(sums)) {
        const members = regions.filter(([r]) => r === g);
        // Reduce: the sum while the group has rows; once empty it holds the last subtraction's result (0).
        expect(Number(v), `sum of ${g} after step ${i}`).toBe(members.reduce((n, [, a]) => n + Number(a), 0));
      }
      for (const [g, v] of last(amounts))
        expect(v, `amounts of ${g} after step ${i}`).toEqual(
          regions
            .filter(([r]) => r === g)
            .map(([, a]) => a!)
            .sort(),
        );
      if (i % 13 === 12) d.commit();
    }
    for (const g of everSeen) expect(d.storeGet('region-counts', g, S, Serdes.Long())).toBe([...table.values()].filter((v) => v.startsWith(`${g},`)).length);
  });

  it('a row moving to another group sends two changes (old, then new); staying in its group, one with both', () => {
    const b = new StreamsBuilder();
    b.table('t')
      .groupBy((_k, v) => [v, '1'] as [string, string], { name: 'g' })
      .count()
      .toStream()
      .to('c', { valueSerde: Serdes.Long() });
    const d = new TopologyTestDriver(b.build());
    const out = () => d.readOutput('c', S, Serdes.Long()).map((o) => `${o.key}=${o.value}`);
    d.pipe('t', S, S, [rec('r1', 'x', 1), rec('r2', 'x', 2)]);
    expect(out()).toEqual(['x=1', 'x=2']);
    d.pipe('t', S, S, [rec('r1', 'y', 3)]);
    expect(out()).toEqual(['x=1', 'y=1']);
    d.pipe('t', S, S, [rec('r1', 'y', 4)]); // same group: subtract and add in one change
    expect(out()).toEqual(['y=1']);
    d.pipe('t', S, S, [rec('r2', null, 5), rec('r9', null, 6)]); // a tombstone subtracts; one for an unknown row does nothing
    expect(out()).toEqual(['x=0']);
  });

  it('the change serde round-trips and refuses malformed bytes', () => {
    const c = changeSerde(S);
    for (const v of [
      { oldValue: 'a', newValue: 'bc' },
      { oldValue: null, newValue: '' },
      { oldValue: '', newValue: null },
    ])
      expect(c.deserialize(c.serialize(v))).toEqual(v);
    expect(() => c.deserialize(Buffer.from([1, 0, 0]))).toThrow(RangeError);
    expect(() => c.deserialize(Buffer.from([1, 0, 0, 0, 9, 1]))).toThrow(/claims 9 bytes/);
    expect(() => c.deserialize(Buffer.from([7, 0, 0, 0, 0]))).toThrow(/flags/);
  });
});
