#!/usr/bin/env node
/**
 * `skein`: the operator's and developer's command line. Exit codes: 0 success, 1 the cluster
 * refused or failed (the error's reason is printed), 2 usage errors.
 */
import { createInterface } from 'node:readline';
import { createReadStream } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { Acks, CompressionCodec, Fetcher, fetchErrorAction, GroupAdmin, GroupConsumer, OffsetSpec, SkeinClient, TransactionAdmin, TransactionState, transactionStateName, type AutoOffsetReset, type RecordInput, type ResetTo } from '@skein/client';
import { formatTable, type Cell } from './table.js';
import { type ClientQuota, DEFAULT_ENTITY as DEFAULT_QUOTA_ENTITY, type QuotaEntity } from '@skein/common/quota/client-quotas.js';
import { type ClientTlsConfig, clientTlsFromEnv } from '@skein/common/tls.js';
import { aclFilterToProto, aclFromProto, aclToProto } from '@skein/common/security/acl-codec.js';
import { type AclBinding, type AclFilter, CLUSTER_RESOURCE_NAME, type Operation, OPERATIONS, type ResourceType } from '@skein/common/security/authorizer.js';
import { processProgressContext, Progress, shouldShowProgress } from './progress.js';
import { addConnectCommands } from './connect.js';
import { addConsumeSchemaOptions, addProduceSchemaOptions, addSchemaCommands, consumeCodec, DEFAULT_REGISTRY_URL, type ProduceSchemaOptions, produceCodec } from './schemas.js';

const program = new Command('skein')
  .description('Skein command line: a Kafka-class log over gRPC')
  .option('--metadata <addresses>', 'metadata service address(es), host:port[,host:port]', process.env.SKEIN_METADATA ?? '127.0.0.1:9090')
  .option('--coordinator <addresses>', 'group coordinator address(es), host:port[,host:port] (default: found from the metadata service)', process.env.SKEIN_COORDINATOR)
  .option('--token <jwt>', 'bearer token sent as "authorization: Bearer <jwt>" on every call (SKEIN_TOKEN)', process.env.SKEIN_TOKEN)
  .option('--token-file <file>', 'file holding the bearer token, re-read when it changes (SKEIN_TOKEN_FILE; --token wins)', process.env.SKEIN_TOKEN_FILE)
  .option('--schema-registry <url>', 'schema registry REST URL(s) for `schemas` and --value-schema/--key-schema', process.env.SKEIN_SCHEMA_REGISTRY ?? DEFAULT_REGISTRY_URL)
  .option('--tls-ca-file <file>', 'dial TLS, verifying servers against this CA bundle (PEM)', process.env.SKEIN_TLS_CA_FILE)
  .option('--tls-cert-file <file>', 'client certificate (PEM) for mTLS', process.env.SKEIN_TLS_CERT_FILE)
  .option('--tls-key-file <file>', 'key (PEM) of --tls-cert-file', process.env.SKEIN_TLS_KEY_FILE)
  .option('--tls-server-name <name>', 'host name to verify server certificates against instead of the dialled host', process.env.SKEIN_TLS_SERVER_NAME)
  .option('--tls', "dial TLS verified against Node's public roots (implied by any --tls-* option; SKEIN_TLS=true)")
  .addOption(new Option('--output <format>', 'output format').choices(['table', 'json']).default('table'))
  .exitOverride()
  .showHelpAfterError();

/** TLS from the --tls-* flags (each defaulting to its SKEIN_TLS_* variable); undefined: plaintext. */
function tlsOptions(): ClientTlsConfig | undefined {
  const o = program.opts() as { tlsCaFile?: string; tlsCertFile?: string; tlsKeyFile?: string; tlsServerName?: string; tls?: boolean };
  const fromEnv = clientTlsFromEnv();
  if (!o.tls && !fromEnv && !o.tlsCaFile && !o.tlsCertFile && !o.tlsKeyFile && !o.tlsServerName) return undefined;
  if (Boolean(o.tlsCertFile) !== Boolean(o.tlsKeyFile)) throw new Error('--tls-cert-file and --tls-key-file go together (SKEIN_TLS_CERT_FILE, SKEIN_TLS_KEY_FILE)');
  return { caFile: o.tlsCaFile || undefined, certFile: o.tlsCertFile || undefined, keyFile: o.tlsKeyFile || undefined, serverName: o.tlsServerName || undefined };
}
const client = () => new SkeinClient({ ...tokenOptions(), metadata: (program.opts().metadata as string).split(',').map((s) => s.trim()).filter(Boolean), tls: tlsOptions() });
/** The bearer token from --token / --token-file (SKEIN_TOKEN / SKEIN_TOKEN_FILE); none: no authorization header. */
function tokenOptions(): { token?: string; tokenFile?: string } {
  const o = program.opts() as { token?: string; tokenFile?: string };
  return o.token ? { token: o.token } : o.tokenFile ? { tokenFile: o.tokenFile } : {};
}
const json = () => program.opts().output === 'json';
const bigintSafe = (_k: string, v: unknown) => (typeof v === 'bigint' ? v.toString() : v);
function print(value: unknown, table: () => void): void {
  if (json()) console.log(JSON.stringify(value, bigintSafe, 2));
  else table();
}
function parseKv(list: string[] | undefined, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list ?? []) {
    const i = item.indexOf('=');
    if (i <= 0) throw new CommanderError(2, 'skein.usage', `${what} must be key=value, got "${item}"`);
    out[item.slice(0, i)] = item.slice(i + 1);
  }
  return out;
}
const collect = (v: string, prev: string[] = []) => [...prev, v];
/** Prints rows as aligned columns (table.ts), never console.table's index column and quotes. */
function table(columns: readonly string[], rows: ReadonlyArray<Record<string, Cell>>): void {
  process.stdout.write(formatTable(columns, rows));
}
/** Live progress on stderr when a person watches a terminal (progress.ts), else a silent counter. */
const progress = (verb: string, recordsOnStdout: boolean, o: { progress?: boolean }) =>
  new Progress(verb, shouldShowProgress(processProgressContext(recordsOnStdout, o.progress === false)));
