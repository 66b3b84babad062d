/**
 * PostgreSQL source, two modes.
 *
 * `mode=cdc` (change data capture, Debezium's model): a logical replication slot with the built-in
 * `pgoutput` plugin and a publication over `table.include.list`, both created when missing. Every
 * row change becomes a record on `<topic.prefix>.<schema>.<table>`, key the primary key columns
 * (JSON), value `{ op: 'c'|'u'|'d', before, after, source: { lsn, txId, schema, table, tsMs } }`, in
 * commit order. A transaction is emitted whole once its COMMIT arrives (pgoutput protocol 1 sends
 * transactions at commit), each row with the offset `{ lsn: <commit lsn>, endLsn, row: <index>,
 * last }`.
 *
 * The slot's confirmed position is what PostgreSQL may forget: it moves only in `commit()`, i.e.
 * after the offsets of the rows before it are committed (in the same transaction as the records,
 * with exactly-once sources), to the end of the last transaction whose rows are all committed.
 * Status updates (keepalives) go out every `heartbeat.interval.ms` and whenever the server asks,
 * always with that committed position (the library's own automatic acknowledgement, which would
 * confirm what was merely received, is off). When idle, with everything emitted committed, the
 * position follows the server's WAL end from its keepalives, so a quiet database does not keep WAL
 * for a slot that has nothing to send. After a restart PostgreSQL re-sends from the confirmed
 * position; rows at or before the stored offset are skipped, so none is emitted twice. Deleting the
 * connector drops the slot (terminating its connection first) and the publication it created:
 * a forgotten slot keeps WAL until the database's disk fills.
 *
 * `mode=incrementing`: polls each table every `poll.interval.ms` for rows whose
 * `incrementing.column.name` is above the stored offset, in that order; emits inserts only (no
 * updates or deletes), value the row.
 */

import { LogicalReplicationService, PgoutputPlugin } from 'pg-logical-replication';
import pg from 'pg';
import type { Logger } from 'pino';
import { splitList } from '../domain/config-def.js';
import type { ConnectorPlugin, SourceOffset, SourcePartition, SourceRecord, SourceTask, SourceTaskContext } from '../sdk/types.js';
import { quoteIdent, quoteTable } from './postgres-sink.js';

