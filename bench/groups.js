#!/usr/bin/env node
// Group coordinator figures (not run by the tests), on a real one-member etcd with one broker:
//   npm run build && node bench/groups.js [--seconds 60] [--groups 100] [--in-flight 400] [--clients 2] [--commit-rpc stream|unary] [--only commits] [--members 10] [--rounds 3]
// 1. Sustained offset commits (group commit): --groups groups of two members each (topic of 4
//    partitions, two per member) commit through ONE coordinator for --seconds: every (group,
//    partition) is one committer that commits its next offset as soon as the previous one is
//    answered (a consumer committing after each record), --in-flight committers spread over
//    --clients load processes, each over one CommitStream per process (--commit-rpc unary: one
//    CommitOffsets call per commit, over 4 channels per process). Alongside, one zombie per ten groups commits at a stale member
//    epoch: every one must be refused and none may be stored (fencing intact). Reports commit
//    requests/s, latency p50/p99, and from etcd's own /metrics: write transactions (revisions),
//    keys put and WAL fsyncs per commit, and the database size before, after, and after a
//    compaction + defragmentation (what docs/operations.md tells operators to run). etcd runs with
//    the flags of deploy/k8s/base/etcd.yaml (quota, auto-compaction; too slow to fire in a minute).
// 2. Rebalance times with real consumer processes (test/harness/group-member.ts, the client
//    library's GroupConsumer) on a 20-partition topic while a producer writes ~2,000 records/s:
//    a member joining a stable group of --members until it processes its first record; a member
//    leaving (SIGTERM: commits and leaves) until all its partitions are processed elsewhere; a
//    member dying (SIGKILL) until all its partitions are processed elsewhere. Coordinator
//    settings: heartbeat interval 500 ms, session timeout 6 s (Kafka's defaults are 5 s and 45 s;
//    both are flags). Each figure is the median of --rounds rounds. Skipped with --only commits.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import * as hdr from 'hdr-histogram-js';
import { SkeinClient } from '@skein/client';
import { GroupCoordinatorServiceClient } from '@skein/proto/skein/group/v1/group.js';
import { MetadataServiceClient } from '@skein/proto/skein/metadata/v1/metadata.js';
import { freePort } from '../test/dist/ports.js';
import { track } from '../test/dist/processes.js';
import { forkTracked } from './lib/processes.js';
import { cpuSeconds } from './lib/procstat.js';
import { startService, stopAll, waitFor } from '../test/dist/services.js';
import { stopChild } from '../test/dist/processes.js';
import { spawnMember } from '../test/dist/member-process.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' }, groups: { type: 'string', default: '100' }, 'in-flight': { type: 'string', default: '400' }, clients: { type: 'string', default: '2' },
    only: { type: 'string', default: '' }, members: { type: 'string', default: '10' }, rounds: { type: 'string', default: '3' }, 'commit-rpc': { type: 'string', default: 'stream' },
  },
});
const root = new URL('..', import.meta.url).pathname;
const HEARTBEAT_MS = 500;
const SESSION_MS = 6000;
const PARTITIONS = 20;
const call = (c, m, r) => new Promise((res, rej) => c[m](r, new grpc.Metadata(), { deadline: Date.now() + 10000 }, (e, v) => (e ? rej(e) : res(v))));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** etcd flags of deploy/k8s/base/etcd.yaml that bound its database and match the coordinator's --max-txn-ops. */
const ETCD_PRODUCTION_FLAGS = ['--auto-compaction-mode=periodic', '--auto-compaction-retention=10m', '--quota-backend-bytes=4294967296', '--max-txn-ops=128', '--max-request-bytes=1572864'];
const ZOMBIE_OFFSET = 999_999_999n;

