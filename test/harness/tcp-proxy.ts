/**
 * A fault-injecting TCP proxy on 127.0.0.1: forwards to a target until `cut()`, which drops every
 * open connection and refuses new ones until `heal()`. Used to partition one process from another.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export class TcpProxy {
  private server!: Server;
  private readonly sockets = new Set<Socket>();
  private isCut = false;
  port = 0;

  private constructor(private readonly target: { host: string; port: number }) {}

  static async start(target: string): Promise<TcpProxy> {
    const [host, port] = target.split(':');
    const proxy = new TcpProxy({ host: host!, port: Number(port) });
    proxy.server = createServer((client) => {
      if (proxy.isCut) {
        client.destroy();
        return;
      }
      const upstream = connect(proxy.target.port, proxy.target.host);
      for (const s of [client, upstream]) {
        proxy.sockets.add(s);
        s.on('close', () => proxy.sockets.delete(s));
        s.on('error', () => { client.destroy(); upstream.destroy(); });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', () => resolve()));
    const addr = proxy.server.address();
    proxy.port = typeof addr === 'object' && addr ? addr.port : 0;
    return proxy;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  cut(): void {
    this.isCut = true;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  heal(): void {
    this.isCut = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
