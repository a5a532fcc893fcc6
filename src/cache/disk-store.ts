import { randomBytes } from 'node:crypto';
import type { Dirent } from 'node:fs';
import fs from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, rmdir, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { PREFIX_BYTES, encodeEntryHeader, headerLengthOf, parseEntryHeader } from './entry-file.js';
import { LruIndex, type EntryRef, type EntrySummary } from './lru-index.js';
import type { CacheEntry, CacheEntryMeta, CacheKey, CacheStats, CacheStore } from './types.js';

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
  logger?: { warn(obj: object, msg?: string): void };
}

/** What the index keeps per entry: enough for the budget, the sweeper and purges. */
interface IndexValue {
  /** file size: header + body */
  size: number;
  expiresAt: number;
  tags: string[];
  source: string;
}

const HASH = /^[0-9a-f]{64}$/;
const SHARD = /^[0-9a-f]{2}$/;
const SOURCE_REST = /^[0-9a-f]{58}$/;
const ENTRY_SUFFIX = '.entry';
const HEADER_READ_BYTES = 64 * 1024;
/** parallel file operations during start-up and bulk removals */
const IO_CONCURRENCY = 32;

/**
 * Variant cache on disk: `<dir>/aa/bb/cc/<rest of sourceHash>/<variantHash>.entry`, one directory
 * per source. An in-memory LRU index (rebuilt at start-up) enforces the byte budget.
 */
export class DiskStore implements CacheStore {
  private readonly index: LruIndex<IndexValue>;
  private pendingRemovals: Promise<unknown>[] = [];
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<number> | undefined;

  private constructor(private readonly opts: DiskStoreOptions) {
    this.index = new LruIndex<IndexValue>({
      maxSize: opts.maxBytes,
      sizeOf: (value) => value.size,
      onEvict: (ref) => this.pendingRemovals.push(this.removeFile(ref)),
    });
  }

  static async open(opts: DiskStoreOptions): Promise<DiskStore> {
    if (!Number.isSafeInteger(opts.maxBytes) || opts.maxBytes <= 0) {
      throw new RangeError(`cache maxBytes must be a positive integer, got ${opts.maxBytes}`);
    }
    await mkdir(opts.dir, { recursive: true });
    const store = new DiskStore(opts);
    try {
      await store.rebuild();
    } catch (err) {
      await store.close();
      throw err;
    }
    store.timer = setInterval(() => store.sweepInBackground(), opts.sweepIntervalMs ?? 60_000);
    store.timer.unref();
    return store;
  }

