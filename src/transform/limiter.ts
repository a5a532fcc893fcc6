import { EdgeError } from '../errors.js';

/**
 * Bounds the transforms running at once and those waiting for a turn. When the waiting line is
 * full the request is refused at once (503 + Retry-After) instead of growing memory.
 */
export class TransformLimiter {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    /** transforms at once */
    readonly concurrency: number,
    private readonly maxWaiting: number,
  ) {}

  get queued(): number {
    return this.waiting.length;
  }

  /** Transforms running now. */
  get active(): number {
    return this.running;
  }

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.running >= this.concurrency) {
      if (this.waiting.length >= this.maxWaiting) {
        throw new EdgeError('EDGE_BUSY', 'the edge is busy transforming images; try again shortly', { retryAfter: 1 });
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.running++;
    }
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      // The slot passes straight to the next in line; otherwise it is freed.
      if (next) next();
      else this.running--;
    }
  }
}