const recordBytes = (r: { key?: { length: number } | string | null; value?: { length: number } | string | null }) =>
  (typeof r.key === 'string' ? Buffer.byteLength(r.key) : r.key?.length ?? 0) + (typeof r.value === 'string' ? Buffer.byteLength(r.value) : r.value?.length ?? 0);

async function run<T>(fn: (c: SkeinClient) => Promise<T>): Promise<T> {
  const c = client();
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

program.command('cluster').description('brokers, controller and cluster id').action(() => run(async (c) => {
  const m = await c.describeCluster();
  print(m, () => {
    console.log(`cluster ${m.clusterId}   controller ${m.controller?.controllerId ?? '(none)'} (epoch ${m.controller?.controllerEpoch ?? '-'})`);
    table(['broker', 'host', 'port', 'rack'], m.brokers.map((b) => ({ broker: b.brokerId, host: b.endpoint?.host, port: b.endpoint?.port, rack: b.rack })));
  });
}));

const topics = program.command('topics').description('create, list, describe, alter, grow and delete topics');
topics.command('create <name>').description('create a topic')
  .option('-p, --partitions <n>', 'partition count', '1').option('-r, --replication-factor <n>', 'replicas per partition', '0')
  .option('-c, --config <key=value>', 'topic config (repeatable)', collect)
  .action((name: string, o: { partitions: string; replicationFactor: string; config?: string[] }) => run(async (c) => {
    const topic = await c.createTopic(name, { partitions: Number(o.partitions), replicationFactor: Number(o.replicationFactor), configs: parseKv(o.config, '--config') });
    print(topic, () => console.log(`created topic ${name}`));
  }));
topics.command('list').description('list topics').action(() => run(async (c) => {
  const list = await c.listTopics();
  print(list, () => table(['topic', 'partitions', 'replicationFactor', 'id'], list.map((t) => ({ topic: t.name, partitions: t.partitionCount, replicationFactor: t.replicationFactor, id: t.topicId }))));
}));
topics.command('describe <name>').description('partitions, leaders, ISR and configs').action((name: string) => run(async (c) => {
  const res = await c.describeTopic(name);
  print(res, () => {
    console.log(`topic ${name} (${res.topic!.topicId})`);
    table(['partition', 'leader', 'epoch', 'replicas', 'isr'], res.topic!.partitions.map((p) => ({ partition: p.partition, leader: p.leaderId, epoch: p.leaderEpoch, replicas: p.replicas.join(','), isr: p.isr.join(',') })));
    const overrides = res.configs.filter((x) => !x.isDefault);
    if (overrides.length > 0) {
      console.log();
      table(['config', 'value'], overrides.map((x) => ({ config: x.name, value: x.value })));
    }
  });
}));
topics.command('alter <name>').description('set or remove config overrides')
  .option('-c, --config <key=value>', 'config to set (repeatable)', collect).option('--delete-config <key>', 'override to remove (repeatable)', collect)
  .action((name: string, o: { config?: string[]; deleteConfig?: string[] }) => run(async (c) => {
    const topic = await c.alterTopicConfigs(name, { set: parseKv(o.config, '--config'), remove: o.deleteConfig ?? [] });
    print(topic, () => console.log(`altered topic ${name}`));
  }));
topics.command('add-partitions <name> <total>').description('grow a topic to <total> partitions').action((name: string, total: string) => run(async (c) => {
  const topic = await c.createPartitions(name, Number(total));
  print(topic, () => console.log(`topic ${name} now has ${total} partitions`));
}));
topics.command('delete <name>').description('delete a topic and its data').action((name: string) => run(async (c) => {
  const topicId = await c.deleteTopic(name);
  print({ topicId }, () => console.log(`deleted topic ${name}`));
}));

addProduceSchemaOptions(program.command('produce <topic>').description('produce lines from stdin (or --file) as records'))
  .option('-f, --file <path>', 'read lines from a file instead of stdin')
  .option('-k, --key-separator <sep>', 'split each line into key<sep>value')
  .option('-H, --header <key=value>', 'header on every record (repeatable)', collect)
  .addOption(new Option('--acks <acks>', 'acknowledgement').choices(['0', '1', 'all']).default('all'))
  .addOption(new Option('--compression <codec>', 'batch compression').choices(['none', 'gzip', 'snappy', 'lz4', 'zstd']).default('none'))
  .option('--batch-size <n>', 'lines handed to the producer at a time', '1000')
  .option('--linger-ms <ms>', 'how long a partition\'s batch waits for more records', '5')
  .option('--no-progress', 'no live progress line on a terminal')
  .option('--transactional-id <id>', 'produce in transactions under this transactional id: each --batch-size lines commit together (read_committed consumers see a batch whole or not at all)')
  .action((topic: string, o: { file?: string; keySeparator?: string; header?: string[]; acks: string; compression: string; batchSize: string; lingerMs: string; progress?: boolean; transactionalId?: string }) => run(async (c) => {
    const headers = Object.entries(parseKv(o.header, '--header')).map(([key, value]) => ({ key, value: Buffer.from(value) }));
    if (o.transactionalId !== undefined) {
      if ((o as ProduceSchemaOptions).valueSchema || (o as ProduceSchemaOptions).keySchema) throw new CommanderError(2, 'skein.usage', '--value-schema/--key-schema do not combine with --transactional-id yet');
      return produceTransactionally(c, topic, o, headers);
    }
    const producer = c.producer({
      acks: o.acks === '0' ? Acks.ACKS_NONE : o.acks === '1' ? Acks.ACKS_LEADER : Acks.ACKS_ALL,
      compression: { none: CompressionCodec.COMPRESSION_CODEC_NONE, gzip: CompressionCodec.COMPRESSION_CODEC_GZIP, snappy: CompressionCodec.COMPRESSION_CODEC_SNAPPY, lz4: CompressionCodec.COMPRESSION_CODEC_LZ4, zstd: CompressionCodec.COMPRESSION_CODEC_ZSTD }[o.compression as 'none'],
      lingerMs: Number(o.lingerMs),
    });
    const lines = createInterface({ input: o.file ? createReadStream(o.file) : process.stdin, crlfDelay: Infinity });
    // With --value-schema/--key-schema, JSON lines become schema-registry encoded records.
    const codec = produceCodec(o as ProduceSchemaOptions, program.opts().schemaRegistry as string);
    let pending: RecordInput[] = [];
    let count = 0;
    const shown = progress('produced', false, o);
    // Several sends outstanding keep every partition's batches flowing; the bound keeps memory flat on a large input.
    const outstanding: Array<Promise<unknown>> = [];
    const flush = async () => {
      if (pending.length === 0) return;
      const batch = pending;
      pending = [];
      const sent = producer.send(topic, batch).then(() => {
        count += batch.length;
        shown.add(batch.length, batch.reduce((n, r) => n + recordBytes(r), 0));
      });
      // Awaited below (shift or Promise.all), where a failure ends the command with its message;
      // marked handled now so one that fails early is not an unhandled rejection before then.
      sent.catch(() => {});
      outstanding.push(sent);
      if (outstanding.length > 16) await outstanding.shift();
    };
    for await (const line of lines) {
      let key: string | undefined;
      let value = line;
      if (o.keySeparator) {
        const i = line.indexOf(o.keySeparator);
        if (i >= 0) { key = line.slice(0, i); value = line.slice(i + o.keySeparator.length); }
      }
      pending.push({ ...(codec ? await codec.encode(topic, key, value) : { key, value }), headers, timestampMs: Date.now() });
      if (pending.length >= Number(o.batchSize)) await flush();
    }
    await flush();
    await Promise.all(outstanding);
    await producer.close();
    shown.stop();
    print({ topic, records: count }, () => console.error(`produced ${count} records to ${topic}`));
  }));

/** `produce --transactional-id`: one transaction per --batch-size lines; a failed one is aborted and fails the command. */
async function produceTransactionally(c: SkeinClient, topic: string, o: { file?: string; keySeparator?: string; batchSize: string; lingerMs: string; progress?: boolean; transactionalId?: string }, headers: Array<{ key: string; value: Buffer }>): Promise<void> {
  const producer = c.producer({ transactionalId: o.transactionalId!, coordinator: coordinatorAddresses(), lingerMs: Number(o.lingerMs) });
  await producer.initTransactions();
  const lines = createInterface({ input: o.file ? createReadStream(o.file) : process.stdin, crlfDelay: Infinity });
  const shown = progress('produced', false, o);
  let pending: RecordInput[] = [];
  let count = 0;
  let transactions = 0;
  const commit = async () => {
    if (pending.length === 0) return;
    const batch = pending;
    pending = [];
    producer.beginTransaction();
    try {
      await producer.send(topic, batch);
      await producer.commitTransaction();
    } catch (err) {
      await producer.abortTransaction().catch(() => {});
      throw err;
    }
    transactions++;
    count += batch.length;
    shown.add(batch.length, batch.reduce((n, r) => n + recordBytes(r), 0));
  };
  try {
    for await (const line of lines) {
      let key: string | undefined;
      let value = line;
      if (o.keySeparator) {
        const i = line.indexOf(o.keySeparator);
        if (i >= 0) { key = line.slice(0, i); value = line.slice(i + o.keySeparator.length); }
      }
      pending.push({ key, value, headers, timestampMs: Date.now() });
      if (pending.length >= Number(o.batchSize)) await commit();
    }
    await commit();
  } finally {
    shown.stop();
    await producer.close();
  }
  print({ topic, records: count, transactions }, () => console.error(`produced ${count} records to ${topic} in ${transactions} transaction(s)`));
}

type PrintableRecord = { partition: number; offset: bigint; timestampMs: bigint; key: Buffer; value: Buffer | null; headers: Array<{ key: string; value: Buffer }> };
function printRecord(r: PrintableRecord, fields: string[]): void {
  const row: Record<string, unknown> = { partition: r.partition, offset: r.offset.toString(), timestamp: r.timestampMs.toString(), key: r.key.toString(), value: r.value?.toString() ?? null, headers: Object.fromEntries(r.headers.map((h) => [h.key, h.value.toString()])) };
  if (json()) console.log(JSON.stringify(Object.fromEntries(fields.map((f) => [f, row[f]]))));
  else console.log(fields.map((f) => (f === 'headers' ? JSON.stringify(row[f]) : String(row[f]))).join('\t'));
}

addConsumeSchemaOptions(program.command('consume <topic>').description('read records: in a group (--group), or standalone by partition and offset'))
  .option('-g, --group <id>', 'consume as a member of this group: partitions shared with its other members, offsets committed')
  .option('-p, --partition <n>', 'standalone: only this partition (default: all)', collect)
  .option('--from-beginning', 'start at the earliest offset (default: the end); in a group, only where it has no committed offset')
  .addOption(new Option('--auto-offset-reset <policy>', 'in a group: where to go without a committed offset or when a position is out of range (none: fail)').choices(['earliest', 'latest', 'none']))
  .option('--offset <offset>', 'standalone: start at this offset')
  .option('--timestamp <ms>', 'standalone: start at the first record at or after this time (ms since epoch)')
  .option('--follow', 'keep waiting for new records')
  .option('--idle-ms <ms>', 'without --follow, stop after this long with no new record', '3000')
  .option('-n, --max-messages <n>', 'stop after this many records')
  .option('--print <fields>', 'fields to print: key,value,partition,offset,timestamp,headers', 'value')
  .option('--no-progress', 'no live progress line on a terminal while records go to a file or pipe')
  .addOption(new Option('--isolation <level>', 'read_committed: only committed transactions\' records (up to the last stable offset); read_uncommitted: everything').choices(['read_uncommitted', 'read_committed']).default('read_uncommitted'))
  .action((topic: string, o: { group?: string; partition?: string[]; fromBeginning?: boolean; autoOffsetReset?: AutoOffsetReset; offset?: string; timestamp?: string; follow?: boolean; idleMs: string; maxMessages?: string; print: string; progress?: boolean; isolation: 'read_uncommitted' | 'read_committed' }) => run(async (c) => {
    const fields = o.print.split(',');
    const shown = progress('consumed', true, o);
    // With --value-schema/--key-schema, schema-registry encoded keys and values print as JSON.
    const codec = consumeCodec(o as { valueSchema?: string | boolean; keySchema?: string | boolean }, program.opts().schemaRegistry as string);
    const max = o.maxMessages ? Number(o.maxMessages) : Infinity;
    if (o.group !== undefined) {
      if (o.partition || o.offset !== undefined || o.timestamp !== undefined) throw new CommanderError(2, 'skein.usage', '--partition, --offset and --timestamp are for standalone reads; a group gets its partitions from the coordinator (use groups reset-offsets to move it)');
      await c.topic(topic, true);
      // A fetch failure the consumer cannot get past by itself (a corrupt batch, an out-of-range
      // offset under --auto-offset-reset none: it holds the partition) ends the command after the
      // records before it were printed; others are warnings while the consumer keeps trying.
      let failure: unknown;
      // Closing from a callback: a failure to close (the final commit) is the command's failure.
      const close = () => { consumer.close().catch((err: unknown) => { failure ??= err; }); };
      const consumer: GroupConsumer = new GroupConsumer(c, {
        groupId: o.group, coordinator: coordinatorAddresses(), topics: [topic], clientId: 'skein-cli', isolationLevel: o.isolation,
        autoOffsetReset: o.autoOffsetReset ?? (o.fromBeginning ? 'earliest' : 'latest'),
        onError: (err, where) => {
          const e = err as { reason?: string; message?: string };
          if (fetchErrorAction(err, 'none', 0).action !== 'hold') {
            console.error(`skein: warning: ${where.topic}-${where.partition} at offset ${where.offset}: ${e.reason ?? 'ERROR'}: ${e.message ?? String(err)} (retrying)`);
            return;
          }
          failure ??= err;
          close();
        },
        onOffsetReset: (r) => console.error(`skein: ${r.topic}-${r.partition}: offset ${r.from} is out of range; moved to ${r.to} (${r.policy})`),
      });
      let seen = 0;
      let lastRecordAt = Date.now();
      // Without --follow, stop once the group's partitions have been quiet for --idle-ms.
      const idle = o.follow ? undefined : setInterval(() => { if (Date.now() - lastRecordAt > Number(o.idleMs)) close(); }, 100);
      const stop = close;
      process.once('SIGINT', stop);
      try {
        for await (const m of consumer) {
          printRecord(codec ? await codec.decode(m) : m, fields);
          shown.add(1, recordBytes(m));
          lastRecordAt = Date.now();
          if (++seen >= max) break;
        }
      } finally {
        clearInterval(idle);
        process.off('SIGINT', stop);
        await consumer.close();
        shown.stop();
      }
      if (!json()) console.error(`consumed ${seen} records from ${topic} in group ${o.group}`);
      if (failure) throw failure;
      return;
    }
    const t = await c.topic(topic, true);
    const partitions = o.partition ? o.partition.map(Number) : t.partitions.map((p) => p.partition);
    const positions = new Map<number, bigint>();
    for (const p of partitions) {
      if (o.offset !== undefined) positions.set(p, BigInt(o.offset));
      else if (o.timestamp !== undefined) positions.set(p, await c.listOffset(topic, p, OffsetSpec.OFFSET_SPEC_TIMESTAMP, BigInt(o.timestamp)));
      else positions.set(p, await c.listOffset(topic, p, o.fromBeginning ? OffsetSpec.OFFSET_SPEC_EARLIEST : OffsetSpec.OFFSET_SPEC_LATEST, 0n, o.isolation));
    }
    // Without --follow: read up to the end offsets of now (or until --idle-ms passes without a
    // record, should the end be unreachable, e.g. behind control records).
    const ends = new Map<number, bigint>();
    // Under read_committed the end is the last stable offset: nothing past an open transaction is readable yet.
    if (!o.follow) for (const p of partitions) ends.set(p, await c.listOffset(topic, p, OffsetSpec.OFFSET_SPEC_LATEST, 0n, o.isolation));
    const caughtUp = () => !o.follow && partitions.every((p) => positions.get(p)! >= ends.get(p)!);
    // One long-polling Fetch per broker for all the partitions it leads, as the group consumer.
    const fetcher = new Fetcher(c, { isolationLevel: o.isolation });
    for (const p of partitions) fetcher.assign(topic, p, positions.get(p)!);
    let lastRecordAt = Date.now();
    const idle = o.follow ? undefined : setInterval(() => { if (Date.now() - lastRecordAt > Number(o.idleMs)) fetcher.close(); }, 100);
    let seen = 0;
    try {
      while (seen < max && !caughtUp()) {
        const chunk = await fetcher.next();
        if (!chunk) break;
        // The fetcher has retried what can be retried; a corrupt batch or an out-of-range offset ends the command.
        if (chunk.kind === 'error') throw chunk.error;
        for (const r of chunk.records) {
          if (seen >= max) break;
          printRecord(codec ? await codec.decode({ ...r, partition: chunk.partition }) : { ...r, partition: chunk.partition }, fields);
          shown.add(1, recordBytes(r));
          seen++;
          positions.set(chunk.partition, r.offset + 1n);
        }
        lastRecordAt = Date.now();
      }
    } finally {
      clearInterval(idle);
      fetcher.close();
      shown.stop();
    }
  }));

/** --coordinator / SKEIN_COORDINATOR; undefined when neither is given: then found from the metadata service. */
function coordinatorAddresses(): string[] | undefined {
  const list = ((program.opts().coordinator as string | undefined) ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  return list.length > 0 ? list : undefined;
}

async function withGroups<T>(fn: (admin: GroupAdmin) => Promise<T>): Promise<T> {
  // Without an address the admin finds coordinators through this client's metadata service.
  const c = client();
  const admin = new GroupAdmin(coordinatorAddresses() ?? c, c.credentials, undefined, c.clientOptions);
  try {
    return await fn(admin);
  } finally {
    admin.close();
    c.close();
  }
}
const groups = program.command('groups').description('list, describe (with lag), reset offsets of, and delete consumer groups');
groups.command('list').description('list groups').action(() => withGroups(async (admin) => {
  const list = await admin.listGroups();
  print(list, () => table(['group', 'members', 'epoch'], list.map((g) => ({ group: g.groupId, members: g.memberCount, epoch: g.groupEpoch }))));
}));
groups.command('describe <group>').description('members, assignments, committed offsets and lag per partition').action((group: string) => withGroups(async (admin) => {
  const res = await admin.describeGroup(group);
  print(res, () => {
    const total = res.lags.reduce((n, l) => n + (l.lag > 0n ? l.lag : 0n), 0n);
    console.log(`group ${group}: epoch ${res.groupEpoch}, assignor ${res.assignor}, ${res.members.length} member(s), total lag ${total}`);
    if (res.members.length > 0) {
      table(['member', 'client', 'epoch', 'partitions'], res.members.map((m) => ({ member: m.memberId, client: m.clientId, epoch: m.memberEpoch, partitions: m.assignment.map((a) => `${a.topic}:${a.partitions.join(',')}`).join(' ') })));
      console.log();
    }
    table(['topic', 'partition', 'committedOffset', 'logEndOffset', 'lag'], res.lags.map((l) => ({ topic: l.topic, partition: l.partition, committedOffset: l.committedOffset, logEndOffset: l.logEndOffset, lag: l.lag })));
  });
}));
groups.command('reset-offsets <group> <topic>').description('move an empty group\'s offsets (dry run unless --execute)')
  .addOption(new Option('--to <spec>', 'where to').choices(['earliest', 'latest', 'timestamp', 'offset', 'shift-by']).makeOptionMandatory())
  .option('--value <n>', 'timestamp (ms), offset, or shift', '0').option('-p, --partition <n>', 'only this partition (repeatable)', collect)
  .option('--execute', 'apply (default: dry run)')
  .action((group: string, topic: string, o: { to: string; value: string; partition?: string[]; execute?: boolean }) => withGroups(async (admin) => {
    const value = BigInt(o.value);
    const target: ResetTo = o.to === 'timestamp' ? { to: 'timestamp', timestampMs: value } : o.to === 'offset' ? { to: 'offset', offset: value } : o.to === 'shift-by' ? { to: 'shift-by', shift: value } : { to: o.to as 'earliest' | 'latest' };
    const offsets = await admin.resetOffsets(group, topic, target, { partitions: (o.partition ?? []).map(Number), dryRun: !o.execute });
    print(offsets, () => {
      table(['topic', 'partition', 'newOffset'], offsets.map((x) => ({ topic: x.topic, partition: x.partition, newOffset: x.offset })));
      if (!o.execute) console.error('dry run: nothing changed (add --execute to apply)');
    });
  }));
groups.command('delete <group>').description('delete an empty group and its offsets').action((group: string) => withGroups(async (admin) => {
  await admin.deleteGroup(group);
  print({ deleted: group }, () => console.log(`deleted group ${group}`));
}));

async function withTransactions<T>(fn: (admin: TransactionAdmin) => Promise<T>): Promise<T> {
  const c = client();
  const admin = new TransactionAdmin(coordinatorAddresses() ?? c, c.credentials, undefined, c.clientOptions);
  try {
    return await fn(admin);
  } finally {
    admin.close();
    c.close();
  }
}
const transactions = program.command('transactions').description('list, describe and abort transactions (transactional ids)');
transactions.command('list').description('transactional ids and their states')
  .option('--state <state>', 'only these states (repeatable): empty, ongoing, prepare_commit, prepare_abort, complete_commit, complete_abort', collect)
  .action((o: { state?: string[] }) => withTransactions(async (admin) => {
    const list = await admin.listTransactions(o.state ?? []);
    print(list, () => table(['transactionalId', 'producerId', 'state'], list.map((t) => ({ transactionalId: t.transactionalId, producerId: t.producerId, state: transactionStateName(t.state) }))));
  }));
transactions.command('describe <transactionalId...>').description('state, producer, partitions, pending offsets and age').action((ids: string[]) => withTransactions(async (admin) => {
  const list = await admin.describeTransactions(ids);
  print(list, () => {
    const now = Date.now();
    table(['transactionalId', 'state', 'producerId', 'epoch', 'timeoutMs', 'ageMs', 'partitions', 'pendingOffsets'], list.map((t) => (t.found
      ? {
        transactionalId: t.transactionalId, state: transactionStateName(t.state), producerId: t.producerId, epoch: t.producerEpoch, timeoutMs: t.transactionTimeoutMs,
        ageMs: t.transactionStartMs > 0n && (t.state === TransactionState.TRANSACTION_STATE_ONGOING || t.state === TransactionState.TRANSACTION_STATE_PREPARE_COMMIT || t.state === TransactionState.TRANSACTION_STATE_PREPARE_ABORT) ? now - Number(t.transactionStartMs) : '',
        partitions: t.partitions.map((p) => `${p.topic}:${p.partitions.join(',')}`).join(' '),
        pendingOffsets: t.pendingOffsets.map((g) => `${g.groupId}(${g.offsets.map((x) => `${x.topic}:${x.partition}=${x.offset}`).join(' ')})`).join(' '),
      }
      : { transactionalId: t.transactionalId, state: '(unknown)' })));
  });
}));
transactions.command('abort <transactionalId>').description('abort the open transaction of a transactional id (fences its producer)').action((id: string) => withTransactions(async (admin) => {
  const res = await admin.abortTransaction(id);
  print({ transactionalId: id, previousState: transactionStateName(res.previousState), state: transactionStateName(res.state) }, () => console.log(`${id}: ${transactionStateName(res.previousState)} -> ${transactionStateName(res.state)}`));
}));

addSchemaCommands(program, { registryUrl: () => program.opts().schemaRegistry as string, json, print }, (fn) => run(() => fn()));
addConnectCommands(program, { client, tls: tlsOptions, print, table });

const perf = program.command('perf').description('load generators, like Kafka’s perf-test tools');
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
perf.command('produce <topic>').description('produce fixed-size records as fast as allowed; report throughput and send latency')
  .option('--num-records <n>', 'records to send', '100000').option('--record-size <bytes>', 'value size', '1024')
  .option('--batch-size <n>', 'records per send (one batch per partition)', '1000').option('--concurrency <n>', 'sends in flight', '4')
  .addOption(new Option('--acks <acks>', 'acknowledgement').choices(['0', '1', 'all']).default('1'))
  .option('--no-progress', 'no live progress line on a terminal')
  .action((topic: string, o: { numRecords: string; recordSize: string; batchSize: string; concurrency: string; acks: string; progress?: boolean }) => run(async (c) => {
    const total = Number(o.numRecords);
    const size = Number(o.recordSize);
    const perSend = Number(o.batchSize);
    const producer = c.producer({ acks: o.acks === '0' ? Acks.ACKS_NONE : o.acks === '1' ? Acks.ACKS_LEADER : Acks.ACKS_ALL, idempotent: false });
    const value = Buffer.alloc(size, 120);
    const latencies: number[] = [];
    let sent = 0;
    const start = performance.now();
    const shown = progress('sent', false, o);
    await Promise.all(Array.from({ length: Number(o.concurrency) }, async () => {
      while (sent < total) {
        const n = Math.min(perSend, total - sent);
        sent += n;
        const records = Array.from({ length: n }, () => ({ value, timestampMs: Date.now() }));
        const t0 = performance.now();
        await producer.send(topic, records);
        latencies.push(performance.now() - t0);
        shown.add(n, n * size);
      }
    }));
    shown.stop();
    const seconds = (performance.now() - start) / 1000;
    latencies.sort((a, b) => a - b);
    const result = { records: total, recordsPerSecond: Math.round(total / seconds), mbPerSecond: +((total * size) / seconds / 1e6).toFixed(1), sendLatencyMs: { p50: +pct(latencies, 0.5).toFixed(1), p95: +pct(latencies, 0.95).toFixed(1), p99: +pct(latencies, 0.99).toFixed(1), max: +pct(latencies, 1).toFixed(1) } };
    print(result, () => console.log(`${total} records sent, ${result.recordsPerSecond} records/s (${result.mbPerSecond} MB/s), send latency p50 ${result.sendLatencyMs.p50} ms, p95 ${result.sendLatencyMs.p95} ms, p99 ${result.sendLatencyMs.p99} ms, max ${result.sendLatencyMs.max} ms`));
  }));
perf.command('consume <topic>').description('read a topic from the beginning; report throughput')
  .option('--num-records <n>', 'stop after this many records', '100000')
  .option('--no-progress', 'no live progress line on a terminal')
  .action((topic: string, o: { numRecords: string; progress?: boolean }) => run(async (c) => {
    const total = Number(o.numRecords);
    const t = await c.topic(topic, true);
    const positions = new Map<number, bigint>();
    for (const p of t.partitions) positions.set(p.partition, await c.listOffset(topic, p.partition, OffsetSpec.OFFSET_SPEC_EARLIEST));
    let count = 0;
    let bytes = 0;
    const start = performance.now();
    const shown = progress('read', false, o);
    // One Fetch per broker for all its partitions, the next in flight while this one is counted.
    const fetcher = new Fetcher(c, { maxBytesPerPartition: 8 << 20 });
    for (const p of t.partitions) fetcher.assign(topic, p.partition, positions.get(p.partition)!);
    let lastRecordAt = performance.now();
    // Gives up after a minute if the topic holds fewer records than asked for.
    const watchdog = setInterval(() => { if (performance.now() - start > 60_000 && performance.now() - lastRecordAt > 1000) fetcher.close(); }, 250);
    try {
      while (count < total) {
        const chunk = await fetcher.next();
        if (!chunk) break;
        if (chunk.kind === 'error') throw chunk.error;
        const before = bytes;
        for (const r of chunk.records) bytes += (r.value?.length ?? 0) + r.key.length;
        count += chunk.records.length;
        shown.add(chunk.records.length, bytes - before);
        lastRecordAt = performance.now();
      }
    } finally {
      clearInterval(watchdog);
      fetcher.close();
    }
    shown.stop();
    const seconds = (performance.now() - start) / 1000;
    const result = { records: count, recordsPerSecond: Math.round(count / seconds), mbPerSecond: +(bytes / seconds / 1e6).toFixed(1) };
    print(result, () => console.log(`${count} records read, ${result.recordsPerSecond} records/s (${result.mbPerSecond} MB/s)`));
  }));

// ACLs, with kafka-acls' options: principals allowed or denied, one or more operations, and the
// resources (topics, groups, transactional ids, the cluster) by literal name or prefix.
type AclOptions = {
  allowPrincipal?: string[]; denyPrincipal?: string[]; principal?: string; operation?: string[];
  topic?: string[]; group?: string[]; transactionalId?: string[]; subject?: string[]; connector?: string[]; cluster?: boolean; resourcePatternType: string;
};
const aclResources = (o: AclOptions): Array<{ resourceType: ResourceType; resourceName: string }> => [
  ...(o.topic ?? []).map((n) => ({ resourceType: 'topic' as const, resourceName: n })),
  ...(o.group ?? []).map((n) => ({ resourceType: 'group' as const, resourceName: n })),
  ...(o.transactionalId ?? []).map((n) => ({ resourceType: 'transactional_id' as const, resourceName: n })),
  ...(o.subject ?? []).map((n) => ({ resourceType: 'subject' as const, resourceName: n })),
  ...(o.connector ?? []).map((n) => ({ resourceType: 'connector' as const, resourceName: n })),
  ...(o.cluster ? [{ resourceType: 'cluster' as const, resourceName: CLUSTER_RESOURCE_NAME }] : []),
];
const aclResourceOptions = (cmd: Command, patternChoices: string[], patternDefault: string) => cmd
  .option('--topic <name>', 'topic (repeatable; "*" is every topic)', collect)
  .option('--group <id>', 'consumer group (repeatable)', collect)
  .option('--transactional-id <id>', 'transactional id (repeatable)', collect)
  .option('--subject <name>', 'schema registry subject (repeatable; docs/schemas.md)', collect)
  .option('--connector <name>', 'Connect connector (repeatable; docs/connect.md)', collect)
  .option('--cluster', 'the cluster itself (create topics, manage ACLs, internal RPCs)')
  .addOption(new Option('--resource-pattern-type <type>', 'how the names match').choices(patternChoices).default(patternDefault));
function aclFilters(o: AclOptions): AclFilter[] {
  const base: AclFilter = {
    ...(o.principal ? { principal: o.principal } : {}),
    ...(o.resourcePatternType !== 'any' ? { patternType: o.resourcePatternType as AclFilter['patternType'] } : {}),
  };
  const resources = aclResources(o);
  const ops = o.operation ?? [];
  const withOps = (f: AclFilter) => (ops.length === 0 ? [f] : ops.map((operation) => ({ ...f, operation: operation as Operation })));
  return (resources.length === 0 ? [base] : resources.map((r) => ({ ...base, ...r }))).flatMap(withOps);
}
const aclRow = (a: AclBinding) => ({ principal: a.principal, permission: a.permission, operation: a.operation, resource: a.resourceType, pattern: a.patternType, name: a.resourceName });
const ACL_COLUMNS = ['principal', 'permission', 'operation', 'resource', 'pattern', 'name'];

const acls = program.command('acls').description('create, list and delete ACLs (docs/security.md)');
aclResourceOptions(acls.command('create').description('allow or deny principals operations on resources')
  .option('--allow-principal <principal>', 'principal to allow, e.g. User:alice or User:* (repeatable)', collect)
  .option('--deny-principal <principal>', 'principal to deny (repeatable; a deny wins over any allow)', collect)
  .requiredOption('--operation <op>', `operation (repeatable): ${OPERATIONS.join(', ')}`, collect), ['literal', 'prefixed'], 'literal')
  .action((o: AclOptions) => run(async (c) => {
    const resources = aclResources(o);
    if (resources.length === 0) throw new CommanderError(2, 'skein.usage', 'name a resource: --topic, --group, --transactional-id, --subject, --connector or --cluster');
    const principals = [...(o.allowPrincipal ?? []).map((p) => [p, 'allow'] as const), ...(o.denyPrincipal ?? []).map((p) => [p, 'deny'] as const)];
    if (principals.length === 0) throw new CommanderError(2, 'skein.usage', 'name a principal: --allow-principal or --deny-principal');
    const bindings: AclBinding[] = [];
    for (const [principal, permission] of principals) {
      for (const r of resources) {
        for (const operation of o.operation ?? []) {
          if (!(OPERATIONS as readonly string[]).includes(operation)) throw new CommanderError(2, 'skein.usage', `unknown operation "${operation}" (one of ${OPERATIONS.join(', ')})`);
          bindings.push({ principal, permission, operation: operation as Operation, ...r, patternType: o.resourcePatternType as AclBinding['patternType'] });
        }
      }
    }
    const res = await c.meta((m) => m.createAcls.bind(m), { acls: bindings.map(aclToProto) });
    print({ created: res.created, acls: bindings }, () => {
      table(ACL_COLUMNS, bindings.map(aclRow));
      console.log(`${res.created} ACL(s) created (${bindings.length - res.created} existed)`);
    });
  }));
aclResourceOptions(acls.command('list').description('list ACLs, all or those the options select')
  .option('--principal <principal>', 'only this principal')
  .option('--operation <op>', 'only this operation (repeatable)', collect), ['any', 'match', 'literal', 'prefixed'], 'any')
  .action((o: AclOptions) => run(async (c) => {
    const seen = new Map<string, AclBinding>();
    for (const filter of aclFilters(o)) {
      const res = await c.meta((m) => m.describeAcls.bind(m), { filter: aclFilterToProto(filter) });
      for (const p of res.acls) {
        const a = aclFromProto(p);
        seen.set(JSON.stringify(a), a);
      }
    }
    const list = [...seen.values()];
    print(list, () => table(ACL_COLUMNS, list.map(aclRow)));
  }));
aclResourceOptions(acls.command('delete').description('delete the ACLs the options select (--all for every ACL)')
  .option('--principal <principal>', 'only this principal')
  .option('--operation <op>', 'only this operation (repeatable)', collect)
  .option('--all', 'every ACL in the cluster'), ['any', 'match', 'literal', 'prefixed'], 'literal')
  .action((o: AclOptions & { all?: boolean }) => run(async (c) => {
    if (!o.all && !o.principal && aclResources(o).length === 0 && !o.operation) throw new CommanderError(2, 'skein.usage', 'select ACLs with --principal, a resource or --operation (or pass --all)');
    const res = await c.meta((m) => m.deleteAcls.bind(m), { filters: (o.all ? [{}] : aclFilters(o)).map(aclFilterToProto) });
    const deleted = res.deleted.map(aclFromProto);
    print({ deleted }, () => {
      table(ACL_COLUMNS, deleted.map(aclRow));
      console.log(`${deleted.length} ACL(s) deleted`);
    });
  }));

// Client quotas, after kafka-configs --entity-type users/clients: produce and fetch byte rates per
// user (principal name) and/or client id, '<default>' via --user-default / --client-id-default.
interface QuotaOptions { user?: string; userDefault?: boolean; clientId?: string; clientIdDefault?: boolean }
const QUOTA_COLUMNS = ['user', 'client id', 'producer_byte_rate', 'consumer_byte_rate'];
const quotaRow = (q: ClientQuota): Record<string, Cell> => ({
  user: q.entity.user ?? '', 'client id': q.entity.clientId ?? '', producer_byte_rate: q.producerByteRate ?? '', consumer_byte_rate: q.consumerByteRate ?? '',
});
function quotaEntity(o: QuotaOptions): QuotaEntity {
  if (o.user !== undefined && o.userDefault) throw new CommanderError(2, 'skein.usage', '--user and --user-default are exclusive');
  if (o.clientId !== undefined && o.clientIdDefault) throw new CommanderError(2, 'skein.usage', '--client-id and --client-id-default are exclusive');
  const user = o.userDefault ? DEFAULT_QUOTA_ENTITY : o.user;
  const clientId = o.clientIdDefault ? DEFAULT_QUOTA_ENTITY : o.clientId;
  return { ...(user !== undefined ? { user } : {}), ...(clientId !== undefined ? { clientId } : {}) };
}
function byteRate(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new CommanderError(2, 'skein.usage', `${flag} must be a positive integer (bytes per second), got "${v}"`);
  return n;
}
const quotaEntityOptions = (cmd: Command) => cmd
  .option('--user <name>', 'the user (principal name: alice for User:alice)')
  .option('--user-default', 'the default for users without a quota of their own')
  .option('--client-id <id>', 'the client id (the client\'s clientId option)')
  .option('--client-id-default', 'the default for client ids without a quota of their own');
const quotas = program.command('quotas').description('set, remove and list client quotas: produce and fetch byte rates (docs/security.md)');
quotaEntityOptions(quotas.command('alter').description('set or remove byte rates of a user and/or client id'))
  .option('--producer-byte-rate <bytes/s>', 'bytes per second the entity may produce through each broker')
  .option('--consumer-byte-rate <bytes/s>', 'bytes per second the entity may fetch from each broker')
  .option('--delete <quota>', 'remove producer_byte_rate or consumer_byte_rate (repeatable)', collect)
  .action((o: QuotaOptions & { producerByteRate?: string; consumerByteRate?: string; delete?: string[] }) => run(async (c) => {
    const entity = quotaEntity(o);
    if (entity.user === undefined && entity.clientId === undefined) throw new CommanderError(2, 'skein.usage', 'name an entity: --user, --user-default, --client-id or --client-id-default');
    for (const d of o.delete ?? []) if (d !== 'producer_byte_rate' && d !== 'consumer_byte_rate') throw new CommanderError(2, 'skein.usage', `--delete takes producer_byte_rate or consumer_byte_rate, got "${d}"`);
    const alteration = {
      entity,
      producerByteRate: byteRate(o.producerByteRate, '--producer-byte-rate'),
      consumerByteRate: byteRate(o.consumerByteRate, '--consumer-byte-rate'),
      removeProducerByteRate: o.delete?.includes('producer_byte_rate') ?? false,
      removeConsumerByteRate: o.delete?.includes('consumer_byte_rate') ?? false,
    };
    if (alteration.producerByteRate === undefined && alteration.consumerByteRate === undefined && !alteration.removeProducerByteRate && !alteration.removeConsumerByteRate) {
      throw new CommanderError(2, 'skein.usage', 'give --producer-byte-rate, --consumer-byte-rate or --delete');
    }
    const result = await c.alterClientQuotas([alteration]);
    print(result, () => (result.length > 0 ? table(QUOTA_COLUMNS, result.map(quotaRow)) : console.log('no quota left for this entity')));
  }));
quotaEntityOptions(quotas.command('describe').description('list client quotas, all or those of a user and/or client id'))
  .action((o: QuotaOptions) => run(async (c) => {
    const list = await c.describeClientQuotas(quotaEntity(o));
    print(list, () => table(QUOTA_COLUMNS, list.map(quotaRow)));
  }));

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help' || err.code === 'commander.version') process.exit(0);
    process.exit(2);
  }
  const e = err as { reason?: string; message?: string };
  console.error(`skein: ${e.reason ? `${e.reason}: ` : ''}${e.message ?? String(err)}`);
  process.exit(1);
}