  async get(key: CacheKey): Promise<CacheEntry | undefined> {
    const known = isEntryRef(key) ? this.index.get(key) : undefined;
    if (!known) return undefined;
    const path = this.entryPath(key);
    let file: Buffer;
    try {
      // The index knows the file's size: one read, no stat. A file of another size (being
      // replaced right now, or damaged) is read whole and judged below.
      file = (await readIfSized(path, known.size)) ?? (await readFile(path));
    } catch (err) {
      if (errorCode(err) === 'ENOENT') this.index.delete(key);
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
    const dir = this.sourceDir(ref.sourceHash);
    const temp = join(dir, `${ref.variantHash}.${randomBytes(8).toString('hex')}.tmp`);
    await this.writeTemp(dir, temp, [header, entry.body], size);
    try {
      await rename(temp, this.entryPath(ref));
    } catch (err) {
      await this.unlinkQuiet(temp);
      if (errorCode(err) === 'ENOENT') return; // the source was purged while we wrote: the purge wins
      throw err;
    }
    this.index.set(ref, { size, expiresAt: meta.expiresAt, tags: meta.tags, source: meta.source });
    await this.settleRemovals();
  }

  async delete(key: CacheKey): Promise<boolean> {
    return isEntryRef(key) ? this.remove(key) : false;
  }

  async deleteSource(sourceHash: string): Promise<number> {
    if (!HASH.test(sourceHash)) return 0;
    const removed = this.index.deleteSource(sourceHash);
    await rm(this.sourceDir(sourceHash), { recursive: true, force: true });
    await this.pruneEmptyDirs(sourceHash);
    return removed.length;
  }

  /** Removes every entry `pred` selects (purge by tag or prefix); answers how many. */
  async deleteWhere(pred: (entry: EntrySummary) => boolean): Promise<number> {
    const removed = await this.index.deleteWhere((ref, value) => pred({ ...ref, tags: value.tags, source: value.source }));
    await forEachLimit(removed, IO_CONCURRENCY, (ref) => this.removeFile(ref));
    return removed.length;
  }

  /** Empties the cache, files included; answers how many entries were indexed. */
  async deleteAll(): Promise<number> {
    const count = this.index.clear();
    const shards = (await readdir(this.opts.dir, { withFileTypes: true })).filter(isShardDir);
    await Promise.all(shards.map((d) => rm(join(this.opts.dir, d.name), { recursive: true, force: true })));
    return count;
  }

  /** Removes entries past expiresAt + staleRetentionMs; answers how many. */
  async sweep(): Promise<number> {
    const cutoff = Date.now() - (this.opts.staleRetentionMs ?? 0);
    const removed = await this.index.deleteWhere((_, value) => value.expiresAt < cutoff);
    await forEachLimit(removed, IO_CONCURRENCY, (ref) => this.removeFile(ref));
    return removed.length;
  }

  /** Marks an entry recently used without reading it; answers whether the store still holds it. */
  touch(ref: EntryRef): boolean {
    return this.index.get(ref) !== undefined;
  }

  has(ref: EntryRef): boolean {
    return this.index.has(ref);
  }

  variantsOf(sourceHash: string): string[] {
    return this.index.variantsOf(sourceHash);
  }

  stats(): CacheStats {
    return { entries: this.index.entries, bytes: this.index.bytes };
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.sweeping;
    await this.settleRemovals();
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

  private sourceDir(sourceHash: string): string {
    const h = sourceHash;
    return join(this.opts.dir, h.slice(0, 2), h.slice(2, 4), h.slice(4, 6), h.slice(6));
  }

  private entryPath(ref: EntryRef): string {
    return join(this.sourceDir(ref.sourceHash), ref.variantHash + ENTRY_SUFFIX);
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
      if (!written) await this.unlinkQuiet(temp);
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
    const indexed = this.index.delete(ref);
    const onDisk = await this.removeFile(ref);
    return indexed || onDisk;
  }

  /**
   * Unlinks an entry file and prunes directories left empty. An eviction racing with a put of the
   * same key may unlink the new file; the next get then finds it missing and drops it.
   */
  private async removeFile(ref: EntryRef): Promise<boolean> {
    const existed = await this.unlinkQuiet(this.entryPath(ref));
    await this.pruneEmptyDirs(ref.sourceHash);
    return existed;
  }

  /** Removes the source directory and its shard parents while they are empty. */
  private async pruneEmptyDirs(sourceHash: string): Promise<void> {
    let dir = this.sourceDir(sourceHash);
    for (let level = 0; level < 4; level++, dir = dirname(dir)) {
      try {
        await rmdir(dir);
      } catch (err) {
        if (errorCode(err) !== 'ENOENT') return; // not empty: the common case
      }
    }
  }

  private async unlinkQuiet(path: string): Promise<boolean> {
    try {
      await unlink(path);
      return true;
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') this.warn({ err, path }, 'cache file removal failed');
      return false;
    }
  }

  /** Waits for the file removals that evictions started, so put returns within budget. */
  private async settleRemovals(): Promise<void> {
    while (this.pendingRemovals.length > 0) {
      const batch = this.pendingRemovals;
      this.pendingRemovals = [];
      await Promise.all(batch);
    }
  }

  /**
   * Rebuilds the index from the tree: drops leftover temp files and damaged entries, then inserts
   * the valid ones oldest first so that recency survives approximately and the budget evicts the
   * oldest.
   */
  private async rebuild(): Promise<void> {
    const found: Array<{ ref: EntryRef; value: IndexValue; mtimeMs: number }> = [];
    let discarded = 0;
    await forEachLimit(await this.listSourceDirs(), IO_CONCURRENCY, async ({ sourceHash, path }) => {
      let kept = 0;
      for (const name of await readdirQuiet(path)) {
        const file = join(path, name);
        if (name.endsWith('.tmp')) {
          if (await this.unlinkQuiet(file)) discarded++;
          continue;
        }
        const variantHash = name.endsWith(ENTRY_SUFFIX) ? name.slice(0, -ENTRY_SUFFIX.length) : '';
        if (!HASH.test(variantHash)) continue; // not a cache file: leave it alone
        const header = await readEntryHeader(file);
        const valid =
          header !== undefined &&
          header.meta.sourceHash === sourceHash &&
          header.meta.variantHash === variantHash &&
          header.size <= this.opts.maxBytes;
        if (!valid) {
          if (await this.unlinkQuiet(file)) discarded++;
          continue;
        }
        kept++;
        const value = { size: header.size, expiresAt: header.meta.expiresAt, tags: header.meta.tags, source: header.meta.source };
        found.push({ ref: { sourceHash, variantHash }, value, mtimeMs: header.mtimeMs });
      }
      if (kept === 0) await this.pruneEmptyDirs(sourceHash);
    });
    if (discarded > 0) this.warn({ dir: this.opts.dir, discarded }, 'removed damaged or unfinished cache files');
    found.sort((a, b) => a.mtimeMs - b.mtimeMs);
    for (const { ref, value } of found) this.index.set(ref, value);
    await this.settleRemovals();
  }

  /** The source directories: three levels of two hex characters, then the rest of the hash. */
  private async listSourceDirs(): Promise<Array<{ sourceHash: string; path: string }>> {
    let level = [{ sourceHash: '', path: this.opts.dir }];
    for (let depth = 0; depth < 4; depth++) {
      const next: typeof level = [];
      const pattern = depth < 3 ? SHARD : SOURCE_REST;
      await forEachLimit(level, IO_CONCURRENCY, async ({ sourceHash, path }) => {
        for (const d of await readdirQuiet(path, true)) {
          if (d.isDirectory() && pattern.test(d.name)) {
            next.push({ sourceHash: sourceHash + d.name, path: join(path, d.name) });
          }
        }
      });
      level = next;
    }
    return level;
  }

  private warn(obj: object, msg: string): void {
    this.opts.logger?.warn(obj, msg);
  }
}

/**
 * The file's bytes when it is exactly `size` long, else undefined: open, one read of size + 1
 * bytes, and a close nobody waits for (two trips to the thread pool instead of readFile's four).
 */
function readIfSized(path: string, size: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    fs.open(path, 'r', (openErr, fd) => {
      if (openErr) return reject(openErr);
      const buf = Buffer.allocUnsafe(size + 1);
      fs.read(fd, buf, 0, size + 1, 0, (readErr, bytesRead) => {
        fs.close(fd, () => {});
        if (readErr) reject(readErr);
        else resolve(bytesRead === size ? buf.subarray(0, size) : undefined);
      });
    });
  });
}

