/**
 * PostgreSQL sink (the JDBC sink's PostgreSQL case): each record becomes a row of the table named
 * by `table.name.format` (`${topic}` replaced by the record's topic).
 *
 * - A record's value is either a row (an object of column -> value) or a change event of the
 *   PostgreSQL source (`{ op, before, after, source }`): op c/r/u write `after`, op d deletes.
 * - `insert.mode=upsert` (default) writes `INSERT ... ON CONFLICT (pk) DO UPDATE`, so a record
 *   delivered twice (at-least-once redelivery) leaves the table as once; `insert` plain INSERTs.
 * - The key columns are `pk.fields`; a record's key object supplies their values when the value
 *   lacks them (a delete). A null value (tombstone) deletes by key when `delete.enabled`.
 * - `put` is one database transaction per batch, statements grouped by table and operation in
 *   record order (consecutive upserts of one key keep the last), so the table never shows half a
 *   batch and the order of changes to a key is kept.
 *
 * A record the database refuses (a column that does not exist, a type it cannot take) fails the
 * batch; the runtime then puts the batch record by record and only the refused record goes to the
 * dead-letter topic (errors.tolerance=all).
 */

import type { Logger } from 'pino';
import pg from 'pg';
import { splitList } from '../domain/config-def.js';
import type { ConnectorPlugin, SinkRecord, SinkTask, SinkTaskContext } from '../sdk/types.js';

type Row = Record<string, unknown>;
type Op = { kind: 'upsert'; table: string; row: Row } | { kind: 'delete'; table: string; key: Row };

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** A qualified name "schema.table" quoted part by part. */
export function quoteTable(name: string): string {
  return name.split('.').map(quoteIdent).join('.');
}

function isObject(v: unknown): v is Row {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
}

function isChangeEvent(v: unknown): v is { op: string; before?: Row | null; after?: Row | null } {
  return isObject(v) && typeof v.op === 'string' && ('after' in v || 'before' in v);
}

function columnValue(v: unknown): unknown {
  if (isObject(v) || Array.isArray(v)) return JSON.stringify(v);
  return v;
}

/** The operations for records, in order (pure: what `put` will execute). */
export function toOperations(records: readonly SinkRecord[], options: { tableFormat: string; pkFields: string[]; deleteEnabled: boolean }): Op[] {
  const ops: Op[] = [];
  for (const r of records) {
    const table = options.tableFormat.replace(/\$\{topic\}/g, r.topic);
    const key: Row = isObject(r.key) ? r.key : {};
    const v = r.value;
    if (v === null || v === undefined || (isChangeEvent(v) && v.op === 'd')) {
      if (!options.deleteEnabled) continue;
      const source = isChangeEvent(v) ? { ...(v.before ?? {}), ...key } : key;
      const k: Row = {};
      for (const f of options.pkFields) {
        if (!(f in source)) throw new Error(`a delete on ${table} needs key field ${f}`);
        k[f] = source[f];
      }
      ops.push({ kind: 'delete', table, key: k });
      continue;
    }
    const row = isChangeEvent(v) ? v.after : v;
    if (!isObject(row)) throw new Error(`record at ${r.topic}-${r.partition}@${r.offset} has no row (value is ${typeof row})`);
    const full: Row = { ...row };
    for (const f of options.pkFields) if (!(f in full) && f in key) full[f] = key[f];
    ops.push({ kind: 'upsert', table, row: full });
  }
  return ops;
}

/** Consecutive operations of one kind on one table, as one statement. */
export function groupOperations(ops: readonly Op[], pkFields: string[]): Op[][] {
  const groups: Op[][] = [];
  for (const op of ops) {
    const last = groups.at(-1);
    if (last && last[0]!.kind === op.kind && last[0]!.table === op.table) last.push(op);
    else groups.push([op]);
  }
  // Within an upsert group, one key may appear once (ON CONFLICT cannot touch a row twice): keep its last.
  return groups.map((g) => {
    if (g[0]!.kind !== 'upsert' || pkFields.length === 0) return g;
    const byKey = new Map<string, Op>();
    for (const op of g) byKey.set(JSON.stringify(pkFields.map((f) => (op as { row: Row }).row[f])), op);
    return [...byKey.values()];
  });
}

class PostgresSinkTask implements SinkTask {
  private client: pg.Client | undefined;
  private tableFormat = '';
  private pkFields: string[] = [];
  private upsert = true;
  private deleteEnabled = true;
  private logger: Logger | undefined;

