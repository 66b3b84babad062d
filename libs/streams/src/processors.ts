/**
 * The DSL's operators as processors. Pure: each reads and writes only its task's stores through
 * the ProcessorContext, never the clock (event time is the record's; "now" is stream time).
 *
 * Store key layouts (bytes; 8-byte big-endian timestamps sort by time, timestamps are >= 0):
 *   key-value aggregate / table   serialized key
 *   time-window aggregate         [window start 8][serialized key]   time first, so expired windows are one range
 *   session aggregate             [session end 8][key length 4][serialized key][session start 8]
 *   stream-stream join buffer     [timestamp 8][key length 4][serialized key][sequence 4]
 *   outer join (waiting records)  [timestamp 8][side 1][key length 4][serialized key][sequence 4]
 *   suppression buffer            [window end 8][windowed key bytes]
 *   table groupBy prior values    serialized key (the row's last value, to subtract it on change)
 * Time-first layouts make retention one range delete; a lookup scans a time range and filters
 * the key, which costs the records of that range (Kafka segments its window stores for the same
 * reason).
 */
import type { Change, Serde, Window, Windowed } from './serdes.js';
import { windowedSerde } from './serdes.js';
import type { KeyValueStore, Processor, ProcessorContext, Rec } from './topology.js';
import { type JoinWindows, type SessionWindows, type SlidingWindows, type TimeWindows, slidingWindowsFor, windowClosed } from './windows.js';

export const be64 = (n: number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(BigInt(Math.max(0, Math.floor(n))));
  return b;
};
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const MAX = Buffer.alloc(9, 0xff);

/** A processor from one function of (context, record). */
export function stateless(fn: (ctx: ProcessorContext, rec: Rec) => void): () => Processor {
  return () => {
    let ctx!: ProcessorContext;
    return {
      init: (c) => {
        ctx = c;
      },
      process: (rec) => fn(ctx, rec),
    };
  };
}

export function sinkProcessor(topic: string, keySerde: Serde<unknown>, valueSerde: Serde<unknown>): () => Processor {
  return stateless((ctx, r) => ctx.send(topic, keySerde.serialize(r.key), valueSerde.serialize(r.value), r.timestamp, r.headers));
}

/** Materializes a table: the latest value per key (null deletes), then forwards the change. */
export function tableMaterializer(store: string, keySerde: Serde<unknown>, valueSerde: Serde<unknown>): () => Processor {
  return stateless((ctx, r) => {
    if (r.key === null || r.key === undefined) return ctx.count('skipped-null-key');
    ctx.store(store).put(keySerde.serialize(r.key)!, valueSerde.serialize(r.value));
    ctx.forward(r);
  });
}

export interface AggregateSpec {
  store: string;
  keySerde: Serde<unknown>;
  aggSerde: Serde<unknown>;
  initializer: () => unknown;
  aggregator: (key: unknown, value: unknown, agg: unknown) => unknown;
}

/** groupByKey().aggregate(): the running aggregate per key; records with a null key or value are skipped, as in Kafka. */
export function aggregateProcessor(spec: AggregateSpec): () => Processor {
  return stateless((ctx, r) => {
    if (r.key === null || r.key === undefined || r.value === null || r.value === undefined) return ctx.count('skipped-null');
    const store = ctx.store(spec.store);
    const k = spec.keySerde.serialize(r.key)!;
    const old = store.get(k);
    const agg = spec.aggregator(r.key, r.value, old === undefined ? spec.initializer() : spec.aggSerde.deserialize(old));
    store.put(k, spec.aggSerde.serialize(agg));
    ctx.forward({ key: r.key, value: agg, timestamp: r.timestamp });
  });
}

/**
 * Tumbling/hopping window aggregate: updates every window the record falls in that is still open
 * (end + grace > stream time); a record whose windows are all closed is dropped and counted
 * ('dropped-late'). Windows older than size + grace before stream time are purged at commit.
 */
