/**
 * The broker's operator metrics (prom-client), created once per process on the service shell's
 * registry. Two kinds:
 * - counters bumped from events the data path and the replica manager report (bytes and records
 *   in and out per topic, errors by reason, ISR shrinks and expands, corrupt batches);
 * - gauges computed at scrape time from the replica manager's partitions (`collect`), so they are
 *   never stale and cost nothing between scrapes: under-replicated, under-min-ISR and offline
 *   partitions, partitions led and hosted, replica lag per follower, log size per topic.
 *
 * Cardinality: labels are a topic this broker hosts (never a name taken from a refused request), a
 * reason from the error table, or a follower broker id; nothing is labelled per partition.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Partition, ReplicaEvent } from '../replica-manager.js';

export interface BrokerMetricsSource {
  /** Every partition this broker hosts, read at each scrape. */
  listPartitions(): Partition[];
  nowMs(): number;
}

export class BrokerMetrics {
  readonly bytesIn: Counter<'topic'>;
  readonly recordsIn: Counter<'topic'>;
  readonly bytesOut: Counter<'topic'>;
  readonly recordsOut: Counter<'topic'>;
  readonly produceErrors: Counter<'reason'>;
  readonly fetchErrors: Counter<'reason'>;
  readonly isrShrinks: Counter;
  readonly isrExpands: Counter;
  readonly corruptBatches: Counter;
  /** Responses and stream messages that told a caller to wait (over its byte-rate quota), by quota. */
  readonly quotaThrottled: Counter<'quota'>;
  /** Total throttle time handed out, by quota. */
  readonly quotaThrottleSeconds: Counter<'quota'>;
  private source: BrokerMetricsSource | undefined;

