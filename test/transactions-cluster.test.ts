// Transactions end to end (issue 16) on real etcd, three brokers (RF 3) and two stateless
// coordinator instances: a transaction across 3 topics x 6 partitions is seen whole by a
// read_committed reader (nothing of it while open, all of it after the commit), an aborted one
// never; read_uncommitted sees both with the markers skipped; a zombie (old epoch) is fenced; a
// transaction left open past its timeout is aborted by the coordinator; and a coordinator
// SIGKILLed between the decision and the markers (failpoint txn.afterDecision) is finished by
// another instance, the group offsets committed with it.
import { spawn } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SkeinClient, type TransactionalProducer } from '@skein/client';
import { OffsetSpec } from '@skein/proto/skein/broker/v1/broker.js';
import { GroupCoordinatorServiceClient } from '@skein/proto/skein/group/v1/group.js';
import { TransactionCoordinatorServiceClient, TransactionState } from '@skein/proto/skein/txn/v1/txn.js';
import { skipUnless } from './harness/requirements.js';
import { startEtcd, type EtcdCluster } from './harness/etcd.js';
import { metadataClient, promisify, rejection } from './harness/clients.js';
import { startService, stopAll, waitFor, type ServiceProcess } from './harness/services.js';
import { BROKER_ENTRY, CLI_ENTRY, COORDINATOR_ENTRY, METADATA_ENTRY } from './harness/entries.js';

const skip = skipUnless(import.meta.url, 'etcd');

let etcd: EtcdCluster;
let prefix = '';
let metadata: ServiceProcess;
const coordinators: ServiceProcess[] = [];
let client: SkeinClient;
let txnAdmin: ReturnType<typeof promisify<TransactionCoordinatorServiceClient>>;
let groupAdmin: ReturnType<typeof promisify<GroupCoordinatorServiceClient>>;
const TOPICS = ['txn-a', 'txn-b', 'txn-c'];
const PARTITIONS = 6;

function coordinatorArgs(): string[] {
  return [
    '--store',
    `etcd://${etcd.endpoints.join(',')}`,
    '--prefix',
    prefix,
    '--metadata-addresses',
    metadata.address,
    '--txn-sweep-interval-ms',
    '200',
    '--txn-completion-grace-ms',
    '500',
    '--txn-completion-wait-ms',
    '3000',
  ];
}

beforeAll(async () => {
  if (skip) return;
  etcd = await startEtcd({ members: 1 });
  prefix = `/txn-${process.pid}/`;
  metadata = await startService({ name: 'metadata', entry: METADATA_ENTRY, args: ['--store', `etcd://${etcd.endpoints.join(',')}`, '--prefix', prefix] });
  const meta = metadataClient(metadata.address);
  await Promise.all(
    [1, 2, 3].map((id) =>
      startService({
        name: `broker-${id}`,
        entry: BROKER_ENTRY,
        dataDirFlag: '--data-dir',
        args: ['--broker-id', String(id), '--metadata-addresses', metadata.address],
      }),
    ),
  );
  await waitFor(async () => (await meta.getClusterMetadata({ topics: [] })).metadata!.brokers.length === 3, {
    timeoutMs: 20_000,
    message: 'three brokers registered',
  });
  for (const name of ['coord-a', 'coord-b']) coordinators.push(await startService({ name, entry: COORDINATOR_ENTRY, args: coordinatorArgs() }));
  for (const t of [...TOPICS, 'txn-in']) await meta.createTopic({ name: t, partitions: PARTITIONS, replicationFactor: 3, configs: {}, validateOnly: false });
  meta.close();
  client = new SkeinClient({ metadata: [metadata.address] });
  txnAdmin = promisify(new TransactionCoordinatorServiceClient(coordinators[0]!.address, grpc.credentials.createInsecure()));
  groupAdmin = promisify(new GroupCoordinatorServiceClient(coordinators[0]!.address, grpc.credentials.createInsecure()));
  // Every partition open on its leader before the first transaction.
  await waitFor(
    async () => {
      for (const t of [...TOPICS, 'txn-in']) for (let p = 0; p < PARTITIONS; p++) await client.listOffset(t, p, OffsetSpec.OFFSET_SPEC_LATEST);
      return true;
    },
    { timeoutMs: 30_000, message: 'partitions open on their leaders' },
  );
}, 120_000);

