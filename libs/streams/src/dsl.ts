/**
 * The DSL (Kafka Streams' StreamsBuilder, KStream, KTable, KGroupedStream, windowed streams):
 * each call adds nodes and stores to the builder's graph; build() splits it into sub-topologies.
 *
 * A KStream remembers whether its key may have changed since it was read (map, flatMap,
 * selectKey): grouping or joining such a stream first writes it to a repartition topic
 * (`${applicationId}-${name}-repartition`, partitioned by the new key) and reads it back in a new
 * sub-topology, so every record of a key lands in the same task.
 */
import {
  aggregateProcessor,
  sessionAggregateProcessor,
  slidingAggregateProcessor,
  stateless,
  streamGlobalJoinProcessor,
  streamStreamJoinProcessor,
  streamTableJoinProcessor,
  suppressProcessor,
  tableAggregateProcessor,
  tableGroupBySelectProcessor,
  tableMaterializer,
  tableTableJoinProcessor,
  timeWindowAggregateProcessor,
} from './processors.js';
import { changeSerde, type Serde, Serdes, type Windowed, windowedSerde } from './serdes.js';
import { type KeyValueStoreSpec, type ProcessorSupplier, userProcessorNode } from './processor-api.js';
import {
  buildTopology,
  type GlobalTableDef,
  type NodeDef,
  type Processor,
  type StoreDef,
  type StoreTyping,
  type TimestampExtractor,
  type Topology,
} from './topology.js';
import { type JoinWindows, SessionWindows, SlidingWindows, TimeWindows } from './windows.js';

export interface Consumed<K, V> {
  keySerde?: Serde<K>;
  valueSerde?: Serde<V>;
  timestampExtractor?: TimestampExtractor;
}
export interface Produced<K, V> {
  keySerde?: Serde<K>;
  valueSerde?: Serde<V>;
}
export interface Grouped<K, V> {
  keySerde?: Serde<K>;
  valueSerde?: Serde<V>;
  /** Names the repartition topic (`${applicationId}-${name}-repartition`) when one is needed. */
  name?: string;
}
export interface Materialized<K, V> {
  /** The store's name: its changelog is `${applicationId}-${storeName}-changelog`; also the interactive query name. */
  storeName?: string;
  keySerde?: Serde<K>;
  valueSerde?: Serde<V>;
}
export type KeyValue<K, V> = [K, V];

export interface StreamsBuilderOptions {
  /** Default Serdes.String(). */
  defaultKeySerde?: Serde<unknown>;
  /** Default Serdes.String(). */
  defaultValueSerde?: Serde<unknown>;
}

type AnySerde = Serde<unknown>;
const any = <T>(s: Serde<T>): AnySerde => s as AnySerde;

export class StreamsBuilder {
  /** @internal */ readonly nodes = new Map<string, NodeDef>();
  /** @internal */ readonly stores = new Map<string, StoreDef>();
  /** @internal */ readonly globalTables: GlobalTableDef[] = [];
  private counter = 0;
  /** @internal */ readonly defaultKeySerde: AnySerde;
  /** @internal */ readonly defaultValueSerde: AnySerde;

  constructor(options: StreamsBuilderOptions = {}) {
    this.defaultKeySerde = options.defaultKeySerde ?? any(Serdes.String());
    this.defaultValueSerde = options.defaultValueSerde ?? any(Serdes.String());
  }

  /** @internal */ name(kind: string): string {
    return `${kind}-${String(this.counter++).padStart(10, '0')}`;
  }

  /** @internal */ addProcessor(kind: string, parents: string[], make: () => Processor, stores: string[] = []): string {
    const name = this.name(kind);
    this.nodes.set(name, { kind: 'processor', name, parents, make, stores });
    return name;
  }

  /** @internal */ addStore(name: string, changelog = true): string {
    if (this.stores.has(name)) throw new Error(`store ${name} is defined twice`);
    this.stores.set(name, { name, changelog });
    return name;
  }

  /** @internal Records how a store's bytes read as typed keys and values (processors' typed access, interactive queries). */
  typeStore(name: string, typing: StoreTyping): void {
    const def = this.stores.get(name);
    if (def) this.stores.set(name, { ...def, typing });
  }

  /**
   * A key-value store for processors added with `KStream.process(supplier, name)`: typed through
   * its serdes, changelogged (unless `changelog: false`) and restored like the DSL's stores, and
   * queryable with `streams.store(name)`. Returns its name.
   */
  addStateStore<K, V>(spec: KeyValueStoreSpec<K, V>): string {
    if (!spec || typeof spec.name !== 'string' || !/^[a-zA-Z0-9._-]{1,200}$/.test(spec.name))
      throw new Error(`a state store needs a name of 1-200 letters, digits, '.', '_' or '-', got ${String(spec?.name)}`);
    if (!spec.keySerde || !spec.valueSerde) throw new Error(`state store ${spec.name} needs keySerde and valueSerde`);
    this.addStore(spec.name, spec.changelog ?? true);
    this.typeStore(spec.name, { kind: 'key-value', keySerde: any(spec.keySerde), valueSerde: any(spec.valueSerde) });
    return spec.name;
  }

  /** A record stream from one or more topics (read together, as one stream). */
  stream<K = string, V = string>(topics: string | string[], consumed: Consumed<K, V> = {}): KStream<K, V> {
    const name = this.name('KSTREAM-SOURCE');
    const keySerde = consumed.keySerde ? any(consumed.keySerde) : this.defaultKeySerde;
    const valueSerde = consumed.valueSerde ? any(consumed.valueSerde) : this.defaultValueSerde;
    this.nodes.set(name, {
      kind: 'source',
      name,
      topics: Array.isArray(topics) ? topics : [topics],
      keySerde,
      valueSerde,
      timestampExtractor: consumed.timestampExtractor,
      repartition: false,
    });
    return new KStream<K, V>(this, name, keySerde, valueSerde, false);
  }

