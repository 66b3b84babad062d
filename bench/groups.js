#!/usr/bin/env node
// Group coordinator figures (not run by the tests): offset-commit throughput through one
// coordinator on a real etcd, and the time for a joining member to receive partitions.
//   npm run build && node bench/groups.js [--seconds 5] [--concurrency 8]
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { GroupCoordinatorServiceClient } from '@skein/proto/skein/group/v1/group.js';
import { MetadataServiceClient } from '@skein/proto/skein/metadata/v1/metadata.js';
import { startEtcd } from '../test/dist/etcd.js';
import { startService, stopAll, waitFor } from '../test/dist/services.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, concurrency: { type: 'string', default: '8' } } });
const root = new URL('..', import.meta.url).pathname;
const call = (c, m, r) => new Promise((res, rej) => c[m](r, new grpc.Metadata(), { deadline: Date.now() + 10000 }, (e, v) => (e ? rej(e) : res(v))));

const etcd = await startEtcd({ members: 1 });
try {
  const prefix = `/bench-groups-${Date.now()}/`;
  const store = ['--store', `etcd://${etcd.endpoints.join(',')}`, '--prefix', prefix, '--log-level', 'warn'];
  const metadata = await startService({ name: 'metadata', entry: `${root}services/metadata/dist/main.js`, args: store });
  await startService({ name: 'broker', entry: `${root}services/broker/dist/main.js`, dataDirFlag: '--data-dir', args: ['--broker-id', '1', '--metadata-addresses', metadata.address, '--log-level', 'warn'] });
  const meta = new MetadataServiceClient(metadata.address, grpc.credentials.createInsecure());
  await waitFor(async () => (await call(meta, 'getClusterMetadata', { topics: [] })).metadata.brokers.length === 1, { timeoutMs: 15000, message: 'broker' });
  await call(meta, 'createTopic', { name: 'bench', partitions: 12, replicationFactor: 1, configs: {} });
  const coord = await startService({ name: 'coordinator', entry: `${root}services/group-coordinator/dist/main.js`, args: [...store, '--metadata-addresses', metadata.address] });
  const gc = new GroupCoordinatorServiceClient(coord.address, grpc.credentials.createInsecure());
  const beat = (m) => call(gc, 'heartbeat', { groupId: 'bench', memberId: m.id ?? '', memberEpoch: m.epoch ?? 0, clientId: 'bench', subscribedTopics: ['bench'], subscribedTopicRegex: '', serverAssignor: 'uniform', ownedPartitions: m.owned ?? [] })
    .then((r) => { m.id = r.memberId; m.epoch = r.memberEpoch; m.owned = r.assignment; return m; });
  const a = await beat({});
  await beat(a);
  // Join latency: a second member joins a stable group; time until it holds partitions.
  const b = {};
  const t0 = performance.now();
  await beat(b);
  while (!(b.owned?.[0]?.partitions.length > 0)) { await beat(a); await beat(b); }
  const joinMs = performance.now() - t0;
  // Commit throughput: member a commits offsets of one of its partitions in a loop.
  const own = a.owned[0];
  let commits = 0;
  const until = performance.now() + Number(values.seconds) * 1000;
  await Promise.all(Array.from({ length: Number(values.concurrency) }, async () => {
    while (performance.now() < until) {
      await call(gc, 'commitOffsets', { groupId: 'bench', memberId: a.id, memberEpoch: a.epoch, offsets: [{ topic: own.topic, partition: own.partitions[0], offset: BigInt(commits + 1), metadata: '' }] }).catch(() => {});
      commits++;
    }
  }));
  console.log(`| figure | value |\n|---|---|`);
  console.log(`| offset commits through one coordinator on 1-member etcd (${values.concurrency} in flight) | ${Math.round(commits / Number(values.seconds))} commits/s |`);
  console.log(`| a member joining a stable group until it holds partitions (heartbeats back to back) | ${joinMs.toFixed(1)} ms |`);
  gc.close();
  meta.close();
} finally {
  await stopAll();
  await etcd.stop();
  process.exit(0);
}
