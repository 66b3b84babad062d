export * from './client.js';
export * from './producer.js';
export * from './consumer.js';
export * from './murmur2.js';
export { isRetriableError } from './retry.js';
export * from './group-admin.js';
