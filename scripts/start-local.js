#!/usr/bin/env node
// `npm start`: a local Skein cluster as separate processes on 127.0.0.1, data under one directory
// (reused by the next start), readable logs, everything stopped cleanly on Ctrl-C.
// With ETCD_ENDPOINTS set it uses that etcd; otherwise the metadata service's embedded store.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { MetadataServiceClient } from '@skein/proto/skein/metadata/v1/metadata.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const { values: opts } = parseArgs({
  options: {
    'data-dir': { type: 'string', default: process.env.SKEIN_DATA_DIR ?? join(root, '.skein-data') },
    'metadata-port': { type: 'string', default: '9090' },
    help: { type: 'boolean', default: false },
  },
});
if (opts.help) {
  console.log('Usage: npm start [-- --data-dir DIR --metadata-port PORT]\nEnvironment: ETCD_ENDPOINTS=host:port[,host:port] to use a real etcd.');
  process.exit(0);
}
const dataDir = resolve(opts['data-dir']);
const metadataPort = Number(opts['metadata-port']);
const etcdEndpoints = process.env.ETCD_ENDPOINTS?.trim();
const store = etcdEndpoints ? `etcd://${etcdEndpoints.replace(/https?:\/\//g, '')}` : `embedded:${join(dataDir, 'metadata', 'store.db')}`;
mkdirSync(join(dataDir, 'metadata'), { recursive: true });

const children = [];
const colors = { metadata: 36, broker: 33, coordinator: 35 };

function start(role, name, entry, args) {
  const child = spawn(process.execPath, [join(root, entry), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push({ name, child });
  const tag = `\x1b[${colors[role] ?? 37}m${name.padEnd(12)}\x1b[0m`;
  const print = (line) => {
    if (!line.trim()) return;
    try {
      const rec = JSON.parse(line);
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
  const client = new MetadataServiceClient(address, grpc.credentials.createInsecure());
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const res = await call(client, 'getClusterMetadata', { topics: [] });
      if (res.metadata?.controller) return { client, metadata: res.metadata };
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
    if (Date.now() > deadline) throw new Error('metadata service did not elect a controller in 30 s');
    await new Promise((r) => setTimeout(r, 200));
  }
}

console.log(`Skein local cluster — data in ${dataDir}; metadata store: ${etcdEndpoints ? `etcd at ${etcdEndpoints}` : 'embedded'}`);
start('metadata', 'metadata', 'services/metadata/dist/main.js', [
  '--port', String(metadataPort), '--store', store, '--instance-id', 'metadata-0',
]);
const metadataAddress = `127.0.0.1:${metadataPort}`;

try {
  const { client, metadata } = await waitForMetadata(metadataAddress);
  client.close();
  console.log(`
\x1b[1mSkein is running.\x1b[0m
  metadata service   ${metadataAddress}   (controller: ${metadata.controller.controllerId}, epoch ${metadata.controller.controllerEpoch})
  cluster id         ${metadata.clusterId}
  brokers            ${metadata.brokers.length}   topics ${metadata.topics.length}

Try (grpcurl; reflection is on):
  grpcurl -plaintext ${metadataAddress} list
  grpcurl -plaintext -d '{"name":"orders","partitions":6}' ${metadataAddress} skein.metadata.v1.MetadataService/CreateTopic
  grpcurl -plaintext ${metadataAddress} skein.metadata.v1.MetadataService/GetClusterMetadata
  grpcurl -plaintext -d '{"service":""}' ${metadataAddress} grpc.health.v1.Health/Check

Ctrl-C stops everything.
`);
} catch (err) {
  console.error(`start-up failed: ${err.message}`);
  await stopAll(1);
}
