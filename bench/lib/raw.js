// The machine's raw limits, measured in the same run as anything compared against them (figures on
// a shared 2-core VM drift by tens of percent between runs): loopback TCP between two Node
// processes, a grpc-js bidi stream between two Node processes, and sequential disk writes with one
// fdatasync at the end. Each returns { MBps, bytes, seconds } with MB = 10^6 bytes.
import * as fs from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { forkTracked, stopChild } from './processes.js';

const MIB = 1 << 20;
const sinkPath = new URL('./raw-sink.js', import.meta.url).pathname;

export function rawStreamDefinition() {
  const id = (b) => b;
  return { stream: { path: '/bench.Raw/Stream', requestStream: true, responseStream: true, requestSerialize: id, requestDeserialize: id, responseSerialize: id, responseDeserialize: id } };
}

async function startSink(role) {
  const child = forkTracked(`raw-sink-${role}`, sinkPath, [role]);
  const { port } = await new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (c) => reject(new Error(`raw sink (${role}) exited with ${c}`)));
  });
  return { child, port };
}

const result = (bytes, seconds) => ({ bytes, seconds, MBps: bytes / seconds / 1e6 });

/** Node → Node over loopback TCP, 1 MiB writes, honouring backpressure. */
export async function rawTcp(mb) {
  const { child, port } = await startSink('tcp');
  try {
    const n = Math.max(16, Math.ceil((mb * 1e6) / MIB));
    const buf = Buffer.alloc(MIB, 7);
    const t0 = performance.now();
    const done = new Promise((resolve) => child.once('message', resolve));
    const sock = connect(port, '127.0.0.1');
    await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
    for (let i = 0; i < n; i++) {
      if (!sock.write(buf)) await new Promise((r) => sock.once('drain', r));
    }
    sock.end();
    const { bytes } = await done;
    return result(bytes, (performance.now() - t0) / 1000);
  } finally {
    await stopChild(child);
  }
}

/**
 * A grpc-js bidi stream of 1 MiB messages to another process: the ceiling for any broker that
 * speaks grpc-js (the receiver answers one byte per 16 messages; up to 64 messages unanswered).
 * With Node's default 64 KiB HTTP/2 receive window the stream is bound by flow control, not CPU;
 * `window: true` measures the same with 8 MiB windows on the receiver.
 */
export async function rawGrpc(mb, { window = false } = {}) {
  const { child, port } = await startSink(window ? 'grpc-window' : 'grpc');
  const Client = grpc.makeGenericClientConstructor(rawStreamDefinition(), 'Raw');
  const c = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': 8 << 20 });
  try {
    const msg = Buffer.alloc(MIB, 7);
    const n = Math.max(64, Math.ceil((mb * 1e6) / MIB / 16) * 16);
    const t0 = performance.now();
    await new Promise((resolve, reject) => {
      const s = c.stream();
      s.on('error', reject);
      let acks = 0;
      let sent = 0;
      const pump = () => {
        while (sent < n && sent - acks * 16 < 64) {
          s.write(msg);
          sent++;
        }
      };
      s.on('data', () => {
        acks++;
        if (acks * 16 >= n) {
          s.end();
          resolve();
        } else pump();
      });
      pump();
    });
    return result(n * MIB, (performance.now() - t0) / 1000);
  } finally {
    c.close();
    await stopChild(child);
  }
}

/** Sequential 1 MiB writes to a new file in `dir`, then one fdatasync (counted in the time). */
export function rawDisk(dir, mb) {
  const f = join(dir, 'raw-disk');
  const fd = fs.openSync(f, 'w');
  try {
    const buf = Buffer.alloc(MIB, 3);
    const n = Math.max(16, Math.ceil((mb * 1e6) / MIB));
    const t0 = performance.now();
    for (let i = 0; i < n; i++) fs.writeSync(fd, buf);
    fs.fdatasyncSync(fd);
    return result(n * MIB, (performance.now() - t0) / 1000);
  } finally {
    fs.closeSync(fd);
    fs.rmSync(f, { force: true });
  }
}
