import { Worker } from 'node:worker_threads';
import { connectIndex, isDamaged, removeIndexFiles, type IndexTotals } from './index-db.js';
import type { IndexRow, RecordedPurge } from './index-rows.js';
import type { ThreadMessage, ThreadRequest } from './index-thread.js';
import type { EntryRef, EntrySelector } from './types.js';

export type { IndexRow, RecordedPurge } from './index-rows.js';
export type { IndexTotals } from './index-db.js';

/** Page cache of the index thread's connection; the rest stays in the OS page cache. */
const PAGE_CACHE_MIB = 64;
/** How often the index thread folds the write-ahead log into the file. */
const CHECKPOINT_INTERVAL_MS = 1000;
/**
 * Rows written within this long go to the index thread together, unless another call comes first
 * or the batch fills: nothing reads a row on the way to serving, and each message wakes a thread.
 */
const WRITE_BATCH_MS = 50;
const WRITE_BATCH_ROWS = 1000;
/** Longest a batch of bulk work holds the index thread before requests waiting on it go. */
const THREAD_SLICE_MS = 10;

interface Call {
  resolve(value: unknown): void;
  reject(err: Error): void;
  onBatch?(batch: EntryRef[]): void;
}

/**
 * The disk cache's index: a SQLite file (better-sqlite3) beside the entries, holding no JS object
 * per entry and opening in milliseconds whatever it holds.
 *
 * The event loop only opens it (making or checking the schema). Every read and write after that
 * goes to a thread with a connection of its own (index-thread.ts) and is answered
 * asynchronously, in the order asked: a purge of millions of rows, or a lookup whose pages are
 * not in memory, costs the event loop the messages, never a page read, a commit or an fsync.
 * Serving does not consult the index at all (DiskStore reads an entry by its path).
 */
export class EntryIndex {
  private isOpen = false;
  private thread: Worker | undefined;
  private readonly calls = new Map<number, Call>();
  private lastCall = 0;
  private counted: IndexTotals = { entries: 0, bytes: 0 };
  /** rows written since the last batch went, sent together (WRITE_BATCH_MS) */
  private batch:
    | { stored: IndexRow[]; found: IndexRow[]; done: Promise<void>; settle?: { resolve(): void; reject(err: Error): void }; timer?: NodeJS.Timeout }
    | undefined;
  /** true when this open created the file */
  created = false;
  /** why an existing file was discarded at open (damaged), if it was */
  discarded: string | undefined;
  /** told when a background checkpoint fails (the log then grows until one succeeds) */
  onCheckpointError: ((message: string) => void) | undefined;

  private constructor(
    readonly file: string,
    private readonly pageCacheKiB: number,
  ) {}

  /**
   * Opens or creates the index. A damaged file is discarded and started over: the index is derived
   * data. `pageCacheMiB` (default 64) bounds the index thread's page cache.
   */
  static open(file: string, opts: { pageCacheMiB?: number } = {}): EntryIndex {
    const index = new EntryIndex(file, (opts.pageCacheMiB ?? PAGE_CACHE_MIB) * 1024);
    try {
      index.connect();
    } catch (err) {
      if (!isDamaged(err)) throw err;
      removeIndexFiles(file);
      index.discarded = `${(err as { code: string }).code}: ${(err as Error).message}`;
      index.connect();
    }
    return index;
  }

  get closed(): boolean {
    return !this.isOpen;
  }

  /** As of the index thread's last answer. */
  get totals(): IndexTotals {
    return this.counted;
  }

  /** Those of these entries that have a row. */
  present(refs: EntryRef[]): Promise<EntryRef[]> {
    return this.call('present', [refs]);
  }

  variantsOf(sourceHash: string): Promise<string[]> {
    return this.call('variantsOf', [sourceHash]);
  }

  getState(name: string): Promise<string | undefined> {
    return this.call('getState', [name]);
  }

  recordedPurges(): Promise<RecordedPurge[]> {
    return this.call('recordedPurges', []);
  }

  /**
   * Writes entries just stored (replacing any row of their key, tags and all) and entries found on
   * disk (left out when their key has a row already: a put's row wins). The rows written within
   * WRITE_BATCH_MS go in one message and one transaction (a commit costs far more than a row);
   * any other call made meanwhile sends them first, so the index sees every change in the order
   * it was asked.
   */
  write(stored: IndexRow[], found: IndexRow[] = []): Promise<void> {
    const batch = (this.batch ??= { stored: [], found: [], done: undefined! });
    batch.stored.push(...stored);
    batch.found.push(...found);
    if (!batch.done) {
      batch.done = new Promise<void>((resolve, reject) => {
        batch.settle = { resolve, reject };
      });
      batch.timer = setTimeout(() => this.sendBatch(), WRITE_BATCH_MS);
    }
    const done = batch.done;
    if (batch.stored.length + batch.found.length >= WRITE_BATCH_ROWS) this.sendBatch();
    return done;
  }

  /** Removes these entries; answers those the index held. */
  remove(refs: EntryRef[]): Promise<EntryRef[]> {
    return this.call('remove', [refs]);
  }

  removeSource(sourceHash: string): Promise<EntryRef[]> {
    return this.call('removeSource', [sourceHash]);
  }

