/** Concurrent callers of one key share one run of `fn` (one origin fetch, one transform). */
export class SingleFlight<T> {
  private readonly inFlight = new Map<string, Promise<T>>();

  run(key: string, fn: () => Promise<T>): Promise<T> {
    const running = this.inFlight.get(key);
    if (running) return running;
    // Released when settled either way, so a failure is shared but never cached.
    const promise = Promise.resolve()
      .then(fn)
      .finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, promise);
    return promise;
  }

  /** Keys currently running. */
  get size(): number {
    return this.inFlight.size;
  }
}
