/**
 * A broker as the metadata service sees it: registers, heartbeats, and can go silent (its session
 * then expires) or unregister. Lets metadata tests drive membership without running broker processes.
 */

import type { metadataClient } from './clients.js';

export class FakeBroker {
  private timer: NodeJS.Timeout | undefined;
  sessionId = 0n;

  private readonly clients: Array<ReturnType<typeof metadataClient>>;
  private current = 0;

  constructor(
    clients: ReturnType<typeof metadataClient> | Array<ReturnType<typeof metadataClient>>,
    readonly brokerId: number,
    private readonly options: { sessionTtlMs?: number; rack?: string; port?: number } = {},
  ) {
    this.clients = Array.isArray(clients) ? clients : [clients];
  }

  /** Like a real broker, fails over to the next metadata instance when one stops answering. */
  private get client(): ReturnType<typeof metadataClient> {
    return this.clients[this.current % this.clients.length]!;
  }

  async register(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.registerOnce();
        return;
      } catch (err) {
        const reason = (err as { reason?: string }).reason;
        if ((reason !== 'BROKER_NOT_AVAILABLE' && reason !== 'REQUEST_TIMED_OUT') || attempt >= 2 * this.clients.length) throw err;
        this.current++;
      }
    }
  }

  private async registerOnce(): Promise<void> {
    const res = await this.client.registerBroker({
      brokerId: this.brokerId,
      endpoint: { host: '127.0.0.1', port: this.options.port ?? 20000 + this.brokerId },
      rack: this.options.rack ?? '',
      sessionTtlMs: this.options.sessionTtlMs ?? 2000,
      directoryId: '', // fake brokers hold no data: nothing to fence
    }, { deadlineMs: 2000 });
    this.sessionId = res.sessionId;
    this.timer = setInterval(() => {
      this.client.brokerHeartbeat({ brokerId: this.brokerId, sessionId: this.sessionId }, { deadlineMs: res.heartbeatIntervalMs }).catch((err: { reason?: string }) => {
        if (err.reason !== 'SESSION_EXPIRED') {
          this.current++;
          return;
        }
        // As a real broker does: a session lost while the metadata service was unreachable (an
        // instance frozen, say) is replaced by a new registration, not given up.
        if (this.timer === undefined) return;
        clearInterval(this.timer);
        this.timer = undefined;
        this.register().catch(() => {});
      });
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
