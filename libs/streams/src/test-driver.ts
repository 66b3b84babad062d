/**
 * Runs a topology in memory, without a cluster (Kafka Streams' TopologyTestDriver): one task per
 * sub-topology on partition 0, stores in memory, repartition topics looped back to their readers
 * at once, outputs collected per topic. For unit tests of an application's logic; what the
 * cluster adds (tasks per partition, changelogs, commits) is tested against a real one.
 *
 * Time: stream time moves with the records piped in (stream-time punctuators fire as it passes
 * their boundaries); the wall clock is a mock that moves only with advanceWallClockTime(), which
 * fires the wall-clock punctuators that became due.
 */
import { MemoryEngine } from './state/store-engine.js';
import type { Serde } from './serdes.js';
import { StreamTask } from './task.js';
import type { ReadonlyKeyValueStore, Topology } from './topology.js';

export interface TestRecord<K, V> {
  key: K | null;
  value: V | null;
  timestamp: number;
}

export class TopologyTestDriver {
  private readonly tasks = new Map<number, StreamTask>();
  private readonly outputs = new Map<string, Array<{ key: Buffer | null; value: Buffer | null; timestamp: number }>>();
  private offset = 0n;
  /** Global tables' contents, by store name (set them with pipeGlobal). */
  private readonly globals = new Map<string, Map<string, Buffer>>();
  private wallClockMs: number;

  constructor(
    private readonly topology: Topology,
    options: { initialWallClockTimeMs?: number } = {},
  ) {
    this.wallClockMs = options.initialWallClockTimeMs ?? 0;
    const globalStores = new Map<string, ReadonlyKeyValueStore>();
    for (const g of topology.globalTables) {
      const m = new Map<string, Buffer>();
      this.globals.set(g.topic, m);
      globalStores.set(g.store, { get: (k) => m.get(k.toString('latin1')) });
    }
    for (const s of topology.subtopologies)
      this.tasks.set(
        s.id,
        new StreamTask(
          `${s.id}_0`,
          s,
          topology,
          0,
          new MemoryEngine(),
          globalStores,
          (store) => `${store}-changelog`,
          (t) => t,
          () => this.wallClockMs,
        ),
      );
  }

  /** Feeds a record to the task that reads `topic`, then delivers whatever reaches repartition topics. */
  pipe<K, V>(topic: string, keySerde: Serde<K>, valueSerde: Serde<V>, records: Array<TestRecord<K, V>>): void {
    for (const r of records) this.pipeBytes(topic, keySerde.serialize(r.key), valueSerde.serialize(r.value), r.timestamp);
  }

  /** Sets a global table's row (null deletes). */
  pipeGlobal<K, V>(topic: string, keySerde: Serde<K>, valueSerde: Serde<V>, key: K, value: V | null): void {
    const m = this.globals.get(topic);
    if (!m) throw new Error(`no global table reads ${topic}`);
    const k = keySerde.serialize(key)!.toString('latin1');
    const v = valueSerde.serialize(value);
    if (v === null) m.delete(k);
    else m.set(k, v);
  }

  private pipeBytes(topic: string, key: Buffer | null, value: Buffer | null, timestamp: number): void {
    const id = this.topology.subtopologyOf.get(topic);
    if (id === undefined) throw new Error(`no sub-topology reads ${topic}`);
    const task = this.tasks.get(id)!;
    task.process(topic, 0, { offset: this.offset++, timestampMs: BigInt(timestamp), key: key ?? Buffer.alloc(0), value, headers: [] });
    this.route(task);
  }

  /** Delivers a task's outputs: repartition topics back to their readers, the rest to the collected outputs. */
  private route(task: StreamTask): void {
    for (const o of task.drainOutputs()) {
      if (o.partition !== undefined) continue; // changelog
      if (this.topology.subtopologyOf.has(o.topic) && this.topology.repartitionTopics.includes(o.topic)) this.pipeBytes(o.topic, o.key, o.value, o.timestamp);
      else {
        let list = this.outputs.get(o.topic);
        if (!list) this.outputs.set(o.topic, (list = []));
        list.push(o);
      }
    }
  }

  /** The mock wall clock's time, ms. */
  get wallClockTimeMs(): number {
    return this.wallClockMs;
  }

  /** Moves the mock wall clock forward and fires the wall-clock punctuators due by then (each at most once, as the runtime's timer would). */
  advanceWallClockTime(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`advanceWallClockTime takes ms >= 0, got ${ms}`);
    this.wallClockMs += ms;
    for (const t of this.tasks.values()) {
      t.punctuateWallClock(this.wallClockMs);
      this.route(t);
    }
  }

  /** Punctuators fired, summed over tasks. */
  punctuations(): { 'stream-time': number; 'wall-clock': number } {
    const out = { 'stream-time': 0, 'wall-clock': 0 };
    for (const t of this.tasks.values()) for (const k of ['stream-time', 'wall-clock'] as const) out[k] += t.metrics.punctuations[k];
    return out;
  }

  /** Closes every task's processors (their close()). */
  close(): void {
    for (const t of this.tasks.values()) t.close();
  }

  /** Everything written to `topic` so far (and forgets it). */
  readOutput<K, V>(topic: string, keySerde: Serde<K>, valueSerde: Serde<V>): Array<TestRecord<K, V>> {
    const list = this.outputs.get(topic) ?? [];
    this.outputs.delete(topic);
    return list.map((o) => ({
      key: o.key === null || o.key.length === 0 ? null : keySerde.deserialize(o.key),
      value: valueSerde.deserialize(o.value),
      timestamp: o.timestamp,
    }));
  }

  /** Runs each task's end-of-commit work (retention purges) and applies its writes to its stores. */
  commit(): void {
    for (const t of this.tasks.values()) {
      t.prepareCommit();
      t.drainOutputs();
      t.flush(new Map());
    }
  }

  /** A store's value for a key, from whichever task holds the store. */
  storeGet<K, V>(store: string, key: K, keySerde: Serde<K>, valueSerde: Serde<V>): V | undefined {
    for (const t of this.tasks.values()) {
      const s = t.stores.get(store);
      if (!s) continue;
      const v = s.get(keySerde.serialize(key)!);
      return v === undefined ? undefined : (valueSerde.deserialize(v) ?? undefined);
    }
    throw new Error(`no store ${store}`);
  }

  /** Events counted by processors ('dropped-late', ...), summed over tasks. */
  events(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const t of this.tasks.values()) for (const [k, v] of Object.entries(t.metrics.events)) out[k] = (out[k] ?? 0) + v;
    return out;
  }
}
