import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * One JSON line per event on stdout. Written asynchronously: lines that arrive while a write is
 * in flight go out together in the next one, so the event loop never waits on a write(2) of the
 * log (a slow log disk or a full pipe would otherwise stall every request). `flushLogs` writes
 * what is pending, before the process exits.
 */
export function createLogger(level: string): Logger {
  return pino(
    { level, base: { service: 'imgedge' }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ dest: 1, sync: false }),
  );
}

export function flushLogs(logger: Logger): Promise<void> {
  return new Promise((resolve) => logger.flush(() => resolve()));
}
