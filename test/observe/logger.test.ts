import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

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
