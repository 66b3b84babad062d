// PostgreSQL connectors (issue 19) with a real PostgreSQL server started by the harness: a table's
// inserts, updates and deletes flow through the CDC source (logical replication, pgoutput) into a
// topic in commit order and through the sink into a second table, which ends equal to the first,
// while the worker running the source is SIGKILLed mid-stream. The topic itself, read with
// read_committed, holds every change exactly once (exactly-once source: records and offsets in one
// transaction) - asserted on the topic, since the upserting sink would hide duplicates. A poison
// record goes to the dead-letter topic and the sink keeps running. Deleting the source connector
// drops its replication slot. Incrementing mode copies a table by its id column.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Acks, type Producer } from '@skein/client';
import { ConnectorState } from '@skein/proto/skein/connect/v1/connect.js';
import { skipUnless } from './harness/requirements.js';
import { startConnectCluster, type ConnectCluster } from './harness/connect-cluster.js';
import { startPostgres, type PostgresServer } from './harness/postgres.js';
import { waitFor } from './harness/wait.js';

const skip = skipUnless(import.meta.url, 'postgres');
let pgServer: PostgresServer;
let cluster: ConnectCluster;
let db: pg.Client;
/** A worker not killed by a test. */
let liveWorker = 'w1';

beforeAll(async () => {
  if (skip) return;
  pgServer = await startPostgres();
  db = new pg.Client({ connectionString: pgServer.url });
  await db.connect();
  await db.query('CREATE TABLE src (id int PRIMARY KEY, name text NOT NULL, qty int NOT NULL)');
  await db.query('CREATE TABLE dst (id int PRIMARY KEY, name text NOT NULL, qty int NOT NULL)');
  await db.query('CREATE TABLE events (id bigserial PRIMARY KEY, body text NOT NULL)');
  await db.query('CREATE TABLE events_copy (id bigint PRIMARY KEY, body text NOT NULL)');
  cluster = await startConnectCluster({ workers: 2 });
}, 180_000);

afterAll(async () => {
  await db?.end().catch(() => {});
  await cluster?.stop();
  await pgServer?.stop();
});

type Row = { id: number; name: string; qty: number };
const rows = async (table: string): Promise<Row[]> => (await db.query<Row>(`SELECT id, name, qty FROM ${table} ORDER BY id`)).rows;

/** Every record of a topic, read with read_committed from the start to the last stable offset. */
async function readTopic(topic: string): Promise<Array<{ key: Buffer; value: Buffer | null; headers: Array<{ key: string; value: Buffer }> }>> {
  const out: Array<{ key: Buffer; value: Buffer | null; headers: Array<{ key: string; value: Buffer }> }> = [];
  let offset = 0n;
  for (;;) {
    const res = await cluster.client.fetch(topic, 0, offset, { isolationLevel: 'read_committed', maxWaitMs: 0 });
    out.push(...res.records);
    const next = res.nextOffset ?? (res.records.at(-1) ? res.records.at(-1)!.offset + 1n : offset);
    if (next >= res.lastStableOffset || next === offset) return out;
    offset = next;
  }
}

