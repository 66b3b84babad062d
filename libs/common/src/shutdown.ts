import type { Logger } from 'pino';

/**
 * Within this long after the first signal, another one is part of the same stop: Ctrl-C in a
 * terminal sends SIGINT to the whole process group while a supervisor (npm start's script, a
 * container runtime) sends its own SIGTERM, and that pair must not skip the graceful shutdown.
 */
export const SIGNAL_COALESCE_MS = 2_000;

/**
 * Runs `fn` once on SIGTERM/SIGINT. A further signal within SIGNAL_COALESCE_MS is ignored; one
 * later than that (someone insisting) exits at once.
 */
export function onShutdownSignal(logger: Logger, fn: (signal: string) => Promise<void>, now: () => number = Date.now): void {
  let firstAt: number | undefined;
  const handler = (signal: NodeJS.Signals) => {
    if (firstAt !== undefined) {
      if (now() - firstAt < SIGNAL_COALESCE_MS) {
        logger.debug({ signal }, 'signal during shutdown: already stopping');
        return;
      }
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    firstAt = now();
    logger.info({ signal }, 'shutting down');
    fn(signal).then(() => process.exit(0), (err: unknown) => {
      logger.error({ err }, 'shutdown failed');
      process.exit(1);
    });
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}
