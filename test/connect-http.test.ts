// HTTP sink (issue 19): records of a topic POSTed in batches to a local endpoint that first fails
// with 503 (retried with backoff) and always refuses one poison record with 400 (the batch is then
// sent record by record and only the poison record goes to the dead-letter topic). Also a
// transform chain on the way (MaskField, InsertField).
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Acks, type Producer } from '@skein/client';
import { startConnectCluster, type ConnectCluster } from './harness/connect-cluster.js';
import { waitFor } from './harness/wait.js';

let cluster: ConnectCluster;
let server: Server;
let url = '';
const received: Array<Record<string, unknown>> = [];
let failuresLeft = 2;

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const items = JSON.parse(body) as Array<Record<string, unknown>>;
      if (failuresLeft > 0) {
        failuresLeft--;
        res.writeHead(503).end('try later');
        return;
      }
      if (items.some((i) => i.poison === true)) {
        res.writeHead(400).end('no poison');
        return;
      }
      received.push(...items);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}/ingest`;
  cluster = await startConnectCluster({ workers: 1 });
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
  await new Promise((r) => server?.close(r));
});

describe('connect: HTTP sink', () => {
  it('POSTs batches with retries, masks and inserts fields, and sends a refused record to the dead-letter topic', async () => {
    await cluster.client.createTopic('http-in', { partitions: 1, replicationFactor: 1 });
    const producer = cluster.client.producer({ acks: Acks.ACKS_ALL }) as Producer;
    const values = Array.from({ length: 50 }, (_, i) => ({ n: i, card: `4111-${i}`, poison: i === 17 }));
    await producer.send(
      'http-in',
      values.map((v) => ({ key: String(v.n), value: JSON.stringify(v) })),
    );
    await producer.close();
    await cluster.connect('w1').createConnector({
      name: 'http-out',
      config: {
        'connector.class': 'HttpSink',
        'http.url': url,
        topics: 'http-in',
        'batch.max.size': '20',
        'errors.tolerance': 'all',
        'errors.retry.timeout.ms': '30000',
        'errors.retry.delay.max.ms': '200',
        'errors.deadletterqueue.topic.name': 'http-dlq',
        transforms: 'mask,src',
        'transforms.mask.type': 'MaskField',
        'transforms.mask.fields': 'card',
        'transforms.src.type': 'InsertField',
        'transforms.src.topic.field': 'from',
      },
    });
    await waitFor(() => received.length >= 49, { timeoutMs: 60_000, message: '49 records received' });
    expect(failuresLeft).toBe(0);
    const byN = new Map(received.map((r) => [r.n as number, r]));
    expect([...byN.keys()].sort((a, b) => a - b)).toEqual(values.filter((v) => !v.poison).map((v) => v.n));
    expect(byN.get(3)).toEqual({ n: 3, card: '', poison: false, from: 'http-in' });
    await waitFor(async () => (await cluster.client.fetch('http-dlq', 0, 0n)).records.length === 1, {
      timeoutMs: 30_000,
      message: 'the poison record in the dead-letter topic',
    });
    const [dead] = (await cluster.client.fetch('http-dlq', 0, 0n)).records;
    expect(JSON.parse(dead!.value!.toString()).n).toBe(17);
    expect(dead!.headers.find((h) => h.key === '__connect.errors.stage')!.value.toString()).toBe('TASK_PUT');
  }, 120_000);
});
