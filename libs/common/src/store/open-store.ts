import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { ConfigError, type ConfigSchema } from '../config.js';
import { EmbeddedStore } from './embedded-store.js';
import { type EtcdConnectOptions, EtcdStore } from './etcd-store.js';
import type { MetadataStore } from './types.js';

/** The etcd connection keys of every service with a store (the metadata service, the coordinator). */
export const etcdClientConfigSchema = {
  etcdCaFile: { type: 'string', default: '', doc: "CA bundle (PEM) that signed etcd's certificate; any --etcd-* TLS key makes the etcd endpoints https" },
  etcdCertFile: { type: 'string', default: '', doc: "Client certificate (PEM) for etcd's --client-cert-auth" },
  etcdKeyFile: { type: 'string', default: '', doc: 'Key (PEM) of --etcd-cert-file' },
  etcdTls: { type: 'bool', default: false, doc: "Dial etcd over TLS verified against Node's public roots (implied by --etcd-ca-file / --etcd-cert-file)" },
  etcdUsername: { type: 'string', default: '', doc: 'etcd user (etcd authentication); the password from --etcd-password-file' },
  etcdPasswordFile: { type: 'string', default: '', doc: "File holding the etcd user's password (trailing newline ignored)" },
} as const satisfies ConfigSchema;

export interface StoreConnectionOptions {
  etcd?: Omit<EtcdConnectOptions, 'endpoints'>;
}

/** etcd TLS and authentication from the etcd keys; refuses inconsistent combinations naming the key. */
export function storeOptionsFromConfig(config: { readonly etcdCaFile: string; readonly etcdCertFile: string; readonly etcdKeyFile: string; readonly etcdTls: boolean; readonly etcdUsername: string; readonly etcdPasswordFile: string }): StoreConnectionOptions {
  if ((config.etcdCertFile === '') !== (config.etcdKeyFile === '')) throw new ConfigError('--etcd-cert-file and --etcd-key-file go together');
  if ((config.etcdUsername === '') !== (config.etcdPasswordFile === '')) throw new ConfigError('--etcd-username and --etcd-password-file go together');
  const tlsOn = config.etcdTls || config.etcdCaFile !== '' || config.etcdCertFile !== '';
  let password = '';
  if (config.etcdPasswordFile !== '') {
    try {
      password = readFileSync(config.etcdPasswordFile, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new ConfigError(`invalid --etcd-password-file: ${(err as Error).message}`);
    }
  }
  return {
    etcd: {
      ...(tlsOn ? { tls: { caFile: config.etcdCaFile || undefined, certFile: config.etcdCertFile || undefined, keyFile: config.etcdKeyFile || undefined } } : {}),
      ...(config.etcdUsername ? { auth: { username: config.etcdUsername, password } } : {}),
    },
  };
}

/**
 * Opens the store a URL names: `etcd://host:port[,host:port...]` or `embedded:<path>` (relative
 * paths resolve against the working directory). `options.etcd` adds TLS and authentication to an
 * etcd store (storeOptionsFromConfig). Any other scheme is an error: a typo must never
 * silently give a single-node store in production.
 */
export async function openMetadataStore(url: string, options: StoreConnectionOptions = {}): Promise<MetadataStore> {
  if (url.startsWith('etcd://')) {
    const endpoints = url.slice('etcd://'.length).split(',').map((s) => s.trim()).filter((s) => s.length > 0);
    if (endpoints.length === 0) throw new Error(`store URL "${url}" names no etcd endpoints`);
    return EtcdStore.connect({ endpoints, ...options.etcd });
  }
  if (url.startsWith('embedded:')) {
    let path = url.slice('embedded:'.length);
    if (path.startsWith('//')) path = path.slice(2);
    if (path === '') throw new Error(`store URL "${url}" names no file`);
    return EmbeddedStore.open({ path: isAbsolute(path) ? path : resolve(path) });
  }
  throw new Error(`unknown metadata store URL "${url}": use etcd://host:port[,host:port] or embedded:<path>`);
}