  /** A changelog stream read as a table: the latest value per key (a null value deletes the key), materialized in a store. */
  table<K = string, V = string>(topic: string, consumed: Consumed<K, V> = {}, materialized: Materialized<K, V> = {}): KTable<K, V> {
    const source = this.stream<K, V>(topic, consumed);
    const store = this.addStore(materialized.storeName ?? `${topic}-STATE-STORE-${this.counter}`);
    this.typeStore(store, { kind: 'key-value', keySerde: source.keySerde, valueSerde: source.valueSerde });
    const node = this.addProcessor('KTABLE-SOURCE', [source.node], tableMaterializer(store, source.keySerde, source.valueSerde), [store]);
    return new KTable<K, V>(this, node, source.keySerde, source.valueSerde, store);
  }

  /** A table replicated in full to every instance (all partitions), for joins by any key. */
  globalTable<K = string, V = string>(topic: string, consumed: Consumed<K, V> = {}, materialized: Materialized<K, V> = {}): GlobalKTable<K, V> {
    const keySerde = consumed.keySerde ? any(consumed.keySerde) : this.defaultKeySerde;
    const valueSerde = consumed.valueSerde ? any(consumed.valueSerde) : this.defaultValueSerde;
    const store = materialized.storeName ?? `${topic}-GLOBAL-STORE`;
    this.globalTables.push({ topic, store, keySerde, valueSerde });
    return new GlobalKTable<K, V>(store, keySerde, valueSerde);
  }

  build(): Topology {
    return buildTopology(this.nodes, this.stores, this.globalTables);
  }
}

export class GlobalKTable<K, V> {
  /** @internal */
  constructor(
    readonly storeName: string,
    readonly keySerde: AnySerde,
    readonly valueSerde: AnySerde,
  ) {}
  /** @internal */ declare readonly _types?: [K, V];
}

export class KStream<K, V> {
  /** @internal */
  constructor(
    protected readonly builder: StreamsBuilder,
    /** @internal */ readonly node: string,
    /** @internal */ readonly keySerde: AnySerde,
    /** @internal */ readonly valueSerde: AnySerde,
    /** @internal */ readonly keyChanged: boolean,
  ) {}

  private next<K2, V2>(
    kind: string,
    fn: Parameters<typeof stateless>[0],
    opts: { keyChanged?: boolean; keySerde?: AnySerde; valueSerde?: AnySerde } = {},
  ): KStream<K2, V2> {
    const node = this.builder.addProcessor(kind, [this.node], stateless(fn));
    return new KStream<K2, V2>(this.builder, node, opts.keySerde ?? this.keySerde, opts.valueSerde ?? this.valueSerde, opts.keyChanged ?? this.keyChanged);
  }

  /**
   * Serdes after an operation that may change the key's or value's type: the given one, else the
   * builder's default (as Kafka Streams falls back to the configured default serdes).
   */
  private newSerdes(
    keySerde: Serde<unknown> | Serde<never> | undefined,
    valueSerde: Serde<unknown> | Serde<never> | undefined,
    keyChanges: boolean,
    valueChanges: boolean,
  ): { keySerde: AnySerde; valueSerde: AnySerde } {
    return {
      keySerde: keySerde ? (keySerde as AnySerde) : keyChanges ? this.builder.defaultKeySerde : this.keySerde,
      valueSerde: valueSerde ? (valueSerde as AnySerde) : valueChanges ? this.builder.defaultValueSerde : this.valueSerde,
    };
  }

  /** A new key and value per record (the key changes: grouping or joining afterwards repartitions). */
  map<K2, V2>(fn: (key: K, value: V) => KeyValue<K2, V2>, serdes: Produced<K2, V2> = {}): KStream<K2, V2> {
    return this.next(
      'KSTREAM-MAP',
      (ctx, r) => {
        const [key, value] = fn(r.key as K, r.value as V);
        ctx.forward({ ...r, key, value });
      },
      { keyChanged: true, ...this.newSerdes(serdes.keySerde, serdes.valueSerde, true, true) },
    );
  }

  mapValues<V2>(fn: (value: V, key: K) => V2, valueSerde?: Serde<V2>): KStream<K, V2> {
    return this.next(
      'KSTREAM-MAPVALUES',
      (ctx, r) => ctx.forward({ ...r, value: fn(r.value as V, r.key as K) }),
      this.newSerdes(undefined, valueSerde, false, true),
    );
  }

  filter(predicate: (key: K, value: V) => boolean): KStream<K, V> {
    return this.next('KSTREAM-FILTER', (ctx, r) => {
      if (predicate(r.key as K, r.value as V)) ctx.forward(r);
    });
  }

  filterNot(predicate: (key: K, value: V) => boolean): KStream<K, V> {
    return this.filter((k, v) => !predicate(k, v));
  }

  flatMap<K2, V2>(fn: (key: K, value: V) => Iterable<KeyValue<K2, V2>>, serdes: Produced<K2, V2> = {}): KStream<K2, V2> {
    return this.next(
      'KSTREAM-FLATMAP',
      (ctx, r) => {
        for (const [key, value] of fn(r.key as K, r.value as V)) ctx.forward({ ...r, key, value });
      },
      { keyChanged: true, ...this.newSerdes(serdes.keySerde, serdes.valueSerde, true, true) },
    );
  }

  flatMapValues<V2>(fn: (value: V, key: K) => Iterable<V2>, valueSerde?: Serde<V2>): KStream<K, V2> {
    return this.next(
      'KSTREAM-FLATMAPVALUES',
      (ctx, r) => {
        for (const value of fn(r.value as V, r.key as K)) ctx.forward({ ...r, value });
      },
      this.newSerdes(undefined, valueSerde, false, true),
    );
  }

  selectKey<K2>(fn: (key: K, value: V) => K2, keySerde?: Serde<K2>): KStream<K2, V> {
    return this.next('KSTREAM-KEY-SELECT', (ctx, r) => ctx.forward({ ...r, key: fn(r.key as K, r.value as V) }), {
      keyChanged: true,
      ...this.newSerdes(keySerde, undefined, true, false),
    });
  }

