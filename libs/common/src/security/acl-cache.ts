/**
 * Every service's copy of the cluster's ACLs, behind the authorizer the shell consults on each RPC.
 * Fed either from the store (the metadata service, which owns the keys: AclStore.watch) or from
 * the metadata service's WatchAcls stream (brokers, coordinators, later roles), so a change made
 * with `skein acls create` is effective everywhere within one store watch hop plus one stream hop.
 * Until the first set arrives the cache answers as an empty set does: only super-users and
 * internal principals are allowed (fail closed).
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { followStream } from '../follow-stream.js';
import { MetadataServiceClient, type WatchAclsResponse } from '@skein/proto/skein/metadata/v1/metadata.js';
import { aclFromProto } from './acl-codec.js';
import { type AclBinding, Authorizer, type AuthorizerOptions } from './authorizer.js';

export class AclCache {
  private authorizer: Authorizer;
  private revision = -1n;
  private readonly listeners = new Set<() => void>();

  constructor(private readonly options: AuthorizerOptions = {}) {
    this.authorizer = new Authorizer([], options);
  }

  /** The authorizer over the latest set. */
  get current(): Authorizer {
    return this.authorizer;
  }

  /** Revision of the set in use; -1 before the first. */
  get loadedRevision(): bigint {
    return this.revision;
  }

  /** Replaces the set; an older revision than the one in use is ignored (a reconnect racing a stream). */
  update(acls: readonly AclBinding[], revision: bigint): void {
    if (revision < this.revision) return;
    this.revision = revision;
    this.authorizer = new Authorizer(acls, this.options);
    for (const l of this.listeners) l();
  }

  /** Resolves once a set at `revision` or later is in use. */
  waitForRevision(revision: bigint): Promise<void> {
    if (this.revision >= revision) return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (this.revision >= revision) {
          this.listeners.delete(check);
          resolve();
        }
      };
      this.listeners.add(check);
    });
  }
}

export interface FollowAclsOptions {
  metadataAddresses: readonly string[];
  credentials?: grpc.ChannelCredentials;
  logger: Logger;
}

/**
 * Keeps `cache` fed from the metadata service's WatchAcls stream, moving to the next address after
 * a jittered backoff whenever a stream ends. Bindings a newer metadata service sends that this
 * process cannot read are skipped (logged): a missing allow fails closed, a missing deny is logged.
 */
export function followAclsFromMetadata(cache: AclCache, options: FollowAclsOptions): { close(): void } {
  const credentials = options.credentials ?? grpc.credentials.createInsecure();
  return followStream({
    clients: options.metadataAddresses.map((a) => new MetadataServiceClient(a, credentials)),
    open: (client) => client.watchAcls({}),
    logger: options.logger,
    what: 'ACL watch',
    onData: (res: WatchAclsResponse) => {
      const acls: AclBinding[] = [];
      for (const p of res.acls) {
        try {
          acls.push(aclFromProto(p));
        } catch (err) {
          options.logger.warn({ err, acl: p }, 'ACL from the metadata service not understood; skipped');
        }
      }
      cache.update(acls, res.revision);
    },
  });
}
