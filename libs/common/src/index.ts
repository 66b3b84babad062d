export * from './errors.js';
export * from './config.js';
export * from './logger.js';
export * from './metrics.js';
export * from './shutdown.js';
export * from './grpc-server.js';
export * from './store/index.js';
export * from './failpoints.js';
export * from './backoff.js';
// The store keeps its own Clock (store/types.ts); the service-wide one is exported under Timers' names.
export { type Timers, type Clock as ServiceClock, systemTimers, sleep, ManualTimers } from './timers.js';
