import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { pino, type Logger } from 'pino';
import { infoRecordWriter, isoTimeField } from '../../src/observe/logger.js';

const LOGGER_JS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/observe/logger.js');

/** Runs `body` in a fresh process with `logger` made by createLogger('info'); resolves with its stdout lines as they came. */
function runWithLogger(body: string, onLine?: (line: Record<string, unknown>, at: number) => void): Promise<Record<string, unknown>[]> {
  const script = `import { createLogger } from ${JSON.stringify(LOGGER_JS)}; const logger = createLogger('info'); ${body}`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const started = Date.now();
  const lines: Record<string, unknown>[] = [];
  let rest = '';
  child.stdout.on('data', (chunk: Buffer) => {
    const parts = (rest + chunk.toString()).split('\n');
    rest = parts.pop()!;
    for (const part of parts) {
      const line = JSON.parse(part) as Record<string, unknown>;
      lines.push(line);
      onLine?.(line, Date.now() - started);
    }
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => (code === 0 && rest === '' ? resolve(lines) : reject(new Error(`exit ${code}, unfinished line ${JSON.stringify(rest)}`))));
  });
}

describe('the log: lines written in batches', () => {
  it('writes every line, whole and in order, when the process exits right after a burst', async () => {
    const lines = await runWithLogger(`for (let i = 0; i < 20000; i++) logger.info({ n: i, path: '/p/' + i }, 'request'); process.exit(0);`);
    assert.equal(lines.length, 20000);
    assert.ok(lines.every((l, i) => l.n === i && l.msg === 'request' && l.service === 'imgedge' && typeof l.time === 'string'));
  });

  it('writes a lone line of a quiet process within a second, not at exit', async () => {
    let seenAfter: number | undefined;
    await runWithLogger(`logger.info('alone'); setTimeout(() => process.exit(0), 3000);`, (line, at) => {
      if (line.msg === 'alone') seenAfter = at;
    });
    assert.ok(seenAfter !== undefined && seenAfter < 2500, `the line came after ${seenAfter} ms`);
  });

  it('has written every line of every logger of the process when a graceful stop\'s flushLogs returns', async () => {
    // The marker is written straight to stdout once both flushes have returned; the process then
    // stays up, so only the flush (not the timer or the exit hook) can put the lines before it.
    const lines = await runWithLogger(
      `import('${LOGGER_JS.replace(/\\/g, '/')}').then(async ({ createLogger: make, flushLogs }) => {
        const { writeSync } = await import('node:fs');
        const other = make('info');
        for (let i = 0; i < 50; i++) (i % 2 ? other : logger).info({ n: i }, 'line');
        await flushLogs(logger);
        await flushLogs(other);
        writeSync(1, JSON.stringify({ marker: true }) + '\\n');
        setTimeout(() => process.exit(0), 1000);
      });`,
    );
    const marker = lines.findIndex((l) => l.marker === true);
    assert.ok(marker >= 0, 'the marker was written');
    assert.deepEqual(lines.slice(0, marker).map((l) => l.n).sort((a, b) => Number(a) - Number(b)), Array.from({ length: 50 }, (_, i) => i));
  });
});

describe('the request line: written as pino writes it', () => {
  /** A pino logger writing into an array, with a fixed time so that two lines can be compared byte for byte. */
  function capturing(level: string): { logger: Logger; lines: string[] } {
    const lines: string[] = [];
    const logger = pino({ level, base: { service: 'imgedge' }, timestamp: () => ',"time":"2026-12-01T10:00:00.000Z"' }, { write: (s: string) => void lines.push(s) });
    return { logger, lines };
  }

  const records: object[] = [
    { method: 'GET', path: '/a.jpg', status: 200, cache: 'HIT', bytesOut: 19_456, totalMs: 0.3 },
    { method: 'GET', path: '/"quoted"\\back\nline\u0001\u2028é😀', site: undefined, quality: undefined, error: 'EDGE_BAD_PARAM' },
    { method: 'HEAD', path: '/p', fetchMs: Number.NaN, transformMs: Number.POSITIVE_INFINITY, dimsOut: '600x400' },
    {},
  ];

  it('matches logger.info(record, msg) byte for byte, child bindings included', () => {
    const { logger, lines } = capturing('info');
    const child = logger.child({ node: 'edge-1:8081' });
    for (const target of [logger, child]) {
      const write = infoRecordWriter(target, 'request');
      for (const record of records) {
        target.info(record, 'request');
        write(record);
      }
    }
    assert.equal(lines.length, records.length * 4);
    for (let i = 0; i < lines.length; i += 2) assert.equal(lines[i + 1], lines[i]);
    assert.ok(lines.every((line) => line.endsWith('}\n') && JSON.parse(line).msg === 'request'));
  });

  it('keeps a lone surrogate as an escape (pino writes it raw, and it leaves the process as U+FFFD)', () => {
    const { logger, lines } = capturing('info');
    infoRecordWriter(logger, 'request')({ path: '/lone\ud800' });
    assert.equal(JSON.parse(lines[0]!).path, '/lone\ud800');
  });

  it('falls back to pino itself for a logger whose options change its lines', () => {
    const lines: string[] = [];
    const timestamp = () => ',"time":"T"';
    const loggers = [
      pino({ messageKey: 'message', timestamp }, { write: (s: string) => void lines.push(s) }),
      pino({ formatters: { log: (o: Record<string, unknown>) => ({ ...o, extra: 1 }) }, timestamp }, { write: (s: string) => void lines.push(s) }),
      pino({ mixin: () => ({ mixed: true }), timestamp }, { write: (s: string) => void lines.push(s) }),
      pino({ serializers: { path: (p: string) => p.toUpperCase() }, timestamp }, { write: (s: string) => void lines.push(s) }),
    ];
    for (const logger of loggers) {
      logger.info(records[0]!, 'request');
      infoRecordWriter(logger, 'request')(records[0]!);
    }
    for (let i = 0; i < lines.length; i += 2) assert.equal(lines[i + 1], lines[i]);
  });

  it('writes nothing when the logger is above info, and follows a level changed later', () => {
    const { logger, lines } = capturing('warn');
    const write = infoRecordWriter(logger, 'request');
    write(records[0]!);
    assert.equal(lines.length, 0);
    logger.level = 'info';
    write(records[0]!);
    assert.equal(lines.length, 1);
  });
});

describe('the time of a log line', () => {
  it("is pino's ISO time to the millisecond, across seconds, days and years, and when the clock steps back", () => {
    const times = [0, 7, 99, 999, 1000, 1001, 59_999, 86_399_999, 86_400_000, Date.UTC(2026, 11, 31, 23, 59, 59, 999), Date.UTC(2027, 0, 1), Date.UTC(2027, 0, 1, 0, 0, 0, 10), Date.UTC(2026, 11, 1, 13, 5, 7, 42), Date.UTC(2026, 11, 1, 13, 5, 7, 42), Date.UTC(2026, 11, 1, 13, 5, 6, 900)];
    let i = 0;
    const field = isoTimeField(() => times[i]!);
    for (; i < times.length; i++) assert.equal(field(), `,"time":"${new Date(times[i]!).toISOString()}"`, `at ${times[i]}`);
  });
});
