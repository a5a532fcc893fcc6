import { randomBytes } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { encodeEntryHeader, parseEntryHeader } from './entry-file.js';
import { EntryIndex, type IndexRow, type RecordedPurge } from './entry-index.js';
import {
  HASH,
  IO_CONCURRENCY,
  SHARD,
  TEMP_SUFFIX,
  entryPathOf,
  errorCode,
  forEachLimit,
  isEntryRef,
  pruneEmptyDirs,
  readEntryHeader,
  readIfSized,
  sourceDirOf,
  unlinkQuiet,
} from './entry-tree.js';
import { parseSourceString } from './key.js';
import { CURSOR_STATE, Reconciler } from './reconcile.js';
import { selects } from './selector.js';
import { TimeSlice } from './time-slice.js';
import type {
  CacheEntry,
  CacheEntryMeta,
  CacheKey,
  CacheStats,
  EntryRef,
  EntrySelector,
  PurgeableStore,
  ReconcileProgress,
} from './types.js';

export interface DiskStoreOptions {
  dir: string;
  /** byte budget for all entry files together */
  maxBytes: number;
  /** how long past expiresAt the sweeper keeps an entry (for stale serving); default 0 */
  staleRetentionMs?: number;
  /** default 60 000 */
  sweepIntervalMs?: number;
  /** fsync each entry before its rename; default false (see writeTemp) */
  fsync?: boolean;
  /** most reads (directories listed, entry headers read) per second of the background reconciliation; default 5000 */
  reconcileReadsPerSecond?: number;
  /** how long reads are remembered before their recency is written, together; default 1000 */
  recencyFlushMs?: number;
  logger?: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void };
}

/** The index file beside the shards. */
export const INDEX_FILE = 'index.sqlite';
const TRASH_PREFIX = '.trash-';
/** Names this process's temp files apart from any other writer's. */
const TEMP_TAG = `${process.pid}-${randomBytes(4).toString('hex')}`;
/** Reads remembered for the recency write at most; more flush early. */
const MAX_PENDING_USES = 20_000;
/** Background eviction starts above this share of the budget and stops below the next. */
const EVICT_ABOVE = 0.95;
const EVICT_TO = 0.9;
const STATE_CLEAN = 'clean';
const STATE_COMPLETE = 'complete';

/**
 * Variant cache on disk: `<dir>/aa/bb/cc/<rest of sourceHash>/<variantHash>.entry`, one directory
 * per source, indexed by a SQLite file (`index.sqlite`, see entry-index.ts) that enforces the byte
 * budget (LRU), the expiry order and purges without a JS object per entry.
 *
 * Opening never walks the tree. After an unclean stop (or over a tree without an index) the index
 * may miss files or list files that are gone: until the background reconciliation has seen every
 * shard, a key the index does not know is looked up on disk by its path and indexed on the way.
 *
 * A purge by tag or prefix removes rows (the entries stop being served) and answers; their files
 * are deleted in the background. The purge is recorded in the index until then, and while the
 * index is incomplete, so that no file it selects is ever indexed again, even after a crash.
 */
export class DiskStore implements PurgeableStore {
  private readonly uses = new Map<string, { ref: EntryRef; at: number }>();
  private readonly listeners: Array<(refs: EntryRef[]) => void> = [];
  private readonly background = new Set<Promise<unknown>>();
  private readonly openedAt = Date.now();
  private complete = true;
  private reconciler: Reconciler | undefined;
  private reconciling: Promise<void> | undefined;
  private recorded: RecordedPurge[] = [];
  /** recorded purges whose files are still being deleted */
  private readonly unlinking = new Set<RecordedPurge>();
  private timers: NodeJS.Timeout[] = [];
  private sweeping: Promise<number> | undefined;
  private evicting: Promise<void> | undefined;
  private flushing: Promise<void> | undefined;
  private closed = false;
  private lastUse = 0;
  private tempSerial = 0;
  private rowsToIndex = { stored: [] as IndexRow[], found: [] as IndexRow[] };
  private indexing: Promise<void> | undefined;

