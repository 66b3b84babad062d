import type { ConnectorPlugin } from '../sdk/types.js';
import { fileSink, fileSource } from './file.js';
import { httpSink } from './http-sink.js';
import { postgresSink } from './postgres-sink.js';
import { postgresSource } from './postgres-source.js';

/** The plugins every worker has. */
export const builtInPlugins: readonly ConnectorPlugin[] = [fileSource, fileSink, postgresSource, postgresSink, httpSink];