  /**
   * Runs a processor of your own on each record (the Processor API): it forwards what it wants,
   * uses the named stores (`builder.addStateStore`) and may schedule punctuations. Its output may
   * have any key, so grouping or joining it afterwards repartitions; its serdes are the builder's
   * defaults unless `to()`/`repartition()` name others.
   */
  process<KOut = K, VOut = V>(supplier: ProcessorSupplier<K, V, KOut, VOut>, ...storeNames: string[]): KStream<KOut, VOut> {
    for (const s of storeNames) if (!this.builder.stores.has(s)) throw new Error(`process(): no store ${s} (add it with builder.addStateStore first)`);
    const node = this.builder.addProcessor(
      'KSTREAM-PROCESSOR',
      [this.node],
      userProcessorNode(supplier as ProcessorSupplier<unknown, unknown, unknown, unknown>, this.builder.stores, storeNames),
      storeNames,
    );
    return new KStream<KOut, VOut>(this.builder, node, this.builder.defaultKeySerde, this.builder.defaultValueSerde, true);
  }

  /** Sees each record and passes it on unchanged. */
  peek(fn: (key: K, value: V) => void): KStream<K, V> {
    return this.next('KSTREAM-PEEK', (ctx, r) => {
      fn(r.key as K, r.value as V);
      ctx.forward(r);
    });
  }

  /** A terminal peek. */
  foreach(fn: (key: K, value: V) => void): void {
    this.next('KSTREAM-FOREACH', (_ctx, r) => fn(r.key as K, r.value as V));
  }

  /** One stream per predicate: each record goes to the first whose predicate holds (or is dropped). */
  branch(...predicates: Array<(key: K, value: V) => boolean>): Array<KStream<K, V>> {
    const branchNode = this.builder.name('KSTREAM-BRANCH');
    const children = predicates.map(() => this.builder.name('KSTREAM-BRANCHCHILD'));
    this.builder.nodes.set(branchNode, {
      kind: 'processor',
      name: branchNode,
      parents: [this.node],
      stores: [],
      make: stateless((ctx, r) => {
        const i = predicates.findIndex((p) => p(r.key as K, r.value as V));
        if (i >= 0) ctx.forwardTo(children[i]!, r);
      }),
    });
    return children.map((name) => {
      this.builder.nodes.set(name, { kind: 'processor', name, parents: [branchNode], stores: [], make: stateless((ctx, r) => ctx.forward(r)) });
      return new KStream<K, V>(this.builder, name, this.keySerde, this.valueSerde, this.keyChanged);
    });
  }

  /** Kafka's split(): named branches, `.branch(pred, name)`, then `.defaultBranch(name)` or `.noDefaultBranch()` returning them by name. */
  split(prefix = ''): BranchedKStream<K, V> {
    return new BranchedKStream<K, V>(this, prefix);
  }

  /** Both streams' records, as one stream. */
  merge(other: KStream<K, V>): KStream<K, V> {
    const node = this.builder.addProcessor(
      'KSTREAM-MERGE',
      [this.node, other.node],
      stateless((ctx, r) => ctx.forward(r)),
    );
    return new KStream<K, V>(this.builder, node, this.keySerde, this.valueSerde, this.keyChanged || other.keyChanged);
  }

  /** Writes every record to a topic (partitioned by key with Kafka's default partitioner). */
  to(topic: string, produced: Produced<K, V> = {}): void {
    const name = this.builder.name('KSTREAM-SINK');
    const keySerde = produced.keySerde ? any(produced.keySerde) : this.keySerde;
    const valueSerde = produced.valueSerde ? any(produced.valueSerde) : this.valueSerde;
    this.builder.nodes.set(name, { kind: 'sink', name, parents: [this.node], topic, keySerde, valueSerde, repartition: false });
  }

  /** Writes the stream to a repartition topic (by its current key) and reads it back: a new sub-topology. */
  repartition(grouped: Grouped<K, V> = {}): KStream<K, V> {
    const keySerde = grouped.keySerde ? any(grouped.keySerde) : this.keySerde;
    const valueSerde = grouped.valueSerde ? any(grouped.valueSerde) : this.valueSerde;
    const topic = `${grouped.name ?? this.builder.name('KSTREAM-REPARTITION')}-repartition`;
    const sink = this.builder.name('KSTREAM-REPARTITION-SINK');
    this.builder.nodes.set(sink, { kind: 'sink', name: sink, parents: [this.node], topic, keySerde, valueSerde, repartition: true });
    const source = this.builder.name('KSTREAM-REPARTITION-SOURCE');
    this.builder.nodes.set(source, { kind: 'source', name: source, topics: [topic], keySerde, valueSerde, repartition: true });
    return new KStream<K, V>(this.builder, source, keySerde, valueSerde, false);
  }

  private repartitionedIfNeeded(grouped: Grouped<K, V>): KStream<K, V> {
    if (this.keyChanged) return this.repartition(grouped);
    const keySerde = grouped.keySerde ? any(grouped.keySerde) : this.keySerde;
    const valueSerde = grouped.valueSerde ? any(grouped.valueSerde) : this.valueSerde;
    return new KStream<K, V>(this.builder, this.node, keySerde, valueSerde, false);
  }

  groupByKey(grouped: Grouped<K, V> = {}): KGroupedStream<K, V> {
    const s = this.repartitionedIfNeeded(grouped);
    return new KGroupedStream<K, V>(this.builder, s.node, s.keySerde, s.valueSerde);
  }

  /** Groups by a new key (always through a repartition topic). */
  groupBy<K2>(fn: (key: K, value: V) => K2, grouped: Grouped<K2, V> = {}): KGroupedStream<K2, V> {
    return this.selectKey(fn, grouped.keySerde).groupByKey(grouped);
  }

