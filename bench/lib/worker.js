// A load-generating process: runs one job at a time on request from the orchestrator (bench/run.js
// through bench/lib/pool.js). Loads run outside the orchestrator so that producers, consumers and
// the /proc sampler never share an event loop, and so that "4 producers" are 4 processes.
import * as clientLoad from './client-load.js';
import * as nats from './nats-load.js';
import * as skein from './skein-load.js';

const jobs = { ...skein, ...nats, ...clientLoad };

process.on('message', async (m) => {
  if (m.type === 'exit') {
    // process.exit (not a signal) so that --cpu-prof writes its profile.
    process.exit(0);
  }
  if (m.type !== 'job') return;
  const fn = jobs[m.job];
  try {
    if (!fn) throw new Error(`unknown job ${m.job}`);
    const result = await fn(m.params, (event) => process.send({ id: m.id, event }));
    process.send({ id: m.id, ok: true, result });
  } catch (e) {
    process.send({ id: m.id, ok: false, error: e?.stack ?? String(e) });
  }
});
// An orphaned worker (the orchestrator died) has nothing left to do.
process.on('disconnect', () => process.exit(0));
process.send({ ready: true });
