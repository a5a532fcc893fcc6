import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { promisify } from 'node:util';
import sharp from 'sharp';
import type { LoadResult } from '../../loadtest/drive.js';

const run = promisify(execFile);
const LOOP = path.join(path.dirname(new URL(import.meta.url).pathname), '../../loadtest/sharp-loop.js');

describe('the sharp loop (the miss baseline)', () => {
  let dir: string | undefined;
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('counts as wrk counts the edge: only the jobs finished inside its window, over the window', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'sharp-loop-'));
    const file = path.join(dir, 'big.jpg');
    await sharp({ create: { width: 4000, height: 4000, channels: 3, background: '#6a8' } }).jpeg({ quality: 95 }).toFile(file);
    // One job, far longer than a 50 ms window: it finishes after the window, so it is not counted
    // in the rate, but its CPU is read and divided by it.
    const args = path.join(dir, 'args.json');
    await writeFile(args, JSON.stringify({ jobs: [{ file, width: 3999 }], concurrency: 1, seconds: 0.05, quality: 90 }));
    const { stdout } = await run(process.execPath, [LOOP, args]);
    const result = JSON.parse(stdout) as LoadResult;
    assert.equal(result.seconds, 0.05);
    assert.equal(result.requests, 0);
    assert.equal(result.rps, 0);
    assert.equal(result.p50Ms, 0); // latencies are the window's too, as wrk's are
    assert.equal(result.cpuRequests, 1);
    assert.ok(result.cpuMs! > 0 && result.machine!.busy > 0, JSON.stringify(result));
  });
});