  /** Stream-table join (inner): each record joined with the table's current value for its key. */
  join<VT, VR>(table: KTable<K, VT>, joiner: (value: V, tableValue: VT) => VR, valueSerde?: Serde<VR>): KStream<K, VR>;
  /** Stream-stream join (inner, windowed). */
  join<VO, VR>(other: KStream<K, VO>, joiner: (value: V, otherValue: VO) => VR, windows: JoinWindows, valueSerde?: Serde<VR>): KStream<K, VR>;
  join(other: KTable<K, unknown> | KStream<K, unknown>, joiner: (v: V, o: never) => unknown, a?: JoinWindows | AnySerde, b?: AnySerde): KStream<K, unknown> {
    if (other instanceof KTable) return this.tableJoin(other as KTable<K, unknown>, joiner as (v: V, t: unknown) => unknown, false, a as AnySerde | undefined);
    return this.streamJoin(other, joiner as (v: V, o: unknown) => unknown, a as JoinWindows, b);
  }

  /** Stream-table left join: records without a table value (none yet, or deleted by a tombstone) are joined with null. */
  leftJoin<VT, VR>(table: KTable<K, VT>, joiner: (value: V, tableValue: VT | null) => VR, valueSerde?: Serde<VR>): KStream<K, VR>;
  /**
   * Stream-stream left join (windowed, Kafka 3.1+ semantics): every pair within the window; a
   * record of this stream that meets no partner is joined with null once its window plus grace
   * has closed (never early: no spurious null results).
   */
  leftJoin<VO, VR>(other: KStream<K, VO>, joiner: (value: V, otherValue: VO | null) => VR, windows: JoinWindows, valueSerde?: Serde<VR>): KStream<K, VR>;
  /** Stream-globalTable left join (Kafka's leftJoin(GlobalKTable, keySelector, joiner)); the same as leftJoinGlobal. */
  leftJoin<GK, GV, VR>(
    table: GlobalKTable<GK, GV>,
    keySelector: (key: K, value: V) => GK,
    joiner: (value: V, tableValue: GV | null) => VR,
    valueSerde?: Serde<VR>,
  ): KStream<K, VR>;
  leftJoin(other: KTable<K, unknown> | KStream<K, unknown> | GlobalKTable<unknown, unknown>, a: unknown, b?: unknown, c?: AnySerde): KStream<K, unknown> {
    if (other instanceof KTable) return this.tableJoin(other as KTable<K, unknown>, a as (v: V, t: unknown) => unknown, true, b as AnySerde | undefined);
    if (other instanceof GlobalKTable)
      return this.leftJoinGlobal(other, a as (k: K, v: V) => unknown, b as (v: V, t: unknown) => unknown, c as Serde<unknown> | undefined);
    return this.streamJoin(other, a as (v: V, o: unknown) => unknown, b as JoinWindows, c, 'left');
  }

  /**
   * Stream-stream outer join (windowed, Kafka 3.1+ semantics): every pair within the window; a
   * record of either stream that meets no partner is joined with null (joiner(v, null) or
   * joiner(null, o)) once its window plus grace has closed.
   */
  outerJoin<VO, VR>(
    other: KStream<K, VO>,
    joiner: (value: V | null, otherValue: VO | null) => VR,
    windows: JoinWindows,
    valueSerde?: Serde<VR>,
  ): KStream<K, VR> {
    return this.streamJoin(other as KStream<K, unknown>, joiner as (v: V, o: unknown) => unknown, windows, valueSerde && any(valueSerde), 'outer') as KStream<
      K,
      VR
    >;
  }

  private tableJoin(table: KTable<K, unknown>, joiner: (v: V, t: unknown) => unknown, left: boolean, valueSerde?: AnySerde): KStream<K, unknown> {
    const s = this.repartitionedIfNeeded({});
    const store = table.materialize();
    const node = this.builder.addProcessor(
      'KSTREAM-JOIN',
      [s.node],
      streamTableJoinProcessor(store, s.keySerde, table.valueSerde, joiner as (v: unknown, t: unknown) => unknown, left),
      [store],
    );
    return new KStream(this.builder, node, s.keySerde, valueSerde ?? this.builder.defaultValueSerde, false);
  }

  private streamJoin(
    other: KStream<K, unknown>,
    joiner: (v: V, o: unknown) => unknown,
    windows: JoinWindows,
    valueSerde: AnySerde | undefined,
    kind: 'inner' | 'left' | 'outer' = 'inner',
  ): KStream<K, unknown> {
    const l = this.repartitionedIfNeeded({});
    const r = other.repartitionedIfNeeded({});
    const lb = this.builder.addStore(this.builder.name('KSTREAM-JOINTHIS-STORE'));
    const rb = this.builder.addStore(this.builder.name('KSTREAM-JOINOTHER-STORE'));
    // Records waiting for a partner (left and outer joins), changelogged like the buffers.
    const outerStore = kind === 'inner' ? undefined : this.builder.addStore(this.builder.name(`KSTREAM-${kind.toUpperCase()}-SHARED-STORE`));
    const stores = outerStore ? [lb, rb, outerStore] : [lb, rb];
    const common = {
      keySerde: l.keySerde,
      windows,
      joiner: joiner as (a: unknown, b: unknown) => unknown,
      outerStore,
      leftValueSerde: l.valueSerde,
      rightValueSerde: r.valueSerde,
    };
    const ln = this.builder.addProcessor(
      'KSTREAM-JOINTHIS',
      [l.node],
      streamStreamJoinProcessor({
        ...common,
        thisBuffer: lb,
        otherBuffer: rb,
        thisValueSerde: l.valueSerde,
        otherValueSerde: r.valueSerde,
        isLeft: true,
        thisOuter: kind !== 'inner',
      }),
      stores,
    );
    const rn = this.builder.addProcessor(
      'KSTREAM-JOINOTHER',
      [r.node],
      streamStreamJoinProcessor({
        ...common,
        thisBuffer: rb,
        otherBuffer: lb,
        thisValueSerde: r.valueSerde,
        otherValueSerde: l.valueSerde,
        isLeft: false,
        thisOuter: kind === 'outer',
      }),
      stores,
    );
    const merged = this.builder.addProcessor(
      'KSTREAM-JOIN-MERGE',
      [ln, rn],
      stateless((ctx, rec) => ctx.forward(rec)),
    );
    return new KStream(this.builder, merged, l.keySerde, valueSerde ?? this.builder.defaultValueSerde, false);
  }