export function timeWindowAggregateProcessor(spec: AggregateSpec, windows: TimeWindows): () => Processor {
  return () => {
    let ctx!: ProcessorContext;
    let store!: KeyValueStore;
    return {
      init: (c) => {
        ctx = c;
        store = c.store(spec.store);
      },
      process: (r) => {
        if (r.key === null || r.key === undefined || r.value === null || r.value === undefined) return ctx.count('skipped-null');
        const k = spec.keySerde.serialize(r.key)!;
        let updated = 0;
        for (const w of windows.windowsFor(r.timestamp)) {
          if (windowClosed(w.end, windows.graceMs, ctx.streamTime())) continue;
          const sk = Buffer.concat([be64(w.start), k]);
          const old = store.get(sk);
          const agg = spec.aggregator(r.key, r.value, old === undefined ? spec.initializer() : spec.aggSerde.deserialize(old));
          store.put(sk, spec.aggSerde.serialize(agg));
          ctx.forward({ key: { key: r.key, window: w } satisfies Windowed<unknown>, value: agg, timestamp: r.timestamp });
          updated++;
        }
        if (updated === 0) ctx.count('dropped-late');
      },
      beforeCommit: () => {
        const expiredBefore = ctx.streamTime() - windows.sizeMs - windows.graceMs;
        if (expiredBefore <= 0) return;
        for (const [sk] of store.range(be64(0), be64(expiredBefore))) store.put(sk, null);
      },
    };
  };
}

export interface SessionSpec extends AggregateSpec {
  merger: (key: unknown, a: unknown, b: unknown) => unknown;
}

/**
 * Session windows: a record joins every session of its key within the inactivity gap, merging
 * them into one [min start, max end]; the sessions merged away are forwarded as deletions (null),
 * the merged one with its aggregate. A record whose session would end before stream time minus
 * grace is dropped (late).
 */
export function sessionAggregateProcessor(spec: SessionSpec, windows: SessionWindows): () => Processor {
  return () => {
    let ctx!: ProcessorContext;
    let store!: KeyValueStore;
    const sessionKey = (k: Buffer, w: Window) => Buffer.concat([be64(w.end), u32(k.length), k, be64(w.start)]);
    return {
      init: (c) => {
        ctx = c;
        store = c.store(spec.store);
      },
      process: (r) => {
        if (r.key === null || r.key === undefined || r.value === null || r.value === undefined) return ctx.count('skipped-null');
        const t = r.timestamp;
        const k = spec.keySerde.serialize(r.key)!;
        // Sessions that end at or after t - gap and start at or before t + gap overlap the record's reach.
        const overlapping: Array<{ sk: Buffer; w: Window; agg: unknown }> = [];
        for (const [sk, v] of store.range(be64(t - windows.gapMs), MAX)) {
          const len = sk.readUInt32BE(8);
          if (len !== k.length || !sk.subarray(12, 12 + len).equals(k)) continue;
          const w = { start: Number(sk.readBigInt64BE(12 + len)), end: Number(sk.readBigInt64BE(0)) };
          if (w.start > t + windows.gapMs) continue;
          overlapping.push({ sk, w, agg: spec.aggSerde.deserialize(v) });
        }
        const merged: Window = { start: t, end: t };
        let agg = spec.initializer();
        for (const s of overlapping) {
          merged.start = Math.min(merged.start, s.w.start);
          merged.end = Math.max(merged.end, s.w.end);
          agg = spec.merger(r.key, agg, s.agg);
        }
        if (merged.end + windows.graceMs < ctx.streamTime()) return ctx.count('dropped-late');
        agg = spec.aggregator(r.key, r.value, agg);
        for (const s of overlapping) {
          store.put(s.sk, null);
          if (s.w.start !== merged.start || s.w.end !== merged.end) ctx.forward({ key: { key: r.key, window: s.w }, value: null, timestamp: t });
        }
        store.put(sessionKey(k, merged), spec.aggSerde.serialize(agg));
        ctx.forward({ key: { key: r.key, window: merged } satisfies Windowed<unknown>, value: agg, timestamp: t });
      },
      beforeCommit: () => {
        const expiredBefore = ctx.streamTime() - windows.gapMs - windows.graceMs;
        if (expiredBefore <= 0) return;
        for (const [sk] of store.range(be64(0), be64(expiredBefore))) store.put(sk, null);
      },
    };
  };
}

/**
 * Sliding windows (KIP-450): the key's records within reach are kept (a buffer like a join's);
 * each record recomputes every window it falls in from the records in that window (windows of
 * `size`, both ends inclusive, starting or ending at a record) and forwards those aggregates.
 * Recomputation instead of Kafka's incremental bookkeeping: simpler, and the buffer is bounded by
 * size + grace. A record older than stream time - size - grace is dropped (late).
 */
