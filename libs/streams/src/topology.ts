/**
 * The processing graph the DSL builds, and its split into sub-topologies. Pure.
 *
 * Nodes are sources (read topics), processors and sinks (write topics). A sub-topology is a
 * connected part of the graph: nodes joined by edges or by a state store they share. Repartition
 * topics cut the graph (a sink writes the topic, a source in another sub-topology reads it), so
 * each sub-topology reads its own set of topics and runs as one task per partition number: task
 * `${subtopology}_${partition}` reads partition p of every topic of its sub-topology. Those topics
 * must therefore have the same number of partitions (be co-partitioned); runtime.ts checks it.
 */
import type { Cancellable, PunctuationType, Punctuator } from './punctuation.js';
import type { Serde } from './serdes.js';

/** A record inside the graph: typed key and value, event time in ms. */
export interface Rec {
  key: unknown;
  value: unknown;
  timestamp: number;
  headers?: Array<{ key: string; value: Buffer }>;
}

/** What a processor sees of its task. Synchronous: a record goes through the whole graph in one call. */
export interface ProcessorContext {
  readonly taskId: string;
  readonly partition: number;
  /** The largest record timestamp this task has seen (Kafka Streams' stream time). */
  streamTime(): number;
  /** Sends a record to every child. */
  forward(rec: Rec): void;
  /** Sends a record to one named child (branches). */
  forwardTo(child: string, rec: Rec): void;
  store(name: string): KeyValueStore;
  /** Writes to a topic (sinks): bytes, buffered until the task's outputs are sent. */
  send(topic: string, key: Buffer | null, value: Buffer | null, timestamp: number, headers?: Rec['headers']): void;
  /** Counts an event (e.g. 'dropped-late') in the task's metrics. */
  count(metric: string, n?: number): void;
  /** A global table's store (read-only here; fed from its topic by every instance). */
  globalStore(name: string): ReadonlyKeyValueStore;
  /** Calls `punctuator` every `intervalMs` of stream time or wall-clock time (punctuation.ts has the semantics). */
  schedule(intervalMs: number, type: PunctuationType, punctuator: Punctuator): Cancellable;
  /** Wall-clock time as the task's clock says (the runtime's; the test driver's mock clock). */
  currentSystemTimeMs(): number;
}

export interface Processor {
  init?(ctx: ProcessorContext): void;
  process(rec: Rec): void;
  /** Called after each record of the task, with the new stream time (suppression uses it). */
  afterRecord?(): void;
  /** Called before the task's writes are committed (retention purges go here). */
  beforeCommit?(): void;
  /** Called once when the task closes (revoked, or the instance closes). */
  close?(): void;
}

export interface ReadonlyKeyValueStore {
  get(key: Buffer): Buffer | undefined;
}

/** A byte store: what state stores are underneath (see state/). Keys sort as bytes. */
export interface KeyValueStore extends ReadonlyKeyValueStore {
  put(key: Buffer, value: Buffer | null): void;
  /** Entries with from <= key < to (no upper bound without `to`), ascending. */
  range(from: Buffer, to?: Buffer): Array<[Buffer, Buffer]>;
}

export type NodeDef =
  | {
      kind: 'source';
      name: string;
      topics: string[];
      keySerde: Serde<unknown>;
      valueSerde: Serde<unknown>;
      timestampExtractor?: TimestampExtractor;
      repartition: boolean;
    }
  | { kind: 'processor'; name: string; parents: string[]; make: () => Processor; stores: string[] }
  | { kind: 'sink'; name: string; parents: string[]; topic: string; keySerde: Serde<unknown>; valueSerde: Serde<unknown>; repartition: boolean };

/** Event time of a record: its timestamp (the default) or one taken from its contents. */
export type TimestampExtractor = (rec: { key: unknown; value: unknown; timestampMs: number; topic: string; partition: number }) => number;

export interface StoreDef {
  name: string;
  /** Written to `${applicationId}-${name}-changelog` (compacted), restored from it. */
  changelog: boolean;
  /** How its bytes read as typed keys and values; set for stores users may read (processors' stores, interactive queries), absent for internal buffers. */
  typing?: StoreTyping;
}

/**
 * A user-readable store's layout: 'key-value' keys are the serialized key; 'window' keys are
 * [window start, 8 bytes big-endian][serialized key] (processors.ts), windows `windowSizeMs` long.
 */
export interface StoreTyping {
  kind: 'key-value' | 'window';
  keySerde: Serde<unknown>;
  valueSerde: Serde<unknown>;
  windowSizeMs?: number;
}

export interface GlobalTableDef {
  topic: string;
  store: string;
  keySerde: Serde<unknown>;
  valueSerde: Serde<unknown>;
}

