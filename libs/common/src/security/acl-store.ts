/**
 * ACLs in the metadata store, one key per ACL under the cluster prefix:
 *
 *   <prefix>acls/<type>/<pattern>/<name>/<principal>/<operation>/<permission>
 *       {"v":1,"acl":{principal,resourceType,resourceName,patternType,operation,permission}}
 *
 * (each path part URI-encoded, so names with "/" stay one part). The key is the ACL's identity, so
 * creating an existing ACL rewrites the same key (idempotent) and deleting is deleting keys. A
 * whole set is read with one range; `watch` keeps a caller's copy current from a prefix watch and
 * re-reads the set when the watch breaks.
 */
import type { Logger } from 'pino';
import { retry } from '../backoff.js';
import type { MetadataStore, WatchHandle } from '../store/types.js';
import { type AclBinding, type AclFilter, aclKey, aclMatchesFilter } from './authorizer.js';

const VERSION = 1;

export class AclStore {
  readonly prefix: string;

  constructor(
    private readonly store: MetadataStore,
    clusterPrefix: string,
  ) {
    this.prefix = `${clusterPrefix}acls/`;
  }

  key(acl: AclBinding): string {
    return `${this.prefix}${aclKey(acl)}`;
  }

  private static decode(value: Buffer): AclBinding | undefined {
    try {
      const parsed = JSON.parse(value.toString('utf8')) as { v?: number; acl?: AclBinding };
      // A newer writer's record this version does not understand is skipped, not guessed at.
      return parsed.v === VERSION ? parsed.acl : undefined;
    } catch {
      return undefined;
    }
  }

  async list(filter: AclFilter = {}): Promise<{ acls: AclBinding[]; revision: bigint }> {
    const { kvs, revision } = await this.store.range(this.prefix);
    const acls = kvs.map((kv) => AclStore.decode(kv.value)).filter((a): a is AclBinding => a !== undefined && aclMatchesFilter(a, filter));
    return { acls, revision };
  }

  /** Writes the ACLs in one transaction; returns those that did not exist before. */
  async create(acls: readonly AclBinding[]): Promise<AclBinding[]> {
    const existing = new Set((await this.list()).acls.map(aclKey));
    const unique = new Map(acls.map((a) => [aclKey(a), a]));
    const fresh = [...unique.values()].filter((a) => !existing.has(aclKey(a)));
    if (fresh.length > 0) {
      await this.store.txn({
        compare: [],
        success: fresh.map((a) => ({ type: 'put' as const, key: this.key(a), value: Buffer.from(JSON.stringify({ v: VERSION, acl: a })) })),
      });
    }
    return fresh;
  }

  /** Deletes every ACL any filter selects, in one transaction; returns them. */
  async delete(filters: readonly AclFilter[]): Promise<AclBinding[]> {
    const { acls } = await this.list();
    const doomed = acls.filter((a) => filters.some((f) => aclMatchesFilter(a, f)));
    if (doomed.length > 0) await this.store.txn({ compare: [], success: doomed.map((a) => ({ type: 'delete' as const, key: this.key(a) })) });
    return doomed;
  }

  /**
   * Calls `onChange` with the whole set now and after every change, until closed. A broken watch
   * is re-established from a fresh read (retried with backoff), so no change is ever missed.
   */
  async watch(onChange: (acls: AclBinding[], revision: bigint) => void, logger: Logger): Promise<{ close(): Promise<void> }> {
    let closed = false;
    let handle: WatchHandle | undefined;
    const current = new Map<string, AclBinding>();
    const start = async (): Promise<void> => {
      const { kvs, revision } = await this.store.range(this.prefix);
      current.clear();
      for (const kv of kvs) {
        const acl = AclStore.decode(kv.value);
        if (acl) current.set(kv.key, acl);
      }
      onChange([...current.values()], revision);
      handle = await this.store.watchPrefix(this.prefix, {
        fromRevision: revision + 1n,
        onBatch: (batch) => {
          for (const e of batch.events) {
            if (e.type === 'delete') current.delete(e.key);
            else {
              const acl = AclStore.decode(e.kv.value);
              if (acl) current.set(e.kv.key, acl);
              else current.delete(e.kv.key);
            }
          }
          onChange([...current.values()], batch.revision);
        },
        onError: (err) => {
          if (closed) return;
          logger.warn({ err }, 'ACL watch broke; re-reading the ACLs');
          void restart();
        },
      });
    };
    const restart = () =>
      retry(start, { initialMs: 100, maxMs: 5000, stopped: () => closed }).catch((err: unknown) => {
        if (!closed) logger.error({ err }, 'ACL watch could not be re-established');
      });
    await start();
    return {
      async close() {
        closed = true;
        await handle?.close();
      },
    };
  }
}
