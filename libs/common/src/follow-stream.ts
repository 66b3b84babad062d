/**
 * Follows a server stream of the metadata service (ACLs, client quotas, ...) across its addresses:
 * opens it on one address, hands every message to `onData`, and when the stream ends or fails,
 * moves to the next address after a jittered backoff (reset by the next message). Never throws;
 * `close()` stops it for good.
 */
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { backoffDelayMs } from './backoff.js';

export interface FollowStreamOptions<C extends { close(): void }, R> {
  /** One client per address; the helper closes them. */
  clients: readonly C[];
  open(client: C): grpc.ClientReadableStream<R>;
  onData(message: R): void;
  logger: Logger;
  /** What the stream carries, for the log line ("ACL watch"). */
  what: string;
}

export function followStream<C extends { close(): void }, R>(options: FollowStreamOptions<C, R>): { close(): void } {
  let closed = false;
  let next = 0;
  let failures = 0;
  let call: grpc.ClientReadableStream<R> | undefined;
  let timer: NodeJS.Timeout | undefined;
  const connect = () => {
    if (closed) return;
    const client = options.clients[next++ % options.clients.length]!;
    call = options.open(client);
    call.on('data', (message: R) => {
      failures = 0;
      options.onData(message);
    });
    let ended = false;
    const retryLater = (err?: unknown) => {
      if (ended || closed) return;
      ended = true;
      const delay = backoffDelayMs({ initialMs: 200, maxMs: 5000 }, failures++);
      options.logger.warn({ err, delayMs: delay }, `${options.what} ended; reconnecting`);
      timer = setTimeout(connect, delay);
      timer.unref?.();
    };
    call.on('error', retryLater);
    call.on('end', () => retryLater());
  };
  connect();
  return {
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      call?.cancel();
      for (const c of options.clients) c.close();
    },
  };
}
