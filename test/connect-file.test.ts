// Connect runtime and the file connectors (issue 19): a file source -> topic -> file sink pipeline
// on two workers copies a file byte for byte while the worker running the sink is SIGKILLed
// mid-copy: its tasks move to the other worker, the sink cuts its file back to the last flushed
// position and resumes from there, and the (exactly-once) source resumes from its committed
// offsets. 100 MB by default; SKEIN_CONNECT_FILE_MB changes the size.
import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServiceRole } from '@skein/client';
import { ConnectorState } from '@skein/proto/skein/connect/v1/connect.js';
import { startConnectCluster, type ConnectCluster } from './harness/connect-cluster.js';
import { rejection } from './harness/clients.js';
import { waitFor } from './harness/wait.js';
import { CLI_ENTRY } from './harness/entries.js';

const MB = Number(process.env.SKEIN_CONNECT_FILE_MB ?? 100);
let cluster: ConnectCluster;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'skein-connect-file-'));
  cluster = await startConnectCluster({ workers: 2 });
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function sha256(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (c) => h.update(c))
      .on('end', () => resolve(h.digest('hex')))
      .on('error', reject);
  });
}

/** Lines of varying length with every byte value but '\n' somewhere, so a lossy copy shows. */
function writeInput(path: string, bytes: number): void {
  const chunks: Buffer[] = [];
  let total = 0;
  let i = 0;
  while (total < bytes) {
    const len = 20 + ((i * 7919) % 180);
    const line = Buffer.alloc(len + 1);
    for (let j = 0; j < len; j++) {
      const b = (i * 31 + j * 17) % 256;
      line[j] = b === 10 ? 11 : b;
    }
    line[len] = 10;
    chunks.push(line);
    total += line.length;
    i++;
  }
  writeFileSync(path, Buffer.concat(chunks));
}

describe('connect: file source -> topic -> file sink', () => {
  it('validates configs and refuses bad requests with precise reasons', async () => {
    const connect = cluster.connect('w1');
    const plugins = await connect.listPlugins({});
    expect(plugins.plugins.map((p) => p.connectorClass)).toEqual(expect.arrayContaining(['FileSource', 'FileSink']));
    const v = await connect.validateConfig({ config: { 'connector.class': 'FileSink', topics: '' } });
    expect(v.errorCount).toBe(2); // file missing, no topics
    expect((await rejection(connect.createConnector({ name: 'bad', config: { 'connector.class': 'FileSink' } }))).reason).toBe('INVALID_CONNECTOR_CONFIG');
    expect((await rejection(connect.createConnector({ name: 'bad name!', config: {} }))).reason).toBe('INVALID_REQUEST');
    expect((await rejection(connect.getConnectorStatus({ name: 'nope' }))).reason).toBe('UNKNOWN_CONNECTOR');
  });

  it('skein connect finds the workers through the metadata service', async () => {
    const cli = (...args: string[]) =>
      execFileSync(process.execPath, [CLI_ENTRY, '--metadata', cluster.metadata.address, '--output', 'json', 'connect', ...args], {
        encoding: 'utf8',
        timeout: 30_000,
      });
    // Registration is asynchronous: wait until the workers are listed.
    await waitFor(async () => (await cluster.client.findServiceInstances(ServiceRole.SERVICE_ROLE_CONNECT)).length === 2, {
      timeoutMs: 20_000,
      message: 'two workers registered',
    });
    expect((JSON.parse(cli('plugins')) as Array<{ connectorClass: string }>).map((p) => p.connectorClass)).toContain('FileSink');
    cli('create', 'cli-made', '-c', 'connector.class=FileSink', '-c', `file=${join(dir, 'cli.txt')}`, '-c', 'topics=cli-topic');
    expect(JSON.parse(cli('list'))).toEqual([{ name: 'cli-made', type: 'sink', state: expect.any(String), taskCount: 1 }]);
    cli('delete', 'cli-made');
    expect(JSON.parse(cli('list'))).toEqual([]);
  });

  it(`copies a ${MB} MB file byte for byte across a SIGKILL of the sink's worker`, async () => {
    const input = join(dir, 'in.txt');
    const output = join(dir, 'out.txt');
    writeInput(input, MB * 1024 * 1024);
    const size = statSync(input).size;
    await cluster.client.createTopic('file-copy', { partitions: 1, replicationFactor: 1 });
    const connect = cluster.connect('w1');
    await connect.createConnector({
      name: 'copy-in',
      config: { 'connector.class': 'FileSource', file: input, topic: 'file-copy', 'value.converter': 'bytes' },
    });
    // Created through w1, visible through w2 (the config topic is shared).
    await cluster
      .connect('w2')
      .createConnector({
        name: 'copy-out',
        config: { 'connector.class': 'FileSink', file: output, topics: 'file-copy', 'value.converter': 'bytes', 'offset.flush.interval.ms': '200' },
      })
      .catch((e) => {
        throw e;
      });
    expect((await connect.listConnectors({})).connectors.map((c) => c.name)).toEqual(['copy-in', 'copy-out']);
    expect(
      (await rejection(connect.createConnector({ name: 'copy-in', config: { 'connector.class': 'FileSource', file: input, topic: 'file-copy' } }))).reason,
    ).toBe('CONNECTOR_ALREADY_EXISTS');

    // Mid-copy, kill the worker that runs the sink.
    await waitFor(() => existsSync(output) && statSync(output).size > size * 0.3, {
      timeoutMs: 120_000,
      intervalMs: 100,
      message: 'a third of the file copied',
    });
    const status = await connect.getConnectorStatus({ name: 'copy-out' });
    const victim = status.tasks[0]!.workerId;
    expect(['w1', 'w2']).toContain(victim);
    const survivor = victim === 'w1' ? 'w2' : 'w1';
    cluster.workers.get(victim)!.kill();
    await cluster.workers.get(victim)!.exited();

    await waitFor(async () => existsSync(output) && statSync(output).size >= size, {
      timeoutMs: 180_000,
      intervalMs: 250,
      message: 'the whole file copied',
    }).catch((err: Error) => {
      throw new Error(
        `${err.message}: out ${existsSync(output) ? statSync(output).size : 0} of ${size} bytes\n--- ${survivor} ---\n${cluster.workers.get(survivor)!.logs(60)}`,
      );
    });
    // Nothing more arrives after the whole file: no duplicate line was appended late.
    const s = await cluster.connect(survivor).getConnectorStatus({ name: 'copy-out' });
    expect(s.tasks[0]!.workerId).toBe(survivor);
    expect(s.tasks[0]!.state).toBe(ConnectorState.CONNECTOR_STATE_RUNNING);
    await cluster.connect(survivor).pauseConnector({ name: 'copy-out' });
    await waitFor(async () => (await cluster.connect(survivor).getConnectorStatus({ name: 'copy-out' })).state === ConnectorState.CONNECTOR_STATE_PAUSED, {
      timeoutMs: 10_000,
      message: 'paused',
    });
    expect(statSync(output).size).toBe(size);
    expect(await sha256(output)).toBe(await sha256(input));
  }, 400_000);
});
