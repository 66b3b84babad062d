import { fileURLToPath } from 'node:url';

/**
 * Directory holding the .proto sources. Used to build the reflection service's descriptors, so
 * `grpcurl list/describe` work without the files on the caller's side.
 */
export const PROTO_DIR: string = fileURLToPath(new URL('../../../proto', import.meta.url));

/** Proto files per role, relative to PROTO_DIR. */
export const PROTO_FILES = {
  common: ['skein/common/v1/common.proto', 'google/rpc/status.proto', 'google/rpc/error_details.proto'],
  metadata: ['skein/metadata/v1/metadata.proto'],
  broker: ['skein/broker/v1/broker.proto', 'skein/broker/v1/replica.proto'],
  group: ['skein/group/v1/group.proto'],
} as const;
