export * from './etcd.js';
export * from './services.js';
export * from './ports.js';
export * from './wait.js';
export * from './clients.js';
export * from './fake-broker.js';
export * from './entries.js';
