/**
 * Interactive queries: read-only, typed views of the state stores of the tasks running on THIS
 * instance (Kafka Streams' `KafkaStreams.store` and `queryMetadataForKey`).
 *
 * A key lives in the task of the partition Kafka's default partitioner gives its serialized key
 * (murmur2 over the store serde's bytes): true for stores fed by a repartition topic (groupBy,
 * map then groupByKey) and for input topics written by producers with that partitioner and serde,
 * as in Kafka. A key lookup throws a retriable UNAVAILABLE when that task is restoring here or is
 * not here (never assigned, or migrated to another instance): retry, or ask another instance.
 * Instances do not advertise endpoints through the group protocol, so routing to the instance
 * that has a key is the application's business.
 *
 * Reads see the task's current commit interval as well (Kafka's default read-uncommitted
 * queries): under exactly_once a value read may still be rolled back by an aborted transaction.
 * Each call re-resolves the task, so a view stays valid across rebalances.
 */
import { partitionForKey, SkeinError } from '@skein/client';
import { after, decodeRows, serializeKey } from './processor-api.js';
import { be64 } from './processors.js';
import type { Window } from './serdes.js';
import type { KeyValueStore, StoreTyping, Topology } from './topology.js';

export interface QueryableKeyValueStore<K, V> {
  /** The key's value in the task that holds it (undefined: absent). Throws UNAVAILABLE if that task does not run here. */
  get(key: K): V | undefined;
  /** Entries from <= key <= to (serialized bytes) over the tasks running here, ascending. */
  range(from: K, to: K): Array<[K, V]>;
  /** Every entry of the tasks running here, ascending by serialized key (read into memory). */
  all(): Array<[K, V]>;
  /** Entries over the tasks running here (counted: a scan). */
  approximateNumEntries(): number;
}

export interface QueryableWindowStore<K, V> {
  /** The key's windows with start in [timeFrom, timeTo], ascending by start. Throws UNAVAILABLE if the key's task does not run here. */
  fetch(key: K, timeFrom: number, timeTo: number): Array<{ window: Window; value: V }>;
}

export interface KeyQueryMetadata {
  store: string;
  partition: number;
  taskId: string;
  /** This instance runs the task now: a get() here answers. */
  activeHere: boolean;
  /** The task's state here (undefined: not here). */
  state: 'RESTORING' | 'RUNNING' | undefined;
}

/** What the runtime shows the queries: the topology, partition counts, and its tasks now. */
export interface LocalTasks {
  readonly topology: Topology;
  partitionCount(subtopology: number): number | undefined;
  task(taskId: string): { state: 'RESTORING' | 'RUNNING' | 'CLOSED'; stores: ReadonlyMap<string, KeyValueStore> | undefined } | undefined;
  tasks(): Iterable<{ id: string; state: 'RESTORING' | 'RUNNING' | 'CLOSED'; stores: ReadonlyMap<string, KeyValueStore> | undefined }>;
}

interface Located {
  typing: StoreTyping;
  subtopology: number;
  partitions: number;
}

function locate(local: LocalTasks, store: string): Located {
  const def = local.topology.stores.get(store);
  const sub = local.topology.subtopologies.find((s) => s.stores.includes(store));
  if (!def || !sub) {
    if (local.topology.globalTables.some((g) => g.store === store))
      throw new SkeinError('INVALID_REQUEST', `store ${store} is a global table's: query it with query(store, key, keySerde, valueSerde)`);
    throw new SkeinError('INVALID_REQUEST', `no store ${store} in this topology`);
  }
  if (!def.typing) throw new SkeinError('INVALID_REQUEST', `store ${store} is an internal buffer, not queryable`);
  const partitions = local.partitionCount(sub.id);
  if (partitions === undefined) throw new SkeinError('UNAVAILABLE', `store ${store}: the instance has not started yet`, { metadata: { store } });
  return { typing: def.typing, subtopology: sub.id, partitions };
}

export function keyQueryMetadata(local: LocalTasks, store: string, key: unknown): KeyQueryMetadata {
  const at = locate(local, store);
  return metadataFor(local, store, at, serializeKey(at.typing.keySerde, key, store));
}

function metadataFor(local: LocalTasks, store: string, at: Located, keyBytes: Buffer): KeyQueryMetadata {
  const partition = partitionForKey(keyBytes, at.partitions);
  const taskId = `${at.subtopology}_${partition}`;
  const t = local.task(taskId);
  const state = t?.state === 'RUNNING' || t?.state === 'RESTORING' ? t.state : undefined;
  return { store, partition, taskId, activeHere: state === 'RUNNING' && t?.stores !== undefined, state };
}

