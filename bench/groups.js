#!/usr/bin/env node
// Group coordinator figures (not run by the tests), on a real etcd with one broker:
//   npm run build && node bench/groups.js [--seconds 5] [--concurrency 8] [--members 10]
// 1. Offset-commit throughput through one coordinator (successful commits only; each is a read
//    and a compare-and-set transaction on etcd, which fsyncs).
// 2. Rebalance times with real consumer processes (test/harness/group-member.ts, the client
//    library's GroupConsumer) on a 20-partition topic while a producer writes ~2,000 records/s:
//    a member joining a stable group of --members until it processes its first record; a member
//    leaving (SIGTERM: commits and leaves) until all its partitions are processed elsewhere; a
//    member dying (SIGKILL) until all its partitions are processed elsewhere. Coordinator
//    settings: heartbeat interval 500 ms, session timeout 6 s (Kafka's defaults are 5 s and 45 s;
//    both are flags). Each figure is the median of --rounds rounds.
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { SkeinClient } from '@skein/client';
import { GroupCoordinatorServiceClient } from '@skein/proto/skein/group/v1/group.js';
import { MetadataServiceClient } from '@skein/proto/skein/metadata/v1/metadata.js';
import { startEtcd } from '../test/dist/etcd.js';
import { startService, stopAll, waitFor } from '../test/dist/services.js';
import { stopChild } from '../test/dist/processes.js';
import { spawnMember } from '../test/dist/member-process.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, concurrency: { type: 'string', default: '8' }, members: { type: 'string', default: '10' }, rounds: { type: 'string', default: '3' } } });
const root = new URL('..', import.meta.url).pathname;
const HEARTBEAT_MS = 500;
const SESSION_MS = 6000;
const PARTITIONS = 20;
const call = (c, m, r) => new Promise((res, rej) => c[m](r, new grpc.Metadata(), { deadline: Date.now() + 10000 }, (e, v) => (e ? rej(e) : res(v))));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const etcd = await startEtcd({ members: 1 });
const members = new Map();
const events = [];
try {
  const prefix = `/bench-groups-${Date.now()}/`;
  const store = ['--store', `etcd://${etcd.endpoints.join(',')}`, '--prefix', prefix, '--log-level', 'warn'];
  const metadata = await startService({ name: 'metadata', entry: `${root}services/metadata/dist/main.js`, args: store });
  await startService({ name: 'broker', entry: `${root}services/broker/dist/main.js`, dataDirFlag: '--data-dir', args: ['--broker-id', '1', '--metadata-addresses', metadata.address, '--log-level', 'warn'] });
  const meta = new MetadataServiceClient(metadata.address, grpc.credentials.createInsecure());
  await waitFor(async () => (await call(meta, 'getClusterMetadata', { topics: [] })).metadata.brokers.length === 1, { timeoutMs: 15000, message: 'broker' });
  await call(meta, 'createTopic', { name: 'bench', partitions: 12, replicationFactor: 1, configs: {} });
  await call(meta, 'createTopic', { name: 'rebalance', partitions: PARTITIONS, replicationFactor: 1, configs: {} });
  const coord = await startService({ name: 'coordinator', entry: `${root}services/group-coordinator/dist/main.js`, args: [...store, '--metadata-addresses', metadata.address, '--heartbeat-interval-ms', String(HEARTBEAT_MS), '--session-timeout-ms', String(SESSION_MS), '--sweep-interval-ms', '500'] });
  const gc = new GroupCoordinatorServiceClient(coord.address, grpc.credentials.createInsecure());

  // 1. Commit throughput.
  const beat = (m) => call(gc, 'heartbeat', { groupId: 'bench', memberId: m.id ?? '', memberEpoch: m.epoch ?? 0, clientId: 'bench', subscribedTopics: ['bench'], subscribedTopicRegex: '', serverAssignor: 'uniform', ownedPartitions: m.owned ?? [] })
    .then((r) => { m.id = r.memberId; m.epoch = r.memberEpoch; m.owned = r.assignment; return m; });
  const a = await beat({});
  await beat(a);
  const own = a.owned[0];
  let commits = 0;
  let failed = 0;
  const until = performance.now() + Number(values.seconds) * 1000;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: Number(values.concurrency) }, async () => {
    while (performance.now() < until) {
      await call(gc, 'commitOffsets', { groupId: 'bench', memberId: a.id, memberEpoch: a.epoch, offsets: [{ topic: own.topic, partition: own.partitions[0], offset: BigInt(commits + 1), metadata: '' }] })
        .then(() => commits++, () => failed++);
    }
  }));
  const commitRate = commits / ((performance.now() - t0) / 1000);

  // 2. Rebalances with member processes.
  const client = new SkeinClient({ metadata: [metadata.address] });
  const producer = client.producer({ idempotent: false });
  let producing = true;
  const producerLoop = (async () => {
    let i = 0;
    while (producing) {
      await producer.send('rebalance', Array.from({ length: 100 }, () => ({ key: `k${i}`, value: `v${i++}`, timestampMs: Date.now() }))).catch(() => {});
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  let seq = 0;
  const startMember = () => {
    const name = `m${seq++}`;
    members.set(name, spawnMember({ name, group: 'rebalance', topics: ['rebalance'], metadata: metadata.address, coordinators: [coord.address] }, events));
    return name;
  };
  const ownership = () => {
    const owned = new Map();
    for (const e of events) {
      if (e.e !== 'assigned' && e.e !== 'revoked') continue;
      if (!members.has(e.member)) continue;
      const set = owned.get(e.member) ?? new Set();
      owned.set(e.member, set);
      for (const p of e.partitions) (e.e === 'assigned' ? set.add(p) : set.delete(p));
    }
    return owned;
  };
  const stable = (n) => {
    const o = ownership();
    const all = [...o.values()].flatMap((s) => [...s]);
    return o.size === n && all.length === PARTITIONS && new Set(all).size === PARTITIONS && [...o.values()].every((s) => s.size >= Math.floor(PARTITIONS / n));
  };
  const groupSize = Number(values.members);
  for (let i = 0; i < groupSize; i++) startMember();
  await waitFor(() => stable(groupSize), { timeoutMs: 60_000, message: `${groupSize} members share the partitions` });

  const joins = [];
  const leaves = [];
  const deaths = [];
  for (let round = 0; round < Number(values.rounds); round++) {
    // Join: from the new process's start to its first processed record.
    const joiner = startMember();
    await waitFor(() => events.some((e) => e.e === 'record' && e.member === joiner), { timeoutMs: 60_000, message: 'the new member consumes' });
    const started = events.find((e) => e.e === 'start' && e.member === joiner).t;
    joins.push(events.find((e) => e.e === 'record' && e.member === joiner).t - started);
    await waitFor(() => stable(groupSize + 1), { timeoutMs: 60_000, message: 'settled after the join' });

    // Leave (SIGTERM) and death (SIGKILL): until every partition it had is processed by another member.
    for (const [how, out] of [['SIGTERM', leaves], ['SIGKILL', deaths]]) {
      const [victim, owned] = [...ownership()].find(([, s]) => s.size > 0);
      const partitions = [...owned];
      const child = members.get(victim);
      const at = Date.now();
      if (how === 'SIGTERM') await stopChild(child, 5000);
      else child.kill('SIGKILL');
      members.delete(victim);
      await waitFor(() => partitions.every((p) => events.some((e) => e.e === 'record' && e.member !== victim && e.partition === p && e.t > at)), { timeoutMs: 60_000, message: `${how}: partitions consumed elsewhere` });
      out.push(Math.max(...partitions.map((p) => events.find((e) => e.e === 'record' && e.member !== victim && e.partition === p && e.t > at).t)) - at);
      const live = members.size;
      await waitFor(() => stable(live), { timeoutMs: 60_000, message: 'settled' });
      if (how === 'SIGTERM') startMember();
      await waitFor(() => stable(members.size), { timeoutMs: 60_000, message: 'settled' });
    }
  }
  producing = false;
  await producerLoop;
  client.close();

  console.log(`| figure | value |\n|---|---|`);
  console.log(`| offset commits through one coordinator on a 1-member etcd (${values.concurrency} in flight, ${values.seconds} s) | ${Math.round(commitRate)} commits/s (${failed} refused) |`);
  console.log(`| a member joining a stable group of ${groupSize} until it processes a record (process start to first record; heartbeat ${HEARTBEAT_MS} ms) | median ${median(joins)} ms of [${joins.join(', ')}] |`);
  console.log(`| a member leaving (SIGTERM) until all its partitions are processed by others | median ${median(leaves)} ms of [${leaves.join(', ')}] |`);
  console.log(`| a member SIGKILLed until all its partitions are processed by others (session timeout ${SESSION_MS} ms) | median ${median(deaths)} ms of [${deaths.join(', ')}] |`);
  gc.close();
  meta.close();
} finally {
  for (const child of members.values()) await stopChild(child, 2000);
  await stopAll();
  await etcd.stop();
  process.exit(0);
}