  private constructor(
    private readonly opts: DiskStoreOptions,
    private readonly index: EntryIndex,
  ) {}

  static async open(opts: DiskStoreOptions): Promise<DiskStore> {
    if (!Number.isSafeInteger(opts.maxBytes) || opts.maxBytes <= 0) {
      throw new RangeError(`cache maxBytes must be a positive integer, got ${opts.maxBytes}`);
    }
    await mkdir(opts.dir, { recursive: true });
    const index = EntryIndex.open(join(opts.dir, INDEX_FILE));
    const store = new DiskStore(opts, index);
    try {
      await store.start();
    } catch (err) {
      await index.close();
      throw err;
    }
    return store;
  }

  /** Listens to entries leaving the disk (evicted, swept, purged, found gone), so a tier above can follow. */
  onRemoved(listener: (refs: EntryRef[]) => void): void {
    this.listeners.push(listener);
  }

  async get(key: CacheKey): Promise<CacheEntry | undefined> {
    if (!isEntryRef(key)) return undefined;
    const known = this.index.lookup(key);
    if (!known) return this.complete ? undefined : this.adoptOnRead(key);
    const path = entryPathOf(this.opts.dir, key);
    let file: Buffer;
    try {
      // The index knows the file's size: one read, no stat. A file of another size (being
      // replaced right now, or damaged) is read whole and judged below.
      file = (await readIfSized(path, known.size)) ?? (await readFile(path));
    } catch (err) {
      if (errorCode(err) === 'ENOENT') this.forget(this.index.remove([key]));
      else this.warn({ err, path }, 'cache entry unreadable');
      return undefined;
    }
    const parsed = parseEntryHeader(file, file.length);
    if (!parsed || parsed.meta.sourceHash !== key.sourceHash || parsed.meta.variantHash !== key.variantHash) {
      this.warn({ path }, 'removing damaged cache entry');
      await this.remove(key);
      return undefined;
    }
    if (parsed.meta.key !== key.variant) return undefined;
    this.touch(key);
    return { meta: parsed.meta, body: file.subarray(parsed.bodyOffset) };
  }

  async put(entry: CacheEntry): Promise<void> {
    const ref: EntryRef = { sourceHash: entry.meta.sourceHash, variantHash: entry.meta.variantHash };
    if (!isEntryRef(ref)) throw new TypeError('cache entry needs sha256 hex sourceHash and variantHash');
    const meta: CacheEntryMeta = { ...entry.meta, size: entry.body.length };
    const header = encodeEntryHeader(meta);
    const size = header.length + entry.body.length;
    if (size > this.opts.maxBytes) {
      await this.remove(ref); // never leave an older version behind a put that did not store
      return;
    }
    const dir = sourceDirOf(this.opts.dir, ref.sourceHash);
    const temp = join(dir, `${ref.variantHash}.${TEMP_TAG}-${++this.tempSerial}${TEMP_SUFFIX}`);
    await this.writeTemp(dir, temp, [header, entry.body], size);
    try {
      await rename(temp, entryPathOf(this.opts.dir, ref));
    } catch (err) {
      await this.unlink(temp);
      if (errorCode(err) === 'ENOENT') return; // the source was purged while we wrote: the purge wins
      throw err;
    }
    // Renamed first, indexed second: a crash in between leaves a file the reconciliation adopts.
    await this.indexSoon({ ...ref, ...rowFieldsOf(meta), size, usedAt: this.useClock() });
    await this.keepBudget();
  }

  async delete(key: CacheKey): Promise<boolean> {
    return isEntryRef(key) ? this.remove(key) : false;
  }

  async deleteSource(sourceHash: string): Promise<number> {
    if (!HASH.test(sourceHash)) return 0;
    await rm(sourceDirOf(this.opts.dir, sourceHash), { recursive: true, force: true });
    const removed = this.index.removeSource(sourceHash);
    this.forget(removed);
    await pruneEmptyDirs(this.opts.dir, sourceHash);
    return removed.length;
  }

