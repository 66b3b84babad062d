// The examples in examples/streams run against a real cluster (metadata, a broker, a coordinator)
// in their --demo mode, and print what the README says they print: word counts, final per-minute
// page views with the out-of-order view counted and the late one dropped, enriched orders.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StreamsCluster, startStreamsCluster } from './harness/streams-cluster.js';
import { stopAll } from './harness/services.js';

const run = promisify(execFile);
const examples = new URL('../examples/streams/', import.meta.url).pathname;
let cluster: StreamsCluster;
let env: Record<string, string>;

beforeAll(async () => {
  cluster = await startStreamsCluster('streams-examples');
  env = { ...process.env, SKEIN_METADATA: cluster.metadata.address, SKEIN_COORDINATORS: cluster.coordinator.address } as Record<string, string>;
}, 90_000);

afterAll(async () => {
  await stopAll();
  await cluster?.close();
});

const demo = async (file: string) => (await run(process.execPath, [`${examples}${file}`, '--demo'], { env, timeout: 60_000 })).stdout.trim().split('\n');

describe('examples/streams', () => {
  it('word count', async () => {
    expect(await demo('word-count.mjs')).toEqual(['the 3', 'dog 2', 'fox 1']);
  });

  it('page views per user and minute, with an out-of-order view counted and a late one dropped', async () => {
    expect(await demo('page-views.mjs')).toEqual([
      'ann@10:00-10:01 = 3',
      'bob@10:00-10:01 = 1',
      'ann@10:01-10:02 = 1',
      'bob@10:01-10:02 = 1',
      'late records dropped: 1',
    ]);
  });

  it('order enrichment by a stream-table join', async () => {
    expect(await demo('order-enrichment.mjs')).toEqual(['c2 12 Linus silver', 'c1 30 Ada gold', 'c9 99 null null']);
  });
});
