// Session streams: with a session timeout of ten minutes, a member process that is SIGKILLed still
// has its partitions reassigned, because its broken stream shortens its session to the grace
// (the only way it can happen within this test's bounds); and a coordinator instance stopped
// gracefully ends its streams without marking anyone, so members move to the other instance and
// keep every partition.
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipUnless } from './harness/requirements.js';
import { startEtcd, type EtcdCluster } from './harness/etcd.js';
import { metadataClient } from './harness/clients.js';
import { startService, stopAll, waitFor, type ServiceProcess } from './harness/services.js';
import { stopChild } from './harness/processes.js';
import { spawnMember } from './harness/member-process.js';
import { BROKER_ENTRY, COORDINATOR_ENTRY, METADATA_ENTRY } from './harness/entries.js';
import type { MemberEvent } from './harness/group-member.js';

const skip = skipUnless(import.meta.url, 'etcd');

const TOPIC = 'sessions';

let etcd: EtcdCluster;
let metadataAddress = '';
const coordinators: ServiceProcess[] = [];
const members = new Map<string, ChildProcess>();
const events: MemberEvent[] = [];

beforeAll(async () => {
  etcd = await startEtcd({ members: 1 });
  const store = ['--store', `etcd://${etcd.endpoints.join(',')}`, '--prefix', `/group-session-${process.pid}/`];
  const metadata = await startService({ name: 'metadata', entry: METADATA_ENTRY, args: store });
  metadataAddress = metadata.address;
  await startService({ name: 'broker-1', entry: BROKER_ENTRY, dataDirFlag: '--data-dir', args: ['--broker-id', '1', '--metadata-addresses', metadata.address] });
  const meta = metadataClient(metadata.address);
  await waitFor(async () => (await meta.getClusterMetadata({ topics: [] })).metadata!.brokers.length === 1, { timeoutMs: 15_000, message: 'broker registered' });
  await meta.createTopic({ name: TOPIC, partitions: 4, replicationFactor: 1, configs: {}, validateOnly: false });
  meta.close();
  for (const name of ['coord-a', 'coord-b']) {
    coordinators.push(await startService({ name, entry: COORDINATOR_ENTRY, args: [...store, '--metadata-addresses', metadata.address, '--session-timeout-ms', '600000', '--session-break-grace-ms', '1000', '--heartbeat-interval-ms', '300'] }));
  }
}, 60_000);

afterAll(async () => {
  for (const child of members.values()) await stopChild(child, 2000);
  await stopAll();
  await etcd?.stop();
});

function startMember(name: string): void {
  members.set(name, spawnMember({ name, group: 'sessions-group', topics: [TOPIC], metadata: metadataAddress, coordinators: coordinators.map((c) => c.address) }, events));
}

function owned(member: string): Set<string> {
  const set = new Set<string>();
  for (const e of events) {
    if (e.member !== member || (e.e !== 'assigned' && e.e !== 'revoked')) continue;
    for (const p of e.partitions) (e.e === 'assigned' ? set.add(p) : set.delete(p));
  }
  return set;
}

describe.skipIf(skip)('session streams', () => {
  it('a graceful coordinator stop moves members without losing partitions; a SIGKILLed member is replaced after the grace, not the session timeout', async () => {
    startMember('a');
    startMember('b');
    await waitFor(() => owned('a').size === 2 && owned('b').size === 2, { timeoutMs: 30_000, message: 'two members own two partitions each' });
    const before = { a: [...owned('a')].sort(), b: [...owned('b')].sort() };
    const revocationsBefore = events.filter((e) => e.e === 'revoked').length;

    // Stop one coordinator gracefully and bring it back: nobody is marked, nothing moves.
    await coordinators[0]!.stop();
    await coordinators[0]!.restart();
    await coordinators[1]!.stop();
    await coordinators[1]!.restart();
    await new Promise((r) => setTimeout(r, 2000)); // several heartbeat intervals: room for a wrong move to show
    expect({ a: [...owned('a')].sort(), b: [...owned('b')].sort() }).toEqual(before);
    expect(events.filter((e) => e.e === 'revoked').length).toBe(revocationsBefore);

    // SIGKILL b: its connection breaks, so its partitions reach a within the grace-shortened session.
    members.get('b')!.kill('SIGKILL');
    members.delete('b');
    await waitFor(() => owned('a').size === 4, { timeoutMs: 60_000, message: 'the killed member’s partitions move to the live one' });
  }, 120_000);
});
