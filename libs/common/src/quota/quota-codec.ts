/**
 * Client quotas between their domain form (client-quotas.ts: numbers) and skein.metadata.v1's
 * (int64 as bigint, optional fields). A rate past Number.MAX_SAFE_INTEGER is refused.
 */
import type {
  ClientQuota as ClientQuotaProto,
  ClientQuotaAlteration as ClientQuotaAlterationProto,
  QuotaEntity as QuotaEntityProto,
} from '@skein/proto/skein/metadata/v1/quota.js';
import type { ClientQuota, ClientQuotaAlteration, QuotaEntity } from './client-quotas.js';

const num = (v: bigint | undefined): number | undefined => {
  if (v === undefined) return undefined;
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) throw new Error(`byte rate ${v} is out of range`);
  return Number(v);
};
const big = (v: number | undefined): bigint | undefined => (v === undefined ? undefined : BigInt(v));

export function entityFromProto(e: QuotaEntityProto | undefined): QuotaEntity {
  return { ...(e?.user !== undefined ? { user: e.user } : {}), ...(e?.clientId !== undefined ? { clientId: e.clientId } : {}) };
}

export function entityToProto(e: QuotaEntity): QuotaEntityProto {
  return { ...(e.user !== undefined ? { user: e.user } : {}), ...(e.clientId !== undefined ? { clientId: e.clientId } : {}) };
}

export function quotaFromProto(q: ClientQuotaProto): ClientQuota {
  const producerByteRate = num(q.producerByteRate);
  const consumerByteRate = num(q.consumerByteRate);
  return {
    entity: entityFromProto(q.entity),
    ...(producerByteRate !== undefined ? { producerByteRate } : {}),
    ...(consumerByteRate !== undefined ? { consumerByteRate } : {}),
  };
}

export function quotaToProto(q: ClientQuota): ClientQuotaProto {
  return { entity: entityToProto(q.entity), producerByteRate: big(q.producerByteRate), consumerByteRate: big(q.consumerByteRate) };
}

export function alterationFromProto(a: ClientQuotaAlterationProto): ClientQuotaAlteration {
  return {
    entity: entityFromProto(a.entity),
    producerByteRate: num(a.producerByteRate),
    consumerByteRate: num(a.consumerByteRate),
    removeProducerByteRate: a.removeProducerByteRate,
    removeConsumerByteRate: a.removeConsumerByteRate,
  };
}

export function alterationToProto(a: ClientQuotaAlteration): ClientQuotaAlterationProto {
  return {
    entity: entityToProto(a.entity),
    producerByteRate: big(a.producerByteRate),
    consumerByteRate: big(a.consumerByteRate),
    removeProducerByteRate: a.removeProducerByteRate ?? false,
    removeConsumerByteRate: a.removeConsumerByteRate ?? false,
  };
}
