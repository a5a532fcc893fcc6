import { writeSync } from 'node:fs';
import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Lines are gathered until about this many characters wait, then written in one write(2), where
 * a write every few lines took a thread-pool round trip each (with the cuts made beside it, hot
 * hits ran 13-17 % faster in side-by-side runs).
 */
const LOG_BATCH_CHARS = 8 * 1024;
/** What is gathered goes out at least this often, so a quiet edge's lines are never late by more. */
const LOG_FLUSH_MS = 250;
const STDOUT = 1;

/** The part of pino's SonicBoom destination a batch hands its lines to. */
interface Destination {
  write(text: string): boolean;
  flushSync(): void;
}

/**
 * Lines kept in an array and handed to SonicBoom as one string. SonicBoom's own batching
 * (minLength) measures its pending string's UTF-8 length at every line, which flattens the
 * joined string again each time: hot hits ran 19-22 % faster with this batch in front instead
 * (side-by-side runs, 6 x 4 s each). SonicBoom still does the writing (partial writes, EAGAIN, EPIPE).
 */
class LineBatch {
  private lines: string[] = [];
  private chars = 0;

  constructor(private readonly out: Destination) {
    everyBatch.add(this);
  }

  write(line: string): boolean {
    this.lines.push(line);
    this.chars += line.length;
    if (this.chars >= LOG_BATCH_CHARS) this.handOver();
    return true;
  }

  /**
   * pino's logger.flush() (`flushLogs`, a graceful stop): everything gathered and pending is
   * written before `cb`, synchronously; a stop happens once.
   */
  flush(cb?: (err?: Error) => void): void {
    this.flushSync();
    cb?.();
  }

  /** pino's fatal(), and the process's exit: everything written, in order, before it goes down. */
  flushSync(): void {
    try {
      this.out.flushSync();
    } catch {
      // SonicBoom already ended (pino ends it before an exit that has no process.exit()): what
      // it held was written then
    }
    if (this.lines.length === 0) return;
    try {
      writeSync(STDOUT, this.lines.join(''));
    } catch {
      // stdout is gone (EPIPE): nothing is left to write the log to
    }
    this.clear();
  }

  /** Hands what is gathered to SonicBoom; kept here if SonicBoom throws (it has ended). */
  handOver(): void {
    if (this.lines.length === 0) return;
    this.out.write(this.lines.join(''));
    this.clear();
  }

  handOverQuietly(): void {
    try {
      this.handOver();
    } catch {
      // ended: the exit hook's flushSync writes what is kept
    }
  }

  private clear(): void {
    this.lines = [];
    this.chars = 0;
  }
}

/**
 * Every batch of the process, for one timer and one exit hook between them (a process may make
 * several loggers, as the tests do). Held strongly: a logger dropped with lines still gathered
 * must not take them with it.
 */
const everyBatch = new Set<LineBatch>();
// A timer must not throw: a destination that has ended keeps its lines for the exit hook.
setInterval(() => everyBatch.forEach((b) => b.handOverQuietly()), LOG_FLUSH_MS).unref();
process.on('exit', () => everyBatch.forEach((b) => b.flushSync()));

/**
 * One JSON line per event on stdout. Written asynchronously and in batches (nginx's
 * `access_log … buffer= flush=`), so the event loop never waits on a write(2) of the log (a slow
 * log disk or a full pipe would otherwise stall every request). What is pending is written
 * synchronously when the process exits, and by `flushLogs` before a graceful stop.
 */
export function createLogger(level: string): Logger {
  const destination = pino.destination({ dest: STDOUT, sync: false });
  return pino({ level, base: { service: 'imgedge' }, timestamp: isoTimeField() }, new LineBatch(destination));
}

/**
 * pino's isoTime field, made at most once per millisecond and from a prefix made once per second:
 * a busy edge logs several lines within a millisecond, and Date#toISOString costs about 7 000
 * instructions a call (callgrind: snprintf), where the milliseconds alone cost a few dozen.
 */
export function isoTimeField(clock: () => number = Date.now): () => string {
  let at = NaN;
  let text = '';
  let second = NaN;
  let prefix = '';
  return () => {
    const now = clock();
    if (now !== at) {
      at = now;
      const s = Math.floor(now / 1000);
      if (s !== second) {
        second = s;
        prefix = `,"time":"${new Date(s * 1000).toISOString().slice(0, -4)}`; // up to "…:SS."
      }
      text = `${prefix}${String(now - s * 1000).padStart(3, '0')}Z"`;
    }
    return text;
  };
}

/** The parts of a pino logger a line is made of (exposed by pino as `pino.symbols`). */
interface LoggerParts {
  [pino.symbols.streamSym]: { write(line: string): unknown };
  [pino.symbols.timeSym]: () => string;
  [pino.symbols.chindingsSym]: string;
  [pino.symbols.mixinSym]: unknown;
  /** pino's own serializer of a line: (record, msg, level, time) */
  [pino.symbols.asJsonSym]: (record: object, msg: string, level: number, time: string) => string;
}

/** A record with what needs care (escapes, undefined, a fraction), to check a writer against pino once. */
const PROBE_RECORD = { method: 'GET', path: '/a "quoted"\\path\n', status: 200, cache: undefined, totalMs: 0.5 };
const PROBE_TIME = ',"time":"1970-01-01T00:00:00.000Z"';

/**
 * Writes records as `logger.info(record, msg)` does, byte for byte (level, time and bindings
 * first, `msg` last), with the record's fields serialized by one native JSON.stringify. pino's
 * loop over a record's keys (an escape test and a string join per key and per value) was about a
 * sixth of a hot hit's instructions. For the one line per request; other events go through pino.
 * A logger whose options change its lines (a mixin, formatters, serializers, another message key)
 * is checked once against pino's own serializer, and gets pino's own logger.info if they differ.
 */
export function infoRecordWriter(logger: Logger, msg: string): (record: object) => void {
  const parts = logger as unknown as LoggerParts;
  const level = logger.levels.values.info!;
  const head = `{"level":${level}`;
  const tail = `,"msg":${JSON.stringify(msg)}}\n`;
  const line = (record: object, time: string) => {
    const fields = JSON.stringify(record);
    return head + time + parts[pino.symbols.chindingsSym] + (fields.length > 2 ? `,${fields.slice(1, -1)}` : '') + tail;
  };
  const asPino = parts[pino.symbols.asJsonSym].call(logger, PROBE_RECORD, msg, level, PROBE_TIME);
  if (parts[pino.symbols.mixinSym] || line(PROBE_RECORD, PROBE_TIME) !== asPino) return (record) => logger.info(record, msg);
  return (record) => {
    if (logger.isLevelEnabled('info')) parts[pino.symbols.streamSym].write(line(record, parts[pino.symbols.timeSym]()));
  };
}

export function flushLogs(logger: Logger): Promise<void> {
  return new Promise((resolve) => logger.flush(() => resolve()));
}
