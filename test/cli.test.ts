// The skein CLI against a real cluster (etcd, metadata, two brokers): topics, keyed produce from
// stdin with Kafka-compatible partitioning, consume, and exit codes.
import { spawn, spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partitionForKey } from '@skein/client';
import { startStores, type TestStores } from './harness/stores.js';
import { startService, stopAll, waitFor } from './harness/services.js';
import { metadataClient } from './harness/clients.js';
import { BROKER_ENTRY, CLI_ENTRY, COORDINATOR_ENTRY, METADATA_ENTRY } from './harness/entries.js';

const hasScript = spawnSync('script', ['--version']).status === 0;
let stores: TestStores;
let metadataAddress = '';
let coordinatorAddress = '';

beforeAll(async () => {
  stores = await startStores();
  const metadata = await startService({ name: 'metadata', entry: METADATA_ENTRY, args: stores.args('metadata', `/cli-${process.pid}/`) });
  metadataAddress = metadata.address;
  for (const id of [1, 2]) await startService({ name: `broker-${id}`, entry: BROKER_ENTRY, dataDirFlag: '--data-dir', args: ['--broker-id', String(id), '--metadata-addresses', metadata.address] });
  const meta = metadataClient(metadata.address);
  await waitFor(async () => (await meta.getClusterMetadata({ topics: [] })).metadata!.brokers.length === 2, { timeoutMs: 15_000, message: 'brokers registered' });
  meta.close();
  coordinatorAddress = (await startService({ name: 'coordinator', entry: COORDINATOR_ENTRY, args: [...stores.args('coordinator', `/cli-${process.pid}/`), '--metadata-addresses', metadata.address] })).address;
}, 60_000);

afterAll(async () => {
  await stopAll();
  await stores?.stop();
});

function skein(args: string[], stdin = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI_ENTRY, '--metadata', metadataAddress, '--coordinator', coordinatorAddress, ...args]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

