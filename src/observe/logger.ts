import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Lines are gathered until this many bytes are waiting, then written in one write(2): a write
 * per few lines cost a hit about a fifth of its time (a thread-pool round trip each, loadtest
 * hot hit). Below SonicBoom's 16 KiB write limit.
 */
const LOG_BUFFER_BYTES = 8 * 1024;
/** What is gathered goes out at least this often, so a quiet edge's lines are never late by more. */
const LOG_FLUSH_MS = 250;

/**
 * One JSON line per event on stdout. Written asynchronously and in batches (nginx's
 * `access_log … buffer= flush=`), so the event loop never waits on a write(2) of the log (a slow
 * log disk or a full pipe would otherwise stall every request). What is pending is written
 * synchronously when the process exits; `flushLogs` writes it before a graceful stop.
 */
export function createLogger(level: string): Logger {
  const destination = pino.destination({ dest: 1, sync: false, minLength: LOG_BUFFER_BYTES });
  setInterval(() => destination.flush(), LOG_FLUSH_MS).unref();
  return pino({ level, base: { service: 'imgedge' }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}

export function flushLogs(logger: Logger): Promise<void> {
  return new Promise((resolve) => logger.flush(() => resolve()));
}
