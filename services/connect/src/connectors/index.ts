import type { ConnectorPlugin } from '../sdk/types.js';
import { fileSink, fileSource } from './file.js';

/** The plugins every worker has. */
export const builtInPlugins: readonly ConnectorPlugin[] = [fileSource, fileSink];
