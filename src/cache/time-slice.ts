import { performance } from 'node:perf_hooks';

/**
 * Sizes the synchronous steps of bulk index work (purges, sweeps, evictions) on the index's thread
 * to a time slice, so that the calls queued behind a step wait at most about one slice: a batch
 * that took longer than the slice halves the next one, a quick one doubles it. Rows spread
 * over the whole index (a tag's, the least recently used) cost ten times more each than rows that
 * sit together (a path prefix's), so no fixed batch size keeps every step short.
 */
export class TimeSlice {
  size: number;
  private spentMs = 0;

  constructor(
    private readonly sliceMs = 5,
    private readonly max = 500,
    private readonly min = 1,
  ) {
    // Starts small: the first batch meets a cold cache, and only its time tells what a row costs.
    this.size = min;
  }

  /** Runs a synchronous step of the current batch, counting its time. */
  time<T>(step: () => T): T {
    const started = performance.now();
    try {
      return step();
    } finally {
      this.spentMs += performance.now() - started;
    }
  }

  /** Ends a batch: sizes the next one by how long this one took. */
  next(): void {
    if (this.spentMs > this.sliceMs) this.size = Math.max(this.min, Math.floor(this.size / 2));
    else if (this.spentMs < this.sliceMs / 2) this.size = Math.min(this.max, this.size * 2);
    this.spentMs = 0;
  }
}