  /** Removes the entries of a source last used before `before` (reconciliation of a vanished directory). */
  removeSourceUsedBefore(sourceHash: string, before: number): Promise<EntryRef[]> {
    return this.call('removeSourceUsedBefore', [sourceHash, before]);
  }

  /** Removes every entry a purge selects, telling `onBatch` each batch removed; answers how many. */
  removeSelected(selector: EntrySelector, onBatch: (refs: EntryRef[]) => void): Promise<number> {
    return this.call('removeSelected', [selector], onBatch);
  }

  /** The distinct sources whose hash starts with these two hex characters. */
  sourcesInShard(shard: string): Promise<string[]> {
    return this.call('sourcesInShard', [shard]);
  }

  /** The next least recently used entries, as many as the index thread reads in a time slice. */
  leastRecentlyUsed(): Promise<Array<EntryRef & { size: number }>> {
    return this.call('leastRecentlyUsed', []);
  }

  /** The next entries that expired before `cutoff`, in expiry order, as many as fit a time slice. */
  expiredBefore(cutoff: number): Promise<EntryRef[]> {
    return this.call('expiredBefore', [cutoff]);
  }

  /** Writes recency for many entries in one transaction. */
  markUsed(uses: Array<{ ref: EntryRef; at: number }>): Promise<void> {
    return this.call('markUsed', [uses]);
  }

  setState(name: string, value: string): Promise<void> {
    return this.call('setState', [name, value]);
  }

  recordPurge(at: number, selector: EntrySelector): Promise<RecordedPurge> {
    return this.call('recordPurge', [at, selector]);
  }

  forgetRecordedPurge(id: number): Promise<void> {
    return this.call('forgetRecordedPurge', [id]);
  }

  /** Starts over with an empty index: faster than deleting millions of rows. */
  async recreate(): Promise<void> {
    await this.close();
    removeIndexFiles(this.file);
    this.connect();
  }

  /** Lets the index thread finish what it was asked, fold the log into the file and close. */
  async close(): Promise<void> {
    if (!this.isOpen) return;
    this.isOpen = false;
    const thread = this.thread;
    if (!thread) return;
    await this.call('close', []);
    this.thread = undefined;
    await thread.terminate();
    // Anything still waiting was sent to a thread that is gone (its exit handler no longer counts it).
    for (const call of this.calls.values()) call.reject(new Error('cache index is closed'));
    this.calls.clear();
  }

  private connect(): void {
    const { db, created } = connectIndex(this.file, 1024, true);
    this.created = created;
    this.counted = db.prepare('SELECT entries, bytes FROM totals WHERE one = 1').get() as IndexTotals;
    db.close();
    this.isOpen = true;
    this.startThread();
  }

  private startThread(): void {
    const thread = new Worker(new URL('./index-thread.js', import.meta.url), {
      workerData: { file: this.file, pageCacheKiB: this.pageCacheKiB, checkpointMs: CHECKPOINT_INTERVAL_MS, sliceMs: THREAD_SLICE_MS },
    });
    // Kept alive by the calls it has to answer, not by its checkpoint timer.
    thread.unref();
    thread.on('message', (m: ThreadMessage) => this.received(m));
    const failed = (err: Error) => {
      if (this.thread !== thread) return;
      this.thread = undefined; // the next call starts another
      for (const call of this.calls.values()) call.reject(err);
      this.calls.clear();
    };
    thread.on('error', failed);
    thread.on('exit', (code) => failed(new Error(`cache index thread stopped (exit code ${code})`)));
    this.thread = thread;
  }

  /** Sends the rows written since the last batch, as one call. */
  private sendBatch(): void {
    const batch = this.batch;
    if (!batch) return;
    this.batch = undefined;
    clearTimeout(batch.timer);
    this.call<void>('write', [batch.stored, batch.found]).then(batch.settle!.resolve, batch.settle!.reject);
  }

  private call<T>(op: string, args: unknown[], onBatch?: (refs: EntryRef[]) => void): Promise<T> {
    // Once close() has begun, the thread answers nothing more: a call sent behind the close (a
    // purge's background file deletion during deleteAll, say) would wait for ever.
    if (op !== 'close' && !this.isOpen) return Promise.reject(new Error('cache index is closed'));
    if (op !== 'write') this.sendBatch();
    if (!this.thread) this.startThread();
    const id = ++this.lastCall;
    return new Promise<T>((resolve, reject) => {
      this.calls.set(id, { resolve: resolve as (value: unknown) => void, reject, onBatch });
      if (this.calls.size === 1) this.thread!.ref();
      this.thread!.postMessage({ id, op, args } satisfies ThreadRequest);
    });
  }

  private received(m: ThreadMessage): void {
    if ('checkpointError' in m) return this.onCheckpointError?.(m.checkpointError);
    this.counted = m.totals;
    const call = this.calls.get(m.id);
    if (!call) return;
    if ('batch' in m) return call.onBatch?.(m.batch as EntryRef[]);
    this.calls.delete(m.id);
    if (this.calls.size === 0) this.thread?.unref();
    if (m.error) call.reject(Object.assign(new Error(m.error.message), { code: m.error.code }));
    else call.resolve(m.result);
  }
}