export function slidingAggregateProcessor(spec: AggregateSpec & { bufferStore: string; valueSerde: Serde<unknown> }, windows: SlidingWindows): () => Processor {
  return () => {
    let ctx!: ProcessorContext;
    let buffer!: KeyValueStore;
    // Distinguishes records of one key and timestamp; random start so a restarted task does not reuse numbers.
    let seq = Math.floor(Math.random() * 0xffffffff);
    return {
      init: (c) => {
        ctx = c;
        buffer = c.store(spec.bufferStore);
      },
      process: (r) => {
        if (r.key === null || r.key === undefined || r.value === null || r.value === undefined) return ctx.count('skipped-null');
        const t = r.timestamp;
        if (t + windows.sizeMs + windows.graceMs < ctx.streamTime()) return ctx.count('dropped-late');
        const k = spec.keySerde.serialize(r.key)!;
        buffer.put(Buffer.concat([be64(t), u32(k.length), k, u32(seq++ >>> 0)]), spec.valueSerde.serialize(r.value));
        const mine: Array<{ ts: number; value: unknown }> = [];
        for (const [bk, bv] of buffer.range(be64(t - 2 * windows.sizeMs - 1), be64(t + 2 * windows.sizeMs + 2))) {
          const len = bk.readUInt32BE(8);
          if (len === k.length && bk.subarray(12, 12 + len).equals(k)) mine.push({ ts: Number(bk.readBigInt64BE(0)), value: spec.valueSerde.deserialize(bv) });
        }
        for (const w of slidingWindowsFor(
          t,
          windows.sizeMs,
          mine.map((m) => m.ts),
        )) {
          if (w.end + windows.graceMs < ctx.streamTime()) continue;
          let agg = spec.initializer();
          for (const m of mine) if (m.ts >= w.start && m.ts <= w.end) agg = spec.aggregator(r.key, m.value, agg);
          ctx.forward({ key: { key: r.key, window: w } satisfies Windowed<unknown>, value: agg, timestamp: Math.max(t, w.start) });
        }
      },
      beforeCommit: () => {
        const expiredBefore = ctx.streamTime() - 2 * windows.sizeMs - windows.graceMs - 1;
        if (expiredBefore <= 0) return;
        for (const [bk] of buffer.range(be64(0), be64(expiredBefore))) buffer.put(bk, null);
      },
    };
  };
}

/**
 * suppress(untilWindowCloses): holds each window's latest result (a deletion removes it) and
 * forwards it once stream time reaches the window's end plus grace: one final result per window.
 * The buffer is a changelogged store, so a restart neither loses nor repeats what it held.
 */
export function suppressProcessor(store: string, keySerde: Serde<unknown>, valueSerde: Serde<unknown>, graceMs: number): () => Processor {
  const wSerde = windowedSerde(keySerde);
  return () => {
    let ctx!: ProcessorContext;
    let buffer!: KeyValueStore;
    return {
      init: (c) => {
        ctx = c;
        buffer = c.store(store);
      },
      process: (r) => {
        const wk = r.key as Windowed<unknown>;
        const bk = Buffer.concat([be64(wk.window.end), wSerde.serialize(wk)!]);
        if (windowClosed(wk.window.end, graceMs, ctx.streamTime())) {
          // Only reachable by an update for a window that closed in this same record: emit as final.
          buffer.put(bk, null);
          if (r.value !== null) ctx.forward(r);
          return;
        }
        buffer.put(bk, r.value === null ? null : Buffer.concat([be64(r.timestamp), valueSerde.serialize(r.value)!]));
      },
      afterRecord: () => {
        const closedUpTo = ctx.streamTime() - graceMs; // windows with end <= this are closed
        if (closedUpTo < 0) return;
        for (const [bk, bv] of buffer.range(be64(0), be64(closedUpTo + 1))) {
          buffer.put(bk, null);
          ctx.forward({ key: wSerde.deserialize(bk.subarray(8)), value: valueSerde.deserialize(bv.subarray(8)), timestamp: Number(bv.readBigInt64BE(0)) });
        }
      },
    };
  };
}

