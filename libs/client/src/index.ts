export * from './client.js';
export * from './producer.js';
export * from './consumer.js';
export * from './murmur2.js';
export { isRetriableError } from './retry.js';
export * from './group-admin.js';
export { Fetcher, type FetcherOptions, type FetchedChunk, type FetchedRecords, type FetchFailure } from './fetcher.js';
export * from './transactional-producer.js';
export * from './exactly-once.js';