/** "X/Y" (hex halves) as a 64-bit number. */
export function parseLsn(lsn: string): bigint {
  const [hi, lo] = lsn.split('/');
  return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`);
}

export function formatLsn(n: bigint): string {
  return `${(n >> 32n).toString(16).toUpperCase()}/${(n & 0xffffffffn).toString(16).toUpperCase()}`;
}

export interface CdcOffset {
  lsn: string;
  endLsn: string;
  row: number;
  last: boolean;
}

/** Whether row `row` of the transaction committed at `lsn` was already emitted, per the stored offset. Pure. */
export function alreadyEmitted(stored: CdcOffset | undefined, lsn: bigint, row: number): boolean {
  if (!stored) return false;
  const s = parseLsn(stored.lsn);
  if (lsn < s) return true;
  if (lsn > s) return false;
  return stored.last || row <= stored.row;
}

function defaultSlotName(connector: string): string {
  return `skein_${connector.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`.slice(0, 63);
}

interface Names {
  slot: string;
  publication: string;
}

function namesOf(config: Readonly<Record<string, string>>, connector: string): Names {
  const slot = config['slot.name'] || defaultSlotName(connector);
  return { slot, publication: config['publication.name'] || slot };
}

function tablesOf(config: Readonly<Record<string, string>>): Array<{ schema: string; table: string }> {
  return splitList(config['table.include.list'] ?? '').map((t) => {
    const [a, b] = t.split('.');
    return b === undefined ? { schema: 'public', table: a! } : { schema: a!, table: b };
  });
}

function jsonSafe(row: Record<string, unknown> | null | undefined): Record<string, unknown> | null {
  if (!row) return null;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) out[k] = typeof v === 'bigint' ? v.toString() : v instanceof Date ? v.toISOString() : v;
  return out;
}

type Change = {
  tag: 'insert' | 'update' | 'delete';
  relation: { schema: string; name: string; keyColumns: string[] };
  new?: Record<string, unknown>;
  old?: Record<string, unknown> | null;
  key?: Record<string, unknown> | null;
};

class PostgresCdcTask implements SourceTask {
  private service: LogicalReplicationService | undefined;
  private queue: SourceRecord[] = [];
  private waiters: Array<() => void> = [];
  private stored: CdcOffset | undefined;
  private partition: SourcePartition = {};
  private prefix = '';
  private names: Names = { slot: '', publication: '' };
  private txn: { lsn: bigint; endLsn: string; xid: number; changes: Change[]; tsMs: number } | undefined;
  /** What the slot may forget (everything before it): moved by commit() and, when idle, by keepalives. */
  private confirmed = 0n;
  /** End of the last transaction whose rows were queued; committed when `committedEnd` reaches it. */
  private emittedEnd = 0n;
  private committedEnd = 0n;
  private heartbeat: NodeJS.Timeout | undefined;
  private logger: Logger | undefined;
  private failure: unknown;
  private stopped = false;

  async start(config: Readonly<Record<string, string>>, context: SourceTaskContext): Promise<void> {
    this.logger = context.logger;
    this.names = namesOf(config, context.connector);
    this.prefix = config['topic.prefix'] || context.connector;
    this.partition = { slot: this.names.slot };
    this.stored = context.offset(this.partition) as CdcOffset | undefined;
    const url = config['connection.url']!;
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      const tables = tablesOf(config);
      const pub = await admin.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [this.names.publication]);
      if (pub.rowCount === 0)
        await admin.query(
          `CREATE PUBLICATION ${quoteIdent(this.names.publication)} FOR TABLE ${tables.map((t) => `${quoteIdent(t.schema)}.${quoteIdent(t.table)}`).join(', ')}`,
        );
      const slot = await admin.query<{ confirmed_flush_lsn: string | null }>('SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = $1', [
        this.names.slot,
      ]);
      if (slot.rowCount === 0) {
        const created = await admin.query<{ lsn: string }>("SELECT lsn FROM pg_create_logical_replication_slot($1, 'pgoutput')", [this.names.slot]);
        this.confirmed = parseLsn(created.rows[0]!.lsn);
        context.logger.info({ slot: this.names.slot, lsn: created.rows[0]!.lsn }, 'replication slot created');
      } else {
        this.confirmed = parseLsn(slot.rows[0]!.confirmed_flush_lsn ?? '0/0');
      }
    } finally {
      await admin.end().catch(() => {});
    }
    this.emittedEnd = this.committedEnd = this.confirmed;
    const service = new LogicalReplicationService(
      { connectionString: url },
      { acknowledge: { auto: false, timeoutSeconds: 0 }, flowControl: { enabled: true } },
    );
    this.service = service;
    service.on('data', (lsn: string, msg: { tag: string } & Record<string, unknown>) => this.onMessage(lsn, msg));
    service.on('heartbeat', (lsn: string, _ts: number, shouldRespond: boolean) => {
      // Idle with everything committed: nothing before the server's WAL end is ours to keep.
      if (this.txn === undefined && this.queue.length === 0 && this.committedEnd >= this.emittedEnd) this.confirmed = maxLsn(this.confirmed, parseLsn(lsn));
      if (shouldRespond) void this.sendStatus();
    });
    service.on('error', (err: Error) => {
      if (!this.stopped) {
        this.failure = err;
        this.wake();
      }
    });
    const interval = Number(config['heartbeat.interval.ms'] ?? '10000');
    this.heartbeat = setInterval(() => void this.sendStatus(), interval);
    // Resolves only when streaming ends; failures arrive through 'error'.
    service
      .subscribe(new PgoutputPlugin({ protoVersion: 1, publicationNames: [this.names.publication] }), this.names.slot, formatLsn(this.confirmed))
      .catch((err: unknown) => {
        if (!this.stopped) {
          this.failure = err;
          this.wake();
        }
      });
    context.logger.info(
      { slot: this.names.slot, publication: this.names.publication, from: formatLsn(this.confirmed), stored: this.stored },
      'streaming changes',
    );
  }

  private async sendStatus(): Promise<void> {
    if (this.stopped || !this.service) return;
    // acknowledge(x) reports x + 1 as written, flushed and applied: report `confirmed` itself.
    await this.service.acknowledge(formatLsn(this.confirmed > 0n ? this.confirmed - 1n : 0n)).catch(() => {});
  }

  private async onMessage(_lsn: string, msg: { tag: string } & Record<string, unknown>): Promise<void> {
    switch (msg.tag) {
      case 'begin':
        this.txn = { lsn: parseLsn(msg.commitLsn as string), endLsn: '', xid: msg.xid as number, changes: [], tsMs: Number(msg.commitTime as bigint) / 1000 };
        break;
      case 'insert':
      case 'update':
      case 'delete':
        this.txn?.changes.push(msg as unknown as Change);
        break;
      case 'commit': {
        const txn = this.txn;
        this.txn = undefined;
        if (!txn) break;
        const endLsn = parseLsn(msg.commitEndLsn as string);
        const records = this.toRecords(txn, msg.commitEndLsn as string);
        if (records.length === 0) {
          // Nothing of ours (or all emitted before a restart): forgettable once what came before is committed.
          if (this.queue.length === 0 && this.committedEnd >= this.emittedEnd) this.confirmed = maxLsn(this.confirmed, endLsn);
          break;
        }
        this.queue.push(...records);
        this.emittedEnd = endLsn;
        this.wake();
        // Backpressure: the library pauses the stream until this handler returns.
        while (this.queue.length > 20_000 && !this.stopped) await new Promise<void>((r) => this.waiters.push(r));
        break;
      }
      default:
        break;
    }
  }

  private toRecords(txn: NonNullable<PostgresCdcTask['txn']>, endLsn: string): SourceRecord[] {
    const out: SourceRecord[] = [];
    const lsn = formatLsn(txn.lsn);
    txn.changes.forEach((c, i) => {
      if (alreadyEmitted(this.stored, txn.lsn, i)) return;
      const after = c.tag === 'delete' ? null : jsonSafe(c.new);
      const before = jsonSafe(c.old ?? (c.tag === 'delete' ? c.key : null));
      const keySource = after ?? before ?? {};
      const key: Record<string, unknown> = {};
      for (const k of c.relation.keyColumns) key[k] = keySource[k] ?? null;
      const offset: CdcOffset = { lsn, endLsn, row: i, last: i === txn.changes.length - 1 };
      out.push({
        topic: `${this.prefix}.${c.relation.schema}.${c.relation.name}`,
        key: Object.keys(key).length > 0 ? key : null,
        value: {
          op: c.tag === 'insert' ? 'c' : c.tag === 'update' ? 'u' : 'd',
          before,
          after,
          source: { lsn, row: i, txId: txn.xid, schema: c.relation.schema, table: c.relation.name, tsMs: txn.tsMs },
        },
        headers: [],
        timestampMs: Math.floor(txn.tsMs),
        sourcePartition: this.partition,
        sourceOffset: offset as unknown as SourceOffset,
      });
    });
    return out;
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  async poll(signal: AbortSignal): Promise<SourceRecord[]> {
    if (this.failure) throw this.failure;
    if (this.queue.length === 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, 500);
        this.waiters.push(done);
        signal.addEventListener('abort', done, { once: true });
        function done() {
          clearTimeout(t);
          signal.removeEventListener('abort', done);
          resolve();
        }
      });
      if (this.failure) throw this.failure;
    }
    const out = this.queue.splice(0, 5000);
    this.wake();
    return out;
  }

  async commit(offsets: ReadonlyMap<string, { partition: SourcePartition; offset: SourceOffset }>): Promise<void> {
    for (const { offset } of offsets.values()) {
      const o = offset as unknown as CdcOffset;
      this.stored = o;
      if (!o.last) continue;
      const end = parseLsn(o.endLsn);
      this.committedEnd = maxLsn(this.committedEnd, end);
      // Only now may PostgreSQL forget the transaction.
      this.confirmed = maxLsn(this.confirmed, end);
    }
    await this.sendStatus();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.heartbeat);
    this.wake();
    await this.service?.destroy().catch(() => {});
  }
}

function maxLsn(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}

class PostgresIncrementingTask implements SourceTask {
  private client: pg.Client | undefined;
  private tables: Array<{ schema: string; table: string }> = [];
  private column = '';
  private prefix = '';
  private intervalMs = 1000;
  private maxRows = 1000;
  private readonly last = new Map<string, unknown>();
  private nextPollAt = 0;

  async start(config: Readonly<Record<string, string>>, context: SourceTaskContext): Promise<void> {
    this.tables = tablesOf(config);
    this.column = config['incrementing.column.name']!;
    this.prefix = config['topic.prefix'] || context.connector;
    this.intervalMs = Number(config['poll.interval.ms'] ?? '1000');
    this.maxRows = Number(config['batch.max.rows'] ?? '1000');
    for (const t of this.tables) {
      const o = context.offset({ table: `${t.schema}.${t.table}` });
      if (o && 'incrementing' in o) this.last.set(`${t.schema}.${t.table}`, o.incrementing);
    }
    this.client = new pg.Client({ connectionString: config['connection.url']! });
    await this.client.connect();
  }

  async poll(signal: AbortSignal): Promise<SourceRecord[]> {
    const wait = this.nextPollAt - Date.now();
    if (wait > 0)
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(wait, 500));
        signal.addEventListener(
          'abort',
          () => {
            clearTimeout(t);
            r();
          },
          { once: true },
        );
      });
    if (Date.now() < this.nextPollAt || signal.aborted) return [];
    const out: SourceRecord[] = [];
    for (const t of this.tables) {
      const name = `${t.schema}.${t.table}`;
      const last = this.last.get(name);
      const col = quoteIdent(this.column);
      const res = await this.client!.query(
        `SELECT * FROM ${quoteTable(name)}${last === undefined ? '' : ` WHERE ${col} > $1`} ORDER BY ${col} LIMIT ${this.maxRows}`,
        last === undefined ? [] : [last],
      );
      for (const row of res.rows as Array<Record<string, unknown>>) {
        const v = row[this.column];
        this.last.set(name, v);
        out.push({
          topic: `${this.prefix}.${t.schema}.${t.table}`,
          key: { [this.column]: v },
          value: jsonSafe(row),
          headers: [],
          sourcePartition: { table: name },
          sourceOffset: { incrementing: v },
        });
      }
    }
    if (out.length === 0) this.nextPollAt = Date.now() + this.intervalMs;
    return out;
  }

  async stop(): Promise<void> {
    await this.client?.end().catch(() => {});
  }
}

/** Picks the mode's task once the configuration is known. */
class PostgresSourceTask implements SourceTask {
  private inner: SourceTask | undefined;

  start(config: Readonly<Record<string, string>>, context: SourceTaskContext): Promise<void> {
    this.inner = (config.mode ?? 'cdc') === 'cdc' ? new PostgresCdcTask() : new PostgresIncrementingTask();
    return this.inner.start(config, context);
  }

  poll(signal: AbortSignal): Promise<SourceRecord[]> {
    return this.inner!.poll(signal);
  }

  async commit(offsets: ReadonlyMap<string, { partition: SourcePartition; offset: SourceOffset }>): Promise<void> {
    await this.inner?.commit?.(offsets);
  }

  async stop(): Promise<void> {
    await this.inner?.stop();
  }
}

export const postgresSource: ConnectorPlugin = {
  connectorClass: 'PostgresSource',
  type: 'source',
  version: '1.0.0',
  description: 'PostgreSQL tables into topics: change data capture through logical replication (pgoutput), or incrementing-column polling',
  config: [
    {
      name: 'connection.url',
      type: 'password',
      doc: 'postgres://user:password@host:port/database (cdc needs the REPLICATION attribute and wal_level=logical)',
    },
    {
      name: 'mode',
      type: 'string',
      default: 'cdc',
      choices: ['cdc', 'incrementing'],
      doc: 'cdc: logical replication; incrementing: poll by a strictly increasing column',
    },
    { name: 'table.include.list', type: 'list', doc: 'Tables, schema.table (schema public by default)' },
    { name: 'topic.prefix', type: 'string', default: '', doc: 'Topics are <prefix>.<schema>.<table> (default: the connector name)' },
    {
      name: 'slot.name',
      type: 'string',
      default: '',
      doc: 'cdc: replication slot (default skein_<connector>); created when missing, dropped with the connector',
    },
    { name: 'publication.name', type: 'string', default: '', doc: 'cdc: publication (default: the slot name); created over table.include.list when missing' },
    {
      name: 'heartbeat.interval.ms',
      type: 'int',
      default: '10000',
      min: 100,
      max: 600_000,
      doc: 'cdc: how often a status update (keepalive) with the committed position goes to the server',
    },
    { name: 'incrementing.column.name', type: 'string', default: '', doc: 'incrementing: the strictly increasing column' },
    { name: 'poll.interval.ms', type: 'int', default: '1000', min: 10, doc: 'incrementing: pause between polls that found nothing' },
    { name: 'batch.max.rows', type: 'int', default: '1000', min: 1, doc: 'incrementing: rows per query' },
  ],
  validate(config) {
    const out: Array<{ key: string; error: string }> = [];
    if (splitList(config['table.include.list'] ?? '').length === 0) out.push({ key: 'table.include.list', error: 'at least one table is needed' });
    if (config.mode === 'incrementing' && !config['incrementing.column.name'])
      out.push({ key: 'incrementing.column.name', error: 'mode=incrementing needs incrementing.column.name' });
    return out;
  },
  // One slot, one task: a replication slot has one reader at a time.
  taskConfigs: (config) => [{ ...config }],
  createTask: () => new PostgresSourceTask(),
  async onDelete(connector, config, logger) {
    if ((config.mode ?? 'cdc') !== 'cdc') return;
    const names = namesOf(config, connector);
    const client = new pg.Client({ connectionString: config['connection.url']! });
    await client.connect();
    try {
      for (let attempt = 0; attempt < 50; attempt++) {
        await client.query('SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL', [names.slot]);
        try {
          const r = await client.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [names.slot]);
          logger.info({ slot: names.slot, dropped: r.rowCount }, 'replication slot dropped');
          break;
        } catch (err) {
          // Still active: its connection is going away.
          if (attempt === 49) throw err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      await client.query(`DROP PUBLICATION IF EXISTS ${quoteIdent(names.publication)}`);
    } finally {
      await client.end().catch(() => {});
    }
  },
};