  constructor(registry: Registry) {
    const registers = [registry];
    this.bytesIn = new Counter({ name: 'skein_broker_bytes_in_total', help: 'Bytes of record batches appended by produce requests (duplicates not counted), per topic', labelNames: ['topic'], registers });
    this.recordsIn = new Counter({ name: 'skein_broker_records_in_total', help: 'Records appended by produce requests (duplicates not counted), per topic', labelNames: ['topic'], registers });
    this.bytesOut = new Counter({ name: 'skein_broker_bytes_out_total', help: 'Bytes of record batches sent to consumers by Fetch and Subscribe, per topic', labelNames: ['topic'], registers });
    this.recordsOut = new Counter({ name: 'skein_broker_records_out_total', help: 'Offsets covered by the batches sent to consumers by Fetch and Subscribe (records, counting compacted-away gaps), per topic', labelNames: ['topic'], registers });
    this.produceErrors = new Counter({ name: 'skein_broker_produce_errors_total', help: 'Partition entries of produce requests answered with an error, by reason', labelNames: ['reason'], registers });
    this.fetchErrors = new Counter({ name: 'skein_broker_fetch_errors_total', help: 'Partition entries of Fetch requests and Subscribe streams answered with an error, by reason', labelNames: ['reason'], registers });
    this.isrShrinks = new Counter({ name: 'skein_broker_isr_shrinks_total', help: 'ISR changes that removed replicas, seen by the leader at its leader epoch', registers });
    this.isrExpands = new Counter({ name: 'skein_broker_isr_expands_total', help: 'ISR changes that added replicas, seen by the leader at its leader epoch', registers });
    this.quotaThrottled = new Counter({ name: 'skein_broker_quota_throttled_total', help: 'Produce/Fetch answers and stream messages after which the caller was throttled for being over its byte-rate quota, by quota (producer_byte_rate, consumer_byte_rate)', labelNames: ['quota'], registers });
    this.quotaThrottleSeconds = new Counter({ name: 'skein_broker_quota_throttle_seconds_total', help: 'Throttle time handed to callers over their byte-rate quota (throttle_time_ms, stream pauses), by quota', labelNames: ['quota'], registers });
    this.corruptBatches = new Counter({ name: 'skein_broker_corrupt_batches_total', help: 'Stored batches found unreadable (CRC or framing) by a read (the broker log names the partition)', registers });

    const self = this;
    const partitions = () => self.source?.listPartitions() ?? [];
    new Gauge({
      name: 'skein_broker_partitions', help: 'Partitions this broker hosts (leader or follower)', registers,
      collect() { this.set(partitions().length); },
    });
    new Gauge({
      name: 'skein_broker_leader_partitions', help: 'Partitions this broker leads', registers,
      collect() { this.set(partitions().filter((p) => p.isLeader).length); },
    });
    new Gauge({
      name: 'skein_broker_under_replicated_partitions', help: 'Partitions this broker leads whose ISR is smaller than their replica set', registers,
      collect() { this.set(partitions().filter((p) => p.isLeader && p.isr.length < p.replicas.length).length); },
    });
    new Gauge({
      name: 'skein_broker_under_min_isr_partitions', help: 'Partitions this broker leads whose ISR is below min.insync.replicas (acks=all writes refused)', registers,
      collect() { this.set(partitions().filter((p) => p.isLeader && p.isr.length < p.minInsyncReplicas).length); },
    });
    new Gauge({
      name: 'skein_broker_offline_log_partitions', help: 'Partitions whose log on this broker is offline after a storage error', registers,
      collect() { this.set(partitions().filter((p) => p.log.isOffline).length); },
    });
    new Gauge({
      name: 'skein_broker_log_size_bytes', help: 'Bytes of log segments this broker holds, per topic (leader and follower replicas)', labelNames: ['topic'], registers,
      collect() {
        this.reset();
        for (const [topic, bytes] of sumByTopic(partitions(), (p) => p.log.sizeBytes)) this.set({ topic }, bytes);
      },
    });
    new Gauge({
      name: 'skein_broker_log_dir_size_bytes', help: 'Bytes of log segments this broker holds, all topics', registers,
      collect() { this.set(partitions().reduce((a, p) => a + p.log.sizeBytes, 0)); },
    });
    new Gauge({
      name: 'skein_broker_high_watermark_sum', help: 'Sum of the high watermarks of the partitions this broker leads, per topic (minus a group\'s committed-offset sum: its lag)', labelNames: ['topic'], registers,
      collect() {
        this.reset();
        for (const [topic, hw] of sumByTopic(partitions().filter((p) => p.isLeader && !p.log.isOffline), (p) => Number(p.log.highWatermark))) this.set({ topic }, hw);
      },
    });
    const lag = (fn: (p: Partition, follower: number) => number | undefined) => {
      const max = new Map<number, number>();
      for (const p of partitions()) {
        if (!p.isLeader) continue;
        for (const f of p.replicas) {
          if (f === p.leaderId) continue;
          const v = fn(p, f);
          if (v !== undefined) max.set(f, Math.max(max.get(f) ?? 0, v));
        }
      }
      return max;
    };
    new Gauge({
      name: 'skein_broker_replica_lag_records', help: 'Per follower, the largest number of offsets it is behind this leader\'s log end over the partitions this broker leads', labelNames: ['follower'], registers,
      collect() {
        this.reset();
        // A follower not heard from since this leadership began is behind by everything written since.
        for (const [f, v] of lag((p, id) => Number(p.log.logEndOffset - (p.followers.get(id)?.logEndOffset ?? p.leaderEpochStartOffset)))) this.set({ follower: String(f) }, Math.max(0, v));
      },
    });
    new Gauge({
      name: 'skein_broker_replica_lag_seconds', help: 'Per follower, the longest time since it last caught up with this leader\'s log end, over the partitions this broker leads', labelNames: ['follower'], registers,
      collect() {
        this.reset();
        const now = self.source?.nowMs() ?? 0;
        for (const [f, v] of lag((p, id) => (now - (p.followers.get(id)?.lastCaughtUpMs ?? p.leaderSinceMs)) / 1000)) this.set({ follower: String(f) }, Math.max(0, v));
      },
    });
  }

  /** Where the scrape-time gauges read partitions from (the broker's replica manager). */
  watch(source: BrokerMetricsSource): void {
    this.source = source;
  }

  /** Counts what the replica manager reports. */
  record(e: ReplicaEvent): void {
    switch (e.type) {
      case 'appended':
        this.bytesIn.inc({ topic: e.topic }, e.bytes);
        this.recordsIn.inc({ topic: e.topic }, e.records);
        break;
      case 'isr-changed': {
        const to = new Set(e.to);
        const from = new Set(e.from);
        if (e.from.some((r) => !to.has(r))) this.isrShrinks.inc();
        if (e.to.some((r) => !from.has(r))) this.isrExpands.inc();
        break;
      }
      case 'log':
        if (e.event.type === 'corrupt-batch') this.corruptBatches.inc();
        break;
    }
  }

  /** Batches sent to a consumer (Fetch answer or Subscribe message). */
  sent(topic: string, batches: ReadonlyArray<{ size: number; baseOffset: bigint; lastOffset: bigint }>): void {
    let bytes = 0;
    let records = 0n;
    for (const b of batches) {
      bytes += b.size;
      records += b.lastOffset - b.baseOffset + 1n;
    }
    if (bytes === 0) return;
    this.bytesOut.inc({ topic }, bytes);
    this.recordsOut.inc({ topic }, Number(records));
  }
}

function sumByTopic(partitions: readonly Partition[], value: (p: Partition) => number): Map<string, number> {
  const out = new Map<string, number>();
  for (const p of partitions) out.set(p.topic, (out.get(p.topic) ?? 0) + value(p));
  return out;
}