  /**
   * Removes the entries carrying a tag or under a path prefix, through the index's own orders:
   * their rows now (in time-sliced batches, yielding between them), their files in the background.
   */
  async deleteSelected(selector: EntrySelector): Promise<number> {
    const purge = this.index.recordPurge(Date.now(), selector);
    this.recorded.push(purge);
    this.unlinking.add(purge);
    const refs: EntryRef[] = [];
    const slice = new TimeSlice();
    const takeRows = async (select: (limit: number) => EntryRef[]): Promise<void> => {
      for (;;) {
        const gone = slice.time(() => this.index.remove(select(slice.size)));
        slice.next();
        if (gone.length === 0) return;
        this.forget(gone);
        refs.push(...gone);
        await yieldToEventLoop();
      }
    };
    for (const tag of selector.tags) await takeRows((limit) => this.index.tagged(tag, limit));
    for (const { site, prefix } of selector.prefixes) await takeRows((limit) => this.index.prefixed(site, prefix, limit));
    this.inBackground(
      // An entry stored again since has replaced the file already: it stays.
      forEachLimit(refs, IO_CONCURRENCY, async (ref) => this.index.lookup(ref) ?? (await this.removeFile(ref))).finally(() => {
        this.unlinking.delete(purge);
        if (this.complete) this.forgetRecordedPurges();
      }),
    );
    return refs.length;
  }

  /**
   * Empties the cache: the shards are moved aside at once and deleted in the background, and the
   * index starts over (deleting millions of rows one by one would take minutes).
   */
  async deleteAll(): Promise<number> {
    const count = this.index.totals.entries;
    await this.stopReconciling();
    const trash = join(this.opts.dir, `${TRASH_PREFIX}${randomBytes(6).toString('hex')}`);
    await mkdir(trash);
    const shards = await this.shardDirs();
    await Promise.all(
      shards.map((d) =>
        rename(join(this.opts.dir, d.name), join(trash, d.name)).catch((err) => {
          if (errorCode(err) !== 'ENOENT') throw err; // pruned meanwhile: nothing to move
        }),
      ),
    );
    this.uses.clear();
    this.recorded = [];
    this.unlinking.clear();
    await this.index.recreate();
    this.index.setState(STATE_CLEAN, '0');
    this.markComplete();
    this.removeTrash(trash);
    return count;
  }

  /** Removes entries past expiresAt + staleRetentionMs, in expiry order; answers how many. */
  async sweep(): Promise<number> {
    const cutoff = Date.now() - (this.opts.staleRetentionMs ?? 0);
    return this.drain((limit) => this.index.expiredBefore(cutoff, limit));
  }

  /** Marks an entry recently used without reading it: written to the index with the next batch. */
  touch(ref: EntryRef): void {
    this.uses.set(ref.sourceHash + ref.variantHash, { ref: { sourceHash: ref.sourceHash, variantHash: ref.variantHash }, at: this.useClock() });
    if (this.uses.size >= MAX_PENDING_USES) void this.flushUses();
  }

  has(ref: EntryRef): boolean {
    return this.index.lookup(ref) !== undefined;
  }

  stats(): CacheStats {
    return { ...this.index.totals };
  }

  reconcileProgress(): ReconcileProgress {
    if (this.complete) return { complete: true, fraction: 1, filesRead: 0, adopted: 0, dropped: 0 };
    return this.reconciler?.progress ?? { complete: false, fraction: 0, filesRead: 0, adopted: 0, dropped: 0 };
  }

