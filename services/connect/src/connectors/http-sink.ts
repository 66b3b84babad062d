/**
 * HTTP sink: records of the sink's topics POSTed to `http.url` in batches, the body a JSON array of
 * the records' values (after the value converter and transforms; a Buffer value goes as a UTF-8
 * string). A response other than 2xx fails the batch: the runtime retries it with backoff
 * (errors.retry.timeout.ms) and then, with errors.tolerance=all, sends the records one by one so
 * that only those the endpoint refuses alone go to the dead-letter topic. At least once: a batch
 * may be POSTed again after a crash or a retry, so the endpoint should be idempotent (each element
 * carries `topic`, `partition` and `offset` with `http.envelope=true` to let it deduplicate).
 */

import type { ConnectorPlugin, SinkRecord, SinkTask } from '../sdk/types.js';
import { splitList } from '../domain/config-def.js';

function jsonValue(v: unknown): unknown {
  return Buffer.isBuffer(v) ? v.toString('utf8') : v;
}

class HttpSinkTask implements SinkTask {
  private url = '';
  private method = 'POST';
  private batchSize = 500;
  private envelope = false;
  private timeoutMs = 30_000;
  private headers: Record<string, string> = {};

  async start(config: Readonly<Record<string, string>>): Promise<void> {
    this.url = config['http.url']!;
    this.method = config['http.method'] ?? 'POST';
    this.batchSize = Number(config['batch.max.size'] ?? '500');
    this.envelope = config['http.envelope'] === 'true';
    this.timeoutMs = Number(config['http.timeout.ms'] ?? '30000');
    for (const h of splitList(config['http.headers'] ?? '')) {
      const i = h.indexOf(':');
      if (i > 0) this.headers[h.slice(0, i).trim()] = h.slice(i + 1).trim();
    }
  }

  async put(records: SinkRecord[]): Promise<void> {
    for (let i = 0; i < records.length; i += this.batchSize) {
      const chunk = records.slice(i, i + this.batchSize);
      const body = chunk.map((r) =>
        this.envelope
          ? { topic: r.topic, partition: r.partition, offset: r.offset.toString(), key: jsonValue(r.key), value: jsonValue(r.value) }
          : jsonValue(r.value),
      );
      const res = await fetch(this.url, {
        method: this.method,
        headers: { 'content-type': 'application/json', ...this.headers },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      if (!res.ok) {
        const err = new Error(`${this.method} ${this.url} answered ${res.status} ${(await res.text().catch(() => '')).slice(0, 200)}`) as Error & {
          retriable: boolean;
        };
        // A 4xx other than 408/429 will not change on a retry: straight to the tolerance.
        err.retriable = res.status >= 500 || res.status === 408 || res.status === 429;
        throw err;
      }
      await res.arrayBuffer().catch(() => {});
    }
  }

  async stop(): Promise<void> {}
}

export const httpSink: ConnectorPlugin = {
  connectorClass: 'HttpSink',
  type: 'sink',
  version: '1.0.0',
  description: 'Records POSTed to an HTTP endpoint in batches (JSON arrays), with retries and a dead-letter topic',
  config: [
    {
      name: 'http.url',
      type: 'string',
      doc: 'Endpoint URL (http or https)',
      validate: (v) => (/^https?:\/\//.test(v) ? undefined : 'http.url must start with http:// or https://'),
    },
    { name: 'http.method', type: 'string', default: 'POST', choices: ['POST', 'PUT'], doc: 'Request method' },
    { name: 'http.headers', type: 'list', default: '', doc: 'Extra headers, name:value,name:value (e.g. authorization:Bearer ...)' },
    { name: 'http.envelope', type: 'boolean', default: 'false', doc: 'Send {topic, partition, offset, key, value} per record instead of the value alone' },
    { name: 'http.timeout.ms', type: 'int', default: '30000', min: 1, doc: 'Per-request timeout' },
    { name: 'batch.max.size', type: 'int', default: '500', min: 1, max: 100_000, doc: 'Most records per request' },
  ],
  taskConfigs: (config, maxTasks) => Array.from({ length: maxTasks }, () => ({ ...config })),
  createTask: () => new HttpSinkTask(),
};
