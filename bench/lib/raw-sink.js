// The receiving side of the raw-limit measurements (bench/lib/raw.js), in its own process so that
// sender and receiver each get a core, as a client and a broker do. Role from argv[2]: `tcp` counts
// bytes until the sender ends; `grpc` serves a bidi stream that answers one byte per 16 messages;
// `grpc-window` does the same with 8 MiB HTTP/2 receive windows instead of Node's 64 KiB default
// (grpc-js servers have no option for it, so http2.createServer is wrapped before grpc-js uses it).
import { createServer } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { rawStreamDefinition } from './raw.js';

const role = process.argv[2];
if (role === 'tcp') {
  const server = createServer((sock) => {
    let bytes = 0;
    sock.on('data', (b) => { bytes += b.length; });
    sock.on('end', () => {
      process.send({ bytes });
      sock.end();
    });
  });
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
} else if (role === 'grpc' || role === 'grpc-window') {
  if (role === 'grpc-window') {
    const http2 = (await import('node:http2')).default;
    const createServer = http2.createServer;
    http2.createServer = (options = {}, ...rest) => {
      const server = createServer({ ...options, settings: { ...options.settings, initialWindowSize: 8 << 20 } }, ...rest);
      server.on('session', (session) => session.setLocalWindowSize(32 << 20));
      return server;
    };
  }
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 8 << 20 });
  server.addService(rawStreamDefinition(), {
    stream: (call) => {
      let n = 0;
      call.on('data', () => {
        if (++n % 16 === 0) call.write(Buffer.from([1]));
      });
      call.on('end', () => call.end());
    },
  });
  server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, port) => {
    if (e) throw e;
    process.send({ port });
  });
} else {
  throw new Error(`unknown raw-sink role ${role}`);
}
process.on('message', (m) => {
  if (m === 'stop') process.exit(0);
});

