import { EdgeError } from '../errors.js';

/** Requests per key per minute, in fixed one-minute windows (per process). */
export class RateLimit {
  private readonly windows = new Map<string, { start: number; count: number }>();

  constructor(private readonly perMinute: number, private readonly now: () => number = Date.now) {}

  take(key: string): void {
    const t = this.now();
    let w = this.windows.get(key);
    if (!w || t - w.start >= 60_000) {
      w = { start: t, count: 0 };
      this.windows.set(key, w);
    }
    if (++w.count > this.perMinute) {
      throw new EdgeError('EDGE_RATE_LIMITED', `more than ${this.perMinute} requests a minute for this key`, { retryAfter: Math.ceil((w.start + 60_000 - t) / 1000) });
    }
  }
}
