import { randomBytes } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { mkdir, readdir, rename, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeEntryHeader, parseEntryHeader } from './entry-file.js';
import { EntryIndex, type RecordedPurge } from './entry-index.js';
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
  readWholeFile,
  writeNewFile,
  sourceDirOf,
  unlinkQuiet,
} from './entry-tree.js';
import { parseSourceString } from './key.js';
import { CURSOR_STATE, Reconciler } from './reconcile.js';
import { selects } from './selector.js';
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
/** Recency written to the index per message to its thread. */
const USES_PER_WRITE = 2000;

/**
 * Variant cache on disk: `<dir>/aa/bb/cc/<rest of sourceHash>/<variantHash>.entry`, one directory
 * per source, indexed by a SQLite file (`index.sqlite`, see entry-index.ts) that enforces the byte
 * budget (LRU), the expiry order and purges without a JS object per entry.
 *
 * Serving reads an entry by its key's path, as nginx does, and never waits on the index: the index
 * is how the cache is managed (what to evict, sweep or purge), and every call to it runs on its own
 * thread. Files leave before their rows (evictions, sweeps) or are withheld by a recorded purge
 * (below), so a file that is there may be served.
 *
 * Opening never walks the tree. After an unclean stop (or over a tree without an index) the index
 * may miss files or list files that are gone: until the background reconciliation has seen every
 * shard, what is read is also indexed on the way.
 *
 * A purge by tag or prefix removes rows and answers; their files are deleted in the background.
 * The purge is recorded until then, and while the index is incomplete, so that no file it selects
 * (made before it) is ever served or indexed again, even after a crash.
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
  private unindexedBytes = 0;

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

  /**
   * Reads the entry by its path, without asking the index: the path is the key's, and the header
   * says whether the file is whole and which variant it holds. A file a purge has selected but not
   * yet deleted is not served. While the index is incomplete, what is read is indexed on the way.
   */
  async get(key: CacheKey): Promise<CacheEntry | undefined> {
    if (!isEntryRef(key)) return undefined;
    const path = entryPathOf(this.opts.dir, key);
    let file: Buffer;
    try {
      file = await readWholeFile(path);
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') this.warn({ err, path }, 'cache entry unreadable');
      return undefined;
    }
    const parsed = parseEntryHeader(file, file.length);
    if (!parsed || parsed.meta.sourceHash !== key.sourceHash || parsed.meta.variantHash !== key.variantHash) {
      this.warn({ path }, 'removing damaged cache entry');
      await this.remove(key);
      return undefined;
    }
    const { meta } = parsed;
    if (this.purgedBefore(meta)) {
      await this.unlink(path); // its purge's own deletion may not have come to it yet
      return undefined;
    }
    if (!this.complete) this.indexFound(key, meta, file.length, this.useClock());
    if (meta.key !== key.variant) return undefined;
    this.touch(key);
    return { meta, body: file.subarray(parsed.bodyOffset) };
  }

  /** Stores the entry; answers false when it was not stored (larger than the budget, or its source purged meanwhile). */
  async put(entry: CacheEntry): Promise<boolean> {
    const ref: EntryRef = { sourceHash: entry.meta.sourceHash, variantHash: entry.meta.variantHash };
    if (!isEntryRef(ref)) throw new TypeError('cache entry needs sha256 hex sourceHash and variantHash');
    const meta: CacheEntryMeta = { ...entry.meta, size: entry.body.length };
    const header = encodeEntryHeader(meta);
    const size = header.length + entry.body.length;
    if (size > this.opts.maxBytes) {
      await this.remove(ref); // never leave an older version behind a put that did not store
      return false;
    }
    const dir = sourceDirOf(this.opts.dir, ref.sourceHash);
    const temp = join(dir, `${ref.variantHash}.${TEMP_TAG}-${++this.tempSerial}${TEMP_SUFFIX}`);
    await this.writeTemp(dir, temp, [header, entry.body], size);
    try {
      await rename(temp, entryPathOf(this.opts.dir, ref));
    } catch (err) {
      await this.unlink(temp);
      if (errorCode(err) === 'ENOENT') return false; // the source was purged while we wrote: the purge wins
      throw err;
    }
    // Renamed first, indexed second: a crash in between leaves a file the reconciliation adopts.
    // The entry is served from now on; its row follows without the put waiting for it, and its
    // bytes count against the budget meanwhile.
    this.unindexedBytes += size;
    this.inBackground(this.index.write([{ ...ref, ...rowFieldsOf(meta), size, usedAt: this.useClock() }]).finally(() => (this.unindexedBytes -= size)));
    await this.keepBudget();
    return true;
  }

  async delete(key: CacheKey): Promise<boolean> {
    return isEntryRef(key) ? this.remove(key) : false;
  }

  async deleteSource(sourceHash: string): Promise<number> {
    if (!HASH.test(sourceHash)) return 0;
    await rm(sourceDirOf(this.opts.dir, sourceHash), { recursive: true, force: true });
    const removed = await this.index.removeSource(sourceHash);
    this.forget(removed);
    await pruneEmptyDirs(this.opts.dir, sourceHash);
    return removed.length;
  }

  /**
   * Removes the entries carrying a tag or under a path prefix, through the index's own orders:
   * the index's thread removes their rows batch by batch and the purge answers when all are gone;
   * their files are deleted in the background after that (file deletions would compete with the
   * row removal for the disk).
   */
  async deleteSelected(selector: EntrySelector): Promise<number> {
    const purge = await this.index.recordPurge(Date.now(), selector);
    this.recorded.push(purge);
    this.unlinking.add(purge);
    const batches: EntryRef[][] = [];
    try {
      return await this.index.removeSelected(selector, (refs) => {
        this.forget(refs);
        batches.push(refs);
      });
    } finally {
      this.inBackground(this.deletePurgedFiles(purge, batches));
    }
  }

  /**
   * Empties the cache: the shards are moved aside at once and deleted in the background, and the
   * index starts over (deleting millions of rows one by one would take minutes).
   */
  async deleteAll(): Promise<number> {
    const count = this.index.totals.entries;
    await this.stopReconciling();
    // Background work (a purge's file deletions, rows being written) finishes on the index it
    // started with, before that index is recreated.
    await Promise.all(this.background);
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
    await this.index.setState(STATE_CLEAN, '0');
    await this.markComplete();
    this.removeTrash(trash);
    return count;
  }

  /** Removes entries past expiresAt + staleRetentionMs, in expiry order; answers how many. */
  async sweep(): Promise<number> {
    const cutoff = Date.now() - (this.opts.staleRetentionMs ?? 0);
    return this.drain(() => this.index.expiredBefore(cutoff));
  }

  /** Marks an entry recently used without reading it: written to the index with the next batch. */
  touch(ref: EntryRef): void {
    // The variant's hash names the entry (its string holds the source's); the string's own hash
    // is computed once, where a joined key was hashed anew on every hit.
    const use = this.uses.get(ref.variantHash);
    if (use) use.at = this.useClock();
    else this.uses.set(ref.variantHash, { ref: { sourceHash: ref.sourceHash, variantHash: ref.variantHash }, at: this.useClock() });
    if (this.uses.size >= MAX_PENDING_USES) void this.flushUses();
  }

  stats(): CacheStats {
    return { ...this.index.totals };
  }

  reconcileProgress(): ReconcileProgress {
    if (this.complete) return { complete: true, fraction: 1, filesRead: 0, adopted: 0, dropped: 0 };
    return this.reconciler?.progress ?? { complete: false, fraction: 0, filesRead: 0, adopted: 0, dropped: 0 };
  }

  /** Resolves when what was stored, read or removed so far is indexed and a reconciliation running now has finished (or stopped). */
  async settled(): Promise<void> {
    await this.reconciling;
    await Promise.all(this.background);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const timer of this.timers) clearInterval(timer);
    await this.stopReconciling();
    await this.sweeping;
    await this.evicting;
    await this.flushUses();
    await Promise.all(this.background);
    await this.index.setState(STATE_CLEAN, '1');
    await this.index.close();
  }

  /** Decides whether the index can be trusted as it is, and starts the timers. */
  private async start(): Promise<void> {
    const { index, opts } = this;
    index.onCheckpointError = (message) => this.warn({ file: index.file, message }, 'cache index checkpoint failed; retried in a second');
    if (index.discarded) this.warn({ file: index.file, reason: index.discarded }, 'cache index was damaged: started over, reconciling with the files');
    const overOldTree = index.created && (await this.shardDirs()).length > 0;
    const cleanBefore = (await index.getState(STATE_CLEAN)) === '1';
    this.complete = index.created ? !overOldTree : cleanBefore && (await index.getState(STATE_COMPLETE)) === '1';
    await index.setState(STATE_COMPLETE, this.complete ? '1' : '0');
    // After a crash, shards done before it may have changed without the index: start over.
    if (!this.complete && !cleanBefore) await index.setState(CURSOR_STATE, '0');
    // Purges whose files a crash left behind: the reconciliation deletes those files.
    this.recorded = await index.recordedPurges();
    await index.setState(STATE_CLEAN, '0');
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
      .then((finished) => (finished ? this.markComplete() : undefined))
      .catch((err) => this.warn({ err }, 'cache index reconciliation failed; it resumes at the next start'));
  }

  private async stopReconciling(): Promise<void> {
    this.reconciler?.stop();
    await this.reconciling;
    this.reconciler = undefined;
  }

  private async markComplete(): Promise<void> {
    this.complete = true;
    this.forgetRecordedPurges();
    await this.index.setState(CURSOR_STATE, '0');
    await this.index.setState(STATE_COMPLETE, '1');
  }

  /** Drops the recorded purges no file deletion is waiting on (the index is complete). */
  private forgetRecordedPurges(): void {
    this.recorded = this.recorded.filter((p) => {
      if (this.unlinking.has(p)) return true;
      if (!this.index.closed) this.inBackground(this.index.forgetRecordedPurge(p.id));
      return false;
    });
  }

  /** The reconciliation's adoption: reads only the header; recency is the file's age. */
  private async adoptFile(ref: EntryRef, path: string): Promise<'adopted' | 'dropped'> {
    const header = await readEntryHeader(path);
    const fits = header && header.meta.sourceHash === ref.sourceHash && header.meta.variantHash === ref.variantHash;
    if (fits && !this.purgedBefore(header.meta) && this.indexFound(ref, header.meta, header.size, Math.round(header.mtimeMs * 1000))) {
      return 'adopted';
    }
    await this.unlink(path);
    return 'dropped';
  }

  /** Whether a recorded purge selects an entry made before it: its file is deleted, not served or indexed. */
  private purgedBefore(meta: CacheEntryMeta): boolean {
    return this.recorded.some((p) => meta.createdAt <= p.at && selects(p.selector, meta));
  }

  /** Indexes a whole entry found on disk when it fits the budget (a row a put wrote for it wins), in the background. */
  private indexFound(ref: EntryRef, meta: CacheEntryMeta, size: number, usedAt: number): boolean {
    if (size > this.opts.maxBytes) return false;
    this.unindexedBytes += size;
    this.inBackground(
      this.index
        .write([], [{ ...ref, ...rowFieldsOf(meta), size, usedAt }])
        .finally(() => (this.unindexedBytes -= size))
        .then(() => this.keepBudget()),
    );
    return true;
  }

  /** Removes the selected entries batch by batch (files first, so a crash never resurrects one). */
  private async drain(select: () => Promise<EntryRef[]>): Promise<number> {
    let removed = 0;
    for (;;) {
      const refs = await select();
      if (refs.length === 0) return removed;
      await forEachLimit(refs, IO_CONCURRENCY, (ref) => this.removeFile(ref));
      const gone = await this.index.remove(refs);
      this.forget(gone);
      removed += gone.length;
      if (gone.length === 0) return removed;
    }
  }

  /** Keeps the budget: eviction runs in the background above EVICT_ABOVE, and a put waits for it only past the budget. */
  private async keepBudget(): Promise<void> {
    const { maxBytes } = this.opts;
    if (this.usedBytes() <= maxBytes * EVICT_ABOVE) return;
    this.evicting ??= this.evict().finally(() => (this.evicting = undefined));
    while (this.usedBytes() > maxBytes && this.evicting) await this.evicting;
  }

  /** What the budget counts: indexed entries and those stored but not indexed yet. */
  private usedBytes(): number {
    return this.index.totals.bytes + this.unindexedBytes;
  }

  /** Evicts the least recently used down to EVICT_TO of the budget. */
  private async evict(): Promise<void> {
    await this.flushUses(); // recency the index has not seen yet would evict what was just read
    const target = this.opts.maxBytes * EVICT_TO;
    while (this.usedBytes() > target) {
      let excess = this.usedBytes() - target;
      const victims = (await this.index.leastRecentlyUsed()).filter((v) => (excess -= v.size) + v.size > 0);
      if (victims.length === 0) return;
      await forEachLimit(victims, IO_CONCURRENCY, (ref) => this.removeFile(ref));
      this.forget(await this.index.remove(victims));
    }
  }

  /** Writes the remembered reads to the index. */
  private flushUses(): Promise<void> {
    this.flushing ??= (async () => {
      while (this.uses.size > 0 && !this.index.closed) {
        const batch: Array<{ ref: EntryRef; at: number }> = [];
        for (const [id, use] of this.uses) {
          this.uses.delete(id);
          batch.push(use);
          if (batch.length === USES_PER_WRITE) break;
        }
        await this.index.markUsed(batch);
      }
    })()
      .catch((err) => this.warn({ err }, 'writing cache recency failed'))
      .finally(() => (this.flushing = undefined));
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
   * Writes the whole entry to a temp file in the entry's directory, (re)creating the directory
   * when missing (removals prune empty ones). Without fsync, a crash of the process cannot tear
   * an entry: written data lives on in the page cache and the rename that publishes it is atomic.
   * Only a power loss can persist the rename before the data; the length check on read rejects
   * such a torn file. `fsync: true` closes that window too, at the cost of write latency.
   */
  private async writeTemp(dir: string, temp: string, chunks: Buffer[], size: number): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await writeNewFile(temp, chunks, size, this.opts.fsync ?? false);
      } catch (err) {
        if (errorCode(err) !== 'ENOENT' || attempt === 3) throw err;
        await mkdir(dir, { recursive: true });
      }
    }
  }

  private async remove(ref: EntryRef): Promise<boolean> {
    const onDisk = await this.removeFile(ref);
    const indexed = await this.index.remove([ref]);
    this.forget(indexed);
    return indexed.length > 0 || onDisk;
  }

  /**
   * Deletes the files of a purge's rows, except those stored again since (they have a row again),
   * then lets the purge's record go. A file that cannot be deleted keeps the record: this process
   * withholds what it selects, and the index is marked incomplete, so that the reconciliation at
   * the next start deletes those files.
   */
  private async deletePurgedFiles(purge: RecordedPurge, batches: EntryRef[][]): Promise<void> {
    let failures = 0;
    for (const refs of batches) {
      const storedAgain = new Set((await this.index.present(refs)).map((r) => r.sourceHash + r.variantHash));
      await forEachLimit(refs, IO_CONCURRENCY, async (ref) => {
        if (storedAgain.has(ref.sourceHash + ref.variantHash)) return;
        try {
          await unlink(entryPathOf(this.opts.dir, ref));
        } catch (err) {
          if (errorCode(err) !== 'ENOENT') failures++;
          if (failures === 1 && errorCode(err) !== 'ENOENT') this.warn({ err }, 'a purged cache file could not be deleted; it stays withheld and the next start reconciles');
        }
        await pruneEmptyDirs(this.opts.dir, ref.sourceHash);
      });
    }
    if (failures > 0) return this.index.setState(STATE_COMPLETE, '0');
    this.unlinking.delete(purge);
    if (this.complete) this.forgetRecordedPurges();
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
