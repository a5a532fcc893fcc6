/**
 * Deduplicated, bounded background work (slow AVIF encodes) that yields to foreground
 * transforms: a job starts only while fewer than `foregroundLimit` foreground transforms run.
 */
export interface BackgroundQueueOptions {
  /** jobs waiting at most; more are dropped (a later request asks again) */
  maxQueued: number;
  /** background jobs running at once */
  concurrency: number;
  /** a job waits while this many foreground transforms (or more) are running */
  foregroundLimit: number;
  onError(key: string, err: unknown): void;
}

export type EnqueueResult = 'queued' | 'duplicate' | 'full';

/**
 * The foregroundLimit that leaves a core free for requests, out of this process's share of the
 * machine: its transforms run 2 per core, so `transformConcurrency` / 2 cores (all of them for one
 * process alone; one when the machine runs a process per core with 2 transforms each).
 */
export function foregroundLimitFor(transformConcurrency: number, cores: number): number {
  return Math.max(1, Math.min(cores, Math.ceil(transformConcurrency / 2)) - 1);
}

export class BackgroundQueue {
  private readonly waiting = new Map<string, () => Promise<void>>();
  private readonly running = new Set<string>();
  private foreground = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly opts: BackgroundQueueOptions) {}

  get queued(): number {
    return this.waiting.size;
  }

  get active(): number {
    return this.running.size;
  }

  enqueue(key: string, job: () => Promise<void>): EnqueueResult {
    if (this.waiting.has(key) || this.running.has(key)) return 'duplicate';
    if (this.waiting.size >= this.opts.maxQueued) return 'full';
    this.waiting.set(key, job);
    this.pump();
    return 'queued';
  }

  /** Wraps a foreground transform so background jobs hold back while it runs. */
  async foregroundWork<T>(work: () => Promise<T>): Promise<T> {
    this.foreground++;
    try {
      return await work();
    } finally {
      this.foreground--;
      this.pump();
    }
  }

  /** Drops what waits and resolves when the running jobs are done (graceful shutdown). */
  stop(): Promise<void> {
    this.waiting.clear();
    return this.idle();
  }

  /** Resolves when nothing is queued or running. */
  idle(): Promise<void> {
    if (this.waiting.size === 0 && this.running.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private pump(): void {
    while (this.running.size < this.opts.concurrency && this.foreground < this.opts.foregroundLimit) {
      const next = this.waiting.entries().next();
      if (next.done) break;
      const [key, job] = next.value;
      this.waiting.delete(key);
      this.running.add(key);
      void job()
        .catch((err: unknown) => this.opts.onError(key, err))
        .finally(() => {
          this.running.delete(key);
          this.pump();
          if (this.waiting.size === 0 && this.running.size === 0) {
            const waiters = this.idleWaiters;
            this.idleWaiters = [];
            for (const resolve of waiters) resolve();
          }
        });
    }
  }
}