/** One etcd member from the binary on this machine, with the production flags. */
async function startBenchEtcd() {
  const dir = mkdtempSync(join(tmpdir(), 'skein-bench-etcd-'));
  const [client, peer] = [await freePort(), await freePort()];
  const url = `http://127.0.0.1:${client}`;
  const child = spawn('etcd', [
    '--name', 'n0', '--data-dir', join(dir, 'data'), '--listen-client-urls', url, '--advertise-client-urls', url,
    '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`, '--initial-cluster', `n0=http://127.0.0.1:${peer}`,
    ...ETCD_PRODUCTION_FLAGS, '--log-level', 'error', '--logger', 'zap',
  ], { stdio: 'ignore' });
  track(child);
  await waitFor(async () => (await fetch(`${url}/health`).then((r) => r.json()).catch(() => ({}))).health === 'true', { timeoutMs: 30_000, intervalMs: 100, message: 'etcd is healthy' });
  return { endpoints: [`127.0.0.1:${client}`], url, pid: child.pid, stop: async () => { await stopChild(child, 3000); rmSync(dir, { recursive: true, force: true }); } };
}

/** Counters and sizes from etcd's /metrics. */
async function etcdStats(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const get = (name) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
  return {
    revision: get('etcd_debugging_mvcc_current_revision'), puts: get('etcd_mvcc_put_total'), putBytes: get('etcd_debugging_mvcc_total_put_size_in_bytes'),
    fsyncs: get('etcd_disk_wal_fsync_duration_seconds_count'), dbBytes: get('etcd_mvcc_db_total_size_in_bytes'), dbInUseBytes: get('etcd_mvcc_db_total_size_in_use_in_bytes'),
  };
}

/** In a load process: each committer commits its next offset as soon as the previous is answered; zombies commit at a stale epoch. */
async function commitLoad({ address, committers, zombies, durationMs, rpc }) {
  const { fromServiceError, fromStatus } = await import('@skein/common/errors.js');
  const clients = Array.from({ length: rpc === 'unary' ? 4 : 1 }, () => new GroupCoordinatorServiceClient(address, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }));
  const decode = (e) => (e.requestStatus ? fromStatus(e.requestStatus) : fromServiceError(e));
  let commit = (i, req) => new Promise((res, rej) => clients[i % clients.length].commitOffsets(req, (e) => (e ? rej(e) : res())));
  let closeStream = () => {};
  if (rpc !== 'unary') {
    // One stream per process: answers are matched to requests by request_id.
    const stream = clients[0].commitStream();
    const waiting = new Map();
    let nextId = 0n;
    stream.on('data', (r) => {
      const w = waiting.get(r.requestId);
      waiting.delete(r.requestId);
      if (r.error) w.reject({ requestStatus: r.error });
      else w.resolve();
    });
    stream.on('error', (e) => { for (const w of waiting.values()) w.reject(e); waiting.clear(); });
    commit = (_i, req) => new Promise((resolve, reject) => {
      const requestId = nextId++;
      waiting.set(requestId, { resolve, reject });
      stream.write({ requestId, commit: req });
    });
    closeStream = () => stream.end();
  }
  const latency = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });
  const reasons = {};
  const zombieReasons = {};
  let ok = 0;
  let zombieLanded = 0;
  const until = performance.now() + durationMs;
  const cpu0 = process.cpuUsage();
  const finals = await Promise.all(committers.map(async (k, i) => {
    let offset = 0n;
    while (performance.now() < until) {
      const t = performance.now();
      try {
        await commit(i, { groupId: k.groupId, memberId: k.memberId, memberEpoch: k.memberEpoch, offsets: [{ topic: k.topic, partition: k.partition, offset: offset + 1n, metadata: '' }] });
        offset++;
        ok++;
        latency.recordValue(Math.max(1, Math.round((performance.now() - t) * 1000)));
      } catch (e) {
        const reason = decode(e).reason;
        reasons[reason] = (reasons[reason] ?? 0) + 1;
      }
    }
    return { ...k, offset: offset.toString() };
  }).concat(zombies.map(async (z, i) => {
    while (performance.now() < until) {
      await commit(i, { groupId: z.groupId, memberId: z.memberId, memberEpoch: z.memberEpoch, offsets: [{ topic: z.topic, partition: z.partition, offset: ZOMBIE_OFFSET, metadata: '' }] })
        .then(() => zombieLanded++, (e) => { const r = decode(e).reason; zombieReasons[r] = (zombieReasons[r] ?? 0) + 1; });
      await new Promise((r) => setTimeout(r, 20)); // about 50 zombie commits/s each
    }
    return undefined;
  })));
  const cpu = process.cpuUsage(cpu0);
  closeStream();
  for (const c of clients) c.close();
  return { cpuSeconds: (cpu.user + cpu.system) / 1e6, ok, reasons, zombieLanded, zombieReasons, finals: finals.filter(Boolean), latency: hdr.encodeIntoCompressedBase64(latency) };
}

