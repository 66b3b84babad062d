/**
 * Client quotas (Kafka's, KIP-55): byte rates for produce and fetch per user principal and/or
 * client id, and which one applies to a caller. Pure: no I/O, no clock.
 *
 * An entity names a user, a client id, or both; DEFAULT_ENTITY ("<default>") in either stands for
 * every user (client id) without an entity of its own. A caller (user, client id) gets, for each
 * kind separately, the value of the first entity in Kafka's order that exists and has that kind:
 *   user+client, user+<default> client, user, <default> user+client, <default> user+<default>
 *   client, <default> user, client, <default> client.
 * Callers matching the same entity share its rate (Kafka: a user quota is one budget for all of the
 * user's clients), so the entity's key is what rates are tracked under.
 */

export const DEFAULT_ENTITY = '<default>';
export const QUOTA_KINDS = ['producer_byte_rate', 'consumer_byte_rate'] as const;
export type QuotaKind = (typeof QUOTA_KINDS)[number];

export interface QuotaEntity {
  user?: string;
  clientId?: string;
}

export interface ClientQuota {
  entity: QuotaEntity;
  producerByteRate?: number;
  consumerByteRate?: number;
}

export interface ClientQuotaAlteration {
  entity: QuotaEntity;
  producerByteRate?: number;
  consumerByteRate?: number;
  removeProducerByteRate?: boolean;
  removeConsumerByteRate?: boolean;
}

/** Longest user or client id name in an entity. */
const MAX_NAME = 255;
/** Largest rate accepted (bytes/s): 1 TiB/s, far above any broker, well inside a double. */
export const MAX_BYTE_RATE = 2 ** 40;

/** A stable key for an entity: `u=<user>;c=<client id>` with absent parts left out, URI-encoded. */
export function entityKey(e: QuotaEntity): string {
  const parts: string[] = [];
  if (e.user !== undefined) parts.push(`u=${encodeURIComponent(e.user)}`);
  if (e.clientId !== undefined) parts.push(`c=${encodeURIComponent(e.clientId)}`);
  return parts.join(';');
}

/** Why an entity is unusable, or undefined. */
export function entityProblem(e: QuotaEntity): string | undefined {
  if (e.user === undefined && e.clientId === undefined) return 'a quota entity names a user, a client id, or both';
  for (const [what, v] of [
    ['user', e.user],
    ['client id', e.clientId],
  ] as const) {
    if (v === undefined) continue;
    if (v === '') return `the ${what} of a quota entity must not be empty (use ${DEFAULT_ENTITY} for the default)`;
    if (v.length > MAX_NAME) return `the ${what} of a quota entity is longer than ${MAX_NAME} characters`;
  }
  return undefined;
}

/** Why a rate is unusable, or undefined. */
export function rateProblem(kind: QuotaKind, v: number | undefined): string | undefined {
  if (v === undefined) return undefined;
  if (!Number.isSafeInteger(v) || v < 1 || v > MAX_BYTE_RATE) return `${kind} must be an integer from 1 to ${MAX_BYTE_RATE} bytes per second, got ${v}`;
  return undefined;
}

/** Applies alterations to a set of quotas: the next set (entities left without a value are dropped). Throws Error with the problem. */
export function applyAlterations(current: readonly ClientQuota[], alterations: readonly ClientQuotaAlteration[]): ClientQuota[] {
  const next = new Map(current.map((q) => [entityKey(q.entity), { ...q }]));
  for (const a of alterations) {
    const problem =
      entityProblem(a.entity) ??
      rateProblem('producer_byte_rate', a.producerByteRate) ??
      rateProblem('consumer_byte_rate', a.consumerByteRate) ??
      (a.removeProducerByteRate && a.producerByteRate !== undefined ? 'producer_byte_rate is both set and removed' : undefined) ??
      (a.removeConsumerByteRate && a.consumerByteRate !== undefined ? 'consumer_byte_rate is both set and removed' : undefined);
    if (problem) throw new Error(problem);
    const key = entityKey(a.entity);
    const q: ClientQuota = next.get(key) ?? { entity: { ...a.entity } };
    if (a.producerByteRate !== undefined) q.producerByteRate = a.producerByteRate;
    if (a.consumerByteRate !== undefined) q.consumerByteRate = a.consumerByteRate;
    if (a.removeProducerByteRate) delete q.producerByteRate;
    if (a.removeConsumerByteRate) delete q.consumerByteRate;
    if (q.producerByteRate === undefined && q.consumerByteRate === undefined) next.delete(key);
    else next.set(key, q);
  }
  return [...next.values()];
}

/** The quota that applies to a caller for one kind, and the entity whose budget it shares. */
export interface AppliedQuota {
  bytesPerSecond: number;
  entityKey: string;
}

/** Quotas indexed for lookups on the data path (rebuilt when the set changes). */
export class QuotaIndex {
  private readonly byKey = new Map<string, ClientQuota>();

  constructor(quotas: readonly ClientQuota[] = []) {
    for (const q of quotas) this.byKey.set(entityKey(q.entity), q);
  }

  get size(): number {
    return this.byKey.size;
  }

  /** Kafka's precedence (see the file comment); undefined when no entity sets this kind. */
  resolve(kind: QuotaKind, user: string, clientId: string): AppliedQuota | undefined {
    if (this.byKey.size === 0) return undefined;
    const D = DEFAULT_ENTITY;
    const candidates: QuotaEntity[] = [
      { user, clientId },
      { user, clientId: D },
      { user },
      { user: D, clientId },
      { user: D, clientId: D },
      { user: D },
      { clientId },
      { clientId: D },
    ];
    for (const e of candidates) {
      const q = this.byKey.get(entityKey(e));
      const v = kind === 'producer_byte_rate' ? q?.producerByteRate : q?.consumerByteRate;
      // The budget is the entity's with the caller's names in place of defaults, as Kafka tags its
      // sensors: each user gets the default user rate of its own, all of alice's clients share hers.
      if (v !== undefined)
        return {
          bytesPerSecond: v,
          entityKey: entityKey({ user: e.user === undefined ? undefined : user, clientId: e.clientId === undefined ? undefined : clientId }),
        };
    }
    return undefined;
  }
}

/** Whether a quota matches a describe filter (exact user / client id when given). */
export function quotaMatches(q: ClientQuota, filter: QuotaEntity): boolean {
  return (filter.user === undefined || q.entity.user === filter.user) && (filter.clientId === undefined || q.entity.clientId === filter.clientId);
}
