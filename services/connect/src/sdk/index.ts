/**
 * @skein/connect/sdk: what a connector plugin is written against. A module exporting
 * ConnectorPlugin objects (default or `plugins`) is loaded by a worker with --plugin-modules.
 */
export * from './types.js';
export { type ConfigKeyDef, type ConfigType, ParsedConfig, splitList, validateConfig } from '../domain/config-def.js';
export { converter, type Converter, type ConverterName } from '../domain/converters.js';
export { buildTransform, buildTransformChain, type Transform, type TransformableRecord } from '../domain/transforms.js';