  /** Resolves when a reconciliation running now has finished (or stopped). */
  async settled(): Promise<void> {
    await this.reconciling;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const timer of this.timers) clearInterval(timer);
    await this.stopReconciling();
    await this.indexing;
    await this.sweeping;
    await this.evicting;
    await this.flushUses();
    await Promise.all(this.background);
    this.index.setState(STATE_CLEAN, '1');
    await this.index.close();
  }

  /** Decides whether the index can be trusted as it is, and starts the timers. */
  private async start(): Promise<void> {
    const { index, opts } = this;
    index.onCheckpointError = (message) => this.warn({ file: index.file, message }, 'cache index checkpoint failed; retried in a second');
    if (index.discarded) this.warn({ file: index.file, reason: index.discarded }, 'cache index was damaged: started over, reconciling with the files');
    const overOldTree = index.created && (await this.shardDirs()).length > 0;
    const cleanBefore = index.getState(STATE_CLEAN) === '1';
    this.complete = index.created ? !overOldTree : cleanBefore && index.getState(STATE_COMPLETE) === '1';
    if (this.complete) {
      index.setState(STATE_COMPLETE, '1');
    } else {
      index.setState(STATE_COMPLETE, '0');
      // After a crash, shards done before it may have changed without the index: start over.
      if (!cleanBefore) index.setState(CURSOR_STATE, '0');
    }
    // Purges whose files a crash left behind: the reconciliation deletes those files.
    this.recorded = index.recordedPurges();
    index.setState(STATE_CLEAN, '0');
    for (const d of await readdir(opts.dir, { withFileTypes: true })) {
      if (d.isDirectory() && d.name.startsWith(TRASH_PREFIX)) this.removeTrash(join(opts.dir, d.name));
    }
    if (!this.complete) this.startReconciling();
    this.every(opts.sweepIntervalMs ?? 60_000, () => this.sweepInBackground());
    this.every(opts.recencyFlushMs ?? 1000, () => void this.flushUses());
  }

  private startReconciling(): void {
    const reconciler = new Reconciler({
      dir: this.opts.dir,
      index: this.index,
      readsPerSecond: this.opts.reconcileReadsPerSecond ?? 5000,
      startedAt: this.openedAt,
      adopt: (ref, path) => this.adoptFile(ref, path),
      removed: (refs) => this.forget(refs),
      unlink: (path) => this.unlink(path),
      info: (obj, msg) => this.opts.logger?.info(obj, msg),
    });
    this.reconciler = reconciler;
    this.reconciling = reconciler
      .run()
      .then((finished) => {
        if (finished) this.markComplete();
      })
      .catch((err) => this.warn({ err }, 'cache index reconciliation failed; it resumes at the next start'));
  }

  private async stopReconciling(): Promise<void> {
    this.reconciler?.stop();
    await this.reconciling;
    this.reconciler = undefined;
  }

  private markComplete(): void {
    this.complete = true;
    this.forgetRecordedPurges();
    this.index.setState(CURSOR_STATE, '0');
    this.index.setState(STATE_COMPLETE, '1');
  }

  /** Drops the recorded purges no file deletion is waiting on (the index is complete). */
  private forgetRecordedPurges(): void {
    this.recorded = this.recorded.filter((p) => {
      if (this.unlinking.has(p)) return true;
      if (!this.index.closed) this.index.forgetRecordedPurge(p.id);
      return false;
    });
  }

  /** A key the incomplete index does not know: read from its path, indexed when whole and not purged. */
  private async adoptOnRead(key: CacheKey): Promise<CacheEntry | undefined> {
    const path = entryPathOf(this.opts.dir, key);
    let file: Buffer;
    try {
      file = await readFile(path);
    } catch {
      return undefined;
    }
    const parsed = parseEntryHeader(file, file.length);
    if (!parsed || !(await this.admit(key, parsed.meta, file.length, this.useClock()))) {
      await this.unlink(path);
      return undefined;
    }
    if (parsed.meta.key !== key.variant) return undefined;
    return { meta: parsed.meta, body: file.subarray(parsed.bodyOffset) };
  }

  /** The reconciliation's adoption: reads only the header; recency is the file's age. */
  private async adoptFile(ref: EntryRef, path: string): Promise<'adopted' | 'dropped'> {
    const header = await readEntryHeader(path);
    if (header && (await this.admit(ref, header.meta, header.size, Math.round(header.mtimeMs * 1000)))) return 'adopted';
    await this.unlink(path);
    return 'dropped';
  }

  /** Indexes a file found on disk when it is whole, belongs where it lies, fits and no recorded purge selects it. */
  private async admit(ref: EntryRef, meta: CacheEntryMeta, size: number, usedAt: number): Promise<boolean> {
    if (meta.sourceHash !== ref.sourceHash || meta.variantHash !== ref.variantHash || size > this.opts.maxBytes) return false;
    if (this.recorded.some((p) => meta.createdAt <= p.at && selects(p.selector, meta))) return false;
    await this.indexSoon({ ...ref, ...rowFieldsOf(meta), size, usedAt }, 'found');
    this.inBackground(this.keepBudget());
    return true;
  }

  /**
   * Indexes an entry together with the others stored or found on disk in the same turn of the
   * event loop: one transaction for many (a commit costs far more than a row).
   */
  private indexSoon(row: IndexRow, how: 'stored' | 'found' = 'stored'): Promise<void> {
    this.rowsToIndex[how].push(row);
    this.indexing ??= new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        const { stored, found } = this.rowsToIndex;
        this.rowsToIndex = { stored: [], found: [] };
        this.indexing = undefined;
        try {
          this.index.write(stored, found);
          resolve();
        } catch (err) {
          reject(err);
        }
      });
    });
    return this.indexing;
  }

  /** Removes the selected entries batch by batch (files first, so a crash never resurrects one). */
  private async drain(select: (limit: number) => EntryRef[]): Promise<number> {
    let removed = 0;
    const slice = new TimeSlice();
    for (;;) {
      const refs = slice.time(() => select(slice.size));
      if (refs.length === 0) return removed;
      await forEachLimit(refs, IO_CONCURRENCY, (ref) => this.removeFile(ref));
      const gone = slice.time(() => this.index.remove(refs));
      slice.next();
      this.forget(gone);
      removed += gone.length;
      if (gone.length === 0) return removed;
      await yieldToEventLoop();
    }
  }

  /** Keeps the budget: eviction runs in the background above EVICT_ABOVE, and a put waits for it only past the budget. */
  private async keepBudget(): Promise<void> {
    const { maxBytes } = this.opts;
    if (this.index.totals.bytes <= maxBytes * EVICT_ABOVE) return;
    this.evicting ??= this.evict().finally(() => (this.evicting = undefined));
    while (this.index.totals.bytes > maxBytes && this.evicting) await this.evicting;
  }

  /** Evicts the least recently used down to EVICT_TO of the budget. */
  private async evict(): Promise<void> {
    await this.flushUses(); // recency the index has not seen yet would evict what was just read
    const target = this.opts.maxBytes * EVICT_TO;
    const slice = new TimeSlice();
    while (this.index.totals.bytes > target) {
      let excess = this.index.totals.bytes - target;
      const victims = slice.time(() => this.index.leastRecentlyUsed(slice.size)).filter((v) => (excess -= v.size) + v.size > 0);
      if (victims.length === 0) return;
      await forEachLimit(victims, IO_CONCURRENCY, (ref) => this.removeFile(ref));
      this.forget(slice.time(() => this.index.remove(victims)));
      slice.next();
      await yieldToEventLoop();
    }
  }

  /** Writes the remembered reads to the index, in time-sliced batches. */
  private flushUses(): Promise<void> {
    this.flushing ??= (async () => {
      const slice = new TimeSlice(5, 2000);
      while (this.uses.size > 0 && !this.index.closed) {
        const batch: Array<{ ref: EntryRef; at: number }> = [];
        for (const [id, use] of this.uses) {
          this.uses.delete(id);
          batch.push(use);
          if (batch.length === slice.size) break;
        }
        slice.time(() => this.index.markUsed(batch));
        slice.next();
        await yieldToEventLoop();
      }
    })().finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  private sweepInBackground(): void {
    if (this.sweeping) return;
    this.sweeping = this.sweep()
      .catch((err) => {
        this.warn({ err }, 'cache sweep failed');
        return 0;
      })
      .finally(() => {
        this.sweeping = undefined;
      });
  }

  /**
   * Writes the whole entry to a temp file in the entry's directory. Without fsync, a crash of the
   * process cannot tear an entry: written data lives on in the page cache and the rename that
   * publishes it is atomic. Only a power loss can persist the rename before the data; the
   * length check on read rejects such a torn file. `fsync: true` closes that window too, at the
   * cost of write latency.
   */
  private async writeTemp(dir: string, temp: string, chunks: Buffer[], size: number): Promise<void> {
    const handle = await this.createTemp(dir, temp);
    let written = false;
    try {
      const { bytesWritten } = await handle.writev(chunks);
      if (bytesWritten !== size) throw new Error(`short write to ${temp}: ${bytesWritten} of ${size}`);
      if (this.opts.fsync) await handle.sync();
      written = true;
    } finally {
      await handle.close();
      if (!written) await this.unlink(temp);
    }
  }

  /** Creates the temp file, (re)creating its directory when missing: removals prune empty ones. */
  private async createTemp(dir: string, temp: string): Promise<FileHandle> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await open(temp, 'wx');
      } catch (err) {
        if (errorCode(err) !== 'ENOENT' || attempt === 3) throw err;
        await mkdir(dir, { recursive: true });
      }
    }
  }

  private async remove(ref: EntryRef): Promise<boolean> {
    const onDisk = await this.removeFile(ref);
    const indexed = this.index.remove([ref]);
    this.forget(indexed);
    return indexed.length > 0 || onDisk;
  }

  /**
   * Unlinks an entry file and prunes directories left empty. An eviction racing with a put of the
   * same key may unlink the new file; the next get then finds it missing and drops it.
   */
  private async removeFile(ref: EntryRef): Promise<boolean> {
    const existed = await this.unlink(entryPathOf(this.opts.dir, ref));
    await pruneEmptyDirs(this.opts.dir, ref.sourceHash);
    return existed;
  }

  /** Recency in epoch microseconds, strictly increasing, so uses within one millisecond keep their order. */
  private useClock(): number {
    this.lastUse = Math.max(Math.round((performance.timeOrigin + performance.now()) * 1000), this.lastUse + 1);
    return this.lastUse;
  }

  private unlink(path: string): Promise<boolean> {
    return unlinkQuiet(path, (obj, msg) => this.warn(obj, msg));
  }

  private forget(refs: EntryRef[]): void {
    if (refs.length === 0) return;
    for (const listener of this.listeners) listener(refs);
  }

  /** The top-level shard directories of the tree. */
  private async shardDirs(): Promise<Dirent[]> {
    return (await readdir(this.opts.dir, { withFileTypes: true })).filter((d) => d.isDirectory() && SHARD.test(d.name));
  }

  private every(ms: number, fn: () => void): void {
    const timer = setInterval(fn, ms);
    timer.unref();
    this.timers.push(timer);
  }

  /** Deletes an emptied cache's old shards; close() does not wait (the next start finishes it). */
  private removeTrash(path: string): void {
    rm(path, { recursive: true, force: true }).catch((err) => this.warn({ err, path }, 'removing an emptied cache tree failed'));
  }

  /** Work nobody awaits now but close() does. */
  private inBackground(work: Promise<unknown>): void {
    const tracked = work.catch((err) => this.warn({ err }, 'cache background work failed')).finally(() => this.background.delete(tracked));
    this.background.add(tracked);
  }

  private warn(obj: object, msg: string): void {
    this.opts.logger?.warn(obj, msg);
  }
}

/** The index columns a stored entry's meta gives. */
function rowFieldsOf(meta: CacheEntryMeta): { expiresAt: number; tags: string[]; site: string; path: string } {
  const source = parseSourceString(meta.source);
  return { expiresAt: meta.expiresAt, tags: meta.tags, site: source?.site ?? '', path: source?.path ?? '' };
}
