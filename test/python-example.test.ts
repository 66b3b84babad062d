// Any-language proof: the Python example (examples/python), which uses only grpcio, the protobuf
// runtime and the contract built from proto/, creates a topic, produces, consumes as a member of a
// consumer group and commits, and reads an error reason against a real cluster; a second run
// resumes after the first one's commit. Needs Debian's python3-grpcio (.ci/run installs it).
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipUnless } from './harness/requirements.js';
import { startStores, type TestStores } from './harness/stores.js';
import { startService, stopAll, waitFor } from './harness/services.js';
import { metadataClient } from './harness/clients.js';
import { BROKER_ENTRY, COORDINATOR_ENTRY, METADATA_ENTRY } from './harness/entries.js';

const skip = skipUnless(import.meta.url, 'python-grpc');

const root = new URL('..', import.meta.url).pathname;
let stores: TestStores;
let metadataAddress = '';
let coordinatorAddress = '';

beforeAll(async () => {
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import grpc, google.protobuf'], { stdio: 'ignore' });
  } catch {
    throw new Error('the Python example needs /usr/bin/python3 with grpc: apt-get install -y python3-grpcio');
  }
  stores = await startStores();
  const metadata = await startService({ name: 'metadata', entry: METADATA_ENTRY, args: stores.args('metadata', `/py-${process.pid}/`) });
  metadataAddress = metadata.address;
  await startService({ name: 'broker-1', entry: BROKER_ENTRY, dataDirFlag: '--data-dir', args: ['--broker-id', '1', '--metadata-addresses', metadata.address] });
  const meta = metadataClient(metadata.address);
  await waitFor(async () => (await meta.getClusterMetadata({ topics: [] })).metadata!.brokers.length === 1, { timeoutMs: 15_000, message: 'broker registered' });
  meta.close();
  coordinatorAddress = (await startService({ name: 'coordinator', entry: COORDINATOR_ENTRY, args: [...stores.args('coordinator', `/py-${process.pid}/`), '--metadata-addresses', metadata.address] })).address;
}, 60_000);

afterAll(async () => {
  await stopAll();
  await stores?.stop();
});

describe.skipIf(skip)('examples/python', () => {
  it('creates a topic, produces, consumes in a group and commits, with only grpcio and the contract', () => {
    execFileSync('sh', [`${root}examples/python/generate.sh`], { cwd: root, stdio: 'pipe' });
    const run = () => execFileSync('/usr/bin/python3', [`${root}examples/python/skein_example.py`, metadataAddress, 'py-topic', coordinatorAddress, 'py-group'], { encoding: 'utf8', timeout: 60_000 });
    const first = run();
    expect(first).toContain('created topic py-topic');
    expect(first).toMatch(/joined group py-group as \S+ \(epoch \d+\), assigned partitions \[0, 1, 2\]/);
    expect(first).toMatch(/consumed offset=0 key=key-0 value=hello from python 0/);
    expect(first).toMatch(/consumed offset=9 key=key-9 value=hello from python 9/);
    expect(first).toContain('committed offset=10 partition=0 group=py-group');
    expect(first).toContain('describe of a missing topic: NOT_FOUND UNKNOWN_TOPIC');
    expect(first).toContain('ok: 10 records consumed in group py-group');
    // The second run produces ten more and the group resumes after the first run's commit.
    const second = run();
    expect(second).toContain('topic py-topic exists');
    expect(second).not.toMatch(/consumed offset=9 /);
    expect(second).toMatch(/consumed offset=10 key=key-0/);
    expect(second).toContain('committed offset=20 partition=0 group=py-group');
  });
});
