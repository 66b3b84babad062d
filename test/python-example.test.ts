// Any-language proof: the Python example (examples/python), which uses only grpcio, the protobuf
// runtime and the contract built from proto/, creates a topic, produces, fetches and reads an error
// reason against a real cluster. Needs Debian's python3-grpcio (.ci/run installs it).
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type EtcdCluster } from './harness/etcd.js';
import { startService, stopAll, waitFor } from './harness/services.js';
import { metadataClient } from './harness/clients.js';
import { BROKER_ENTRY, METADATA_ENTRY } from './harness/entries.js';

const root = new URL('..', import.meta.url).pathname;
let etcd: EtcdCluster;
let metadataAddress = '';

beforeAll(async () => {
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import grpc, google.protobuf'], { stdio: 'ignore' });
  } catch {
    throw new Error('the Python example needs /usr/bin/python3 with grpc: apt-get install -y python3-grpcio');
  }
  etcd = await startEtcd({ members: 1 });
  const metadata = await startService({ name: 'metadata', entry: METADATA_ENTRY, args: ['--store', `etcd://${etcd.endpoints.join(',')}`, '--prefix', `/py-${process.pid}/`] });
  metadataAddress = metadata.address;
  await startService({ name: 'broker-1', entry: BROKER_ENTRY, dataDirFlag: '--data-dir', args: ['--broker-id', '1', '--metadata-addresses', metadata.address] });
  const meta = metadataClient(metadata.address);
  await waitFor(async () => (await meta.getClusterMetadata({ topics: [] })).metadata!.brokers.length === 1, { timeoutMs: 15_000, message: 'broker registered' });
  meta.close();
}, 60_000);

afterAll(async () => {
  await stopAll();
  await etcd?.stop();
});

describe('examples/python', () => {
  it('creates a topic, produces and consumes with only grpcio and the contract', () => {
    execFileSync('sh', [`${root}examples/python/generate.sh`], { cwd: root, stdio: 'pipe' });
    const out = execFileSync('/usr/bin/python3', [`${root}examples/python/skein_example.py`, metadataAddress, 'py-topic'], { encoding: 'utf8', timeout: 60_000 });
    expect(out).toContain('created topic py-topic');
    expect(out).toMatch(/consumed offset=9 key=key-9 value=hello from python 9/);
    expect(out).toContain('describe of a missing topic: NOT_FOUND UNKNOWN_TOPIC');
    expect(out).toContain('ok: 10 records round-tripped');
  });
});
