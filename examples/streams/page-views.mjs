// Page views per user in 1-minute tumbling windows, with late records. Events on `page-views`
// (key: user id, value: the page) carry their event time as the record timestamp. A window takes
// records up to 10 s after it ends (grace); later ones are dropped and counted. Each window's final
// count goes to `page-views-per-minute` once the window closes (suppress), as "user@start-end = n".
//
//   node examples/streams/page-views.mjs            run until Ctrl-C
//   node examples/streams/page-views.mjs --demo     write views (out of order, one late), print the finals, exit
import { Serdes, SkeinStreams, StreamsBuilder, TimeWindows } from '@skein/streams';
import { client, closeOnSignal, coordinator, demo, ensureTopic, readTopic, until } from './common.mjs';

const MINUTE = 60_000;
// A demo run uses topics of its own (stream time is per task: earlier runs' records would make this run's late).
const suffix = demo ? `-demo-${process.pid}` : '';
const topicIn = `page-views${suffix}`;
const topicOut = `page-views-per-minute${suffix}`;
const builder = new StreamsBuilder();
builder
  .stream(topicIn)
  .groupByKey()
  .windowedBy(TimeWindows.ofSizeAndGrace(MINUTE, 10_000))
  .count()
  .suppressUntilWindowCloses()
  .toStream()
  .map((w, n) => [w.key, `${w.key}@${new Date(w.window.start).toISOString().slice(11, 16)}-${new Date(w.window.end).toISOString().slice(11, 16)} = ${n}`], {
    keySerde: Serdes.String(),
    valueSerde: Serdes.String(),
  })
  .to(topicOut);

await ensureTopic(topicIn, 1);
await ensureTopic(topicOut, 1);
const app = new SkeinStreams(builder.build(), client, { applicationId: demo ? `pageviews-demo-${process.pid}` : 'pageviews', coordinator });
closeOnSignal(app);
await app.start();

if (demo) {
  // Event times on a fixed day: windows 10:00, 10:01, ...
  const day = Date.parse('2030-01-01T00:00:00Z');
  const at = (hhmmss) => day + Date.parse(`1970-01-01T${hhmmss}Z`);
  const views = [
    ['ann', '10:00:05'],
    ['bob', '10:00:20'],
    ['ann', '10:00:50'],
    ['ann', '10:01:05'], // stream time moves into the next window
    ['ann', '10:00:58'], // out of order, but within grace (the 10:00 window closes at 10:01:10): counted
    ['bob', '10:01:30'], // closes the 10:00 window: its finals go out (ann 3, bob 1)
    ['ann', '10:00:40'], // late: stream time is 10:01:30, past 10:01:00 + 10 s of grace: dropped
    ['bob', '10:02:15'], // closes the 10:01 window too
  ];
  const producer = client.producer({ lingerMs: 0 });
  for (const [user, time] of views) await producer.send(topicIn, [{ key: user, value: '/home', timestampMs: at(time) }]);
  await producer.close();
  const mine = async () => (await readTopic(topicOut)).map((r) => r.value.toString());
  await until(async () => (await mine()).length >= 4);
  for (const line of await mine()) console.log(line);
  const late = app.tasksStatus().reduce((n, t) => n + (t.metrics?.events['dropped-late'] ?? 0), 0);
  console.log(`late records dropped: ${late}`);
  await app.close();
  client.close();
}
