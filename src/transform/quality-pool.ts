/**
 * Per-image encodings run on worker threads (Piscina): the quality search spends most of its time
 * in the SSIMULACRA 2 metric, JavaScript that would block the event loop (and every hit behind it)
 * for ~100 ms per candidate. One thread per core; idle threads do not keep the process alive.
 */
import os from 'node:os';
import { Piscina } from 'piscina';
import type { PerImageEncoding, PerImageTask } from './types.js';

let pool: Piscina | undefined;

export async function encodeInWorker(task: PerImageTask): Promise<PerImageEncoding> {
  pool ??= new Piscina({
    filename: new URL('./quality-worker.js', import.meta.url).href,
    maxThreads: os.availableParallelism(),
    minThreads: 0,
    idleTimeout: 30_000,
  });
  const result = (await pool.run(task)) as PerImageEncoding;
  return { ...result, body: Buffer.from(result.body.buffer, result.body.byteOffset, result.body.byteLength) };
}

/** Ends the worker threads (graceful shutdown). */
export async function closeQualityPool(): Promise<void> {
  const p = pool;
  pool = undefined;
  await p?.destroy();
}
