import type { Logger } from 'pino';

/**
 * Within this long after the first signal, another one is part of the same stop: Ctrl-C in a
 * terminal sends SIGINT to the whole process group while a supervisor (npm start's script, a
 * container runtime) sends its own SIGTERM, and that pair must not skip the graceful shutdown.
 */
export const SIGNAL_COALESCE_MS = 2_000;

/** The parts of `process` the handler uses; injected by tests so no real signal or exit happens. */
export interface SignalHooks {
  on(signal: 'SIGTERM' | 'SIGINT', handler: (signal: NodeJS.Signals) => void): unknown;
  exit(code: number): void;
}

/**
 * Runs `fn` once on SIGTERM/SIGINT. A further signal within SIGNAL_COALESCE_MS is ignored; one
 * later than that (someone insisting) exits at once.
 */
export function onShutdownSignal(
  logger: Logger,
  fn: (signal: string) => Promise<void>,
  now: () => number = Date.now,
  hooks: SignalHooks = process as unknown as SignalHooks,
): void {
  let firstAt: number | undefined;
  const handler = (signal: NodeJS.Signals) => {
    if (firstAt !== undefined) {
      if (now() - firstAt < SIGNAL_COALESCE_MS) {
        logger.debug({ signal }, 'signal during shutdown: already stopping');
        return;
      }
      logger.warn({ signal }, 'second signal: exiting now');
      hooks.exit(1);
      return;
    }
    firstAt = now();
    logger.info({ signal }, 'shutting down');
    fn(signal).then(() => hooks.exit(0), (err: unknown) => {
      logger.error({ err }, 'shutdown failed');
      hooks.exit(1);
    });
  };
  hooks.on('SIGTERM', handler);
  hooks.on('SIGINT', handler);
}
