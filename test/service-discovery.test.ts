// One bootstrap address (issue 13): a cluster on ports that are not the defaults, and the CLI given
// only SKEIN_METADATA. Group commands find the coordinator from the metadata service
// (FindServiceInstances, Kafka's FindCoordinator), SKEIN_COORDINATOR still overrides, and a
// coordinator that stops is no longer found. Before discovery the CLI tried 127.0.0.1:9095.
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServiceRole } from '@skein/proto/skein/metadata/v1/metadata.js';
import { startStores, type TestStores } from './harness/stores.js';
import { startService, stopAll, waitFor, type ServiceProcess } from './harness/services.js';
import { metadataClient } from './harness/clients.js';
import { BROKER_ENTRY, CLI_ENTRY, COORDINATOR_ENTRY, METADATA_ENTRY } from './harness/entries.js';

const prefix = `/discovery-${process.pid}/`;
let stores: TestStores;
let metadata: ServiceProcess;
let coordinator: ServiceProcess;
let meta: ReturnType<typeof metadataClient>;

beforeAll(async () => {
  stores = await startStores();
  metadata = await startService({ name: 'metadata', entry: METADATA_ENTRY, args: stores.args('metadata', prefix) });
  meta = metadataClient(metadata.address);
  await startService({ name: 'broker-0', entry: BROKER_ENTRY, dataDirFlag: '--data-dir', args: ['--broker-id', '0', '--metadata-addresses', metadata.address] });
  await waitFor(async () => (await meta.getClusterMetadata({ topics: [] })).metadata!.brokers.length === 1, { timeoutMs: 20_000, message: 'the broker registered' });
  coordinator = await startService({ name: 'coordinator', entry: COORDINATOR_ENTRY, args: [...stores.args('coordinator', prefix), '--metadata-addresses', metadata.address, '--instance-id', 'coordinator-a'] });
}, 90_000);

afterAll(async () => {
  meta?.close();
  await stopAll();
  await stores?.stop();
});

/** The CLI with only SKEIN_METADATA set (and SKEIN_COORDINATOR when given), as a user on this cluster would run it. */
function skein(args: string[], env: Record<string, string> = {}, stdin = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  const base = { ...process.env };
  delete base.SKEIN_COORDINATOR;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI_ENTRY, ...args], { env: { ...base, SKEIN_METADATA: metadata.address, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

const coordinators = async () => (await meta.findServiceInstances({ role: ServiceRole.SERVICE_ROLE_GROUP_COORDINATOR })).instances;

describe('one bootstrap address: coordinators found from the metadata service', () => {
  it('the coordinator registers its address with the metadata service', async () => {
    expect(coordinator.port).not.toBe(9095);
    await waitFor(async () => (await coordinators()).length === 1, { timeoutMs: 15_000, message: 'the coordinator is registered' });
    expect(await coordinators()).toEqual([{ role: ServiceRole.SERVICE_ROLE_GROUP_COORDINATOR, instanceId: 'coordinator-a', endpoint: { host: '127.0.0.1', port: coordinator.port } }]);
  });

  it('consume --group, groups list and groups describe work with only SKEIN_METADATA set', async () => {
    expect((await skein(['topics', 'create', 'discovery-orders', '-p', '2'])).code).toBe(0);
    const lines = Array.from({ length: 20 }, (_, i) => `order-${i}`).join('\n');
    const produced = await skein(['produce', 'discovery-orders'], {}, lines);
    expect(produced.code, produced.stderr).toBe(0);
    const consumed = await skein(['consume', 'discovery-orders', '--group', 'discovery-billing', '--from-beginning', '-n', '20']);
    expect(consumed.code, consumed.stderr).toBe(0);
    expect(consumed.stdout.trim().split('\n').sort()).toEqual(lines.split('\n').sort());

    const listed = await skein(['--output', 'json', 'groups', 'list']);
    expect(listed.code, listed.stderr).toBe(0);
    expect((JSON.parse(listed.stdout) as Array<{ groupId: string }>).map((g) => g.groupId)).toContain('discovery-billing');
    const described = await skein(['--output', 'json', 'groups', 'describe', 'discovery-billing']);
    expect(described.code, described.stderr).toBe(0);
    const lags = (JSON.parse(described.stdout) as { lags: Array<{ committedOffset: string }> }).lags;
    expect(lags.reduce((n, l) => n + Number(l.committedOffset), 0)).toBe(20);
  });

  it('SKEIN_COORDINATOR still overrides discovery', async () => {
    const wrong = await skein(['groups', 'list'], { SKEIN_COORDINATOR: '127.0.0.1:1' });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/UNAVAILABLE|COORDINATOR_NOT_AVAILABLE|BROKER_NOT_AVAILABLE|unavailable/i);
    const right = await skein(['--output', 'json', 'groups', 'list'], { SKEIN_COORDINATOR: coordinator.address });
    expect(right.code, right.stderr).toBe(0);
  });

  it('a coordinator that stops unregisters, and the CLI then says none is available', async () => {
    await coordinator.stop();
    expect(await coordinators()).toEqual([]);
    const r = await skein(['groups', 'list']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('COORDINATOR_NOT_AVAILABLE');
  });
});