describe('skein CLI', () => {
  it('creates a topic, produces keyed lines from stdin to Kafka’s partitions, and consumes them', async () => {
    expect((await skein(['topics', 'create', 'cli-orders', '-p', '6'])).code).toBe(0);
    const lines = Array.from({ length: 1000 }, (_, i) => `user-${i % 50}|order-${i}`).join('\n');
    const produced = await skein(['produce', 'cli-orders', '--key-separator', '|', '--header', 'source=test'], lines);
    expect(produced.code, produced.stderr).toBe(0);
    await waitFor(async () => (await skein(['consume', 'cli-orders', '--from-beginning', '--output', 'json', '--print', 'partition,offset,key,value,headers'])).stdout.trim().split('\n').length === 1000, { timeoutMs: 15_000, message: 'all records readable' });
    const consumed = (await skein(['consume', 'cli-orders', '--from-beginning', '--output', 'json', '--print', 'partition,offset,key,value,headers'])).stdout.trim().split('\n').map((l) => JSON.parse(l) as { partition: number; key: string; value: string; headers: Record<string, string> });
    expect(consumed.map((r) => r.value).sort()).toEqual(Array.from({ length: 1000 }, (_, i) => `order-${i}`).sort());
    for (const r of consumed) {
      expect(r.partition).toBe(partitionForKey(Buffer.from(r.key), 6));
      expect(r.headers).toEqual({ source: 'test' });
    }
    // Per key, records keep their produce order.
    const forKey = consumed.filter((r) => r.key === 'user-7').map((r) => Number(r.value.split('-')[1]));
    expect(forKey).toEqual([...forKey].sort((a, b) => a - b));
    const listed = JSON.parse((await skein(['--output', 'json', 'topics', 'list'])).stdout) as Array<{ name: string; partitionCount: number }>;
    expect(listed.find((t) => t.name === 'cli-orders')?.partitionCount).toBe(6);
  });

  it('perf produce and perf consume report throughput and latency', async () => {
    expect((await skein(['topics', 'create', 'cli-perf', '-p', '2'])).code).toBe(0);
    const produced = await skein(['--output', 'json', 'perf', 'produce', 'cli-perf', '--num-records', '3000', '--record-size', '100', '--batch-size', '500']);
    expect(produced.code, produced.stderr).toBe(0);
    const p = JSON.parse(produced.stdout) as { records: number; recordsPerSecond: number; sendLatencyMs: { p99: number } };
    expect(p.records).toBe(3000);
    expect(p.recordsPerSecond).toBeGreaterThan(0);
    const consumed = JSON.parse((await skein(['--output', 'json', 'perf', 'consume', 'cli-perf', '--num-records', '3000'])).stdout) as { records: number };
    expect(consumed.records).toBe(3000);
  });

  it('groups: describe shows lag per partition; reset-offsets is a dry run unless --execute', async () => {
    expect((await skein(['topics', 'create', 'cli-lag', '-p', '1'])).code).toBe(0);
    expect((await skein(['produce', 'cli-lag'], Array.from({ length: 20 }, (_, i) => `v${i}`).join('\n'))).code).toBe(0);
    expect((await skein(['groups', 'reset-offsets', 'cli-group', 'cli-lag', '--to', 'offset', '--value', '5', '--execute'])).code).toBe(0);
    const described = JSON.parse((await skein(['--output', 'json', 'groups', 'describe', 'cli-group'])).stdout) as { lags: Array<{ committedOffset: string; logEndOffset: string; lag: string }> };
    expect(described.lags[0]).toMatchObject({ committedOffset: '5', logEndOffset: '20', lag: '15' });
    const dry = await skein(['--output', 'json', 'groups', 'reset-offsets', 'cli-group', 'cli-lag', '--to', 'earliest']);
    expect((JSON.parse(dry.stdout) as Array<{ offset: string }>)[0]!.offset).toBe('0');
    const after = JSON.parse((await skein(['--output', 'json', 'groups', 'describe', 'cli-group'])).stdout) as { lags: Array<{ committedOffset: string }> };
    expect(after.lags[0]!.committedOffset).toBe('5');
    expect((await skein(['groups', 'describe', 'no-group'])).stderr).toContain('UNKNOWN_GROUP');
  });

  it('prints tables as aligned columns (no console.table index column or quotes), and no progress when piped', async () => {
    expect((await skein(['topics', 'create', 'cli-table', '-p', '2', '-c', 'retention.ms=86400000'])).code).toBe(0);
    const produced = await skein(['produce', 'cli-table'], Array.from({ length: 30 }, (_, i) => `v${i}`).join('\n'));
    // stderr is a pipe here: the summary line alone, no progress line.
    expect(produced.stderr).toBe('produced 30 records to cli-table\n');
    expect((await skein(['groups', 'reset-offsets', 'cli-table-group', 'cli-table', '--to', 'earliest', '--execute'])).code).toBe(0);
    for (const args of [['cluster'], ['topics', 'list'], ['topics', 'describe', 'cli-table'], ['groups', 'list'], ['groups', 'describe', 'cli-table-group']]) {
      const out = await skein(args);
      expect(out.code, out.stderr).toBe(0);
      expect(out.stdout, args.join(' ')).not.toContain('(index)');
      expect(out.stdout, args.join(' ')).not.toMatch(/['"│┌└─]/);
    }
    const described = (await skein(['topics', 'describe', 'cli-table'])).stdout.split('\n');
    expect(described[1]!.split(/\s+/)).toEqual(['PARTITION', 'LEADER', 'EPOCH', 'REPLICAS', 'ISR']);
    expect(described).toContainEqual(expect.stringMatching(/^retention\.ms\s+86400000$/));
    const lags = (await skein(['groups', 'describe', 'cli-table-group'])).stdout.split('\n').filter((l) => l.startsWith('cli-table '));
    expect(lags.map((l) => l.trim().split(/\s+/)).sort()).toEqual([['cli-table', '0', '0', expect.any(String), expect.any(String)], ['cli-table', '1', '0', expect.any(String), expect.any(String)]]);
  });

  // util-linux `script` gives the CLI a pseudo-terminal for stdin, stdout and stderr.
  it.skipIf(!hasScript)('shows live progress on a terminal while producing, and clears it for the summary', async () => {
    expect((await skein(['topics', 'create', 'cli-tty'])).code).toBe(0);
    const command = [process.execPath, CLI_ENTRY, '--metadata', metadataAddress, '--coordinator', coordinatorAddress, 'produce', 'cli-tty', '--batch-size', '10'].map((a) => `'${a}'`).join(' ');
    const child = spawn('script', ['-q', '-e', '-c', command, '/dev/null'], { env: { ...process.env, TERM: 'xterm' } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      // Lines typed at the terminal: the command runs until end of input, so the progress line
      // has all the time it needs to appear.
      child.stdin.write(Array.from({ length: 50 }, (_, i) => `t${i}`).join('\n') + '\n');
      await waitFor(() => /50 records produced {2}[\d,]+ records\/s {2}[\d.]+ MB\/s {2}0\.0 MB/.test(out), { timeoutMs: 15_000, message: 'a progress line on the terminal' }).catch((err: Error) => {
        throw new Error(`${err.message}; the terminal showed ${JSON.stringify(out.slice(-500))}`);
      });
      child.stdin.write('\x04'); // Ctrl-D: end of input
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    expect(out).toMatch(/\r\x1b\[Kproduced 50 records to cli-tty/);
  });

  it('exits 1 with the reason when the cluster refuses, and 2 on usage errors', async () => {
    const unknown = await skein(['topics', 'describe', 'no-such-topic']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('UNKNOWN_TOPIC');
    expect((await skein(['topics', 'frobnicate'])).code).toBe(2);
    expect((await skein(['topics', 'create', 'bad/name'])).stderr).toContain('INVALID_TOPIC_NAME');
    expect((await skein(['--help'])).code).toBe(0);
  });
});
