export * from './client.js';
export * from './producer.js';
export * from './consumer.js';
export * from './murmur2.js';
export { isRetriableError } from './retry.js';
export * from './group-admin.js';
// TLS settings and the SKEIN_TLS_* environment they are read from (the same code the services use).
export { type ClientTlsConfig, clientTlsFromEnv } from '@skein/common/tls.js';
// Bearer tokens on every call (ClientOptions.token / tokenFile).
export { bearerTokenInterceptor, clientIdInterceptor, tokenFromFile, type TokenOptions, type TokenSource } from './token.js';
// Client quotas (SkeinClient.alterClientQuotas / describeClientQuotas).
export { type ClientQuota, type ClientQuotaAlteration, DEFAULT_ENTITY as DEFAULT_QUOTA_ENTITY, type QuotaEntity } from '@skein/common/quota/client-quotas.js';
export { Fetcher, type FetcherOptions, type FetchedChunk, type FetchedRecords, type FetchFailure } from './fetcher.js';
export * from './transactional-producer.js';
export * from './exactly-once.js';
export * from './transaction-admin.js';
// Schema registry: a REST client and Confluent-wire-format serializers (Avro, Protobuf, JSON Schema).
export * from './schema/registry-client.js';
export * from './schema/serdes.js';
export * from './schema/wire-format.js';
