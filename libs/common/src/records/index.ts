export * from './compression.js';
export * from './record-batch.js';
export * from './record-framing.js';
