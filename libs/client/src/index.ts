export * from './client.js';
export * from './murmur2.js';
