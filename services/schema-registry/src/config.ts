import type { ConfigOf } from '@skein/common/config.js';
import { serviceShellConfigSchema } from '@skein/common/service-shell.js';
import { etcdClientConfigSchema } from '@skein/common/store/open-store.js';

export const registryConfigSchema = {
  ...serviceShellConfigSchema,
  port: { type: 'int', default: 9096, min: 0, max: 65535, doc: 'gRPC port (skein.schema.v1; 0 picks a free one)' },
  restPort: {
    type: 'int',
    default: 8081,
    min: -1,
    max: 65535,
    doc: "Port of the Confluent REST API (Confluent's default 8081; 0 picks a free one, -1 disables it)",
  },
  restHost: { type: 'string', default: '', doc: 'Address to bind the REST API to (default: --host)' },
  restTls: {
    type: 'bool',
    default: false,
    doc: 'Serve the REST API over HTTPS with --tls-cert-file/--tls-key-file; with --tls-ca-file a verified client certificate names the caller (required with --tls-require-client-cert)',
  },
  restMaxBodyBytes: {
    type: 'int',
    default: 16 * 1024 * 1024,
    min: 1024,
    max: 256 * 1024 * 1024,
    doc: 'Largest REST request body (a schema with its JSON wrapping)',
  },
  store: {
    type: 'string',
    default: 'embedded:.skein-data/schema-registry/store.db',
    doc: 'Metadata store holding the schemas: etcd://host:port[,...] or embedded:<path> (several instances need etcd)',
  },
  etcdEndpoints: { type: 'list', default: [], doc: 'etcd endpoints host:port,...; when set, overrides --store' },
  ...etcdClientConfigSchema,
  prefix: { type: 'string', default: '/skein/', doc: 'Key prefix in the store (ends with /); the registry keeps its keys under <prefix>schema-registry/' },
  metadataAddresses: {
    type: 'list',
    default: [],
    doc: 'Metadata service addresses to register this instance with (clients find registries there); empty: not registered',
  },
  instanceId: { type: 'string', default: '', doc: 'Name this instance registers under, unique among registries (default host-pid; e.g. the pod name)' },
  schemaCacheSize: { type: 'int', default: 10_000, min: 0, max: 10_000_000, doc: 'Schemas by id kept in memory (ids are immutable; a miss reads the store)' },
} as const;

export type RegistryConfig = ConfigOf<typeof registryConfigSchema>;