  async start(config: Readonly<Record<string, string>>, context: SinkTaskContext): Promise<void> {
    this.logger = context.logger;
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the JDBC sink's placeholder, literally
    this.tableFormat = config['table.name.format'] ?? '${topic}';
    this.pkFields = splitList(config['pk.fields'] ?? '');
    this.upsert = (config['insert.mode'] ?? 'upsert') === 'upsert';
    this.deleteEnabled = (config['delete.enabled'] ?? 'true') === 'true';
    await this.connect(config['connection.url']!);
  }

  private async connect(url: string): Promise<void> {
    const client = new pg.Client({ connectionString: url });
    client.on('error', (err) => this.logger?.warn({ err }, 'postgres connection error'));
    await client.connect();
    this.client = client;
  }

  async put(records: SinkRecord[]): Promise<void> {
    const ops = toOperations(records, { tableFormat: this.tableFormat, pkFields: this.pkFields, deleteEnabled: this.deleteEnabled });
    if (ops.length === 0) return;
    const client = this.client!;
    await client.query('BEGIN');
    try {
      for (const group of groupOperations(ops, this.pkFields)) await this.execute(client, group);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    }
  }

  private async execute(client: pg.Client, group: Op[]): Promise<void> {
    const table = quoteTable(group[0]!.table);
    if (group[0]!.kind === 'delete') {
      const params: unknown[] = [];
      const conds = group.map(
        (op) => `(${this.pkFields.map((f) => `${quoteIdent(f)} = $${params.push(columnValue((op as { key: Row }).key[f]))}`).join(' AND ')})`,
      );
      await client.query(`DELETE FROM ${table} WHERE ${conds.join(' OR ')}`, params);
      return;
    }
    const rows = group.map((op) => (op as { row: Row }).row);
    const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
    const params: unknown[] = [];
    const values = rows.map((r) => `(${columns.map((c) => (c in r ? `$${params.push(columnValue(r[c]))}` : 'DEFAULT')).join(', ')})`);
    let sql = `INSERT INTO ${table} (${columns.map(quoteIdent).join(', ')}) VALUES ${values.join(', ')}`;
    if (this.upsert && this.pkFields.length > 0) {
      const updates = columns.filter((c) => !this.pkFields.includes(c)).map((c) => `${quoteIdent(c)} = EXCLUDED.${quoteIdent(c)}`);
      sql += ` ON CONFLICT (${this.pkFields.map(quoteIdent).join(', ')}) ${updates.length > 0 ? `DO UPDATE SET ${updates.join(', ')}` : 'DO NOTHING'}`;
    }
    await client.query(sql, params);
  }

  async stop(): Promise<void> {
    await this.client?.end().catch(() => {});
  }
}

export const postgresSink: ConnectorPlugin = {
  connectorClass: 'PostgresSink',
  type: 'sink',
  version: '1.0.0',
  description: 'Rows (or PostgresSource change events) into PostgreSQL tables: batched, insert or upsert by key, deletes',
  config: [
    { name: 'connection.url', type: 'password', doc: 'postgres://user:password@host:port/database' },
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the JDBC sink's placeholder, literally
    { name: 'table.name.format', type: 'string', default: '${topic}', doc: 'Table per record: ${topic} is replaced by the topic (schema.table allowed)' },
    {
      name: 'insert.mode',
      type: 'string',
      default: 'upsert',
      choices: ['insert', 'upsert'],
      doc: 'upsert: INSERT ... ON CONFLICT (pk.fields) DO UPDATE; insert: plain INSERT',
    },
    { name: 'pk.fields', type: 'list', default: '', doc: 'Primary key columns (needed for upsert and delete)' },
    { name: 'delete.enabled', type: 'boolean', default: 'true', doc: 'Delete rows on change events with op d and on tombstones' },
  ],
  validate(config) {
    const out: Array<{ key: string; error: string }> = [];
    if ((config['insert.mode'] ?? 'upsert') === 'upsert' && splitList(config['pk.fields'] ?? '').length === 0)
      out.push({ key: 'pk.fields', error: 'insert.mode=upsert needs pk.fields' });
    if ((config['delete.enabled'] ?? 'true') === 'true' && splitList(config['pk.fields'] ?? '').length === 0)
      out.push({ key: 'pk.fields', error: 'delete.enabled=true needs pk.fields (or set delete.enabled=false)' });
    return out;
  },
  taskConfigs: (config, maxTasks) => Array.from({ length: maxTasks }, () => ({ ...config })),
  createTask: () => new PostgresSinkTask(),
};
