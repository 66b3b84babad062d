/**
 * A broker as the metadata service sees it: registers, heartbeats, and can go silent (its session
 * then expires) or unregister. Lets metadata tests drive membership without running broker processes.
 */

import type { metadataClient } from './clients.js';

export class FakeBroker {
  private timer: NodeJS.Timeout | undefined;
  sessionId = 0n;

  constructor(
    private readonly client: ReturnType<typeof metadataClient>,
    readonly brokerId: number,
    private readonly options: { sessionTtlMs?: number; rack?: string; port?: number } = {},
  ) {}

  async register(): Promise<void> {
    const res = await this.client.registerBroker({
      brokerId: this.brokerId,
      endpoint: { host: '127.0.0.1', port: this.options.port ?? 20000 + this.brokerId },
      rack: this.options.rack ?? '',
      sessionTtlMs: this.options.sessionTtlMs ?? 2000,
    });
    this.sessionId = res.sessionId;
    this.timer = setInterval(() => {
      this.client.brokerHeartbeat({ brokerId: this.brokerId, sessionId: this.sessionId }).catch(() => {});
    }, res.heartbeatIntervalMs);
  }

  /** Stops heartbeating, as a crashed broker would; the session expires after its TTL. */
  crash(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  async unregister(): Promise<void> {
    this.crash();
    await this.client.unregisterBroker({ brokerId: this.brokerId, sessionId: this.sessionId });
  }
}
