/**
 * Per-image encodings run on worker threads (Piscina): the quality search spends most of its time
 * in the SSIMULACRA 2 metric, JavaScript that would block the event loop (and every hit behind it)
 * for ~100 ms per candidate. One thread per core; idle threads do not keep the process alive.
 */
import os from 'node:os';
import { Piscina } from 'piscina';
import type { PerImageEncoding, PerImageTask } from './types.js';

let pool: Piscina | undefined;

function workers(): Piscina {
  pool ??= new Piscina({
    filename: new URL('./quality-worker.js', import.meta.url).href,
    maxThreads: os.availableParallelism(),
    minThreads: 0,
    idleTimeout: 30_000,
  });
  return pool;
}

/** Distinct colours of an image up to `maxPixels` (colours.ts), counted on a worker thread. */
export async function distinctColoursInWorker(source: Buffer, width: number, height: number, maxPixels = 12_000_000): Promise<number | undefined> {
  if (width * height > maxPixels) return undefined;
  return (await workers().run({ source, width, height, maxPixels }, { name: 'distinctColours' })) as number | undefined;
}

export async function encodeInWorker(task: PerImageTask): Promise<PerImageEncoding> {
  const result = (await workers().run(task)) as PerImageEncoding;
  return { ...result, body: Buffer.from(result.body.buffer, result.body.byteOffset, result.body.byteLength) };
}

/**
 * A named per-pixel pass of quality-worker.ts on a worker thread (adjustments, frames): tens of
 * millions of pixels in JavaScript would hold every hit behind them.
 */
export async function pixelsInWorker<T>(name: 'adjustPixelsTask' | 'framePixelsTask', task: object): Promise<T> {
  return (await workers().run(task, { name })) as T;
}

/** Ends the worker threads (graceful shutdown). */
export async function closeQualityPool(): Promise<void> {
  const p = pool;
  pool = undefined;
  await p?.destroy();
}
