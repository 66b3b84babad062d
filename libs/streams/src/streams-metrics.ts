/**
 * Per-task metrics of one streams instance, in a prom-client registry of its own (an application
 * embedding the library keeps its own registry and default metrics; nothing is registered
 * globally). Every series carries `application_id` and `instance_id`.
 *
 *   skein_streams_task_records_processed_total{task}        counter: rate() gives records/s
 *   skein_streams_task_punctuations_total{task, type}        counter: stream-time / wall-clock
 *   skein_streams_task_events_total{task, event}             counter: dropped-late, skipped-null, ...
 *   skein_streams_task_consumer_lag{task, topic, partition}  gauge: high watermark - next offset,
 *                                                            as of the partition's last batch
 *   skein_streams_task_restore_offsets_restored{task, store} gauge: changelog offsets replayed
 *   skein_streams_task_restore_offsets_total{task, store}    gauge: offsets the restore had to replay
 *   skein_streams_task_restore_progress_ratio{task, store}   gauge: restored / total (1 when nothing to do)
 *   skein_streams_commit_latency_seconds                     histogram: one per instance, since one
 *                                                            commit (one transaction) covers all tasks
 *
 * Counters are read from the tasks' own counts at scrape time: what a task counted since the last
 * scrape is added, so processing pays nothing for them. A revoked task's last counts are added
 * when it closes (retire); its gauges disappear with it. Restore progress is in changelog offsets,
 * not records: compaction gaps and transaction markers make the two differ.
 */
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { TaskMetrics } from './task.js';

/** What the metrics read of a task, at scrape time. */
export interface TaskSnapshot {
  id: string;
  metrics: TaskMetrics | undefined;
  /** Per store: changelog offsets replayed and to replay (this incarnation of the task). */
  restore: Readonly<Record<string, { restored: number; total: number }>>;
}

interface Reported {
  metrics: TaskMetrics;
  processed: number;
  punctuations: Record<string, number>;
  events: Record<string, number>;
}

export class StreamsMetrics {
  readonly registry = new Registry();
  private readonly processed: Counter<'task'>;
  private readonly punctuations: Counter<'task' | 'type'>;
  private readonly events: Counter<'task' | 'event'>;
  readonly commitSeconds: Histogram<never>;
  /** Last lag per task and input partition (`task`, `topic`, `partition`). */
  private readonly lag = new Map<string, { task: string; topic: string; partition: number; lag: number }>();
  private readonly reported = new Map<string, Reported>();

  constructor(
    labels: { application_id: string; instance_id: string },
    private readonly tasks: () => Iterable<TaskSnapshot>,
  ) {
    this.registry.setDefaultLabels(labels);
    const registers = [this.registry];
    const sync = () => this.sync();
    this.processed = new Counter({
      name: 'skein_streams_task_records_processed_total',
      help: 'Records processed by the task',
      labelNames: ['task'],
      registers,
      collect: sync,
    });
    this.punctuations = new Counter({
      name: 'skein_streams_task_punctuations_total',
      help: 'Punctuators fired by the task, by type (stream-time, wall-clock)',
      labelNames: ['task', 'type'],
      registers,
      collect: sync,
    });
    this.events = new Counter({
      name: 'skein_streams_task_events_total',
      help: 'Events counted by the task processors (dropped-late, skipped-null, ...)',
      labelNames: ['task', 'event'],
      registers,
      collect: sync,
    });
    const lag = this.lag;
    const live = () => new Set([...tasks()].map((t) => t.id));
    new Gauge({
      name: 'skein_streams_task_consumer_lag',
      help: 'Records between the input partition high watermark and the task position, as of its last batch',
      labelNames: ['task', 'topic', 'partition'],
      registers,
      collect() {
        this.reset();
        const ids = live();
        for (const l of lag.values()) if (ids.has(l.task)) this.set({ task: l.task, topic: l.topic, partition: String(l.partition) }, l.lag);
      },
    });
    const restoreGauge = (name: string, help: string, value: (r: { restored: number; total: number }) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['task', 'store'],
        registers,
        collect: function (this: Gauge<'task' | 'store'>) {
          this.reset();
          for (const t of tasks()) for (const [store, r] of Object.entries(t.restore)) this.set({ task: t.id, store }, value(r));
        },
      });
    restoreGauge('skein_streams_task_restore_offsets_restored', 'Changelog offsets the task restore has replayed', (r) => r.restored);
    restoreGauge('skein_streams_task_restore_offsets_total', 'Changelog offsets the task restore has to replay', (r) => r.total);
    restoreGauge('skein_streams_task_restore_progress_ratio', 'Restore progress: offsets replayed / offsets to replay', (r) =>
      r.total === 0 ? 1 : r.restored / r.total,
    );
    this.commitSeconds = new Histogram({
      name: 'skein_streams_commit_latency_seconds',
      help: 'Time to commit (outputs acknowledged, offsets or transaction committed, stores flushed), all tasks of the instance',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
  }

  /** The lag of an input partition of a task, from a batch's high watermark and the offset after it. */
  recordLag(task: string, topic: string, partition: number, highWatermark: bigint, nextOffset: bigint): void {
    const lag = highWatermark > nextOffset ? Number(highWatermark - nextOffset) : 0;
    this.lag.set(`${task}|${topic}|${partition}`, { task, topic, partition, lag });
  }

  /** A task closes: its last counts are added, and its lag forgotten. */
  retire(taskId: string, metrics: TaskMetrics | undefined): void {
    if (metrics) this.report(taskId, metrics);
    this.reported.delete(taskId);
    for (const [k, l] of this.lag) if (l.task === taskId) this.lag.delete(k);
  }

  private sync(): void {
    for (const t of this.tasks()) if (t.metrics) this.report(t.id, t.metrics);
  }

  /** Adds what the task counted since the last report (a new incarnation of the task starts from zero). */
  private report(task: string, m: TaskMetrics): void {
    let r = this.reported.get(task);
    if (!r || r.metrics !== m) this.reported.set(task, (r = { metrics: m, processed: 0, punctuations: {}, events: {} }));
    if (m.processed > r.processed) this.processed.inc({ task }, m.processed - r.processed);
    r.processed = m.processed;
    for (const [type, n] of Object.entries(m.punctuations)) {
      const d = n - (r.punctuations[type] ?? 0);
      if (d > 0) this.punctuations.inc({ task, type }, d);
      r.punctuations[type] = n;
    }
    for (const [event, n] of Object.entries(m.events)) {
      const d = n - (r.events[event] ?? 0);
      if (d > 0) this.events.inc({ task, event }, d);
      r.events[event] = n;
    }
  }

  /** Prometheus text exposition. */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}

/**
 * Serves GET /metrics on 127.0.0.1 (port 0: any free port). Bounded: a few connections at a time,
 * short timeouts, no request body read; everything else is 404/405.
 */
export async function serveMetrics(metrics: StreamsMetrics, port: number): Promise<{ port: number; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    if (req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404).end('not found: try /metrics\n');
      return;
    }
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' }).end();
      return;
    }
    metrics.text().then(
      (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
      (err: Error) => res.writeHead(500).end(`${err.message}\n`),
    );
  });
  server.maxConnections = 16;
  server.requestTimeout = 5_000;
  server.headersTimeout = 5_000;
  server.keepAliveTimeout = 1_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