/**
 * Stream-table join: each stream record looks its key up in the table's store (the table side
 * forwards nothing; a tombstone on it deletes the row, so later records find none). The inner join
 * drops stream records with a null value; the left join passes them to the joiner (KIP-962).
 */
export function streamTableJoinProcessor(
  tableStore: string,
  keySerde: Serde<unknown>,
  tableValueSerde: Serde<unknown>,
  joiner: (v: unknown, t: unknown) => unknown,
  left: boolean,
): () => Processor {
  return stateless((ctx, r) => {
    if (r.key === null || r.key === undefined) return ctx.count('skipped-null-key');
    if (!left && (r.value === null || r.value === undefined)) return ctx.count('skipped-null');
    const found = ctx.store(tableStore).get(keySerde.serialize(r.key)!);
    if (found === undefined && !left) return;
    ctx.forward({ ...r, value: joiner(r.value, found === undefined ? null : tableValueSerde.deserialize(found)) });
  });
}

/** Stream-globalTable join: the lookup key comes from keyMapper; the global store holds every partition. */
export function streamGlobalJoinProcessor(
  globalStore: string,
  globalKeySerde: Serde<unknown>,
  globalValueSerde: Serde<unknown>,
  keyMapper: (k: unknown, v: unknown) => unknown,
  joiner: (v: unknown, t: unknown) => unknown,
  left: boolean,
): () => Processor {
  return stateless((ctx, r) => {
    const gk = keyMapper(r.key, r.value);
    const found = gk === null || gk === undefined ? undefined : ctx.globalStore(globalStore).get(globalKeySerde.serialize(gk)!);
    if (found === undefined && !left) return;
    ctx.forward({ ...r, value: joiner(r.value, found === undefined ? null : globalValueSerde.deserialize(found)) });
  });
}

/**
 * One side of a table-table join: on a change of this side, looks up the other side's store and
 * forwards the joined value, or a deletion when the join no longer holds (inner: while both sides
 * have a value; left: while the left side has one; outer: while either has one).
 */
export function tableTableJoinProcessor(
  otherStore: string,
  keySerde: Serde<unknown>,
  otherValueSerde: Serde<unknown>,
  joiner: (mine: unknown, other: unknown) => unknown,
  mode: 'inner' | 'left-this' | 'left-other' | 'outer',
): () => Processor {
  return stateless((ctx, r) => {
    if (r.key === null || r.key === undefined) return;
    const o = ctx.store(otherStore).get(keySerde.serialize(r.key)!);
    const other = o === undefined ? null : otherValueSerde.deserialize(o);
    let value: unknown = null;
    if (mode === 'inner') value = r.value !== null && other !== null ? joiner(r.value, other) : null;
    else if (mode === 'left-this') value = r.value !== null ? joiner(r.value, other) : null;
    else if (mode === 'outer') value = r.value !== null || other !== null ? joiner(r.value, other) : null;
    else value = other !== null ? joiner(r.value, other) : null; // this side is the right of a left join
    ctx.forward({ key: r.key, value, timestamp: r.timestamp });
  });
}

/**
 * One side of a windowed stream-stream join: buffers its record, then joins it with every record
 * of the other side with the same key whose timestamp is within [t - before, t + after] (seen
 * from the left; mirrored for the right). Output time is the later of the two. A record older
 * than stream time - (after or before) - grace is dropped as late; buffers are purged past
 * before + after + grace at commit.
 *
 * Left and outer joins (Kafka 3.1+, KIP-633): a record of an outer side that finds no partner is
 * not joined with null at once (a partner may still arrive within the window and grace). It waits
 * in the shared outer store, keyed [timestamp 8][side 1][key length 4][key][sequence 4] (its
 * buffer key with the side inserted), until either a partner arrives (it is deleted: the join
 * result covers it) or its window closes (t + after-or-before + grace < stream time): then it is
 * forwarded joined with null, once, and deleted. The outer store is changelogged with the
 * outputs, so a restart neither loses nor repeats a pending record.
 */
