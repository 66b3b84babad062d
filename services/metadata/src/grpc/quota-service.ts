/**
 * skein.metadata.v1.ClientQuotaService: client quotas kept in the store (QuotaStore), managed like
 * ACLs (alter needs alter_configs on the cluster, describe describe_configs, watch is internal) and
 * streamed to every broker. One store watch feeds every WatchClientQuotas stream through QuotaFeed;
 * each message is the whole set (it is small), and a slow reader only ever gets the newest one.
 */
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { serverStreaming, unary } from '@skein/common/grpc-server.js';
import { SkeinError } from '@skein/common/errors.js';
import type { ClientQuota } from '@skein/common/quota/client-quotas.js';
import { alterationFromProto, quotaToProto } from '@skein/common/quota/quota-codec.js';
import type { QuotaStore } from '@skein/common/quota/quota-store.js';
import { principalString } from '@skein/common/security/authorizer.js';
import { type AuthorizeMap, clusterAction, requestAuth } from '@skein/common/security/enforcement.js';
import { ClientQuotaServiceService } from '@skein/proto/skein/metadata/v1/quota.js';

export const QUOTA_SERVICE_NAME = 'skein.metadata.v1.ClientQuotaService';
export { ClientQuotaServiceService };

/** Most alterations one AlterClientQuotas may carry. */
const MAX_ALTERATIONS = 1000;

export class QuotaFeed {
  private latest: { quotas: ClientQuota[]; revision: bigint } | undefined;
  private readonly listeners = new Set<(quotas: ClientQuota[], revision: bigint) => void>();

  publish(quotas: ClientQuota[], revision: bigint): void {
    this.latest = { quotas, revision };
    for (const l of this.listeners) l(quotas, revision);
  }

  subscribe(fn: (quotas: ClientQuota[], revision: bigint) => void): () => void {
    this.listeners.add(fn);
    if (this.latest) fn(this.latest.quotas, this.latest.revision);
    return () => this.listeners.delete(fn);
  }
}

/** Kafka's rules: AlterClientQuotas alter_configs on the cluster, DescribeClientQuotas describe_configs. */
export const quotaAuthorizeMap: AuthorizeMap = {
  alterClientQuotas: () => [clusterAction('alter_configs')],
  describeClientQuotas: () => [clusterAction('describe_configs')],
  watchClientQuotas: () => [clusterAction('cluster_action')],
};

export function quotaServiceHandlers(deps: { store: QuotaStore; feed: QuotaFeed; audit: Logger }): grpc.UntypedServiceImplementation {
  return {
    alterClientQuotas: unary(async (req: { alterations: Parameters<typeof alterationFromProto>[0][] }, call) => {
      if (req.alterations.length === 0) throw new SkeinError('INVALID_REQUEST', 'alterations must not be empty');
      if (req.alterations.length > MAX_ALTERATIONS)
        throw new SkeinError('INVALID_REQUEST', `at most ${MAX_ALTERATIONS} alterations per request, got ${req.alterations.length}`);
      let quotas: ClientQuota[];
      try {
        const alterations = req.alterations.map(alterationFromProto);
        quotas = await deps.store.alter(alterations);
        deps.audit.info({ event: 'quotas_altered', principal: principalString(requestAuth(call).principal), alterations }, 'client quotas altered');
      } catch (err) {
        if (err instanceof SkeinError) throw err;
        const message = (err as Error).message;
        // Validation problems (client-quotas.ts) are the caller's; a store failure is not.
        if (/^(a quota entity|the (user|client id)|producer_byte_rate|consumer_byte_rate|byte rate)/.test(message))
          throw new SkeinError('INVALID_REQUEST', message);
        throw err;
      }
      return { quotas: quotas.map(quotaToProto) };
    }),
    describeClientQuotas: unary(async (req: { user?: string; clientId?: string }) => {
      const { quotas } = await deps.store.list({
        ...(req.user !== undefined ? { user: req.user } : {}),
        ...(req.clientId !== undefined ? { clientId: req.clientId } : {}),
      });
      return { quotas: quotas.map(quotaToProto) };
    }),
    watchClientQuotas: serverStreaming(async (call) => {
      await new Promise<void>((resolve) => {
        let pending: { quotas: ClientQuota[]; revision: bigint } | undefined;
        let blocked = false;
        const flush = () => {
          while (pending && !blocked && !call.cancelled && !call.destroyed) {
            const next = pending;
            pending = undefined;
            blocked = !call.write({ quotas: next.quotas.map(quotaToProto), revision: next.revision });
          }
        };
        call.on('drain', () => {
          blocked = false;
          flush();
        });
        const unsubscribe = deps.feed.subscribe((quotas, revision) => {
          pending = { quotas, revision };
          flush();
        });
        const end = () => {
          unsubscribe();
          resolve();
        };
        call.on('cancelled', end);
        call.on('close', end);
        call.on('error', end);
      });
    }),
  };
}
