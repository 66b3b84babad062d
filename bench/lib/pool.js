// Forked load workers (bench/lib/worker.js) and a promise per job. `call(i, job, params, onEvent)`
// runs a job on worker i; a job may report events (a consumer saying it is subscribed) before its
// result.
import { forkTracked, stopChild } from './processes.js';

const workerPath = new URL('./worker.js', import.meta.url).pathname;

/** `execArgv(i)` gives worker i's Node flags (e.g. its own --cpu-prof-name). */
export async function startPool(size, { execArgv } = {}) {
  const workers = await Promise.all(Array.from({ length: size }, async (_, i) => {
    const child = forkTracked(`bench-worker-${i}`, workerPath, [], { execArgv: execArgv?.(i) ?? [] });
    await new Promise((resolve, reject) => {
      child.once('message', resolve);
      child.once('exit', (c) => reject(new Error(`bench worker ${i} exited during start-up (${c})`)));
    });
    return child;
  }));
  let nextId = 1;
  return {
    size,
    pids: () => workers.map((w) => w.pid),
    call(i, job, params, onEvent) {
      const w = workers[i];
      const id = nextId++;
      return new Promise((resolve, reject) => {
        const onExit = (c, sig) => reject(new Error(`bench worker ${i} died during ${job} (${sig ?? c})`));
        const onMessage = (m) => {
          if (m.id !== id) return;
          if (m.event) return onEvent?.(m.event);
          w.off('message', onMessage);
          w.off('exit', onExit);
          if (m.ok) resolve(m.result);
          else reject(new Error(`${job} failed in worker ${i}: ${m.error}`));
        };
        w.on('message', onMessage);
        w.once('exit', onExit);
        w.send({ type: 'job', id, job, params });
      });
    },
    async close() {
      await Promise.all(workers.map((w) => new Promise((resolve) => {
        if (w.exitCode !== null) return resolve();
        const t = setTimeout(() => void stopChild(w, 2000).then(resolve), 10_000);
        w.once('exit', () => { clearTimeout(t); resolve(); });
        w.send({ type: 'exit' });
      })));
    },
  };
}
