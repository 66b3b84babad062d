/**
 * Client quotas in the metadata store, one key per entity under the cluster prefix:
 *
 *   <prefix>quotas/<entityKey>   {"v":1,"quota":{entity,producerByteRate?,consumerByteRate?}}
 *
 * (entityKey: `u=<user>;c=<client id>`, URI-encoded parts). An alteration reads the set, applies
 * the changes (client-quotas.ts) and writes what changed in one transaction guarded by the
 * revision it read, retried when another writer got there first. `watch` keeps a caller's copy
 * current from a prefix watch and re-reads the set when the watch breaks, as the ACL store does.
 */
import type { Logger } from 'pino';
import { retry } from '../backoff.js';
import type { MetadataStore, WatchHandle } from '../store/types.js';
import { applyAlterations, type ClientQuota, type ClientQuotaAlteration, entityKey, type QuotaEntity, quotaMatches } from './client-quotas.js';

const VERSION = 1;
const MAX_ATTEMPTS = 5;

export class QuotaStore {
  readonly prefix: string;

  constructor(
    private readonly store: MetadataStore,
    clusterPrefix: string,
  ) {
    this.prefix = `${clusterPrefix}quotas/`;
  }

  private static decode(value: Buffer): ClientQuota | undefined {
    try {
      const parsed = JSON.parse(value.toString('utf8')) as { v?: number; quota?: ClientQuota };
      return parsed.v === VERSION ? parsed.quota : undefined;
    } catch {
      return undefined;
    }
  }

  async list(filter: QuotaEntity = {}): Promise<{ quotas: ClientQuota[]; revision: bigint }> {
    const { kvs, revision } = await this.store.range(this.prefix);
    const quotas = kvs.map((kv) => QuotaStore.decode(kv.value)).filter((q): q is ClientQuota => q !== undefined && quotaMatches(q, filter));
    return { quotas, revision };
  }

  /** Applies the alterations atomically; returns the altered entities' quotas afterwards. Throws Error for an invalid alteration. */
  async alter(alterations: readonly ClientQuotaAlteration[]): Promise<ClientQuota[]> {
    for (let attempt = 1; ; attempt++) {
      const { kvs, revision } = await this.store.range(this.prefix);
      const current = kvs.map((kv) => QuotaStore.decode(kv.value)).filter((q): q is ClientQuota => q !== undefined);
      const next = applyAlterations(current, alterations);
      const nextByKey = new Map(next.map((q) => [entityKey(q.entity), q]));
      const touched = new Set(alterations.map((a) => entityKey(a.entity)));
      const ops = [...touched].map((k) => {
        const q = nextByKey.get(k);
        return q
          ? { type: 'put' as const, key: `${this.prefix}${k}`, value: Buffer.from(JSON.stringify({ v: VERSION, quota: q })) }
          : { type: 'delete' as const, key: `${this.prefix}${k}` };
      });
      // Guarded by every touched key's version as read: a concurrent alteration of the same entity retries.
      const versions = new Map(kvs.map((kv) => [kv.key, kv.version]));
      const compare = [...touched].map((k) => ({
        key: `${this.prefix}${k}`,
        target: 'version' as const,
        op: '=' as const,
        value: versions.get(`${this.prefix}${k}`) ?? 0n,
      }));
      const res = await this.store.txn({ compare, success: ops });
      if (res.succeeded) return [...touched].map((k) => nextByKey.get(k)).filter((q): q is ClientQuota => q !== undefined);
      if (attempt >= MAX_ATTEMPTS) throw new Error(`quota alteration kept racing with other writers (${MAX_ATTEMPTS} attempts at revision ${revision})`);
    }
  }

  /** Calls `onChange` with the whole set now and after every change, until closed. */
  async watch(onChange: (quotas: ClientQuota[], revision: bigint) => void, logger: Logger): Promise<{ close(): Promise<void> }> {
    let closed = false;
    let handle: WatchHandle | undefined;
    const current = new Map<string, ClientQuota>();
    const start = async (): Promise<void> => {
      const { kvs, revision } = await this.store.range(this.prefix);
      current.clear();
      for (const kv of kvs) {
        const q = QuotaStore.decode(kv.value);
        if (q) current.set(kv.key, q);
      }
      onChange([...current.values()], revision);
      handle = await this.store.watchPrefix(this.prefix, {
        fromRevision: revision + 1n,
        onBatch: (batch) => {
          for (const e of batch.events) {
            const key = e.type === 'delete' ? e.key : e.kv.key;
            const q = e.type === 'delete' ? undefined : QuotaStore.decode(e.kv.value);
            if (q) current.set(key, q);
            else current.delete(key);
          }
          onChange([...current.values()], batch.revision);
        },
        onError: (err) => {
          if (closed) return;
          logger.warn({ err }, 'quota watch broke; re-reading the quotas');
          void restart();
        },
      });
    };
    const restart = () =>
      retry(start, { initialMs: 100, maxMs: 5000, stopped: () => closed }).catch((err: unknown) => {
        if (!closed) logger.error({ err }, 'quota watch could not be re-established');
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
