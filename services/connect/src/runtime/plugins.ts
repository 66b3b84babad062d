/**
 * The connector plugins a worker can run: the built-in ones, plus any module named with
 * --plugin-modules whose default export (or `plugins` export) is a ConnectorPlugin or an array of
 * them (a connector written against @skein/connect/sdk, installed beside the worker).
 */

import { pathToFileURL } from 'node:url';
import { isAbsolute, resolve } from 'node:path';
import type { ConnectorPlugin } from '../sdk/types.js';

export class PluginRegistry {
  private readonly byClass = new Map<string, ConnectorPlugin>();

  constructor(plugins: readonly ConnectorPlugin[] = []) {
    for (const p of plugins) this.add(p);
  }

  add(p: ConnectorPlugin): void {
    if (this.byClass.has(p.connectorClass)) throw new Error(`two plugins named ${p.connectorClass}`);
    this.byClass.set(p.connectorClass, p);
  }

  get(connectorClass: string): ConnectorPlugin | undefined {
    return this.byClass.get(connectorClass);
  }

  list(): ConnectorPlugin[] {
    return [...this.byClass.values()].sort((a, b) => a.connectorClass.localeCompare(b.connectorClass));
  }

  async load(modulePath: string): Promise<void> {
    const url =
      modulePath.startsWith('file:') || !(isAbsolute(modulePath) || modulePath.startsWith('.')) ? modulePath : pathToFileURL(resolve(modulePath)).href;
    const mod = (await import(url)) as { default?: ConnectorPlugin | ConnectorPlugin[]; plugins?: ConnectorPlugin[] };
    const found = mod.plugins ?? mod.default;
    const list = Array.isArray(found) ? found : found ? [found] : [];
    if (list.length === 0) throw new Error(`${modulePath} exports no connector plugin (default or plugins)`);
    for (const p of list) this.add(p);
  }
}