  /** Stream-globalTable join: the table key from keyMapper; no repartition needed (every instance has the whole table). */
  joinGlobal<GK, GV, VR>(
    table: GlobalKTable<GK, GV>,
    keyMapper: (key: K, value: V) => GK,
    joiner: (value: V, tableValue: GV) => VR,
    valueSerde?: Serde<VR>,
  ): KStream<K, VR> {
    const node = this.builder.addProcessor(
      'KSTREAM-GLOBAL-JOIN',
      [this.node],
      streamGlobalJoinProcessor(
        table.storeName,
        table.keySerde,
        table.valueSerde,
        keyMapper as (k: unknown, v: unknown) => unknown,
        joiner as (v: unknown, t: unknown) => unknown,
        false,
      ),
    );
    return new KStream<K, VR>(this.builder, node, this.keySerde, valueSerde ? any(valueSerde) : this.builder.defaultValueSerde, this.keyChanged);
  }

  leftJoinGlobal<GK, GV, VR>(
    table: GlobalKTable<GK, GV>,
    keyMapper: (key: K, value: V) => GK,
    joiner: (value: V, tableValue: GV | null) => VR,
    valueSerde?: Serde<VR>,
  ): KStream<K, VR> {
    const node = this.builder.addProcessor(
      'KSTREAM-GLOBAL-LEFTJOIN',
      [this.node],
      streamGlobalJoinProcessor(
        table.storeName,
        table.keySerde,
        table.valueSerde,
        keyMapper as (k: unknown, v: unknown) => unknown,
        joiner as (v: unknown, t: unknown) => unknown,
        true,
      ),
    );
    return new KStream<K, VR>(this.builder, node, this.keySerde, valueSerde ? any(valueSerde) : this.builder.defaultValueSerde, this.keyChanged);
  }

  /** Reads the stream as a table (latest value per key), materialized. */
  toTable(materialized: Materialized<K, V> = {}): KTable<K, V> {
    const s = this.repartitionedIfNeeded({});
    const store = this.builder.addStore(materialized.storeName ?? this.builder.name('KSTREAM-TOTABLE-STORE'));
    this.builder.typeStore(store, { kind: 'key-value', keySerde: s.keySerde, valueSerde: s.valueSerde });
    const node = this.builder.addProcessor('KSTREAM-TOTABLE', [s.node], tableMaterializer(store, s.keySerde, s.valueSerde), [store]);
    return new KTable<K, V>(this.builder, node, s.keySerde, s.valueSerde, store);
  }
}

export class BranchedKStream<K, V> {
  private readonly predicates: Array<(key: K, value: V) => boolean> = [];
  private readonly names: string[] = [];
  constructor(
    private readonly stream: KStream<K, V>,
    private readonly prefix: string,
  ) {}

  branch(predicate: (key: K, value: V) => boolean, name = String(this.names.length + 1)): this {
    this.predicates.push(predicate);
    this.names.push(this.prefix + name);
    return this;
  }

  defaultBranch(name = '0'): Record<string, KStream<K, V>> {
    this.predicates.push(() => true);
    this.names.push(this.prefix + name);
    return this.noDefaultBranch();
  }

  noDefaultBranch(): Record<string, KStream<K, V>> {
    const streams = this.stream.branch(...this.predicates);
    return Object.fromEntries(this.names.map((n, i) => [n, streams[i]!]));
  }
}

export class KGroupedStream<K, V> {
  /** @internal */
  constructor(
    private readonly builder: StreamsBuilder,
    private readonly node: string,
    private readonly keySerde: AnySerde,
    private readonly valueSerde: AnySerde,
  ) {}

  count(materialized: Materialized<K, number> = {}): KTable<K, number> {
    return this.aggregate(
      () => 0,
      (_k, _v, n) => n + 1,
      { ...materialized, valueSerde: materialized.valueSerde ?? Serdes.Long() },
    );
  }

  reduce(reducer: (agg: V, value: V) => V, materialized: Materialized<K, V> = {}): KTable<K, V> {
    return this.aggregate<V>(
      () => null as V,
      (_k, v, agg) => (agg === null ? v : reducer(agg, v)),
      { ...materialized, valueSerde: materialized.valueSerde ?? (this.valueSerde as Serde<V>) },
    );
  }

  aggregate<VA>(initializer: () => VA, aggregator: (key: K, value: V, agg: VA) => VA, materialized: Materialized<K, VA> = {}): KTable<K, VA> {
    const store = this.builder.addStore(materialized.storeName ?? this.builder.name('KSTREAM-AGGREGATE-STATE-STORE'));
    const aggSerde = materialized.valueSerde ? any(materialized.valueSerde) : any(Serdes.JSON<VA>());
    this.builder.typeStore(store, { kind: 'key-value', keySerde: this.keySerde, valueSerde: aggSerde });
    const node = this.builder.addProcessor(
      'KSTREAM-AGGREGATE',
      [this.node],
      aggregateProcessor({ store, keySerde: this.keySerde, aggSerde, initializer, aggregator: aggregator as (k: unknown, v: unknown, a: unknown) => unknown }),
      [store],
    );
    return new KTable<K, VA>(this.builder, node, this.keySerde, aggSerde, store);
  }

  windowedBy(windows: TimeWindows): TimeWindowedKStream<K, V>;
  windowedBy(windows: SessionWindows): SessionWindowedKStream<K, V>;
  windowedBy(windows: SlidingWindows): SlidingWindowedKStream<K, V>;
  windowedBy(windows: TimeWindows | SessionWindows | SlidingWindows): TimeWindowedKStream<K, V> | SessionWindowedKStream<K, V> | SlidingWindowedKStream<K, V> {
    if (windows instanceof TimeWindows) return new TimeWindowedKStream<K, V>(this.builder, this.node, this.keySerde, this.valueSerde, windows);
    if (windows instanceof SessionWindows) return new SessionWindowedKStream<K, V>(this.builder, this.node, this.keySerde, this.valueSerde, windows);
    if (windows instanceof SlidingWindows) return new SlidingWindowedKStream<K, V>(this.builder, this.node, this.keySerde, this.valueSerde, windows);
    throw new Error('windowedBy takes TimeWindows, SessionWindows or SlidingWindows');
  }
}

