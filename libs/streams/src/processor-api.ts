/**
 * The Processor API (Kafka Streams' `KStream.process` with `api.Processor`): a processor of your
 * own with init / process / close, which forwards what it wants downstream, keeps state in named
 * key-value stores (`builder.addStateStore`, changelogged like the DSL's) and schedules
 * punctuations on stream time or the wall clock.
 *
 * Typed stores read and write through the store's serdes. Ranges compare serialized keys as bytes
 * (as Kafka's do): with Serdes.String() that is code-point order, with Serdes.Long() numeric order
 * for keys >= 0.
 */
import type { Cancellable, PunctuationType, Punctuator } from './punctuation.js';
import type { Serde } from './serdes.js';
import type { KeyValueStore, Processor, ProcessorContext, Rec, StoreDef, StoreTyping } from './topology.js';

/** A record as a processor sees it. */
export interface StreamRecord<K, V> {
  key: K;
  value: V;
  /** Event time, ms. */
  timestamp: number;
  headers?: Array<{ key: string; value: Buffer }>;
}

/** A key-value store read through its serdes. `range` bounds are both inclusive, as Kafka's. */
export interface ReadOnlyTypedKeyValueStore<K, V> {
  get(key: K): V | undefined;
  /** Entries with from <= key <= to by serialized bytes, ascending. */
  range(from: K, to: K): Array<[K, V]>;
  /** Every entry, ascending by serialized key (read into memory: mind the store's size). */
  all(): Array<[K, V]>;
  /** How many entries (counted: costs a scan of the store). */
  approximateNumEntries(): number;
}

export interface TypedKeyValueStore<K, V> extends ReadOnlyTypedKeyValueStore<K, V> {
  /** A null value deletes the key. */
  put(key: K, value: V | null): void;
  /** Deletes the key; returns the value it had. */
  delete(key: K): V | undefined;
}

export interface RecordProcessorContext<KOut, VOut> {
  readonly taskId: string;
  readonly partition: number;
  /** The largest record timestamp the task has seen (-1 before the first). */
  streamTime(): number;
  /** Wall-clock time from the task's clock (the test driver's mock clock under test). */
  currentSystemTimeMs(): number;
  /**
   * Sends a record to the processor's children. Without `timestamp`: the current record's inside
   * process(), the punctuation's time (stream or wall-clock) inside a punctuator.
   */
  forward(key: KOut, value: VOut, timestamp?: number): void;
  /** A store named when the processor was added (`process(supplier, ...storeNames)`). */
  getStateStore<K, V>(name: string): TypedKeyValueStore<K, V>;
  /** See punctuation.ts for when punctuators fire. Outputs and store writes of a punctuator belong to the commit interval it runs in. */
  schedule(intervalMs: number, type: PunctuationType, punctuator: Punctuator): Cancellable;
}

export interface RecordProcessor<KIn, VIn, KOut = KIn, VOut = VIn> {
  init?(context: RecordProcessorContext<KOut, VOut>): void;
  process(record: StreamRecord<KIn, VIn>): void;
  /** Called once when the task closes (its partitions revoked, or the instance closing). */
  close?(): void;
}

/** Makes a new processor per task: keep per-task state in the processor, never shared between calls. */
export type ProcessorSupplier<KIn, VIn, KOut = KIn, VOut = VIn> = () => RecordProcessor<KIn, VIn, KOut, VOut>;

/** What `builder.addStateStore` takes: a key-value store with its serdes. */
export interface KeyValueStoreSpec<K, V> {
  name: string;
  keySerde: Serde<K>;
  valueSerde: Serde<V>;
  /** Backed by `${applicationId}-${name}-changelog` (compacted) and restored from it. Default true. */
  changelog?: boolean;
}

/** The smallest key after `k` in byte order: turns an inclusive upper bound into range()'s exclusive one. */
export const after = (k: Buffer): Buffer => Buffer.concat([k, Buffer.from([0])]);

export function serializeKey(serde: Serde<unknown>, key: unknown, store: string): Buffer {
  if (key === null || key === undefined) throw new TypeError(`store ${store}: a key must not be null`);
  const b = serde.serialize(key);
  if (b === null) throw new TypeError(`store ${store}: the key serde turned the key into null`);
  return b;
}