export function streamStreamJoinProcessor(spec: {
  thisBuffer: string;
  otherBuffer: string;
  keySerde: Serde<unknown>;
  thisValueSerde: Serde<unknown>;
  otherValueSerde: Serde<unknown>;
  windows: JoinWindows;
  isLeft: boolean;
  joiner: (left: unknown, right: unknown) => unknown;
  /** Left/outer joins: the store of records still waiting for a partner, shared by both sides. */
  outerStore?: string;
  /** Whether this side's unmatched records are emitted (the left side of a left join; both sides of an outer join). */
  thisOuter?: boolean;
  /** The left side's value serde (outer-store values are the left's or the right's). */
  leftValueSerde?: Serde<unknown>;
  rightValueSerde?: Serde<unknown>;
}): () => Processor {
  const { windows } = spec;
  const retention = windows.beforeMs + windows.afterMs + windows.graceMs;
  // How long after its own timestamp a record of each side can still meet a partner.
  const lookBack = { left: windows.afterMs, right: windows.beforeMs };
  const LEFT = 0;
  const RIGHT = 1;
  const thisSide = spec.isLeft ? LEFT : RIGHT;
  const outerKey = (bufferKey: Buffer, side: number) => Buffer.concat([bufferKey.subarray(0, 8), Buffer.of(side), bufferKey.subarray(8)]);
  return () => {
    let ctx!: ProcessorContext;
    let mine!: KeyValueStore;
    let other!: KeyValueStore;
    let outer: KeyValueStore | undefined;
    // Distinguishes records of one key and timestamp; random start so a restarted task does not reuse numbers.
    let seq = Math.floor(Math.random() * 0xffffffff);

    /** Forwards, joined with null, every waiting record whose window has closed; oldest first. */
    const emitClosed = () => {
      if (!outer) return;
      const st = ctx.streamTime();
      const upTo = st - Math.min(lookBack.left, lookBack.right) - windows.graceMs; // exclusive bound on timestamps that may be closed
      if (upTo <= 0) return;
      for (const [ok, ov] of outer.range(be64(0), be64(upTo))) {
        const t = Number(ok.readBigInt64BE(0));
        const side = ok[8]!;
        if (t + (side === LEFT ? lookBack.left : lookBack.right) + windows.graceMs >= st) continue;
        outer.put(ok, null);
        const len = ok.readUInt32BE(9);
        const key = spec.keySerde.deserialize(ok.subarray(13, 13 + len));
        const value = side === LEFT ? spec.joiner(spec.leftValueSerde!.deserialize(ov), null) : spec.joiner(null, spec.rightValueSerde!.deserialize(ov));
        ctx.forward({ key, value, timestamp: t });
      }
    };

    return {
      init: (c) => {
        ctx = c;
        mine = c.store(spec.thisBuffer);
        other = c.store(spec.otherBuffer);
        if (spec.outerStore) outer = c.store(spec.outerStore);
      },
      process: (r) => {
        if (r.key === null || r.key === undefined || r.value === null || r.value === undefined) return ctx.count('skipped-null');
        const t = r.timestamp;
        if (t + (spec.isLeft ? windows.afterMs : windows.beforeMs) + windows.graceMs < ctx.streamTime()) return ctx.count('dropped-late');
        // As Kafka does: results of windows that closed come before this record's own.
        emitClosed();
        const k = spec.keySerde.serialize(r.key)!;
        const myKey = Buffer.concat([be64(t), u32(k.length), k, u32(seq++ >>> 0)]);
        mine.put(myKey, spec.thisValueSerde.serialize(r.value));
        // From the left at t, right records in [t - before, t + after]; from the right, left records in [t - after, t + before].
        const lo = spec.isLeft ? t - windows.beforeMs : t - windows.afterMs;
        const hi = spec.isLeft ? t + windows.afterMs : t + windows.beforeMs;
        let matched = false;
        for (const [ok, ov] of other.range(be64(lo), be64(hi + 1))) {
          const len = ok.readUInt32BE(8);
          if (len !== k.length || !ok.subarray(12, 12 + len).equals(k)) continue;
          matched = true;
          if (outer) {
            // The partner stops waiting: this result covers it.
            const wk = outerKey(ok, 1 - thisSide);
            if (outer.get(wk) !== undefined) outer.put(wk, null);
          }
          const ot = Number(ok.readBigInt64BE(0));
          const o = spec.otherValueSerde.deserialize(ov);
          ctx.forward({ key: r.key, value: spec.isLeft ? spec.joiner(r.value, o) : spec.joiner(o, r.value), timestamp: Math.max(t, ot) });
        }
        if (!matched && outer && spec.thisOuter) outer.put(outerKey(myKey, thisSide), spec.thisValueSerde.serialize(r.value));
      },
      beforeCommit: () => {
        const expiredBefore = ctx.streamTime() - retention;
        if (expiredBefore <= 0) return;
        for (const [bk] of mine.range(be64(0), be64(expiredBefore))) mine.put(bk, null);
      },
    };
  };
}