abstract class WindowedKStreamBase<K, V> {
  constructor(
    protected readonly builder: StreamsBuilder,
    protected readonly node: string,
    protected readonly keySerde: AnySerde,
    protected readonly valueSerde: AnySerde,
  ) {}

  abstract aggregate<VA>(initializer: () => VA, aggregator: (key: K, value: V, agg: VA) => VA, ...rest: unknown[]): KTable<Windowed<K>, VA>;
}

export class TimeWindowedKStream<K, V> extends WindowedKStreamBase<K, V> {
  constructor(
    builder: StreamsBuilder,
    node: string,
    keySerde: AnySerde,
    valueSerde: AnySerde,
    private readonly windows: TimeWindows,
  ) {
    super(builder, node, keySerde, valueSerde);
  }

  count(materialized: Materialized<K, number> = {}): KTable<Windowed<K>, number> {
    return this.aggregate(
      () => 0,
      (_k, _v, n) => n + 1,
      { ...materialized, valueSerde: materialized.valueSerde ?? Serdes.Long() },
    );
  }

  reduce(reducer: (agg: V, value: V) => V, materialized: Materialized<K, V> = {}): KTable<Windowed<K>, V> {
    return this.aggregate<V>(
      () => null as V,
      (_k, v, agg) => (agg === null ? v : reducer(agg, v)),
      { ...materialized, valueSerde: materialized.valueSerde ?? (this.valueSerde as Serde<V>) },
    );
  }

  aggregate<VA>(initializer: () => VA, aggregator: (key: K, value: V, agg: VA) => VA, materialized: Materialized<K, VA> = {}): KTable<Windowed<K>, VA> {
    const store = this.builder.addStore(materialized.storeName ?? this.builder.name('KSTREAM-WINDOW-AGGREGATE-STATE-STORE'));
    const aggSerde = materialized.valueSerde ? any(materialized.valueSerde) : any(Serdes.JSON<VA>());
    this.builder.typeStore(store, { kind: 'window', keySerde: this.keySerde, valueSerde: aggSerde, windowSizeMs: this.windows.sizeMs });
    const node = this.builder.addProcessor(
      'KSTREAM-WINDOW-AGGREGATE',
      [this.node],
      timeWindowAggregateProcessor(
        { store, keySerde: this.keySerde, aggSerde, initializer, aggregator: aggregator as (k: unknown, v: unknown, a: unknown) => unknown },
        this.windows,
      ),
      [store],
    );
    return new KTable<Windowed<K>, VA>(this.builder, node, any(windowedSerde(this.keySerde)), aggSerde, undefined, {
      graceMs: this.windows.graceMs,
      innerKeySerde: this.keySerde,
    });
  }
}

export class SessionWindowedKStream<K, V> extends WindowedKStreamBase<K, V> {
  constructor(
    builder: StreamsBuilder,
    node: string,
    keySerde: AnySerde,
    valueSerde: AnySerde,
    private readonly windows: SessionWindows,
  ) {
    super(builder, node, keySerde, valueSerde);
  }

  count(materialized: Materialized<K, number> = {}): KTable<Windowed<K>, number> {
    return this.aggregate(
      () => 0,
      (_k, _v, n) => n + 1,
      (_k, a, b) => a + b,
      { ...materialized, valueSerde: materialized.valueSerde ?? Serdes.Long() },
    );
  }

  reduce(reducer: (agg: V, value: V) => V, materialized: Materialized<K, V> = {}): KTable<Windowed<K>, V> {
    const r = (a: V | null, b: V | null) => (a === null ? b : b === null ? a : reducer(a, b));
    return this.aggregate<V>(
      () => null as V,
      (_k, v, agg) => r(agg, v) as V,
      (_k, a, b) => r(a, b) as V,
      { ...materialized, valueSerde: materialized.valueSerde ?? (this.valueSerde as Serde<V>) },
    );
  }

  /** `merger` combines the aggregates of two sessions that a record joins into one. */
  aggregate<VA>(
    initializer: () => VA,
    aggregator: (key: K, value: V, agg: VA) => VA,
    merger: (key: K, a: VA, b: VA) => VA,
    materialized: Materialized<K, VA> = {},
  ): KTable<Windowed<K>, VA> {
    const store = this.builder.addStore(materialized.storeName ?? this.builder.name('KSTREAM-SESSION-AGGREGATE-STATE-STORE'));
    const aggSerde = materialized.valueSerde ? any(materialized.valueSerde) : any(Serdes.JSON<VA>());
    const node = this.builder.addProcessor(
      'KSTREAM-SESSION-AGGREGATE',
      [this.node],
      sessionAggregateProcessor(
        {
          store,
          keySerde: this.keySerde,
          aggSerde,
          initializer,
          aggregator: aggregator as (k: unknown, v: unknown, a: unknown) => unknown,
          merger: merger as (k: unknown, a: unknown, b: unknown) => unknown,
        },
        this.windows,
      ),
      [store],
    );
    return new KTable<Windowed<K>, VA>(this.builder, node, any(windowedSerde(this.keySerde)), aggSerde, undefined, {
      graceMs: this.windows.graceMs,
      innerKeySerde: this.keySerde,
    });
  }
}

export class SlidingWindowedKStream<K, V> extends WindowedKStreamBase<K, V> {
  constructor(
    builder: StreamsBuilder,
    node: string,
    keySerde: AnySerde,
    valueSerde: AnySerde,
    private readonly windows: SlidingWindows,
  ) {
    super(builder, node, keySerde, valueSerde);
  }

