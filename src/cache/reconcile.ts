import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { EntryIndex } from './entry-index.js';
import { ENTRY_SUFFIX, HASH, TEMP_SUFFIX, forEachLimit, pruneEmptyDirs, readdirQuiet, sourceDirOf, sourceDirsInShard } from './entry-tree.js';
import type { EntryRef, ReconcileProgress } from './types.js';

export interface ReconcileTarget {
  dir: string;
  index: EntryIndex;
  /** most reads (a source directory listed, an entry header read) per second, so serving keeps the disk */
  readsPerSecond: number;
  /** temp files older than this (epoch ms) belong to a writer that stopped */
  startedAt: number;
  /** Indexes the file when it is a whole entry of `ref` that no recorded purge removed, else deletes it. */
  adopt(ref: EntryRef, path: string): Promise<'adopted' | 'dropped'>;
  /** index rows removed because their files are gone */
  removed(refs: EntryRef[]): void;
  unlink(path: string): Promise<boolean>;
  info(obj: object, msg: string): void;
}

const SHARDS = 256;
const PROGRESS_LOG_MS = 10_000;
/** source directories reconciled at once */
const PARALLEL_SOURCES = 8;
/** State row naming the next top-level shard to reconcile, so a clean restart resumes. */
export const CURSOR_STATE = 'reconcile_cursor';

/**
 * Brings the index and the files into agreement in the background, one top-level shard at a time
 * (the way nginx's cache loader does): files the index does not know are read and indexed, rows
 * whose files are gone are dropped, leftover temp files removed. Makes at most `readsPerSecond`
 * reads a second, counting each source directory listed and each entry header read.
 */
export class Reconciler {
  private filesRead = 0;
  private reads = 0;
  private adopted = 0;
  private dropped = 0;
  private shard = 0;
  private stopping = false;
  private startedMs = 0;

  constructor(private readonly t: ReconcileTarget) {}

  get progress(): ReconcileProgress {
    return { complete: false, fraction: this.shard / SHARDS, filesRead: this.filesRead, adopted: this.adopted, dropped: this.dropped };
  }

  stop(): void {
    this.stopping = true;
  }

  /** Runs from the saved cursor to the end; answers true when every shard was done. */
  async run(): Promise<boolean> {
    const { index, info } = this.t;
    this.shard = Number((await index.getState(CURSOR_STATE)) ?? 0);
    this.startedMs = Date.now();
    let lastLog = this.startedMs;
    info({ fromShard: this.shard, readsPerSecond: this.t.readsPerSecond }, 'cache index: reconciling with the files in the background');
    for (; this.shard < SHARDS; this.shard++) {
      if (this.stopping) return false;
      await this.reconcileShard(this.shard.toString(16).padStart(2, '0'));
      if (this.stopping) return false;
      await index.setState(CURSOR_STATE, String(this.shard + 1));
      if (Date.now() - lastLog >= PROGRESS_LOG_MS) {
        lastLog = Date.now();
        info({ ...this.progress, percent: Math.round((100 * (this.shard + 1)) / SHARDS) }, 'cache index: reconciling');
      }
    }
    info({ ...this.progress, fraction: 1, seconds: Math.round((Date.now() - this.startedMs) / 1000) }, 'cache index: reconciled with the files');
    return true;
  }

  private async reconcileShard(shard: string): Promise<void> {
    const { index, dir } = this.t;
    const shardStarted = Date.now();
    const seen = new Set<string>();
    // Several directories at once: each file read waits on the disk, one at a time would leave it idle.
    await forEachLimit(await sourceDirsInShard(dir, shard), PARALLEL_SOURCES, async ({ sourceHash, path }) => {
      if (this.stopping) return;
      seen.add(sourceHash);
      await this.pace(); // listing a directory is a read too
      await this.reconcileSource(sourceHash, path);
    });
    if (this.stopping) return;
    // Sources indexed but without a directory: their rows are stale, unless written during this walk.
    for (const sourceHash of await index.sourcesInShard(shard)) {
      if (seen.has(sourceHash)) continue;
      if ((await readdirQuiet(sourceDirOf(dir, sourceHash))).length > 0) continue;
      this.drop(await index.removeSourceUsedBefore(sourceHash, shardStarted));
    }
  }

  private async reconcileSource(sourceHash: string, path: string): Promise<void> {
    const { index } = this.t;
    // The rows first, then the files: a put renames its file before it indexes it, so an entry
    // written in between shows up as a file to adopt, never as a row to drop.
    const indexed = new Set(await index.variantsOf(sourceHash));
    const onDisk = new Set<string>();
    for (const name of await readdirQuiet(path)) {
      const file = join(path, name);
      if (name.endsWith(TEMP_SUFFIX)) {
        if (await this.isLeftover(file)) await this.removeFile(file);
        continue;
      }
      const variantHash = name.endsWith(ENTRY_SUFFIX) ? name.slice(0, -ENTRY_SUFFIX.length) : '';
      if (!HASH.test(variantHash)) continue; // not a cache file: leave it alone
      onDisk.add(variantHash);
      if (indexed.has(variantHash)) continue;
      await this.pace();
      this.filesRead++;
      if ((await this.t.adopt({ sourceHash, variantHash }, file)) === 'adopted') this.adopted++;
      else this.dropped++;
    }
    const gone = [...indexed].filter((v) => !onDisk.has(v)).map((variantHash) => ({ sourceHash, variantHash }));
    if (gone.length > 0) this.drop(await index.remove(gone));
    if (onDisk.size === 0) await pruneEmptyDirs(this.t.dir, sourceHash);
  }

  private drop(refs: EntryRef[]): void {
    if (refs.length === 0) return;
    this.dropped += refs.length;
    this.t.removed(refs);
  }

  private async isLeftover(file: string): Promise<boolean> {
    try {
      return (await stat(file)).mtimeMs < this.t.startedAt;
    } catch {
      return false;
    }
  }

  private async removeFile(file: string): Promise<void> {
    if (await this.t.unlink(file)) this.dropped++;
  }

  /** Sleeps as long as reading one more file would exceed the rate. */
  private async pace(): Promise<void> {
    this.reads++;
    const due = this.startedMs + (this.reads * 1000) / this.t.readsPerSecond;
    const ahead = due - Date.now();
    if (ahead > 5) await sleep(ahead);
  }
}
