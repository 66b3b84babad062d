/**
 * A stream task: one sub-topology's processors for one partition number, with its state stores.
 * Synchronous: process() takes one input record through the whole graph; what it writes (sink
 * outputs, store writes) is buffered until the runtime sends and commits it.
 *
 * Stream time (the largest record timestamp seen) is the task's clock for windows, grace and
 * suppression; it is saved with the stores' checkpoints so a restarted task does not reopen
 * windows it had closed.
 */
import type { ConsumedRecord } from '@skein/common/records/record-batch.js';
import { sinkProcessor } from './processors.js';
import { PunctuationQueue, type PunctuationType } from './punctuation.js';
import { CachedStore, type StoreEngine } from './state/store-engine.js';
import type { NodeDef, Processor, ProcessorContext, ReadonlyKeyValueStore, Rec, SubTopology, Topology } from './topology.js';

export interface OutputRecord {
  topic: string;
  key: Buffer | null;
  value: Buffer | null;
  timestamp: number;
  headers?: Rec['headers'];
  /** Set for changelog records: the task's partition. */
  partition?: number;
}

export interface TaskMetrics {
  processed: number;
  /** Events counted by processors: 'dropped-late', 'skipped-null', ... */
  events: Record<string, number>;
  /** Punctuators fired, by type. */
  punctuations: Record<PunctuationType, number>;
}

const STREAM_TIME = 'stream-time';
export const checkpointKey = (store: string) => `checkpoint:${store}`;

export class StreamTask {
  readonly stores = new Map<string, CachedStore>();
  private readonly processors = new Map<string, Processor>();
  private readonly afterRecord: Processor[] = [];
  private readonly beforeCommit: Processor[] = [];
  private readonly sourcesByTopic = new Map<string, Extract<NodeDef, { kind: 'source' }>>();
  private outbox: OutputRecord[] = [];
  private time: number;
  readonly metrics: TaskMetrics = { processed: 0, events: {}, punctuations: { 'stream-time': 0, 'wall-clock': 0 } };
  private readonly streamTimePunctuators = new PunctuationQueue('stream-time');
  private readonly wallClockPunctuators = new PunctuationQueue('wall-clock');

  constructor(
    readonly id: string,
    readonly subtopology: SubTopology,
    private readonly topology: Topology,
    readonly partition: number,
    readonly engine: StoreEngine,
    private readonly globals: ReadonlyMap<string, ReadonlyKeyValueStore>,
    private readonly changelogTopic: (store: string) => string,
    /** A topic's full name (repartition topics are prefixed with the application id). */
    resolveTopic: (topic: string, internal: boolean) => string = (t) => t,
    /** Wall-clock time, for wall-clock punctuation (the test driver injects a mock clock). */
    private readonly wallClock: () => number = Date.now,
  ) {
    this.time = Number(engine.meta(STREAM_TIME) ?? -1);
    for (const s of subtopology.stores) this.stores.set(s, new CachedStore(s, engine));
    for (const name of subtopology.nodes) {
      const n = topology.nodes.get(name)!;
      if (n.kind === 'source') for (const t of n.topics) this.sourcesByTopic.set(resolveTopic(t, n.repartition), n);
      else this.processors.set(name, n.kind === 'processor' ? n.make() : sinkProcessor(resolveTopic(n.topic, n.repartition), n.keySerde, n.valueSerde)());
    }
    for (const name of subtopology.nodes) {
      const n = topology.nodes.get(name)!;
      if (n.kind === 'source') continue;
      const p = this.processors.get(name)!;
      p.init?.(this.contextFor(name));
      if (p.afterRecord) this.afterRecord.push(p);
      if (p.beforeCommit) this.beforeCommit.push(p);
    }
  }

  private contextFor(node: string): ProcessorContext {
    const children = this.topology.children.get(node) ?? [];
    const task = this;
    return {
      taskId: this.id,
      partition: this.partition,
      streamTime: () => task.time,
      forward(rec) {
        for (const c of children) task.processors.get(c)!.process(rec);
      },
      forwardTo(child, rec) {
        if (!children.includes(child)) throw new Error(`${node} has no child ${child}`);
        task.processors.get(child)!.process(rec);
      },
      store(name) {
        const s = task.stores.get(name);
        if (!s) throw new Error(`store ${name} is not in task ${task.id}`);
        return s;
      },
      globalStore(name) {
        const s = task.globals.get(name);
        if (!s) throw new Error(`no global table store ${name}`);
        return s;
      },
      send(topic, key, value, timestamp, headers) {
        task.outbox.push({ topic, key, value, timestamp, headers });
      },
      count(metric, n = 1) {
        task.metrics.events[metric] = (task.metrics.events[metric] ?? 0) + n;
      },
      schedule(intervalMs, type, punctuator) {
        if (type === 'stream-time') return task.streamTimePunctuators.schedule(intervalMs, punctuator);
        if (type === 'wall-clock') return task.wallClockPunctuators.schedule(intervalMs, punctuator, task.wallClock());
        throw new TypeError(`punctuation type must be 'stream-time' or 'wall-clock', got ${String(type)}`);
      },
      currentSystemTimeMs: () => task.wallClock(),
    };
  }

