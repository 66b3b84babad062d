/**
 * A small cluster for Connect tests: a metadata service, one broker, one group coordinator (which
 * also coordinates transactions) and `workers` Connect workers (instance ids w1, w2, ...) with short
 * session timeouts so that a SIGKILLed worker's tasks move within seconds. Workers can be added
 * and killed; everything is stopped by `stop()`.
 */
import * as grpc from '@grpc/grpc-js';
import { SkeinClient } from '@skein/client';
import { ConnectServiceClient } from '@skein/proto/skein/connect/v1/connect.js';
import { promisify } from './clients.js';
import { BROKER_ENTRY, CONNECT_ENTRY, COORDINATOR_ENTRY, METADATA_ENTRY } from './entries.js';
import { startService, stopAll, waitFor, type ServiceProcess } from './services.js';
import { startStores, type TestStores } from './stores.js';

export interface ConnectCluster {
  metadata: ServiceProcess;
  coordinator: ServiceProcess;
  workers: Map<string, ServiceProcess>;
  client: SkeinClient;
  /** ConnectService through worker `id` (default the first live one). */
  connect(id?: string): ReturnType<typeof promisify<ConnectServiceClient>>;
  addWorker(id: string, extraArgs?: string[]): Promise<ServiceProcess>;
  stop(): Promise<void>;
}

export async function startConnectCluster(options: { workers: number; workerArgs?: string[] }): Promise<ConnectCluster> {
  const stores: TestStores = await startStores();
  const prefix = `/connect-${process.pid}-${Date.now()}/`;
  const metadata = await startService({ name: 'metadata', entry: METADATA_ENTRY, args: stores.args('metadata', prefix) });
  await startService({
    name: 'broker-1',
    entry: BROKER_ENTRY,
    dataDirFlag: '--data-dir',
    args: ['--broker-id', '1', '--metadata-addresses', metadata.address],
  });
  const client = new SkeinClient({ metadata: [metadata.address] });
  await waitFor(async () => (await client.describeCluster()).brokers.length === 1, { timeoutMs: 20_000, message: 'broker registered' });
  const coordinator = await startService({
    name: 'coordinator',
    entry: COORDINATOR_ENTRY,
    args: [
      ...stores.args('coordinator', prefix),
      '--metadata-addresses',
      metadata.address,
      '--session-timeout-ms',
      '4000',
      '--heartbeat-interval-ms',
      '250',
      '--session-break-grace-ms',
      '600',
      '--txn-sweep-interval-ms',
      '200',
      '--txn-completion-grace-ms',
      '1000',
    ],
  });
  const workers = new Map<string, ServiceProcess>();
  const stubs = new Map<string, ReturnType<typeof promisify<ConnectServiceClient>>>();
  const addWorker = async (id: string, extraArgs: string[] = []) => {
    const w = await startService({
      name: `connect-${id}`,
      entry: CONNECT_ENTRY,
      startTimeoutMs: 60_000,
      args: [
        '--metadata-addresses',
        metadata.address,
        '--coordinator-addresses',
        coordinator.address,
        '--instance-id',
        id,
        '--task-slots',
        '16',
        ...(options.workerArgs ?? []),
        ...extraArgs,
      ],
    });
    workers.set(id, w);
    stubs.set(id, promisify(new ConnectServiceClient(w.address, grpc.credentials.createInsecure())));
    return w;
  };
  for (let i = 1; i <= options.workers; i++) await addWorker(`w${i}`);
  return {
    metadata,
    coordinator,
    workers,
    client,
    addWorker,
    connect(id) {
      const key = id ?? [...workers.entries()].find(([, w]) => w.pid > 0)![0];
      return stubs.get(key)!;
    },
    async stop() {
      for (const s of stubs.values()) s.close();
      client.close();
      await stopAll();
      await stores.stop();
    },
  };
}