  count(materialized: Materialized<K, number> = {}): KTable<Windowed<K>, number> {
    return this.aggregate(
      () => 0,
      (_k, _v, n) => n + 1,
      { ...materialized, valueSerde: materialized.valueSerde ?? Serdes.Long() },
    );
  }

  aggregate<VA>(initializer: () => VA, aggregator: (key: K, value: V, agg: VA) => VA, materialized: Materialized<K, VA> = {}): KTable<Windowed<K>, VA> {
    const bufferStore = this.builder.addStore(materialized.storeName ?? this.builder.name('KSTREAM-SLIDING-BUFFER-STORE'));
    const aggSerde = materialized.valueSerde ? any(materialized.valueSerde) : any(Serdes.JSON<VA>());
    const node = this.builder.addProcessor(
      'KSTREAM-SLIDING-AGGREGATE',
      [this.node],
      slidingAggregateProcessor(
        {
          store: bufferStore,
          bufferStore,
          valueSerde: this.valueSerde,
          keySerde: this.keySerde,
          aggSerde,
          initializer,
          aggregator: aggregator as (k: unknown, v: unknown, a: unknown) => unknown,
        },
        this.windows,
      ),
      [bufferStore],
    );
    return new KTable<Windowed<K>, VA>(this.builder, node, any(windowedSerde(this.keySerde)), aggSerde, undefined, {
      graceMs: this.windows.graceMs,
      innerKeySerde: this.keySerde,
    });
  }
}

export class KTable<K, V> {
  /** @internal */
  constructor(
    private readonly builder: StreamsBuilder,
    /** @internal */ readonly node: string,
    /** @internal */ readonly keySerde: AnySerde,
    /** @internal */ readonly valueSerde: AnySerde,
    /** @internal the store holding this table's current values, if it has one */ private store: string | undefined,
    /** @internal set for windowed aggregates' results */ private readonly windowed?: { graceMs: number; innerKeySerde: AnySerde },
  ) {}

  /** The name of the store holding this table (for interactive queries); undefined if not materialized. */
  get storeName(): string | undefined {
    return this.store;
  }

  /** @internal The store with this table's values, made (a materializing node) if the table has none yet. */
  materialize(): string {
    if (this.windowed) throw new Error('a windowed table cannot be joined; map its stream to plain keys first');
    if (this.store) return this.store;
    const store = this.builder.addStore(this.builder.name('KTABLE-MATERIALIZED-STORE'));
    this.builder.typeStore(store, { kind: 'key-value', keySerde: this.keySerde, valueSerde: this.valueSerde });
    this.builder.addProcessor('KTABLE-MATERIALIZE', [this.node], tableMaterializer(store, this.keySerde, this.valueSerde), [store]);
    this.store = store;
    return store;
  }

  /** The table's changes as a stream (a deletion is a record with a null value). */
  toStream(): KStream<K, V> {
    const node = this.builder.addProcessor(
      'KTABLE-TOSTREAM',
      [this.node],
      stateless((ctx, r) => ctx.forward(r)),
    );
    return new KStream<K, V>(this.builder, node, this.keySerde, this.valueSerde, false);
  }

  mapValues<V2>(fn: (value: V, key: K) => V2, valueSerde?: Serde<V2>): KTable<K, V2> {
    const node = this.builder.addProcessor(
      'KTABLE-MAPVALUES',
      [this.node],
      stateless((ctx, r) => ctx.forward({ ...r, value: r.value === null ? null : fn(r.value as V, r.key as K) })),
    );
    return new KTable<K, V2>(this.builder, node, this.keySerde, valueSerde ? any(valueSerde) : this.builder.defaultValueSerde, undefined, this.windowed);
  }

  /** Keeps the rows that satisfy the predicate; a row that stops satisfying it is deleted downstream (a null value). */
  filter(predicate: (key: K, value: V) => boolean): KTable<K, V> {
    const node = this.builder.addProcessor(
      'KTABLE-FILTER',
      [this.node],
      stateless((ctx, r) => ctx.forward(r.value !== null && predicate(r.key as K, r.value as V) ? r : { ...r, value: null })),
    );
    return new KTable<K, V>(this.builder, node, this.keySerde, this.valueSerde, undefined, this.windowed);
  }

  /**
   * Windowed tables only: holds each window's result until the window closes (end + grace
   * reached by stream time) and emits it once, final (Kafka's Suppressed.untilWindowCloses).
   */
  suppressUntilWindowCloses(): KTable<K, V> {
    if (!this.windowed) throw new Error('suppressUntilWindowCloses() needs a windowed table (windowedBy(...).count/reduce/aggregate)');
    const store = this.builder.addStore(this.builder.name('KTABLE-SUPPRESS-STATE-STORE'));
    const node = this.builder.addProcessor(
      'KTABLE-SUPPRESS',
      [this.node],
      suppressProcessor(store, this.windowed.innerKeySerde, this.valueSerde, this.windowed.graceMs),
      [store],
    );
    return new KTable<K, V>(this.builder, node, this.keySerde, this.valueSerde, undefined, this.windowed);
  }

  /** Table-table join (inner): a row while both sides have one for the key. */
  join<VO, VR>(other: KTable<K, VO>, joiner: (value: V, otherValue: VO) => VR, valueSerde?: Serde<VR>): KTable<K, VR> {
    return this.tableJoin(other as unknown as KTable<K, unknown>, joiner as (a: unknown, b: unknown) => unknown, 'inner', valueSerde);
  }

  /** Table-table left join: a row while this side has one (the other value may be null); deleting this side's row deletes the result. */
  leftJoin<VO, VR>(other: KTable<K, VO>, joiner: (value: V, otherValue: VO | null) => VR, valueSerde?: Serde<VR>): KTable<K, VR> {
    return this.tableJoin(other as unknown as KTable<K, unknown>, joiner as (a: unknown, b: unknown) => unknown, 'left', valueSerde);
  }