/** Reads only the header of an entry file; undefined when unreadable or damaged. */
async function readEntryHeader(
  path: string,
): Promise<{ meta: CacheEntryMeta; size: number; mtimeMs: number } | undefined> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(path, 'r');
    const { size, mtimeMs } = await handle.stat();
    let head = await readAt(handle, Math.min(size, HEADER_READ_BYTES));
    const length = headerLengthOf(head);
    if (length === undefined) return undefined;
    if (head.length < PREFIX_BYTES + length) head = await readAt(handle, Math.min(size, PREFIX_BYTES + length));
    const parsed = parseEntryHeader(head, size);
    return parsed && { meta: parsed.meta, size, mtimeMs };
  } catch {
    return undefined;
  } finally {
    await handle?.close();
  }
}

async function readAt(handle: FileHandle, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  const { bytesRead } = await handle.read(buf, 0, length, 0);
  return buf.subarray(0, bytesRead);
}

function readdirQuiet(path: string): Promise<string[]>;
function readdirQuiet(path: string, withTypes: true): Promise<Dirent[]>;
async function readdirQuiet(path: string, withTypes?: true): Promise<Array<string | Dirent>> {
  try {
    return withTypes ? await readdir(path, { withFileTypes: true }) : await readdir(path);
  } catch (err) {
    if (errorCode(err) === 'ENOENT' || errorCode(err) === 'ENOTDIR') return [];
    throw err;
  }
}

async function forEachLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function isEntryRef(ref: EntryRef): boolean {
  return HASH.test(ref.sourceHash) && HASH.test(ref.variantHash);
}

function isShardDir(d: Dirent): boolean {
  return d.isDirectory() && SHARD.test(d.name);
}

function errorCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}
