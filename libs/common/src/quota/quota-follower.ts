/**
 * Keeps a broker's copy of the client quotas current from the metadata service's
 * WatchClientQuotas stream (the whole set per message), moving to the next address after a
 * jittered backoff whenever a stream ends, as the ACL follower does. A quota it cannot read is
 * skipped and logged (the caller is then unthrottled rather than stopped).
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { ClientQuotaServiceClient, type WatchClientQuotasResponse } from '@skein/proto/skein/metadata/v1/quota.js';
import { backoffDelayMs } from '../backoff.js';
import type { ClientQuota } from './client-quotas.js';
import { quotaFromProto } from './quota-codec.js';

export interface FollowQuotasOptions {
  metadataAddresses: readonly string[];
  credentials?: grpc.ChannelCredentials;
  logger: Logger;
}

export function followQuotasFromMetadata(onChange: (quotas: ClientQuota[], revision: bigint) => void, options: FollowQuotasOptions): { close(): void } {
  const credentials = options.credentials ?? grpc.credentials.createInsecure();
  const clients = options.metadataAddresses.map((a) => new ClientQuotaServiceClient(a, credentials));
  let closed = false;
  let next = 0;
  let failures = 0;
  let call: grpc.ClientReadableStream<WatchClientQuotasResponse> | undefined;
  let timer: NodeJS.Timeout | undefined;
  const connect = () => {
    if (closed) return;
    const client = clients[next++ % clients.length]!;
    call = client.watchClientQuotas({});
    call.on('data', (res: WatchClientQuotasResponse) => {
      failures = 0;
      const quotas: ClientQuota[] = [];
      for (const q of res.quotas) {
        try {
          quotas.push(quotaFromProto(q));
        } catch (err) {
          options.logger.warn({ err, quota: q }, 'client quota from the metadata service not understood; skipped');
        }
      }
      onChange(quotas, res.revision);
    });
    let ended = false;
    const retryLater = (err?: unknown) => {
      if (ended || closed) return;
      ended = true;
      const delay = backoffDelayMs({ initialMs: 200, maxMs: 5000 }, failures++);
      options.logger.warn({ err, delayMs: delay }, 'client quota watch ended; reconnecting');
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
      for (const c of clients) c.close();
    },
  };
}
