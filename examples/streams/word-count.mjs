// Word count: lines from `streams-lines`, the running count of each word to `streams-word-counts`
// (key: the word, value: the count as text). Words are re-keyed, so the library writes them
// through a repartition topic before counting; counts live in a local LMDB store backed by the
// compacted changelog `wordcount-counts-changelog`.
//
//   node examples/streams/word-count.mjs            run until Ctrl-C (start more copies to share the work)
//   node examples/streams/word-count.mjs --demo     write a few lines, print the counts, exit
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Serdes, SkeinStreams, StreamsBuilder } from '@skein/streams';
import { client, closeOnSignal, coordinator, demo, ensureTopic, readTopic, until } from './common.mjs';

// A demo run uses topics of its own, so earlier runs' lines do not count.
const suffix = demo ? `-demo-${process.pid}` : '';
const topicIn = `streams-lines${suffix}`;
const topicOut = `streams-word-counts${suffix}`;
const builder = new StreamsBuilder();
builder
  .stream(topicIn)
  .flatMapValues((line) => line.toLowerCase().split(/\W+/).filter(Boolean))
  .groupBy((_key, word) => word)
  .count({ storeName: 'counts' })
  .toStream()
  .mapValues((n) => String(n), Serdes.String())
  .to(topicOut);

await ensureTopic(topicIn, 3);
await ensureTopic(topicOut, 3);
const app = new SkeinStreams(builder.build(), client, {
  applicationId: demo ? `wordcount-demo-${process.pid}` : 'wordcount',
  stateDir: process.env.STATE_DIR ?? mkdtempSync(join(tmpdir(), 'wordcount-')),
  processingGuarantee: process.env.GUARANTEE ?? 'at_least_once',
  coordinator,
});
closeOnSignal(app);
await app.start();

if (demo) {
  const lines = ['the quick brown fox', 'jumps over the lazy dog', 'The dog barks'];
  const producer = client.producer();
  await producer.send(
    topicIn,
    lines.map((value) => ({ value })),
  );
  await producer.close();
  // Interactive query: the app's local state, by key.
  const words = ['the', 'dog', 'fox'];
  await until(
    () =>
      words.every((w) => app.query('counts', w, Serdes.String(), Serdes.Long()) !== undefined) &&
      app.query('counts', 'the', Serdes.String(), Serdes.Long()) === 3,
  );
  for (const w of words) console.log(`${w} ${app.query('counts', w, Serdes.String(), Serdes.Long())}`);
  await until(async () => (await readTopic(topicOut)).some((r) => r.key.toString() === 'the'));
  await app.close();
  client.close();
}
