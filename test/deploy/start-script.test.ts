/**
 * bin/imgedge-start, what `npm start` runs: the libuv pool it gives the edge follows the
 * transforms it is told to run, and a value that is not a number reaches the edge's own config
 * check (which names it) instead of failing in the shell's arithmetic.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { MAIN_JS, removeDir, tempDir } from '../helpers/edge.js';
import { freePort } from '../helpers/processes.js';

const START = path.resolve(path.dirname(MAIN_JS), '../../bin/imgedge-start');
const run = promisify(execFile);

describe('bin/imgedge-start', () => {
  let dir: string | undefined;
  after(async () => {
    if (dir) await removeDir(dir);
  });

  async function configFile(port: number): Promise<string> {
    dir ??= await tempDir();
    const file = path.join(dir, `config-${port}.json`);
    await writeFile(file, JSON.stringify({
      server: { host: '127.0.0.1', port },
      cache: { dir: path.join(dir, `cache-${port}`) },
      log: { level: 'warn' },
      sites: [{ name: 'start', hosts: ['*'], origin: `file://${dir}` }],
    }));
    return file;
  }

  test('sizes the thread pool from IMGEDGE_TRANSFORM_CONCURRENCY: those transforms + 1 background encode + 4', async () => {
    const port = await freePort();
    const env: NodeJS.ProcessEnv = { ...process.env, IMGEDGE_CONFIG: await configFile(port), IMGEDGE_TRANSFORM_CONCURRENCY: '3' };
    delete env.UV_THREADPOOL_SIZE;
    const child = spawn(START, [], { env, stdio: 'ignore' });
    try {
      let up = false;
      for (let i = 0; i < 100 && !up; i++) {
        up = await fetch(`http://127.0.0.1:${port}/_edge/health`).then((r) => r.ok, () => false);
        if (!up) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.ok(up, 'the edge answered its health check');
      // the script ends in `exec node`, so the child is the edge itself
      const environ = (await readFile(`/proc/${child.pid}/environ`, 'utf8')).split('\0');
      assert.ok(environ.includes('UV_THREADPOOL_SIZE=8'), environ.filter((v) => v.startsWith('UV_')).join(' ') || 'no UV_THREADPOOL_SIZE');
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  });

  test('a transform count that is not a number is refused by name, by the edge', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, IMGEDGE_CONFIG: await configFile(await freePort()), IMGEDGE_TRANSFORM_CONCURRENCY: '2x' };
    delete env.UV_THREADPOOL_SIZE;
    const failed = await run(START, [], { env, timeout: 20_000 }).then(() => undefined, (err: { code?: number; stderr?: string }) => err);
    assert.ok(failed && failed.code !== 0, 'the start failed');
    assert.match(failed.stderr ?? '', /IMGEDGE_TRANSFORM_CONCURRENCY: "2x" is not a whole number/);
  });
});