describe.skipIf(skip)('connect: PostgreSQL -> topic -> PostgreSQL', () => {
  it('copies inserts, updates and deletes in order across a SIGKILL, exactly once on the topic, with a poison record in the DLQ', async () => {
    const topic = 'pg.public.src';
    await cluster.client.createTopic(topic, { partitions: 1, replicationFactor: 1 });
    const connect = cluster.connect('w1');
    await connect.createConnector({
      name: 'pg-src',
      config: {
        'connector.class': 'PostgresSource',
        'connection.url': pgServer.url,
        'table.include.list': 'public.src',
        'topic.prefix': 'pg',
        'key.converter': 'json',
        'value.converter': 'json',
        'offset.flush.interval.ms': '100',
        'heartbeat.interval.ms': '500',
      },
    });
    await connect.createConnector({
      name: 'pg-dst',
      config: {
        'connector.class': 'PostgresSink',
        'connection.url': pgServer.url,
        topics: topic,
        'table.name.format': 'dst',
        'pk.fields': 'id',
        'key.converter': 'json',
        'value.converter': 'json',
        'errors.tolerance': 'all',
        'errors.deadletterqueue.topic.name': 'pg-dlq',
        'offset.flush.interval.ms': '100',
      },
    });
    await waitFor(async () => (await connect.getConnectorStatus({ name: 'pg-src' })).state === ConnectorState.CONNECTOR_STATE_RUNNING, {
      timeoutMs: 30_000,
      message: 'source running',
    });

    // The expected change stream, one entry per row change in commit order.
    const expected: Array<{ op: string; id: number }> = [];
    const work = async (from: number, to: number) => {
      for (let i = from; i < to; i++) {
        await db.query('BEGIN');
        await db.query('INSERT INTO src VALUES ($1, $2, $3)', [i, `row-${i}`, i]);
        expected.push({ op: 'c', id: i });
        if (i % 3 === 0) {
          await db.query('UPDATE src SET qty = qty + 100, name = $2 WHERE id = $1', [i, `row-${i}-updated`]);
          expected.push({ op: 'u', id: i });
        }
        if (i % 5 === 0 && i > from) {
          await db.query('DELETE FROM src WHERE id = $1', [i - 1]);
          expected.push({ op: 'd', id: i - 1 });
        }
        await db.query('COMMIT');
      }
    };
    await work(0, 150);
    await waitFor(async () => (await readTopic(topic)).length >= 60, { timeoutMs: 60_000, message: 'changes flowing into the topic' });
    // Kill the worker running the source mid-stream, and keep writing.
    const victim = (await connect.getConnectorStatus({ name: 'pg-src' })).tasks[0]!.workerId;
    const survivor = victim === 'w1' ? 'w2' : 'w1';
    liveWorker = survivor;
    cluster.workers.get(victim)!.kill();
    await cluster.workers.get(victim)!.exited();
    await work(150, 300);

    // A record the sink cannot take (not JSON) goes to the dead-letter topic; the sink carries on.
    const producer = cluster.client.producer({ acks: Acks.ACKS_ALL }) as Producer;
    await producer.send(topic, [{ key: '{"id":100000}', value: 'this is not json {' }]);
    await producer.close();
    await work(300, 320);

    await waitFor(async () => JSON.stringify(await rows('dst')) === JSON.stringify(await rows('src')), {
      timeoutMs: 120_000,
      intervalMs: 250,
      message: 'dst equal to src',
    }).catch(async (err: Error) => {
      throw new Error(
        `${err.message}: src ${(await rows('src')).length} rows, dst ${(await rows('dst')).length}\n--- ${survivor} ---\n${cluster.workers.get(survivor)!.logs(40)}`,
      );
    });
    expect((await rows('src')).length).toBeGreaterThan(200);

    // The topic: every change exactly once, in commit order.
    const events = (await readTopic(topic))
      .filter((r) => r.value?.toString().startsWith('{'))
      .map((r) => JSON.parse(r.value!.toString()) as { op: string; before: Row | null; after: Row | null; source: { lsn: string; row: number } });
    const seen = events.map((e) => ({ op: e.op, id: (e.after ?? e.before)!.id }));
    expect(seen).toEqual(expected);
    expect(new Set(events.map((e) => `${e.source.lsn}/${e.source.row}`)).size).toBe(events.length);

    // The poison record, with where it came from and why.
    const dlq = await readTopic('pg-dlq');
    expect(dlq).toHaveLength(1);
    expect(dlq[0]!.value!.toString()).toBe('this is not json {');
    const h = Object.fromEntries(dlq[0]!.headers.map((x) => [x.key, x.value.toString()]));
    expect(h['__connect.errors.topic']).toBe(topic);
    expect(h['__connect.errors.stage']).toBe('VALUE_CONVERTER');
    const sinkStatus = await cluster.connect(survivor).getConnectorStatus({ name: 'pg-dst' });
    expect(sinkStatus.tasks[0]!.state).toBe(ConnectorState.CONNECTOR_STATE_RUNNING);

    // The slot's confirmed position has moved with the commits; deleting the connector drops the slot.
    const slot = await db.query<{ confirmed_flush_lsn: string }>("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'skein_pg_src'");
    expect(slot.rowCount).toBe(1);
    await cluster.connect(survivor).deleteConnector({ name: 'pg-src' });
    expect((await db.query("SELECT 1 FROM pg_replication_slots WHERE slot_name = 'skein_pg_src'")).rowCount).toBe(0);
    expect((await db.query("SELECT 1 FROM pg_publication WHERE pubname = 'skein_pg_src'")).rowCount).toBe(0);
  }, 400_000);

  it('incrementing mode copies a table by its increasing id', async () => {
    await db.query("INSERT INTO events (body) SELECT 'event ' || g FROM generate_series(1, 500) g");
    const connect = cluster.connect(liveWorker);
    await connect.createConnector({
      name: 'pg-inc',
      config: {
        'connector.class': 'PostgresSource',
        mode: 'incrementing',
        'incrementing.column.name': 'id',
        'connection.url': pgServer.url,
        'table.include.list': 'events',
        'topic.prefix': 'inc',
        'key.converter': 'json',
        'poll.interval.ms': '100',
      },
    });
    await connect.createConnector({
      name: 'pg-inc-sink',
      config: {
        'connector.class': 'PostgresSink',
        'connection.url': pgServer.url,
        topics: 'inc.public.events',
        'table.name.format': 'events_copy',
        'pk.fields': 'id',
        'key.converter': 'json',
      },
    });
    await db.query("INSERT INTO events (body) SELECT 'late ' || g FROM generate_series(1, 100) g");
    await waitFor(async () => Number((await db.query('SELECT count(*) AS n FROM events_copy')).rows[0].n) === 600, {
      timeoutMs: 60_000,
      message: '600 events copied',
    }).catch(async (err: Error) => {
      const status = await Promise.all(['pg-inc', 'pg-inc-sink'].map((name) => connect.getConnectorStatus({ name })));
      throw new Error(
        `${err.message}: ${JSON.stringify(
          status.map((s) => s.tasks),
          (_k, v) => (typeof v === 'bigint' ? String(v) : v),
        )}`,
      );
    });
    const diff = await db.query('SELECT * FROM events e FULL JOIN events_copy c USING (id) WHERE e.body IS DISTINCT FROM c.body');
    expect(diff.rowCount).toBe(0);
  }, 120_000);
});
