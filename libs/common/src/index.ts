export * from './errors.js';
export * from './config.js';
export * from './logger.js';
export * from './metrics.js';
export * from './shutdown.js';
export * from './grpc-server.js';
export * from './store/index.js';
export * from './failpoints.js';
