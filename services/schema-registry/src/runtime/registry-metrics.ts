/**
 * The registry's own metrics on the shell's registry (beside the shell's per-RPC and store-request
 * metrics): REST requests by route and status, and the id cache's hits and misses (read at scrape
 * time from Registry.stats, so the hot lookup path only bumps two numbers).
 */
import { Counter, Gauge, type Registry as PromRegistry } from 'prom-client';
import type { RegistryStats } from './registry.js';

export class RegistryMetrics {
  private readonly rest: Counter<'route' | 'status'>;

  constructor(registry: PromRegistry, stats: RegistryStats) {
    this.rest = new Counter({
      name: 'skein_schema_registry_rest_requests_total',
      help: 'Confluent REST API requests, by route and HTTP status',
      labelNames: ['route', 'status'],
      registers: [registry],
    });
    new Gauge({
      name: 'skein_schema_registry_schema_cache_hits',
      help: 'Schema lookups by id answered from this instance’s cache since start',
      registers: [registry],
      collect() {
        this.set(stats.cacheHits);
      },
    });
    new Gauge({
      name: 'skein_schema_registry_schema_cache_misses',
      help: 'Schema lookups by id that read the metadata store since start',
      registers: [registry],
      collect() {
        this.set(stats.cacheMisses);
      },
    });
  }

  restRequest(route: string, status: number): void {
    this.rest.inc({ route, status: String(status) });
  }
}
