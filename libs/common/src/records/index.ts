export * from './compression.js';
export * from './record-batch.js';
