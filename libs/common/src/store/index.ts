export * from './types.js';
export * from './embedded-store.js';
export * from './etcd-store.js';
export * from './session.js';
export * from './election.js';
export * from './open-store.js';
