// The HTTP/2 receive window a server grants (limits.http2WindowBytes): grpc-js servers cannot set it
// without patches/@grpc+grpc-js+*.patch, so this also checks that the patch is applied. A raw
// HTTP/2 client reads what the server advertised and granted.
import * as http2 from 'node:http2';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { type GrpcServerHandle, startGrpcServer } from './grpc-server.js';

const servers: GrpcServerHandle[] = [];
const sessions: http2.ClientHttp2Session[] = [];
afterEach(async () => {
  for (const s of sessions.splice(0)) s.destroy();
  for (const s of servers.splice(0)) await s.shutdown(1000);
});

async function serve(http2WindowBytes?: number): Promise<number> {
  const handle = await startGrpcServer({
    host: '127.0.0.1',
    port: 0,
    services: [],
    logger: pino({ level: 'silent' }),
    limits: http2WindowBytes === undefined ? {} : { http2WindowBytes },
  });
  servers.push(handle);
  return handle.port;
}

/** Connects and resolves once the server's SETTINGS arrived and its connection window is as large as `atLeast`, or the deadline passed. */
async function granted(port: number, connectionWindowAtLeast: number): Promise<{ streamWindow: number | undefined; connectionWindow: number | undefined }> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  sessions.push(session);
  await new Promise<void>((resolve, reject) => {
    session.once('remoteSettings', () => resolve());
    session.once('error', reject);
  });
  // The connection window arrives in a WINDOW_UPDATE right after SETTINGS; Node has no event for
  // it, so poll the session state on each turn of the event loop, up to a deadline.
  const deadline = Date.now() + 5_000;
  while ((session.state.remoteWindowSize ?? 0) < connectionWindowAtLeast && Date.now() < deadline) await new Promise((r) => setImmediate(r));
  return { streamWindow: session.remoteSettings.initialWindowSize, connectionWindow: session.state.remoteWindowSize };
}

describe('HTTP/2 receive window', () => {
  it('a server given http2WindowBytes advertises it for every stream and grants it for the connection', async () => {
    const port = await serve(8 * 1024 * 1024);
    expect(await granted(port, 8 * 1024 * 1024)).toEqual({ streamWindow: 8 * 1024 * 1024, connectionWindow: 8 * 1024 * 1024 });
  });

  it("without it (0, the default) a server keeps Node's 64 KiB windows", async () => {
    const port = await serve();
    expect(await granted(port, 65_535)).toEqual({ streamWindow: 65_535, connectionWindow: 65_535 });
    const zero = await serve(0);
    expect(await granted(zero, 65_535)).toEqual({ streamWindow: 65_535, connectionWindow: 65_535 });
  });
});