export interface SubTopology {
  id: number;
  nodes: string[];
  /** Topics read (input and repartition topics), sorted. */
  sourceTopics: string[];
  /** Topics written that other sub-topologies read. */
  repartitionSinks: string[];
  stores: string[];
}

export interface Topology {
  nodes: ReadonlyMap<string, NodeDef>;
  children: ReadonlyMap<string, string[]>;
  stores: ReadonlyMap<string, StoreDef>;
  globalTables: readonly GlobalTableDef[];
  /** Repartition topic names (already prefixed? no: suffixes; runtime prefixes with the application id). */
  repartitionTopics: readonly string[];
  subtopologies: readonly SubTopology[];
  /** Sub-topology id per source topic. */
  subtopologyOf: ReadonlyMap<string, number>;
  describe(): string;
}

/** Splits the graph into sub-topologies (connected by edges or shared stores), numbered in node order. */
export function buildTopology(nodes: ReadonlyMap<string, NodeDef>, stores: ReadonlyMap<string, StoreDef>, globalTables: readonly GlobalTableDef[]): Topology {
  const children = new Map<string, string[]>();
  for (const n of nodes.values()) children.set(n.name, []);
  for (const n of nodes.values()) {
    if (n.kind === 'source') continue;
    for (const p of n.parents) {
      if (!nodes.has(p)) throw new Error(`node ${n.name} has unknown parent ${p}`);
      children.get(p)!.push(n.name);
    }
  }
  // Union-find over nodes.
  const parent = new Map<string, string>();
  const find = (x: string): string => {
    let r = x;
    while (parent.get(r) !== r) r = parent.get(r)!;
    parent.set(x, r);
    return r;
  };
  const union = (a: string, b: string) => {
    const ra = find(a);
    const rb = find(b);
    if (ra !== rb) parent.set(rb, ra);
  };
  for (const n of nodes.keys()) parent.set(n, n);
  const storeOwner = new Map<string, string>();
  for (const n of nodes.values()) {
    if (n.kind !== 'source') for (const p of n.parents) union(p, n.name);
    if (n.kind === 'processor') {
      for (const s of n.stores) {
        if (!stores.has(s)) throw new Error(`processor ${n.name} uses unknown store ${s}`);
        const owner = storeOwner.get(s);
        if (owner) union(owner, n.name);
        else storeOwner.set(s, n.name);
      }
    }
  }
  const groups = new Map<string, string[]>();
  for (const n of nodes.keys()) {
    const r = find(n);
    groups.set(r, [...(groups.get(r) ?? []), n]);
  }
  const subtopologies: SubTopology[] = [];
  const subtopologyOf = new Map<string, number>();
  const repartitionTopics: string[] = [];
  for (const members of groups.values()) {
    const id = subtopologies.length;
    const sourceTopics = new Set<string>();
    const repartitionSinks: string[] = [];
    const storeNames = new Set<string>();
    for (const name of members) {
      const n = nodes.get(name)!;
      if (n.kind === 'source') for (const t of n.topics) sourceTopics.add(t);
      if (n.kind === 'sink' && n.repartition) {
        repartitionSinks.push(n.topic);
        if (!repartitionTopics.includes(n.topic)) repartitionTopics.push(n.topic);
      }
      if (n.kind === 'processor') for (const s of n.stores) storeNames.add(s);
    }
    if (sourceTopics.size === 0) throw new Error(`nodes ${members.join(', ')} read no topic`);
    for (const t of sourceTopics) {
      if (subtopologyOf.has(t)) throw new Error(`topic ${t} is read by two sub-topologies; read it once and branch the stream`);
      subtopologyOf.set(t, id);
    }
    subtopologies.push({ id, nodes: members, sourceTopics: [...sourceTopics].sort(), repartitionSinks, stores: [...storeNames].sort() });
  }
  const describe = () =>
    subtopologies
      .map((s) => {
        const lines = [`Sub-topology: ${s.id} (reads ${s.sourceTopics.join(', ')})`];
        for (const name of s.nodes) {
          const n = nodes.get(name)!;
          const extra =
            n.kind === 'source'
              ? ` topics: [${n.topics.join(', ')}]`
              : n.kind === 'sink'
                ? ` topic: ${n.topic}`
                : n.stores.length
                  ? ` stores: [${n.stores.join(', ')}]`
                  : '';
          lines.push(`  ${n.kind} ${name}${extra} --> ${children.get(name)!.join(', ') || 'none'}`);
        }
        return lines.join('\n');
      })
      .join('\n');
  return { nodes, children, stores, globalTables, repartitionTopics, subtopologies, subtopologyOf, describe };
}