/**
 * KTable.groupBy, the selecting side: for a change of a table row, the old row's (group key,
 * value) is subtracted from its group and the new row's added to its group, carried through the
 * repartition topic as a Change (Kafka's Change<V>): one record with both when the group key
 * stays, two (old, then new) when it moves. The previous value of each row is kept in `priorStore`
 * (tables forward new values only). A deletion (null) only subtracts; a selected null group key
 * is skipped, as in Kafka.
 */
export function tableGroupBySelectProcessor(spec: {
  priorStore: string;
  keySerde: Serde<unknown>;
  valueSerde: Serde<unknown>;
  groupKeySerde: Serde<unknown>;
  selector: (key: unknown, value: unknown) => [unknown, unknown];
}): () => Processor {
  return stateless((ctx, r) => {
    if (r.key === null || r.key === undefined) return ctx.count('skipped-null-key');
    const prior = ctx.store(spec.priorStore);
    const k = spec.keySerde.serialize(r.key)!;
    const before = prior.get(k);
    const oldValue = before === undefined ? null : spec.valueSerde.deserialize(before);
    const newValue = r.value === undefined ? null : r.value;
    prior.put(k, newValue === null ? null : spec.valueSerde.serialize(newValue));
    const valid = (kv: [unknown, unknown] | undefined) => (kv && kv[0] !== null && kv[0] !== undefined ? kv : undefined);
    const o = oldValue === null ? undefined : valid(spec.selector(r.key, oldValue));
    const n = newValue === null ? undefined : valid(spec.selector(r.key, newValue));
    if ((oldValue !== null && !o) || (newValue !== null && !n)) ctx.count('skipped-null-key');
    if (o && n && spec.groupKeySerde.serialize(o[0])!.equals(spec.groupKeySerde.serialize(n[0])!)) {
      ctx.forward({ key: n[0], value: { oldValue: o[1], newValue: n[1] } satisfies Change<unknown>, timestamp: r.timestamp });
      return;
    }
    if (o) ctx.forward({ key: o[0], value: { oldValue: o[1], newValue: null } satisfies Change<unknown>, timestamp: r.timestamp });
    if (n) ctx.forward({ key: n[0], value: { oldValue: null, newValue: n[1] } satisfies Change<unknown>, timestamp: r.timestamp });
  });
}

/**
 * KGroupedTable's aggregate (Kafka's KTableAggregate): subtracts a Change's old value from the
 * group's aggregate (when the group has one), then adds its new value (initializing the group
 * first if needed), stores and forwards the result. An aggregate that becomes null (a reduce
 * whose subtractor answered null) deletes the row and forwards the deletion.
 */
export function tableAggregateProcessor(spec: {
  store: string;
  keySerde: Serde<unknown>;
  aggSerde: Serde<unknown>;
  initializer: () => unknown;
  adder: (key: unknown, value: unknown, agg: unknown) => unknown;
  subtractor: (key: unknown, value: unknown, agg: unknown) => unknown;
}): () => Processor {
  return stateless((ctx, r) => {
    const change = r.value as Change<unknown> | null;
    if (r.key === null || r.key === undefined || change === null) return ctx.count('skipped-null');
    const store = ctx.store(spec.store);
    const k = spec.keySerde.serialize(r.key)!;
    const stored = store.get(k);
    let agg = stored === undefined ? null : spec.aggSerde.deserialize(stored);
    if (change.oldValue !== null && agg !== null) agg = spec.subtractor(r.key, change.oldValue, agg);
    if (change.newValue !== null) agg = spec.adder(r.key, change.newValue, agg === null ? spec.initializer() : agg);
    store.put(k, agg === null || agg === undefined ? null : spec.aggSerde.serialize(agg));
    ctx.forward({ key: r.key, value: agg ?? null, timestamp: r.timestamp });
  });
}
