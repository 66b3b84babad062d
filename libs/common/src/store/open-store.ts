import { isAbsolute, resolve } from 'node:path';
import { EmbeddedStore } from './embedded-store.js';
import { EtcdStore } from './etcd-store.js';
import type { MetadataStore } from './types.js';

/**
 * Opens the store a URL names: `etcd://host:port[,host:port...]` or `embedded:<path>` (relative
 * paths resolve against the working directory). Any other scheme is an error: a typo must never
 * silently give a single-node store in production.
 */
export async function openMetadataStore(url: string): Promise<MetadataStore> {
  if (url.startsWith('etcd://')) {
    const endpoints = url.slice('etcd://'.length).split(',').map((s) => s.trim()).filter((s) => s.length > 0);
    if (endpoints.length === 0) throw new Error(`store URL "${url}" names no etcd endpoints`);
    return EtcdStore.connect({ endpoints });
  }
  if (url.startsWith('embedded:')) {
    let path = url.slice('embedded:'.length);
    if (path.startsWith('//')) path = path.slice(2);
    if (path === '') throw new Error(`store URL "${url}" names no file`);
    return EmbeddedStore.open({ path: isAbsolute(path) ? path : resolve(path) });
  }
  throw new Error(`unknown metadata store URL "${url}": use etcd://host:port[,host:port] or embedded:<path>`);
}
