/**
 * The cluster the @skein/streams tests run against: the metadata store, the metadata service, one
 * broker and one group coordinator (heartbeats every 200 ms, so task moves are quick), under a
 * store prefix of the test file's own. Stopped with the other services by stopAll().
 */
import { SkeinClient } from '@skein/client';
import { BROKER_ENTRY, COORDINATOR_ENTRY, METADATA_ENTRY } from './entries.js';
import { type ServiceProcess, startService, waitFor } from './services.js';
import { startStores, type TestStores } from './stores.js';

export interface StreamsCluster {
  stores: TestStores;
  metadata: ServiceProcess;
  coordinator: ServiceProcess;
  /** A client of the cluster, for the test's own produce, consume and admin calls. */
  client: SkeinClient;
  /** The store arguments for another service of the same cluster (e.g. a schema registry). */
  storeArgs(service: string): string[];
  /** Closes the client and the stores; stop the services first (stopAll). */
  close(): Promise<void>;
}

export async function startStreamsCluster(name: string): Promise<StreamsCluster> {
  const stores = await startStores();
  const storeArgs = (service: string) => stores.args(service, `/${name}-${process.pid}/`);
  const metadata = await startService({ name: 'metadata', entry: METADATA_ENTRY, args: storeArgs('metadata') });
  await startService({
    name: 'broker-1',
    entry: BROKER_ENTRY,
    dataDirFlag: '--data-dir',
    args: ['--broker-id', '1', '--metadata-addresses', metadata.address],
  });
  const client = new SkeinClient({ metadata: [metadata.address] });
  await waitFor(async () => (await client.describeCluster()).brokers.length === 1, { timeoutMs: 15_000, message: 'broker registered' });
  const coordinator = await startService({
    name: 'coordinator',
    entry: COORDINATOR_ENTRY,
    args: [...storeArgs('coordinator'), '--metadata-addresses', metadata.address, '--heartbeat-interval-ms', '200'],
  });
  return {
    stores,
    metadata,
    coordinator,
    client,
    storeArgs,
    async close() {
      client.close();
      await stores.stop();
    },
  };
}
