import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/** The process's root logger: JSON lines on stdout; children add component/topic/partition. */
export function createLogger(options: { service: string; level?: string }): Logger {
  return pino({ level: (options.level ?? 'info') as LevelWithSilent, base: { service: options.service, pid: process.pid } });
}
