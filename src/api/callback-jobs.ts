/**
 * Callback jobs: accepted (the caller already has its id), optimized in the background, their
 * result (or error) queued for webhook delivery. Each is kept on disk (its options, an upload's
 * bytes) from acceptance until its result is queued, so a restart runs again whatever it finds.
 * They run a few at a time, their bytes read back from disk when they start: a burst of
 * callbacks waits on disk, not in memory, and never overflows the transform queue the edge's
 * misses share. A job that finds that queue full anyway (EDGE_BUSY) waits and tries again.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { EdgeError } from '../errors.js';

export interface CallbackJob {
  id: string;
  key: string;
  /** the body's options as sent (auth removed) */
  options: Record<string, unknown>;
  fileName?: string;
  /** an upload's bytes; a URL job fetches its source when it runs */
  upload?: Buffer;
}

type Record_ = Omit<CallbackJob, 'upload'> & { hasUpload: boolean };

/** What running a job means: optimize it and queue its delivery (server.ts). Throws only when the delivery could not be queued. */
export type JobRunner = (job: CallbackJob) => Promise<void>;

const BUSY_RETRY_MS = 1000;

export class CallbackJobs {
  private readonly queue: string[] = [];
  private running = 0;
  private readonly active = new Set<Promise<void>>();
  private closed = false;

  private constructor(
    private readonly dir: string,
    private readonly concurrency: number,
    private readonly runner: JobRunner,
    private readonly onError: (err: unknown, id: string) => void,
  ) {}

  static async open(dir: string, concurrency: number, runner: JobRunner, onError: (err: unknown, id: string) => void): Promise<CallbackJobs> {
    await mkdir(dir, { recursive: true });
    return new CallbackJobs(dir, concurrency, runner, onError);
  }

  private async writeAtomic(file: string, data: Buffer | string): Promise<void> {
    await writeFile(`${file}.tmp`, data);
    await rename(`${file}.tmp`, file);
  }

  /** Keeps the job on disk (the bytes first, the record last: a record always has its bytes), then queues it. */
  async add(job: CallbackJob): Promise<void> {
    const base = path.join(this.dir, job.id);
    if (job.upload) await this.writeAtomic(`${base}.src`, job.upload);
    const { upload: _bytes, ...record } = job;
    await this.writeAtomic(`${base}.json`, JSON.stringify({ ...record, hasUpload: job.upload !== undefined } satisfies Record_));
    this.enqueue(job.id);
  }

  /** Queues every job a previous run left on disk. */
  async resume(): Promise<number> {
    const ids = (await readdir(this.dir)).filter((n) => /^[0-9a-f]{32}\.json$/.test(n)).map((n) => n.slice(0, -5));
    for (const id of ids) this.enqueue(id);
    return ids.length;
  }

  private enqueue(id: string): void {
    this.queue.push(id);
    this.pump();
  }

  private pump(): void {
    while (!this.closed && this.running < this.concurrency && this.queue.length > 0) {
      const id = this.queue.shift()!;
      this.running++;
      const work = this.runOne(id).finally(() => {
        this.running--;
        this.active.delete(work);
        this.pump();
      });
      this.active.add(work);
    }
  }

  private async load(id: string): Promise<CallbackJob | undefined> {
    const base = path.join(this.dir, id);
    try {
      const { hasUpload, ...job } = JSON.parse(await readFile(`${base}.json`, 'utf8')) as Record_;
      return hasUpload ? { ...job, upload: await readFile(`${base}.src`) } : job;
    } catch {
      return undefined;
    }
  }

  private async runOne(id: string): Promise<void> {
    const job = await this.load(id);
    if (!job) return this.remove(id); // a record without its bytes cannot run
    try {
      await this.runner(job);
      await this.remove(id);
    } catch (err) {
      if (err instanceof EdgeError && err.code === 'EDGE_BUSY' && !this.closed) {
        setTimeout(() => this.enqueue(id), BUSY_RETRY_MS).unref();
        return;
      }
      // Left on disk: the next start runs it again.
      this.onError(err, id);
    }
  }

  private async remove(id: string): Promise<void> {
    const base = path.join(this.dir, id);
    await rm(`${base}.json`, { force: true });
    await rm(`${base}.src`, { force: true });
  }

  /** Jobs queued or running. */
  get size(): number {
    return this.queue.length + this.running;
  }

  /** Resolves when every job queued so far has run (tests, benchmarks). */
  async settled(): Promise<void> {
    while (this.size > 0) await (this.active.size > 0 ? Promise.race(this.active) : new Promise((r) => setTimeout(r, 20)));
  }

  /** Starts no more jobs and waits for the running ones; the queued ones stay on disk for the next start. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.active);
  }
}
