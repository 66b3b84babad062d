// Consumer-group members as real processes (test/harness/group-member.ts) against real etcd, the
// metadata service, a broker and two coordinator instances, while a producer keeps writing:
//   - a member SIGKILLed has its partitions reassigned after the session timeout, while the other
//     members keep consuming their own partitions throughout;
//   - a coordinator SIGKILLed while a new member joins: the members carry on through the other
//     instance, the group converges, and no committed offset goes backwards;
//   - partitions added to the subscribed topic reach the members without a restart;
//   - from every member's own record of what it applied, no partition was ever owned by two
//     members at once, and every produced record was processed at least once.
import type { ChildProcess } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipUnless } from './harness/requirements.js';
import { SkeinClient } from '@skein/client';
import { GroupCoordinatorServiceClient } from '@skein/proto/skein/group/v1/group.js';
import { startEtcd, type EtcdCluster } from './harness/etcd.js';
import { metadataClient, promisify } from './harness/clients.js';
import { startService, stopAll, waitFor, type ServiceProcess } from './harness/services.js';
import { stopChild } from './harness/processes.js';
import { spawnMember } from './harness/member-process.js';
import { BROKER_ENTRY, COORDINATOR_ENTRY, METADATA_ENTRY } from './harness/entries.js';
import type { MemberEvent } from './harness/group-member.js';

const skip = skipUnless(import.meta.url, 'etcd');

const GROUP = 'workers';
const TOPIC = 'events';

let etcd: EtcdCluster;
let metadataAddress = '';
const coordinators: ServiceProcess[] = [];
const members = new Map<string, ChildProcess>();
const events: MemberEvent[] = [];
const killedAt = new Map<string, number>();

beforeAll(async () => {
  etcd = await startEtcd({ members: 1 });
  const prefix = `/group-members-${process.pid}/`;
  const store = ['--store', `etcd://${etcd.endpoints.join(',')}`, '--prefix', prefix];
  const metadata = await startService({ name: 'metadata', entry: METADATA_ENTRY, args: store });
  metadataAddress = metadata.address;
  await startService({ name: 'broker-1', entry: BROKER_ENTRY, dataDirFlag: '--data-dir', args: ['--broker-id', '1', '--metadata-addresses', metadata.address] });
  const meta = metadataClient(metadata.address);
  await waitFor(async () => (await meta.getClusterMetadata({ topics: [] })).metadata!.brokers.length === 1, { timeoutMs: 15_000, message: 'broker registered' });
  await meta.createTopic({ name: TOPIC, partitions: 6, replicationFactor: 1, configs: {}, validateOnly: false });
  meta.close();
  for (const name of ['coord-a', 'coord-b']) {
    coordinators.push(await startService({ name, entry: COORDINATOR_ENTRY, args: [...store, '--metadata-addresses', metadata.address, '--session-timeout-ms', '3000', '--heartbeat-interval-ms', '200', '--sweep-interval-ms', '500'] }));
  }
}, 60_000);

afterAll(async () => {
  for (const child of members.values()) await stopChild(child, 2000);
  await stopAll();
  await etcd?.stop();
});

function startMember(name: string): void {
  members.set(name, spawnMember({ name, group: GROUP, topics: [TOPIC], metadata: metadataAddress, coordinators: coordinators.map((c) => c.address) }, events));
}

/** What each member owns now, from the assignments it reported applying and releasing. */
function ownership(): Map<string, Set<string>> {
  const owned = new Map<string, Set<string>>();
  for (const ev of events) {
    if (ev.e === 'record' || ev.e === 'start' || killedAt.has(ev.member)) continue;
    const set = owned.get(ev.member) ?? new Set<string>();
    owned.set(ev.member, set);
    for (const p of ev.partitions) (ev.e === 'assigned' ? set.add(p) : set.delete(p));
  }
  return owned;
}

const ownedPartitions = () => [...ownership().values()].flatMap((s) => [...s]);
const settled = (live: number, partitions: number) => {
  const o = ownership();
  const all = ownedPartitions();
  return o.size === live && new Set(all).size === partitions && all.length === partitions && [...o.values()].every((s) => s.size >= Math.floor(partitions / live));
};