/** Reads rows of byte stores through a typing. */
export function decodeRows<K, V>(typing: StoreTyping, rows: Array<[Buffer, Buffer]>): Array<[K, V]> {
  return rows.map(([k, v]) => [typing.keySerde.deserialize(k) as K, typing.valueSerde.deserialize(v) as V]);
}

export function typedKeyValueStore<K, V>(name: string, bytes: KeyValueStore, typing: StoreTyping): TypedKeyValueStore<K, V> {
  const key = (k: K) => serializeKey(typing.keySerde, k, name);
  const get = (k: K): V | undefined => {
    const v = bytes.get(key(k));
    return v === undefined ? undefined : ((typing.valueSerde.deserialize(v) ?? undefined) as V | undefined);
  };
  return {
    get,
    range: (from, to) => decodeRows<K, V>(typing, bytes.range(key(from), after(key(to)))),
    all: () => decodeRows<K, V>(typing, bytes.range(Buffer.alloc(0))),
    approximateNumEntries: () => bytes.range(Buffer.alloc(0)).length,
    put: (k, v) => bytes.put(key(k), v === null || v === undefined ? null : typing.valueSerde.serialize(v)),
    delete: (k) => {
      const old = get(k);
      bytes.put(key(k), null);
      return old;
    },
  };
}

/**
 * The graph node for a user processor: adapts the internal ProcessorContext (bytes, Rec) to the
 * typed one. `stores` are the store definitions the processor was connected to.
 */
export function userProcessorNode(
  supplier: ProcessorSupplier<unknown, unknown, unknown, unknown>,
  stores: ReadonlyMap<string, StoreDef>,
  connected: readonly string[],
): () => Processor {
  return () => {
    const user = supplier();
    if (!user || typeof user.process !== 'function') throw new TypeError('a ProcessorSupplier must return an object with process(record)');
    // Timestamp for forward() without one: the record's in process(), the punctuation's in a punctuator.
    let currentTimestamp = 0;
    let currentHeaders: Rec['headers'];
    return {
      init(ctx: ProcessorContext) {
        const typed = new Map<string, TypedKeyValueStore<unknown, unknown>>();
        const context: RecordProcessorContext<unknown, unknown> = {
          taskId: ctx.taskId,
          partition: ctx.partition,
          streamTime: () => ctx.streamTime(),
          currentSystemTimeMs: () => ctx.currentSystemTimeMs(),
          forward(key, value, timestamp) {
            const ts = timestamp ?? currentTimestamp;
            if (!Number.isFinite(ts) || ts < 0) throw new RangeError(`forward(): timestamp must be a number >= 0, got ${ts}`);
            ctx.forward({ key, value, timestamp: ts, headers: timestamp === undefined ? currentHeaders : undefined });
          },
          getStateStore<K, V>(name: string): TypedKeyValueStore<K, V> {
            let s = typed.get(name);
            if (!s) {
              if (!connected.includes(name)) throw new Error(`store ${name} is not connected to this processor: name it in process(supplier, '${name}')`);
              const typing = stores.get(name)?.typing;
              if (typing?.kind !== 'key-value') throw new Error(`store ${name} is not a key-value store with serdes (add it with builder.addStateStore)`);
              s = typedKeyValueStore(name, ctx.store(name), typing);
              typed.set(name, s);
            }
            return s as TypedKeyValueStore<K, V>;
          },
          schedule(intervalMs, type, punctuator) {
            return ctx.schedule(intervalMs, type, (ts) => {
              const [t, h] = [currentTimestamp, currentHeaders];
              currentTimestamp = ts;
              currentHeaders = undefined;
              try {
                punctuator(ts);
              } finally {
                currentTimestamp = t;
                currentHeaders = h;
              }
            });
          },
        };
        user.init?.(context);
      },
      process(rec) {
        currentTimestamp = rec.timestamp;
        currentHeaders = rec.headers;
        user.process({ key: rec.key, value: rec.value, timestamp: rec.timestamp, headers: rec.headers });
      },
      close() {
        user.close?.();
      },
    };
  };
}
