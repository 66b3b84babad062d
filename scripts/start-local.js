#!/usr/bin/env node
// `npm start`: a local Skein cluster as separate processes on 127.0.0.1, data under one directory
// (reused by the next start), readable logs, everything stopped cleanly on Ctrl-C.
// With ETCD_ENDPOINTS set it uses that etcd; otherwise the metadata service's embedded store.
// `npm start -- --secure`: mTLS on every hop. A development CA and certificates are created under
// <data-dir>/tls/ (kept for the next start): ca.crt, one per service (CN=<name>, OU=services),
// admin.crt/key (a super-user) and alice.crt/key (a principal with no ACLs). Every service serves
// mTLS and dials the others with its own certificate; calls without a client certificate are
// refused. The CLI environment to use them is printed at the end.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { channelCredentials } from '@skein/common/tls.js';
import { MetadataServiceClient } from '@skein/proto/skein/metadata/v1/metadata.js';
import { Acks, BrokerServiceClient } from '@skein/proto/skein/broker/v1/broker.js';
import { buildRecordBatch, decodeRecordBatch } from '@skein/common/records/record-batch.js';
import { ensureDevCertificates } from './dev-ca.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const { values: opts } = parseArgs({
  options: {
    'data-dir': { type: 'string', default: process.env.SKEIN_DATA_DIR ?? join(root, '.skein-data') },
    'base-port': { type: 'string', default: process.env.SKEIN_BASE_PORT ?? '9090' },
    brokers: { type: 'string', default: '3' },
    secure: { type: 'boolean', default: false },
    connect: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (opts.help) {
  console.log(`Usage: npm start [-- --data-dir DIR --base-port PORT --brokers N --secure --connect]
Ports: metadata PORT, brokers PORT+2.., group coordinator PORT+5 (with 3 brokers; after the brokers with more),
schema registry gRPC on the slot after the coordinator; its Confluent REST API on 127.0.0.1:8081 with the
default base port, else on the slot after the registry's gRPC port.
--secure: mTLS on every hop with a development CA under DIR/tls (ca.crt, admin and alice certificates).
--connect: also one Connect worker (services/connect), gRPC on 127.0.0.1:8083 with the default base port.
Environment: ETCD_ENDPOINTS=host:port[,host:port] to use a real etcd; SKEIN_DATA_DIR, SKEIN_BASE_PORT.
With --secure and ETCD_ENDPOINTS, TLS to etcd comes from SKEIN_ETCD_CA_FILE, SKEIN_ETCD_CERT_FILE and
SKEIN_ETCD_KEY_FILE (DIR/tls/etcd.crt and etcd.key are issued for an etcd on 127.0.0.1 to serve).`);
  process.exit(0);
}
const dataDir = resolve(opts['data-dir']);
const basePort = Number(opts['base-port']);
const metadataPort = basePort;
const etcdEndpoints = process.env.ETCD_ENDPOINTS?.trim();
const store = etcdEndpoints ? `etcd://${etcdEndpoints.replace(/https?:\/\//g, '')}` : `embedded:${join(dataDir, 'metadata', 'store.db')}`;
mkdirSync(join(dataDir, 'metadata'), { recursive: true });
const brokerCount = Number(opts.brokers);

/**
 * --secure: the development PKI and each service's TLS flags. Principals: the CN of a service
 * certificate (OU=services) or of a user certificate; services are internal principals, admin a
 * super-user; calls without an authenticated principal are refused.
 */
const tlsDir = join(dataDir, 'tls');
const pki = opts.secure
  ? ensureDevCertificates(tlsDir, [
      ...['metadata', 'coordinator', 'schema-registry', 'etcd', ...(opts.connect ? ['connect'] : []), ...Array.from({ length: brokerCount }, (_, id) => `broker-${id}`)].map((name) => ({
        name, organizationalUnit: 'services', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'],
      })),
      { name: 'admin' },
      { name: 'alice' },
    ])
  : undefined;
const tlsArgs = (name) => (pki
  ? [
      '--tls-cert-file', pki.files[name].certFile, '--tls-key-file', pki.files[name].keyFile, '--tls-ca-file', pki.caFile, '--tls-require-client-cert',
      '--ssl-principal-mapping-rules', 'RULE:^CN=([^,]+),OU=services,.*$/$1/, RULE:^CN=([^,]+),.*$/$1/',
      '--internal-principals', 'User:metadata;User:coordinator;User:schema-registry;User:connect;User:broker-*', '--super-users', 'User:admin', '--authentication-required',
    ]
  : []);
/** How this script dials the cluster: as admin under --secure. */
const credentials = pki ? channelCredentials({ caFile: pki.caFile, certFile: pki.files.admin.certFile, keyFile: pki.files.admin.keyFile }) : grpc.credentials.createInsecure();

const children = [];
/** Each service's /metrics URL, from its 'metrics on /metrics' log line (every service gets --metrics-port 0: a free port). */
const metricsUrls = new Map();
const colors = { metadata: 36, broker: 33, coordinator: 35, registry: 32 };

function start(role, name, entry, args) {
  const child = spawn(process.execPath, [join(root, entry), ...args, '--metrics-port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push({ name, child });
  const tag = `\x1b[${colors[role] ?? 37}m${name.padEnd(12)}\x1b[0m`;
  const print = (line) => {
    if (!line.trim()) return;
    try {
      const rec = JSON.parse(line);
      if (rec.msg === 'metrics on /metrics' && rec.url) metricsUrls.set(name, rec.url);
      const level = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' }[rec.level] ?? rec.level;
      const { msg, time, level: _l, pid: _p, hostname: _h, service: _s, ...rest } = rec;
      const extra = Object.keys(rest).length ? ' ' + JSON.stringify(rest) : '';
      console.log(`${tag} ${new Date(time).toISOString().slice(11, 23)} ${level} ${msg}${extra}`);
    } catch {
      console.log(`${tag} ${line}`);
    }
  };
  for (const stream of [child.stdout, child.stderr]) {
    let buf = '';
    stream.on('data', (d) => {
      buf += d;
      const lines = buf.split('\n');
      buf = lines.pop();
      lines.forEach(print);
    });
  }
  child.on('exit', (code, signal) => {
    if (!stopping) {
      console.error(`${tag} exited (${signal ?? code}); stopping the cluster`);
      void stopAll(1);
    }
  });
  return child;
}

let stopping = false;
async function stopAll(code = 0) {
  if (stopping) return;
  stopping = true;
  console.log('\nstopping...');
  await Promise.all(children.map(({ child }) => new Promise((res) => {
    if (child.exitCode !== null || child.signalCode !== null) return res();
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('exit', () => { clearTimeout(timer); res(); });
    child.kill('SIGTERM');
  })));
  process.exit(code);
}
process.on('SIGINT', () => void stopAll(0));
process.on('SIGTERM', () => void stopAll(0));

function call(client, method, req) {
  return new Promise((res, rej) => client[method](req, { deadline: Date.now() + 5000 }, (e, r) => (e ? rej(e) : res(r))));
}

async function waitForMetadata(address) {
  const client = new MetadataServiceClient(address, credentials);
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const res = await call(client, 'getClusterMetadata', { topics: [] });
      if (res.metadata?.controller && res.metadata.brokers.length === brokerCount) return { client, metadata: res.metadata };
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
    if (Date.now() > deadline) throw new Error('the cluster did not come up in 30 s (controller elected and every broker registered)');
    await new Promise((r) => setTimeout(r, 200));
  }
}

console.log(`Skein local cluster — data in ${dataDir}; metadata store: ${etcdEndpoints ? `etcd at ${etcdEndpoints}` : 'embedded'}`);
start('metadata', 'metadata', 'services/metadata/dist/main.js', [
  '--port', String(metadataPort), '--store', store, '--instance-id', 'metadata-0', ...tlsArgs('metadata'),
]);
const metadataAddress = `127.0.0.1:${metadataPort}`;
// The other roles start once the metadata service answers, so they register at the first try
// instead of logging a round of connection-refused retries.
{
  const client = new MetadataServiceClient(metadataAddress, credentials);
  for (const deadline = Date.now() + 30_000; ; ) {
    try {
      await call(client, 'getClusterMetadata', { topics: [] });
      break;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  client.close();
}
const brokerAddresses = [];
for (let id = 0; id < brokerCount; id++) {
  const port = basePort + 2 + id;
  mkdirSync(join(dataDir, `broker-${id}`), { recursive: true });
  brokerAddresses.push(`127.0.0.1:${port}`);
  start('broker', `broker-${id}`, 'services/broker/dist/main.js', [
    '--broker-id', String(id), '--port', String(port), '--data-dir', join(dataDir, `broker-${id}`), '--metadata-addresses', metadataAddress, ...tlsArgs(`broker-${id}`),
  ]);
}

mkdirSync(join(dataDir, 'coordinator'), { recursive: true });
const coordinatorPort = basePort + 2 + Math.max(3, brokerCount);
const coordinatorAddress = `127.0.0.1:${coordinatorPort}`;
start('coordinator', 'coordinator', 'services/group-coordinator/dist/main.js', [
  '--port', String(coordinatorPort), '--metadata-addresses', metadataAddress,
  ...(etcdEndpoints ? ['--store', store] : ['--store', `embedded:${join(dataDir, 'coordinator', 'store.db')}`]), ...tlsArgs('coordinator'),
]);

// The schema registry: gRPC on the next slot; REST on Confluent's default 8081, so Confluent clients
// work without settings, unless another base port asks for a cluster out of the default ports.
mkdirSync(join(dataDir, 'schema-registry'), { recursive: true });
const registryPort = coordinatorPort + 1;
const registryRestPort = basePort === 9090 ? 8081 : coordinatorPort + 2;
const registryAddress = `127.0.0.1:${registryPort}`;
const registryUrl = `http://127.0.0.1:${registryRestPort}`;
start('registry', 'schema-registry', 'services/schema-registry/dist/main.js', [
  '--port', String(registryPort), '--rest-port', String(registryRestPort), '--metadata-addresses', metadataAddress,
  ...(etcdEndpoints ? ['--store', store] : ['--store', `embedded:${join(dataDir, 'schema-registry', 'store.db')}`]), ...tlsArgs('schema-registry'),
]);

// One Connect worker with --connect: connectors, status and offsets in the cluster's own topics.
const connectPort = basePort === 9090 ? 8083 : registryRestPort + 1;
const connectAddress = `127.0.0.1:${connectPort}`;
if (opts.connect) {
  start('connect', 'connect', 'services/connect/dist/main.js', ['--port', String(connectPort), '--metadata-addresses', metadataAddress, '--coordinator-addresses', coordinatorAddress, '--instance-id', 'local-worker', ...tlsArgs('connect')]);
}

/** Shows the cluster working end to end: a topic, three records produced, and read back. */
async function demo(client) {
  const topic = 'quickstart';
  const existing = await call(client, 'listTopics', {});
  if (!existing.topics.some((t) => t.name === topic)) {
    await call(client, 'createTopic', { name: topic, partitions: 3, replicationFactor: 1, configs: {}, validateOnly: false });
  }
  const described = await call(client, 'describeTopic', { name: topic });
  const p0 = described.topic.partitions[0];
  const leader = (await call(client, 'getClusterMetadata', { topics: [] })).metadata.brokers.find((b) => b.brokerId === p0.leaderId);
  const broker = new BrokerServiceClient(`${leader.endpoint.host}:${leader.endpoint.port}`, credentials);
  const records = ['hello', 'from', 'skein'].map((value, i) => ({ key: `k${i}`, value, timestampMs: Date.now() }));
  const deadline = Date.now() + 20_000;
  let produced;
  for (;;) {
    // A second start finds the brokers of the first still registered while the new processes are
    // starting: a refused connection is retried like a partition error until the deadline.
    let err;
    try {
      produced = await call(broker, 'produce', { acks: Acks.ACKS_ALL, timeoutMs: 5000, topics: [{ topic, partitions: [{ partition: 0, batch: buildRecordBatch(records) }] }] });
      err = produced.topics[0].partitions[0].error;
    } catch (e) {
      err = { reason: 'UNAVAILABLE', message: e.message };
    }
    if (!err) break;
    if (Date.now() > deadline) throw new Error(`demo produce failed: ${err.reason} ${err.message}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  const base = produced.topics[0].partitions[0].baseOffset;
  const fetched = await call(broker, 'fetch', { maxWaitMs: 1000, minBytes: 1, maxBytes: 1 << 20, topics: [{ topic, partitions: [{ partition: 0, fetchOffset: base, partitionMaxBytes: 1 << 20, currentLeaderEpoch: -1 }] }] });
  const batch = fetched.topics[0].partitions[0].batches[0];
  const back = decodeRecordBatch(batch.batch, batch.baseOffset).map((r) => `${r.offset}:${r.key}=${r.value}`);
  broker.close();
  return { topic, leaderId: p0.leaderId, back };
}

try {
  const { client, metadata } = await waitForMetadata(metadataAddress);
  const shown = await demo(client);
  client.close();
  // Logged right after each service started serving: by now normally all are there.
  for (const deadline = Date.now() + 5000; metricsUrls.size < children.length && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 100));
  // grpcurl's TLS flags under --secure (as admin), -plaintext otherwise.
  const grpcurl = pki ? `grpcurl -cacert ${pki.caFile} -cert ${pki.files.admin.certFile} -key ${pki.files.admin.keyFile}` : 'grpcurl -plaintext';
  const secureLines = pki
    ? `
mTLS on every hop; calls without a client certificate are refused. Certificates in ${tlsDir}:
ca.crt, admin (super-user), alice (a principal with no ACLs), one per service. As admin:
  export SKEIN_TLS_CA_FILE=${pki.caFile}
  export SKEIN_TLS_CERT_FILE=${pki.files.admin.certFile}
  export SKEIN_TLS_KEY_FILE=${pki.files.admin.keyFile}
As alice: SKEIN_TLS_CERT_FILE=${pki.files.alice.certFile} SKEIN_TLS_KEY_FILE=${pki.files.alice.keyFile}
`
    : '';
  const metricsLines = children.map(({ name }, i) => `${(i === 0 ? '  /metrics' : '').padEnd(21)}${name.padEnd(16)}${metricsUrls.get(name) ?? '(not reported)'}`).join('\n');
  console.log(`
\x1b[1mSkein is running.\x1b[0m
  metadata service   ${metadataAddress}   (controller: ${metadata.controller.controllerId}, epoch ${metadata.controller.controllerEpoch})
  cluster id         ${metadata.clusterId}
  group coordinator  ${coordinatorAddress}
  schema registry    ${registryUrl} (Confluent REST)   ${registryAddress} (gRPC)
${opts.connect ? `  connect worker     ${connectAddress}   (skein connect plugins; docs/connect.md)\n` : ''}  brokers            ${metadata.brokers.map((b) => `${b.brokerId}@${b.endpoint.host}:${b.endpoint.port}`).join('  ')}
${metricsLines}
  check              produced 3 records to ${shown.topic}-0 on broker ${shown.leaderId} and read back: ${shown.back.join(' ')}

${secureLines}Try the CLI (in another terminal${basePort === 9090 ? '' : `; first: export SKEIN_METADATA=${metadataAddress}; the CLI finds the coordinator from it`}):
  npx skein cluster
  npx skein topics create orders -p 6
  seq 1 1000 | sed 's/^/user-/;s/$/|order/' | npx skein produce orders --key-separator '|'
  npx skein consume orders --group billing --from-beginning --print partition,offset,key,value
  npx skein groups describe billing

Or grpcurl (reflection is on):
  ${grpcurl} ${metadataAddress} list
  ${grpcurl} -d '{"name":"orders","partitions":6}' ${metadataAddress} skein.metadata.v1.MetadataService/CreateTopic
  ${grpcurl} ${metadataAddress} skein.metadata.v1.MetadataService/GetClusterMetadata
  ${grpcurl} -d '{"topics":[{"topic":"quickstart","partitions":[{"partition":0,"spec":"OFFSET_SPEC_LATEST"}]}]}' ${brokerAddresses[0]} skein.broker.v1.BrokerService/ListOffsets
  ${grpcurl} -d '{"service":""}' ${metadataAddress} grpc.health.v1.Health/Check

Schemas (Confluent's REST API; any Confluent serializer works with schema.registry.url=${registryUrl}):
  curl -s -X POST -H 'Content-Type: application/vnd.schemaregistry.v1+json' \\
    -d '{"schema":"{\\"type\\":\\"string\\"}"}' ${registryUrl}/subjects/orders-value/versions
  curl -s ${registryUrl}/subjects

Ctrl-C stops everything.
`);
} catch (err) {
  console.error(`start-up failed: ${err.message}`);
  await stopAll(1);
}
