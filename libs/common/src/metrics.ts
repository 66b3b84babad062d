/**
 * Prometheus metrics via prom-client: one registry per process with Node's default metrics and
 * per-RPC counters and latency histograms, served on GET /metrics.
 */

import { createServer, type Server } from 'node:http';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { StoreObserver } from './store/instrumented-store.js';

export class MetricsRegistry {
  readonly registry = new Registry();
  readonly rpcHandled: Counter<'service' | 'method' | 'code'>;
  readonly rpcSeconds: Histogram<'service' | 'method'>;

  constructor(labels: Record<string, string> = {}) {
    this.registry.setDefaultLabels(labels);
    collectDefaultMetrics({ register: this.registry });
    this.rpcHandled = new Counter({ name: 'skein_grpc_server_handled_total', help: 'RPCs completed, by status code', labelNames: ['service', 'method', 'code'], registers: [this.registry] });
    this.rpcSeconds = new Histogram({
      name: 'skein_grpc_server_handling_seconds', help: 'RPC handling time',
      labelNames: ['service', 'method'], buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers: [this.registry],
    });
  }

  private storeObserver: StoreObserver | undefined;

  /**
   * The observer for `instrumentStore`: metadata store request latency by operation and outcome
   * (`skein_store_request_duration_seconds{op, result}`); one histogram per process, however many
   * stores it wraps.
   */
  storeRequests(): StoreObserver {
    if (!this.storeObserver) {
      const seconds = new Histogram({
        name: 'skein_store_request_duration_seconds', help: 'Metadata store (etcd or embedded) request latency, by operation and result (ok, error)',
        labelNames: ['op', 'result'], buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
        registers: [this.registry],
      });
      this.storeObserver = (op, s, ok) => seconds.observe({ op, result: ok ? 'ok' : 'error' }, s);
    }
    return this.storeObserver;
  }
}

export async function startMetricsServer(options: { host: string; port: number; metrics: MetricsRegistry }): Promise<{ port: number; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    if (req.method === 'GET' && req.url?.split('?')[0] === '/metrics') {
      options.metrics.registry.metrics().then((text) => {
        res.writeHead(200, { 'content-type': options.metrics.registry.contentType });
        res.end(text);
      }, (err: Error) => {
        res.writeHead(500);
        res.end(err.message);
      });
      return;
    }
    res.writeHead(404);
    res.end('not found: try /metrics\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : options.port,
    close: () => new Promise((r) => server.close(() => r())),
  };
}