afterAll(async () => {
  client?.close();
  txnAdmin?.close();
  groupAdmin?.close();
  await stopAll();
  await etcd?.stop();
});

/** Sends to an exact partition: the key is the partition number. */
const byKey = (key: Buffer | undefined) => Number(key!.toString());

function producer(
  transactionalId: string,
  extra: { transactionTimeoutMs?: number; coordinator?: string[]; coordinatorRetryMs?: number } = {},
): TransactionalProducer {
  return client.producer({ transactionalId, partitioner: byKey, lingerMs: 1, coordinator: extra.coordinator ?? coordinators.map((c) => c.address), ...extra });
}

/** Every record value of a partition from offset 0, as a reader with this isolation level sees them. */
async function readAll(
  topic: string,
  partition: number,
  isolationLevel: 'read_committed' | 'read_uncommitted',
): Promise<{ values: string[]; lastStableOffset: bigint; highWatermark: bigint }> {
  const values: string[] = [];
  let offset = 0n;
  for (;;) {
    const res = await client.fetch(topic, partition, offset, { isolationLevel });
    values.push(...res.records.map((r) => r.value!.toString()));
    const end = isolationLevel === 'read_committed' ? res.lastStableOffset : res.highWatermark;
    const next = res.records.length > 0 ? res.records[res.records.length - 1]!.offset + 1n : (res.nextOffset ?? offset);
    offset = next > offset ? next : offset;
    if (offset >= end || (res.records.length === 0 && res.nextOffset === undefined))
      return { values, lastStableOffset: res.lastStableOffset, highWatermark: res.highWatermark };
  }
}

async function sendEverywhere(p: TransactionalProducer, tag: string, perPartition = 3): Promise<void> {
  await Promise.all(
    TOPICS.flatMap((t) =>
      Array.from({ length: PARTITIONS }, (_, partition) =>
        p.send(
          t,
          Array.from({ length: perPartition }, (_, i) => ({ key: String(partition), value: `${tag}|${t}|${partition}|${i}` })),
        ),
      ),
    ),
  );
}

async function describeTxn(id: string) {
  return (await txnAdmin.describeTransactions({ transactionalIds: [id] })).transactions[0]!;
}

function skein(args: string[], stdin = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI_ENTRY, '--metadata', metadata.address, '--coordinator', coordinators.map((c) => c.address).join(','), ...args]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

