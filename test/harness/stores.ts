/**
 * Metadata stores for the services a test starts: etcd where this machine has one (ETCD_ENDPOINTS,
 * the etcd binary, a container engine), as production runs; otherwise each service gets its own
 * embedded store in a temporary directory, as `npm start` does. That is enough for every suite in
 * which each store has one user (one metadata service, one coordinator instance: they share no
 * keys), so those suites run on a machine with only Node and npm. Suites where several processes
 * share one store (two coordinators, metadata failover) need etcd: `skipUnless(…, 'etcd')`.
 *
 * SKEIN_TEST_STORE=embedded or =etcd forces one kind (etcd then must be there).
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEtcd, type EtcdCluster } from './etcd.js';
import { available } from './requirements.js';

export interface TestStores {
  readonly kind: 'etcd' | 'embedded';
  /**
   * `--store` and `--prefix` for one service. With etcd every service shares the cluster under
   * `prefix`; embedded, each `service` name has its own file, kept across restarts of that service.
   */
  args(service: string, prefix: string): string[];
  stop(): Promise<void>;
}

export async function startStores(): Promise<TestStores> {
  const forced = process.env.SKEIN_TEST_STORE?.trim();
  if (forced && forced !== 'etcd' && forced !== 'embedded') throw new Error(`SKEIN_TEST_STORE=${forced}: use etcd or embedded`);
  const kind = forced === 'etcd' || forced === 'embedded' ? forced : available('etcd') ? 'etcd' : 'embedded';
  if (kind === 'etcd') {
    const etcd: EtcdCluster = await startEtcd({ members: 1 });
    return {
      kind,
      args: (_service, prefix) => ['--store', `etcd://${etcd.endpoints.join(',')}`, '--prefix', prefix],
      stop: () => etcd.stop(),
    };
  }
  const dir = mkdtempSync(join(tmpdir(), 'skein-stores-'));
  console.log(`[harness] metadata store: embedded, one per service under ${dir} (no etcd on this machine)`);
  return {
    kind,
    args: (service, prefix) => ['--store', `embedded:${join(dir, `${service}.db`)}`, '--prefix', prefix],
    stop: async () => rmSync(dir, { recursive: true, force: true }),
  };
}
