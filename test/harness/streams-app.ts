/**
 * A streams application instance as its own process, so tests can SIGKILL and restart it. Word
 * count: lines from IN, split into words, grouped by word (through a repartition topic), counted
 * in store `counts`; each count goes to OUT as the decimal string. Configured by environment:
 * SKEIN_METADATA, SKEIN_COORDINATORS (comma-separated), APP_ID, IN, OUT, STATE_DIR (omitted: state
 * in memory), INSTANCE_ID, GUARANTEE (at_least_once | exactly_once), COMMIT_INTERVAL_MS, REPLICATION_FACTOR
 * (internal topics), NUM_STANDBY_REPLICAS, SKEIN_FAILPOINTS (e.g. streams.afterOutputs=exit).
 * Prints each lifecycle event as one JSON line on stdout; SIGTERM closes it cleanly.
 */
import { SkeinClient } from '@skein/client';
import { Serdes, SkeinStreams, StreamsBuilder } from '@skein/streams';

const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is required`);
  return v;
};
const print = (o: unknown) => process.stdout.write(`${JSON.stringify(o, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}\n`);

const builder = new StreamsBuilder();
builder
  .stream<string, string>(env('IN'))
  .flatMapValues((line) => line.split(' ').filter(Boolean))
  .groupBy((_k, word) => word)
  .count({ storeName: 'counts' })
  .toStream()
  .mapValues((n) => String(n), Serdes.String())
  .to(env('OUT'));

const client = new SkeinClient({ metadata: env('SKEIN_METADATA').split(',') });
const app = new SkeinStreams(builder.build(), client, {
  applicationId: env('APP_ID'),
  stateDir: process.env.STATE_DIR || undefined,
  instanceId: process.env.INSTANCE_ID,
  coordinator: env('SKEIN_COORDINATORS').split(','),
  processingGuarantee: (process.env.GUARANTEE as 'at_least_once' | 'exactly_once' | undefined) ?? 'at_least_once',
  commitIntervalMs: Number(process.env.COMMIT_INTERVAL_MS ?? 200),
  replicationFactor: Number(process.env.REPLICATION_FACTOR ?? 1),
  numStandbyReplicas: Number(process.env.NUM_STANDBY_REPLICAS ?? 0),
  onEvent: (e) => print({ instance: process.env.INSTANCE_ID, ...e }),
  onError: (err) => process.stderr.write(`streams error: ${(err as Error).message}\n`),
});
process.once('SIGTERM', () => {
  void app.close().then(() => {
    client.close();
    process.exit(0);
  });
});
await app.start();
if (process.env.STREAMS_DEBUG)
  setInterval(() => process.stderr.write(`stats ${JSON.stringify(app.stats)} ${JSON.stringify(app.debugState())}\n`), 2000).unref();
print({ instance: process.env.INSTANCE_ID, type: 'started' });