describe.skipIf(skip)('transactions', () => {
  it('a committed transaction across 3 topics x 6 partitions is seen whole by read_committed, an aborted one never; read_uncommitted sees both without markers', async () => {
    const p = producer('txn-whole');
    await p.initTransactions();
    p.beginTransaction();
    await sendEverywhere(p, 'c1');
    await p.commitTransaction();

    p.beginTransaction();
    await sendEverywhere(p, 'ab');
    await p.abortTransaction();

    // An open transaction: written, acknowledged, yet invisible to read_committed, which stops at
    // the last stable offset below it on every partition.
    p.beginTransaction();
    await sendEverywhere(p, 'c2');
    for (const t of TOPICS) {
      for (let partition = 0; partition < PARTITIONS; partition++) {
        const rc = await readAll(t, partition, 'read_committed');
        expect(rc.values, `${t}-${partition} while open`).toEqual([0, 1, 2].map((i) => `c1|${t}|${partition}|${i}`));
        expect(rc.lastStableOffset).toBeLessThan(rc.highWatermark);
      }
    }
    await p.commitTransaction();
    expect((await describeTxn('txn-whole')).state).toBe(TransactionState.TRANSACTION_STATE_COMPLETE_COMMIT);

    for (const t of TOPICS) {
      for (let partition = 0; partition < PARTITIONS; partition++) {
        const mine = (tag: string) => [0, 1, 2].map((i) => `${tag}|${t}|${partition}|${i}`);
        const rc = await readAll(t, partition, 'read_committed');
        expect(rc.values, `${t}-${partition} read_committed`).toEqual([...mine('c1'), ...mine('c2')]);
        expect(rc.lastStableOffset).toBe(rc.highWatermark);
        // Markers are skipped, never handed out as records: exactly the produced values, in order.
        const ru = await readAll(t, partition, 'read_uncommitted');
        expect(ru.values, `${t}-${partition} read_uncommitted`).toEqual([...mine('c1'), ...mine('ab'), ...mine('c2')]);
      }
    }
    await p.close();
  }, 60_000);

  it("fences a zombie: a second instance with the same transactional id aborts the first one's open transaction, and the first can neither send nor commit", async () => {
    const zombie = producer('txn-zombie');
    await zombie.initTransactions();
    zombie.beginTransaction();
    await zombie.send('txn-a', [{ key: '0', value: 'zombie-1' }]);
    const successor = producer('txn-zombie');
    await successor.initTransactions();
    expect(successor.identity.producerEpoch).toBeGreaterThan(zombie.identity.producerEpoch);
    // The zombie's open transaction was aborted at a bumped epoch: brokers refuse its batches,
    // the coordinator its commit.
    const late = await rejection(zombie.send('txn-a', [{ key: '0', value: 'zombie-2' }]));
    expect(['PRODUCER_FENCED', 'INVALID_TXN_STATE']).toContain(late.reason);
    const commit = await rejection(zombie.commitTransaction());
    expect(['PRODUCER_FENCED', 'INVALID_TXN_STATE']).toContain(commit.reason);
    const abort = await rejection(zombie.abortTransaction());
    expect(abort.reason).toBe('PRODUCER_FENCED');
    expect(zombie.state).toBe('FATAL_ERROR');

    successor.beginTransaction();
    await successor.send('txn-a', [{ key: '0', value: 'successor-1' }]);
    await successor.commitTransaction();
    const seen = (await readAll('txn-a', 0, 'read_committed')).values;
    expect(seen).toContain('successor-1');
    expect(seen.filter((v) => v.startsWith('zombie'))).toEqual([]);
    await zombie.close();
    await successor.close();
  }, 60_000);

  it('aborts a transaction left open past its timeout; the producer learns TRANSACTION_TIMED_OUT, recovers on abort, and the partition is not pinned', async () => {
    const p = producer('txn-timeout', { transactionTimeoutMs: 1000 });
    await p.initTransactions();
    p.beginTransaction();
    await p.send('txn-b', [{ key: '1', value: 'timed-out' }]);
    await waitFor(async () => (await describeTxn('txn-timeout')).state === TransactionState.TRANSACTION_STATE_COMPLETE_ABORT, {
      timeoutMs: 15_000,
      message: 'the coordinator aborts the transaction after its timeout',
    });
    const commit = await rejection(p.commitTransaction());
    expect(commit.reason).toBe('TRANSACTION_TIMED_OUT');
    await p.abortTransaction();
    p.beginTransaction();
    await p.send('txn-b', [{ key: '1', value: 'after-timeout' }]);
    await p.commitTransaction();
    const rc = await readAll('txn-b', 1, 'read_committed');
    expect(rc.values).toContain('after-timeout');
    expect(rc.values).not.toContain('timed-out');
    expect(rc.lastStableOffset).toBe(rc.highWatermark);
    await p.close();
  }, 60_000);

  it('a coordinator SIGKILLed between the decision and the markers: another instance finishes the commit, offsets and all', async () => {
    const doomed = await startService({
      name: 'coord-doomed',
      entry: COORDINATOR_ENTRY,
      args: coordinatorArgs(),
      env: { SKEIN_FAILPOINTS: 'txn.afterDecision=exit' },
    });
    const p = producer('txn-crash', { coordinator: [doomed.address], coordinatorRetryMs: 1000 });
    await p.initTransactions();
    p.beginTransaction();
    await sendEverywhere(p, 'crash', 1);
    await p.sendOffsetsToTransaction([{ topic: 'txn-in', partition: 0, offset: 42n }], 'txn-crash-group');
    await rejection(p.commitTransaction());
    expect((await doomed.exited()).signal).toBe('SIGKILL');
    expect(doomed.logs()).toContain('failpoint txn.afterDecision: exit');
    // The decision was recorded with the offsets in one compare-and-set: they are committed already.
    const offsets = await groupAdmin.fetchOffsets({ groupId: 'txn-crash-group', partitions: [] });
    expect(offsets.offsets.map((o) => [o.topic, o.partition, o.offset])).toEqual([['txn-in', 0, 42n]]);
    await waitFor(async () => (await describeTxn('txn-crash')).state === TransactionState.TRANSACTION_STATE_COMPLETE_COMMIT, {
      timeoutMs: 15_000,
      message: 'another instance completes the decided commit',
    });
    for (const t of TOPICS) {
      for (let partition = 0; partition < PARTITIONS; partition++) {
        const rc = await readAll(t, partition, 'read_committed');
        expect(rc.values, `${t}-${partition}`).toContain(`crash|${t}|${partition}|0`);
        expect(rc.lastStableOffset).toBe(rc.highWatermark);
      }
    }
    await p.close();
  }, 60_000);
  it('CLI: produce --transactional-id, consume --isolation read_committed, transactions list / describe / abort', async () => {
    const lines = Array.from({ length: 10 }, (_, i) => `${i % PARTITIONS}|cli-${i}`).join('\n');
    const produced = await skein(['produce', 'txn-c', '--transactional-id', 'txn-cli', '--key-separator', '|', '--batch-size', '5'], lines);
    expect(produced.code, produced.stderr).toBe(0);
    expect(produced.stderr).toContain('in 2 transaction(s)');
    // A hanging transaction: open, never ended; read_committed stops before it, an operator aborts it.
    const hanging = producer('txn-hanging');
    await hanging.initTransactions();
    hanging.beginTransaction();
    await hanging.send('txn-c', [{ key: '0', value: 'hanging' }]);
    const listed = await skein(['transactions', 'list', '--state', 'ongoing', '--output', 'json']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout).map((t: { transactionalId: string }) => t.transactionalId)).toContain('txn-hanging');
    const described = await skein(['transactions', 'describe', 'txn-hanging', 'no-such-id']);
    expect(described.code, described.stderr).toBe(0);
    expect(described.stdout).toMatch(/txn-hanging\s+ONGOING/);
    expect(described.stdout).toContain('txn-c:0');
    expect(described.stdout).toMatch(/no-such-id\s+\(unknown\)/);
    const consumedBefore = await skein(['consume', 'txn-c', '--from-beginning', '--isolation', 'read_committed', '--idle-ms', '1000']);
    expect(consumedBefore.code, consumedBefore.stderr).toBe(0);
    expect(consumedBefore.stdout).not.toContain('hanging');
    const aborted = await skein(['transactions', 'abort', 'txn-hanging']);
    expect(aborted.code, aborted.stderr).toBe(0);
    expect(aborted.stdout).toContain('txn-hanging: ONGOING -> COMPLETE_ABORT');
    expect((await rejection(hanging.commitTransaction())).reason).toBe('PRODUCER_FENCED');
    const consumed = await skein(['consume', 'txn-c', '--from-beginning', '--isolation', 'read_committed', '--idle-ms', '1000']);
    const values = consumed.stdout.trim().split('\n');
    for (let i = 0; i < 10; i++) expect(values).toContain(`cli-${i}`);
    expect(values).not.toContain('hanging');
    expect(values.filter((v) => v.startsWith('ab|'))).toEqual([]);
    const uncommitted = await skein(['consume', 'txn-c', '--from-beginning', '--idle-ms', '1000']);
    expect(uncommitted.stdout).toContain('hanging');
    await hanging.close();
  }, 60_000);
});