// A load process (forked from this file): runs its committers until the deadline and reports.
if (process.env.SKEIN_BENCH_GROUPS_WORKER) {
  process.once('message', async (job) => {
    process.send(await commitLoad(job));
    process.exit(0);
  });
  await new Promise(() => {}); // the message handler exits
}

const etcd = await startBenchEtcd();
const members = new Map();
const events = [];
const rows = [];
try {
  const prefix = `/bench-groups-${Date.now()}/`;
  const store = ['--store', `etcd://${etcd.endpoints.join(',')}`, '--prefix', prefix, '--log-level', 'warn'];
  const metadata = await startService({ name: 'metadata', entry: `${root}services/metadata/dist/main.js`, args: store });
  await startService({ name: 'broker', entry: `${root}services/broker/dist/main.js`, dataDirFlag: '--data-dir', args: ['--broker-id', '1', '--metadata-addresses', metadata.address, '--log-level', 'warn'] });
  const meta = new MetadataServiceClient(metadata.address, grpc.credentials.createInsecure());
  await waitFor(async () => (await call(meta, 'getClusterMetadata', { topics: [] })).metadata.brokers.length === 1, { timeoutMs: 15000, message: 'broker' });
  await call(meta, 'createTopic', { name: 'commits', partitions: 4, replicationFactor: 1, configs: {} });
  await call(meta, 'createTopic', { name: 'rebalance', partitions: PARTITIONS, replicationFactor: 1, configs: {} });

  // 1. Sustained group commit through one coordinator. Members outlive the run without heartbeating.
  const seconds = Number(values.seconds);
  const sessionMs = Math.min(600_000, seconds * 1000 + 120_000);
  const coordC = await startService({ name: 'coordinator-commits', entry: `${root}services/group-coordinator/dist/main.js`, args: [...store, '--metadata-addresses', metadata.address, '--session-timeout-ms', String(sessionMs), '--heartbeat-interval-ms', '60000'] });
  const gcC = new GroupCoordinatorServiceClient(coordC.address, grpc.credentials.createInsecure());
  const beatMember = async (m) => {
    const r = await call(gcC, 'heartbeat', { groupId: m.groupId, memberId: m.id, memberEpoch: m.epoch, clientId: 'bench', subscribedTopics: ['commits'], subscribedTopicRegex: '', serverAssignor: 'uniform', ownedPartitions: m.owned.length ? [{ topic: 'commits', partitions: m.owned }] : [] });
    Object.assign(m, { id: r.memberId, epoch: r.memberEpoch, owned: r.assignment.flatMap((t) => t.partitions) });
  };
  const groupCount = Number(values.groups);
  const committers = [];
  const zombies = [];
  for (let g = 0; g < groupCount; g += 20) {
    await Promise.all(Array.from({ length: Math.min(20, groupCount - g) }, async (_, j) => {
      const pair = [0, 1].map(() => ({ groupId: `bench-${g + j}`, id: '', epoch: 0, owned: [] }));
      for (let i = 0; i < 8 && !pair.every((m) => m.owned.length === 2); i++) for (const m of pair) await beatMember(m);
      if (!pair.every((m) => m.owned.length === 2)) throw new Error(`group bench-${g + j} did not settle`);
      for (const m of pair) for (const partition of m.owned) committers.push({ groupId: m.groupId, memberId: m.id, memberEpoch: m.epoch, topic: 'commits', partition });
      if ((g + j) % 10 === 0) zombies.push({ groupId: pair[0].groupId, memberId: pair[0].id, memberEpoch: pair[0].epoch - 1, topic: 'commits', partition: pair[0].owned[0] });
    }));
  }
  const inFlight = Math.min(Number(values['in-flight']), committers.length); // one committer per (group, partition): commits to one key stay in order
  const active = committers.slice(0, inFlight);
  const clientCount = Math.max(1, Number(values.clients));
  const workers = Array.from({ length: clientCount }, (_, i) => forkTracked(`commit-load-${i}`, new URL(import.meta.url).pathname, [], { env: { SKEIN_BENCH_GROUPS_WORKER: '1' } }));
  const before = await etcdStats(etcd.url);
  const cpuBefore = [cpuSeconds(coordC.pid), cpuSeconds(etcd.pid), cpuSeconds(metadata.pid)];
  const t0 = performance.now();
  const results = await Promise.all(workers.map((w, i) => new Promise((resolve, reject) => {
    w.once('message', resolve);
    w.once('exit', (c) => reject(new Error(`commit load ${i} exited (${c})`)));
    w.send({ address: coordC.address, committers: active.filter((_, k) => k % clientCount === i), zombies: zombies.filter((_, k) => k % clientCount === i), durationMs: seconds * 1000, rpc: values['commit-rpc'] }, (err) => err && reject(err));
  })));
  const elapsedS = (performance.now() - t0) / 1000;
  const loadCpu = results.reduce((n, r) => n + r.cpuSeconds, 0);
  const after = await etcdStats(etcd.url);
  const [coordCpu, etcdCpu, metadataCpu] = [cpuSeconds(coordC.pid) - cpuBefore[0], cpuSeconds(etcd.pid) - cpuBefore[1], cpuSeconds(metadata.pid) - cpuBefore[2]];
  const ok = results.reduce((n, r) => n + r.ok, 0);
  const latency = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });
  for (const r of results) latency.add(hdr.decodeFromCompressedBase64(r.latency));
  const merge = (key) => results.reduce((acc, r) => { for (const [k, v] of Object.entries(r[key])) acc[k] = (acc[k] ?? 0) + v; return acc; }, {});
  const refused = merge('reasons');
  const zombieReasons = merge('zombieReasons');
  const zombieLanded = results.reduce((n, r) => n + r.zombieLanded, 0);
  // Fencing and values: every committer's last acknowledged offset is stored; no zombie value anywhere.
  const finals = results.flatMap((r) => r.finals);
  let wrong = 0;
  let zombieStored = 0;
  for (const groupId of new Set(committers.map((c) => c.groupId))) {
    const stored = new Map((await call(gcC, 'fetchOffsets', { groupId, partitions: [] })).offsets.map((o) => [o.partition, o.offset]));
    for (const f of finals.filter((x) => x.groupId === groupId)) if (f.offset !== '0' && stored.get(f.partition) !== BigInt(f.offset)) wrong++;
    for (const o of stored.values()) if (o === ZOMBIE_OFFSET) zombieStored++;
  }
  // What an operator does when the database has grown: compact to now, then defragment.
  const etcdClient = new Etcd3({ hosts: etcd.url });
  await etcdClient.kv.compact({ revision: String(after.revision), physical: true });
  await etcdClient.maintenance.defragment({});
  etcdClient.close();
  const compacted = await etcdStats(etcd.url);
  const mib = (b) => `${(b / 1048576).toFixed(1)} MiB`;
  const per = (x) => (x / ok).toFixed(3);
  rows.push(
    `| sustained single-partition commits through one coordinator (${values['commit-rpc'] === 'unary' ? 'unary CommitOffsets' : 'CommitStream, one stream per load process'}), ${groupCount} groups x 2 members, ${inFlight} committers in ${clientCount} load processes, ${seconds} s, 1-member etcd | ${Math.round(ok / elapsedS).toLocaleString('en-US')} commits/s (${ok.toLocaleString('en-US')} in ${elapsedS.toFixed(1)} s; refused: ${JSON.stringify(refused)}) |`,
    `| commit latency (request to answer) | p50 ${(latency.getValueAtPercentile(50) / 1000).toFixed(1)} ms, p99 ${(latency.getValueAtPercentile(99) / 1000).toFixed(1)} ms |`,
    `| CPU per commit (utime + stime from /proc: what bounds the rate where a core is saturated) | coordinator ${((coordCpu / ok) * 1e6).toFixed(0)} µs (${((coordCpu / elapsedS) * 100).toFixed(0)} % of a core), etcd ${((etcdCpu / ok) * 1e6).toFixed(0)} µs (${((etcdCpu / elapsedS) * 100).toFixed(0)} % of a core), metadata service ${((metadataCpu / ok) * 1e6).toFixed(0)} µs (it watches the whole prefix, offsets included), load processes ${((loadCpu / ok) * 1e6).toFixed(0)} µs; machine load average ${loadavg()[0].toFixed(1)} on ${cpus().length} cores |`,
    `| etcd writes per commit (all of etcd during the run) | ${per(after.revision - before.revision)} write transactions (revisions), ${per(after.puts - before.puts)} keys put, ${per(after.fsyncs - before.fsyncs)} WAL fsyncs, ${per(after.putBytes - before.putBytes)} bytes put |`,
    `| etcd database size (quota 4 GiB, auto-compaction periodic 10m) | before ${mib(before.dbBytes)} (in use ${mib(before.dbInUseBytes)}), after ${mib(after.dbBytes)} (in use ${mib(after.dbInUseBytes)}): ${((after.dbBytes - before.dbBytes) / ok).toFixed(0)} bytes/commit, ${mib(((after.dbBytes - before.dbBytes) / elapsedS) * 60)}/min; after compact + defrag ${mib(compacted.dbBytes)} |`,
    `| fencing: ${zombies.length} zombies at a stale member epoch, concurrently | ${Object.values(zombieReasons).reduce((a, b) => a + b, 0)} refused ${JSON.stringify(zombieReasons)}, ${zombieLanded} acknowledged, ${zombieStored} stored; ${wrong} committers whose last acknowledged offset is not the stored one |`,
  );
  gcC.close();
  if (values.only !== 'commits') {
    const coord = await startService({ name: 'coordinator', entry: `${root}services/group-coordinator/dist/main.js`, args: [...store, '--metadata-addresses', metadata.address, '--heartbeat-interval-ms', String(HEARTBEAT_MS), '--session-timeout-ms', String(SESSION_MS), '--sweep-interval-ms', '500'] });
    const gc = new GroupCoordinatorServiceClient(coord.address, grpc.credentials.createInsecure());

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

    rows.push(
      `| a member joining a stable group of ${groupSize} until it processes a record (process start to first record; heartbeat ${HEARTBEAT_MS} ms) | median ${median(joins)} ms of [${joins.join(', ')}] |`,
      `| a member leaving (SIGTERM) until all its partitions are processed by others | median ${median(leaves)} ms of [${leaves.join(', ')}] |`,
      `| a member SIGKILLed until all its partitions are processed by others (session timeout ${SESSION_MS} ms) | median ${median(deaths)} ms of [${deaths.join(', ')}] |`,
    );
    gc.close();
  }
  console.log(`| figure | value |\n|---|---|`);
  for (const row of rows) console.log(row);
  meta.close();
} catch (err) {
  console.error(err);
  process.exitCode = 1;
} finally {
  for (const child of members.values()) await stopChild(child, 2000);
  await stopAll();
  await etcd.stop();
  process.exit(process.exitCode ?? 0);
}