  /** Table-table outer join: a row while either side has one (the missing side is null); deleted once both are gone. */
  outerJoin<VO, VR>(other: KTable<K, VO>, joiner: (value: V | null, otherValue: VO | null) => VR, valueSerde?: Serde<VR>): KTable<K, VR> {
    return this.tableJoin(other as unknown as KTable<K, unknown>, joiner as (a: unknown, b: unknown) => unknown, 'outer', valueSerde);
  }

  /**
   * Re-groups the table by a new key (Kafka's KTable.groupBy): the result aggregates, per new
   * key, the rows that map to it now. Always through a repartition topic, which carries each
   * row change as its old value (to subtract) and new value (to add).
   */
  groupBy<K2, V2>(selector: (key: K, value: V) => KeyValue<K2, V2>, grouped: Grouped<K2, V2> = {}): KGroupedTable<K2, V2> {
    const groupKeySerde = grouped.keySerde ? any(grouped.keySerde) : this.builder.defaultKeySerde;
    const groupValueSerde = grouped.valueSerde ? any(grouped.valueSerde) : this.builder.defaultValueSerde;
    const prior = this.builder.addStore(this.builder.name('KTABLE-GROUPBY-PRIOR-STORE'));
    const select = this.builder.addProcessor(
      'KTABLE-SELECT',
      [this.node],
      tableGroupBySelectProcessor({
        priorStore: prior,
        keySerde: this.keySerde,
        valueSerde: this.valueSerde,
        groupKeySerde,
        selector: selector as (k: unknown, v: unknown) => [unknown, unknown],
      }),
      [prior],
    );
    const topic = `${grouped.name ?? this.builder.name('KTABLE-AGGREGATE')}-repartition`;
    const changes = any(changeSerde(groupValueSerde));
    const sink = this.builder.name('KTABLE-REPARTITION-SINK');
    this.builder.nodes.set(sink, { kind: 'sink', name: sink, parents: [select], topic, keySerde: groupKeySerde, valueSerde: changes, repartition: true });
    const source = this.builder.name('KTABLE-REPARTITION-SOURCE');
    this.builder.nodes.set(source, { kind: 'source', name: source, topics: [topic], keySerde: groupKeySerde, valueSerde: changes, repartition: true });
    return new KGroupedTable<K2, V2>(this.builder, source, groupKeySerde, groupValueSerde);
  }

  private tableJoin<VR>(
    other: KTable<K, unknown>,
    joiner: (a: unknown, b: unknown) => unknown,
    kind: 'inner' | 'left' | 'outer',
    valueSerde?: Serde<VR>,
  ): KTable<K, VR> {
    const ls = this.materialize();
    const rs = other.materialize();
    const ln = this.builder.addProcessor(
      'KTABLE-JOINTHIS',
      [this.node],
      tableTableJoinProcessor(rs, this.keySerde, other.valueSerde, joiner, kind === 'left' ? 'left-this' : kind),
      [ls, rs],
    );
    const rn = this.builder.addProcessor(
      'KTABLE-JOINOTHER',
      [other.node],
      tableTableJoinProcessor(ls, this.keySerde, this.valueSerde, (mine, o) => joiner(o, mine), kind === 'left' ? 'left-other' : kind),
      [ls, rs],
    );
    const merged = this.builder.addProcessor(
      'KTABLE-JOIN-MERGE',
      [ln, rn],
      stateless((ctx, r) => ctx.forward(r)),
    );
    return new KTable<K, VR>(this.builder, merged, this.keySerde, valueSerde ? any(valueSerde) : this.builder.defaultValueSerde, undefined);
  }
}

/**
 * A table re-grouped by a new key (KTable.groupBy): aggregations take an adder and a subtractor,
 * because a row that changes leaves its old group (subtract its old value) and joins its new one
 * (add its new value); a deleted row only leaves. Results are KTables; a group that loses every
 * row keeps its aggregate (0 for count), as in Kafka.
 */
export class KGroupedTable<K, V> {
  /** @internal */
  constructor(
    private readonly builder: StreamsBuilder,
    private readonly node: string,
    private readonly keySerde: AnySerde,
    private readonly valueSerde: AnySerde,
  ) {}

  /** Rows per group. */
  count(materialized: Materialized<K, number> = {}): KTable<K, number> {
    return this.aggregate(
      () => 0,
      (_k, _v, n) => n + 1,
      (_k, _v, n) => n - 1,
      { ...materialized, valueSerde: materialized.valueSerde ?? Serdes.Long() },
    );
  }

  /** `adder(agg, value)` when a row joins the group, `subtractor(agg, value)` when it leaves; the first row is the aggregate. */
  reduce(adder: (agg: V, value: V) => V, subtractor: (agg: V, value: V) => V, materialized: Materialized<K, V> = {}): KTable<K, V> {
    return this.aggregate<V | null>(
      () => null,
      (_k, v, agg) => (agg === null ? v : adder(agg, v)),
      (_k, v, agg) => (agg === null ? null : subtractor(agg, v)),
      { ...materialized, valueSerde: materialized.valueSerde ?? (this.valueSerde as Serde<V>) } as Materialized<K, V | null>,
    ) as KTable<K, V>;
  }

  aggregate<VA>(
    initializer: () => VA,
    adder: (key: K, value: V, agg: VA) => VA,
    subtractor: (key: K, value: V, agg: VA) => VA,
    materialized: Materialized<K, VA> = {},
  ): KTable<K, VA> {
    const store = this.builder.addStore(materialized.storeName ?? this.builder.name('KTABLE-AGGREGATE-STATE-STORE'));
    const aggSerde = materialized.valueSerde ? any(materialized.valueSerde) : any(Serdes.JSON<VA>());
    const node = this.builder.addProcessor(
      'KTABLE-AGGREGATE',
      [this.node],
      tableAggregateProcessor({
        store,
        keySerde: this.keySerde,
        aggSerde,
        initializer,
        adder: adder as (k: unknown, v: unknown, a: unknown) => unknown,
        subtractor: subtractor as (k: unknown, v: unknown, a: unknown) => unknown,
      }),
      [store],
    );
    return new KTable<K, VA>(this.builder, node, this.keySerde, aggSerde, store);
  }
}
