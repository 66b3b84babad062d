/**
 * Keeps a broker's copy of the client quotas current from the metadata service's
 * WatchClientQuotas stream (the whole set per message), moving to the next address after a
 * jittered backoff whenever a stream ends, as the ACL follower does. A quota it cannot read is
 * skipped and logged (the caller is then unthrottled rather than stopped).
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { ClientQuotaServiceClient, type WatchClientQuotasResponse } from '@skein/proto/skein/metadata/v1/quota.js';
import { followStream } from '../follow-stream.js';
import type { ClientQuota } from './client-quotas.js';
import { quotaFromProto } from './quota-codec.js';

export interface FollowQuotasOptions {
  metadataAddresses: readonly string[];
  credentials?: grpc.ChannelCredentials;
  logger: Logger;
}

export function followQuotasFromMetadata(onChange: (quotas: ClientQuota[], revision: bigint) => void, options: FollowQuotasOptions): { close(): void } {
  const credentials = options.credentials ?? grpc.credentials.createInsecure();
  return followStream({
    clients: options.metadataAddresses.map((a) => new ClientQuotaServiceClient(a, credentials)),
    open: (client) => client.watchClientQuotas({}),
    logger: options.logger,
    what: 'client quota watch',
    onData: (res: WatchClientQuotasResponse) => {
      const quotas: ClientQuota[] = [];
      for (const q of res.quotas) {
        try {
          quotas.push(quotaFromProto(q));
        } catch (err) {
          options.logger.warn({ err, quota: q }, 'client quota from the metadata service not understood; skipped');
        }
      }
      onChange(quotas, res.revision);
    },
  });
}