describe.skipIf(skip)('consumer group members as processes', () => {
  it('survives a member SIGKILL and a coordinator SIGKILL mid-rebalance, picks up new partitions, and never owns a partition twice', async () => {
    const client = new SkeinClient({ metadata: [metadataAddress] });
    const producer = client.producer();
    let producing = true;
    const producerLoop = (async () => {
      let i = 0;
      while (producing) {
        await producer.send(TOPIC, Array.from({ length: 30 }, () => ({ key: `k${i}`, value: `v${i++}`, timestampMs: Date.now() }))).catch(() => {});
        await new Promise((r) => setTimeout(r, 30));
      }
    })();
    const coordinator = promisify(new GroupCoordinatorServiceClient(coordinators[1]!.address, grpc.credentials.createInsecure()));
    try {
      for (const name of ['m1', 'm2', 'm3']) startMember(name);
      await waitFor(() => settled(3, 6), { timeoutMs: 30_000, message: 'three members own two partitions each' });
      await new Promise((r) => setTimeout(r, 1000));

      // 1. SIGKILL a member: its partitions move after the session timeout; the others never pause.
      const victim = [...ownership().get('m1')!];
      const survivorsBefore = new Map([...ownership()].filter(([m]) => m !== 'm1').map(([m, s]) => [m, [...s]]));
      members.get('m1')!.kill('SIGKILL');
      const killTime = Date.now();
      killedAt.set('m1', killTime);
      await waitFor(() => victim.every((p) => ownedPartitions().includes(p)), { timeoutMs: 20_000, message: 'the killed member’s partitions are reassigned' });
      const reassignedAt = Date.now();
      for (const [m, partitions] of survivorsBefore) {
        for (const p of partitions) {
          expect(ownership().get(m)!.has(p), `${m} kept ${p}`).toBe(true);
          const during = events.filter((e) => e.e === 'record' && e.member === m && e.partition === p && e.t > killTime && e.t < reassignedAt);
          expect(during.length, `${m} kept consuming ${p} while the dead member’s partitions waited`).toBeGreaterThan(0);
        }
      }

      // 2. A coordinator dies while a new member joins: the group converges through the other one.
      const committedBefore = new Map((await coordinator.fetchOffsets({ groupId: GROUP, partitions: [] })).offsets.map((o) => [`${o.topic}:${o.partition}`, o.offset]));
      expect(committedBefore.size).toBe(6);
      startMember('m4');
      await new Promise((r) => setTimeout(r, 150));
      coordinators[0]!.kill();
      await waitFor(() => settled(3, 6) && ownership().get('m4')!.size === 2, { timeoutMs: 30_000, message: 'the group converges with the new member, through the surviving coordinator' });
      const committedAfter = (await coordinator.fetchOffsets({ groupId: GROUP, partitions: [] })).offsets;
      for (const o of committedAfter) {
        const before = committedBefore.get(`${o.topic}:${o.partition}`);
        if (before !== undefined) expect(o.offset >= before, `${o.topic}:${o.partition} committed ${o.offset}, was ${before}`).toBe(true);
      }
      expect(committedAfter.length).toBeGreaterThanOrEqual(6);

      // 3. Partitions added to the subscribed topic reach the members without a restart.
      const meta = metadataClient(metadataAddress);
      await meta.createPartitions({ name: TOPIC, totalCount: 8, validateOnly: false });
      meta.close();
      await waitFor(() => settled(3, 8), { timeoutMs: 30_000, message: 'the two new partitions are assigned' });

      // 4. Stop producing; the group drains every record and commits it.
      producing = false;
      await producerLoop;
      await waitFor(async () => {
        const d = await coordinator.describeGroup({ groupId: GROUP });
        return d.lags.length === 8 && d.lags.every((l) => l.lag === 0n);
      }, { timeoutMs: 30_000, message: 'the group consumed and committed everything' });
      const ends = (await coordinator.describeGroup({ groupId: GROUP })).lags;
      for (const [name, child] of members) if (!killedAt.has(name)) await stopChild(child, 5000);

      // Every record processed at least once.
      const processed = new Map<string, Set<bigint>>();
      for (const e of events) if (e.e === 'record') {
        const set = processed.get(e.partition) ?? new Set<bigint>();
        processed.set(e.partition, set);
        set.add(BigInt(e.offset));
      }
      let total = 0n;
      for (const l of ends) {
        const seen = processed.get(`${l.topic}:${l.partition}`) ?? new Set<bigint>();
        for (let o = 0n; o < l.logEndOffset; o++) expect(seen.has(o), `${l.topic}:${l.partition} offset ${o} processed`).toBe(true);
        total += l.logEndOffset;
      }
      expect(total).toBeGreaterThan(1000n);

      // No partition was ever owned by two members at once, by the members' own accounts.
      const intervals: Array<{ member: string; partition: string; from: number; to: number }> = [];
      const open = new Map<string, number>();
      for (const e of events) {
        if (e.e === 'record' || e.e === 'start') continue;
        for (const p of e.partitions) {
          const k = `${e.member}|${p}`;
          if (e.e === 'assigned') open.set(k, e.t);
          else { intervals.push({ member: e.member, partition: p, from: open.get(k)!, to: e.t }); open.delete(k); }
        }
      }
      for (const [k, from] of open) {
        const [member, partition] = k.split('|') as [string, string];
        intervals.push({ member, partition, from, to: killedAt.get(member) ?? Infinity });
      }
      for (const a of intervals) for (const b of intervals) {
        if (a === b || a.partition !== b.partition || a.member === b.member) continue;
        expect(a.to <= b.from || b.to <= a.from, `${a.partition} owned by ${a.member} [${a.from}, ${a.to}] and ${b.member} [${b.from}, ${b.to}]`).toBe(true);
      }
    } finally {
      producing = false;
      await producerLoop;
      coordinator.close();
      client.close();
    }
  }, 180_000);
});