function unavailable(m: KeyQueryMetadata): SkeinError {
  const why =
    m.state === 'RESTORING'
      ? 'is restoring on this instance'
      : 'is not active on this instance (migrated to another instance, not assigned yet, or on another instance)';
  return new SkeinError('UNAVAILABLE', `store ${m.store}: partition ${m.partition} (task ${m.taskId}) ${why}: retry later or query the instance that runs it`, {
    metadata: { store: m.store, partition: String(m.partition), task: m.taskId },
  });
}

/** The byte store of the task holding `keyBytes`, or the retriable error. */
function storeForKey(local: LocalTasks, store: string, at: Located, keyBytes: Buffer): KeyValueStore {
  const m = metadataFor(local, store, at, keyBytes);
  const s = m.activeHere ? local.task(m.taskId)?.stores?.get(store) : undefined;
  if (!s) throw unavailable(m);
  return s;
}

/** The byte stores of every task of the store's sub-topology on this instance; throws while one of them is restoring (a partial answer would look complete). */
function localStores(local: LocalTasks, store: string, at: Located): KeyValueStore[] {
  const out: KeyValueStore[] = [];
  const prefix = `${at.subtopology}_`;
  for (const t of local.tasks()) {
    if (!t.id.startsWith(prefix)) continue;
    if (t.state === 'RESTORING')
      throw unavailable({ store, partition: Number(t.id.slice(prefix.length)), taskId: t.id, activeHere: false, state: 'RESTORING' });
    const s = t.state === 'RUNNING' ? t.stores?.get(store) : undefined;
    if (s) out.push(s);
  }
  return out;
}

const merged = (stores: KeyValueStore[], from: Buffer, to?: Buffer): Array<[Buffer, Buffer]> =>
  stores.flatMap((s) => s.range(from, to)).sort(([a], [b]) => Buffer.compare(a, b));

export function queryableKeyValueStore<K, V>(local: LocalTasks, store: string): QueryableKeyValueStore<K, V> {
  const at = () => {
    const a = locate(local, store);
    if (a.typing.kind !== 'key-value')
      throw new SkeinError('INVALID_REQUEST', `store ${store} is a ${a.typing.kind} store: use store(name, '${a.typing.kind}')`);
    return a;
  };
  at();
  return {
    get(key) {
      const a = at();
      const k = serializeKey(a.typing.keySerde, key, store);
      const v = storeForKey(local, store, a, k).get(k);
      return v === undefined ? undefined : ((a.typing.valueSerde.deserialize(v) ?? undefined) as V | undefined);
    },
    range(from, to) {
      const a = at();
      const lo = serializeKey(a.typing.keySerde, from, store);
      const hi = after(serializeKey(a.typing.keySerde, to, store));
      return decodeRows<K, V>(a.typing, merged(localStores(local, store, a), lo, hi));
    },
    all() {
      const a = at();
      return decodeRows<K, V>(a.typing, merged(localStores(local, store, a), Buffer.alloc(0)));
    },
    approximateNumEntries() {
      const a = at();
      return localStores(local, store, a).reduce((n, s) => n + s.range(Buffer.alloc(0)).length, 0);
    },
  };
}

const validTime = (name: string, t: number) => {
  if (!Number.isSafeInteger(t) || t < 0) throw new SkeinError('INVALID_REQUEST', `${name} must be a whole number of ms >= 0, got ${t}`);
};

export function queryableWindowStore<K, V>(local: LocalTasks, store: string): QueryableWindowStore<K, V> {
  const at = () => {
    const a = locate(local, store);
    if (a.typing.kind !== 'window') throw new SkeinError('INVALID_REQUEST', `store ${store} is a ${a.typing.kind} store: use store(name, '${a.typing.kind}')`);
    return a;
  };
  at();
  return {
    fetch(key, timeFrom, timeTo) {
      validTime('timeFrom', timeFrom);
      validTime('timeTo', timeTo);
      if (timeFrom > timeTo) throw new SkeinError('INVALID_REQUEST', `timeFrom ${timeFrom} is after timeTo ${timeTo}`);
      const a = at();
      const k = serializeKey(a.typing.keySerde, key, store);
      const size = a.typing.windowSizeMs ?? 0;
      const out: Array<{ window: Window; value: V }> = [];
      // Window keys are [start 8][key]: one time range, filtered by key (processors.ts).
      for (const [sk, v] of storeForKey(local, store, a, k).range(be64(timeFrom), be64(timeTo + 1))) {
        if (sk.length !== 8 + k.length || !sk.subarray(8).equals(k)) continue;
        const start = Number(sk.readBigInt64BE(0));
        out.push({ window: { start, end: start + size }, value: a.typing.valueSerde.deserialize(v) as V });
      }
      return out;
    },
  };
}
