import type { PurgeApplier } from './types.js';

/**
 * Counts the purges applied on this node. A miss notes the count when it starts and stores its
 * result only if no purge came in between: otherwise a purge racing a slow origin fetch or an
 * AVIF encode would be undone by the old content landing in the cache after it.
 */
export class PurgeEpoch {
  private count = 0;

  get value(): number {
    return this.count;
  }

  /** The applier, counting each purge as it starts (so a miss overlapping it never stores). */
  counting(apply: PurgeApplier): PurgeApplier {
    return async (req) => {
      this.count++;
      try {
        return await apply(req);
      } finally {
        this.count++;
      }
    };
  }
}
