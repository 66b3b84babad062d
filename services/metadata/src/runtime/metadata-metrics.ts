/**
 * The metadata service's operator metrics (prom-client), created once per process on the service
 * shell's registry. Counters come from the controller's events; gauges are computed at scrape
 * time from this instance's metadata view (every instance follows the same store, so every
 * instance reports the same cluster-wide values: aggregate them with max(), not sum()) and from
 * whether this instance is the controller (sum() over instances is 1 in a healthy cluster).
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { MetadataImage } from '../domain/image.js';
import type { PartitionRecord } from '../domain/partition-state.js';
import type { ControllerEvent } from './controller.js';

export interface MetadataMetricsSource {
  isController(): boolean;
  image(): MetadataImage;
}

export class MetadataMetrics {
  readonly controllerElections: Counter;
  readonly leaderElections: Counter<'kind'>;
  private source: MetadataMetricsSource | undefined;

  constructor(registry: Registry) {
    const registers = [registry];
    const self = this;
    this.controllerElections = new Counter({ name: 'skein_metadata_controller_elections_total', help: 'Times this instance won the controller election', registers });
    this.leaderElections = new Counter({ name: 'skein_metadata_partition_leader_elections_total', help: 'Partition leader elections committed by this instance as controller, by kind (failover, unclean, preferred, leader-replica-offline)', labelNames: ['kind'], registers });
    // Every kind starts at 0, so rate() and increase() see the first election.
    for (const kind of ['failover', 'unclean', 'preferred', 'leader-replica-offline'] as const) this.leaderElections.inc({ kind }, 0);
    const image = () => self.source?.image();
    const count = (pred: (r: PartitionRecord) => boolean) => {
      let n = 0;
      for (const map of image()?.partitions.values() ?? []) for (const v of map.values()) if (pred(v.record)) n++;
      return n;
    };
    new Gauge({
      name: 'skein_metadata_controller_active', help: '1 if this instance is the controller, else 0 (sum over instances: 1 when healthy, 0 = no controller)', registers,
      collect() { this.set(self.source?.isController() ? 1 : 0); },
    });
    new Gauge({
      name: 'skein_metadata_brokers_live', help: 'Brokers registered with a live session', registers,
      collect() { this.set(image()?.liveBrokerIds().size ?? 0); },
    });
    new Gauge({
      name: 'skein_metadata_topics', help: 'Topics in the cluster', registers,
      collect() { this.set(image()?.topics.size ?? 0); },
    });
    new Gauge({
      name: 'skein_metadata_partitions', help: 'Partitions in the cluster (with a state)', registers,
      collect() { this.set(count(() => true)); },
    });
    new Gauge({
      name: 'skein_metadata_offline_partitions', help: 'Partitions without a leader (no live ISR member): unavailable for produce and fetch', registers,
      collect() { this.set(count((r) => r.leaderId < 0)); },
    });
    new Gauge({
      name: 'skein_metadata_under_replicated_partitions', help: 'Partitions whose ISR is smaller than their replica set, as the controller recorded it', registers,
      collect() { this.set(count((r) => r.isr.length < r.replicas.length)); },
    });
  }

  watch(source: MetadataMetricsSource): void {
    this.source = source;
  }

  record(e: ControllerEvent): void {
    if (e.type === 'became-controller') this.controllerElections.inc();
    else this.leaderElections.inc({ kind: e.kind });
  }
}