  get streamTime(): number {
    return this.time;
  }

  /** Takes one input record (of one of this task's topics) through the graph. */
  process(topic: string, partition: number, r: ConsumedRecord): void {
    const source = this.sourcesByTopic.get(topic);
    if (!source) throw new Error(`task ${this.id} does not read ${topic}`);
    // A record without a key arrives with an empty key: it is the null key here (as in Kafka, aggregations skip it).
    const key = r.key.length === 0 ? null : source.keySerde.deserialize(r.key);
    const value = source.valueSerde.deserialize(r.value);
    const timestamp = source.timestampExtractor
      ? source.timestampExtractor({ key, value, timestampMs: Number(r.timestampMs), topic, partition })
      : Number(r.timestampMs);
    this.metrics.processed++;
    if (!Number.isFinite(timestamp) || timestamp < 0) {
      this.metrics.events['skipped-invalid-timestamp'] = (this.metrics.events['skipped-invalid-timestamp'] ?? 0) + 1;
      return;
    }
    if (timestamp > this.time) this.time = timestamp;
    const rec: Rec = { key, value, timestamp, headers: r.headers };
    for (const c of this.topology.children.get(source.name) ?? []) this.processors.get(c)!.process(rec);
    for (const p of this.afterRecord) p.afterRecord!();
    // Checked after each record (Kafka checks once per poll loop): fires as soon as stream time passes a boundary.
    this.metrics.punctuations['stream-time'] += this.streamTimePunctuators.mayPunctuate(this.time);
  }

  /** Fires the wall-clock punctuators due at `nowMs` (the runtime's timer, the test driver's mock clock); returns how many fired. */
  punctuateWallClock(nowMs: number = this.wallClock()): number {
    const n = this.wallClockPunctuators.mayPunctuate(nowMs);
    this.metrics.punctuations['wall-clock'] += n;
    return n;
  }

  /** When the next wall-clock punctuation is due (undefined: none scheduled). */
  nextWallClockPunctuation(): number | undefined {
    return this.wallClockPunctuators.nextDue();
  }

  /** Calls every processor's close() (once; the engine is the runtime's to close). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.processors.values()) p.close?.();
  }

  private closed = false;

  /** Sink outputs since the last call, then the stores' changelog records (latest per key). */
  drainOutputs(): OutputRecord[] {
    const out = this.outbox;
    this.outbox = [];
    for (const s of this.stores.values()) {
      if (!this.topology.stores.get(s.name)?.changelog) continue;
      for (const [key, value] of s.drainDirty())
        out.push({ topic: this.changelogTopic(s.name), key, value, timestamp: Math.max(0, this.time), partition: this.partition });
    }
    return out;
  }

  /** Retention purges and other end-of-interval work, before the last drainOutputs() of an interval. */
  prepareCommit(): void {
    for (const p of this.beforeCommit) p.beforeCommit!();
  }

  /**
   * Writes the interval's store writes to the engine with the new checkpoints (changelog offsets
   * after the interval's last records) and stream time, atomically. Call after the interval's
   * outputs are acknowledged (and its transaction committed).
   */
  flush(checkpoints: ReadonlyMap<string, bigint>): void {
    const writes = [...this.stores.values()].flatMap((s) => s.takeCache());
    const meta: Record<string, string> = { [STREAM_TIME]: String(this.time) };
    for (const [store, offset] of checkpoints) meta[checkpointKey(store)] = String(offset);
    this.engine.write(writes, meta);
  }

  /** Forgets the interval (an aborted transaction): caches, unsent outputs, and stream time back to the checkpoint's. */
  discard(): void {
    for (const s of this.stores.values()) s.discard();
    this.outbox = [];
    this.time = Number(this.engine.meta(STREAM_TIME) ?? -1);
  }

  checkpoint(store: string): bigint | undefined {
    const v = this.engine.meta(checkpointKey(store));
    return v === undefined ? undefined : BigInt(v);
  }
}
