import { rmSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { EntryRef, EntrySelector } from './types.js';

/** One indexed entry, as the store writes it. */
export interface IndexRow extends EntryRef {
  /** file size: header + body */
  size: number;
  expiresAt: number;
  /** recency for the LRU: epoch microseconds of the last use */
  usedAt: number;
  tags: string[];
  site: string;
  path: string;
}

export interface IndexTotals {
  entries: number;
  bytes: number;
}

/**
 * A purge whose rows are gone but whose files may not be: kept until its files are deleted and
 * (when it came while the index was incomplete) until reconciliation has seen every file.
 */
export interface RecordedPurge {
  id: number;
  at: number;
  selector: EntrySelector;
}

/**
 * One row per entry; the secondary orders are SQLite indexes: (source, variant) answers lookups
 * and purges by source, `used` the LRU, `expires` the sweeper, (site, path) prefix purges, and the
 * `tags` table purges by tag. Hashes are stored as 32-byte blobs. The totals row is written in
 * the same transaction as the rows it counts, so it survives a crash exactly. (Triggers would do
 * the same bookkeeping at twice the cost of an insert: measured 30 µs vs 13 µs a row.)
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS entries (
  id INTEGER PRIMARY KEY,
  source BLOB NOT NULL,
  variant BLOB NOT NULL,
  size INTEGER NOT NULL,
  expires INTEGER NOT NULL,
  used INTEGER NOT NULL,
  site TEXT NOT NULL,
  path TEXT NOT NULL,
  tags TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS entries_key ON entries(source, variant);
CREATE INDEX IF NOT EXISTS entries_used ON entries(used);
CREATE INDEX IF NOT EXISTS entries_expires ON entries(expires);
CREATE INDEX IF NOT EXISTS entries_path ON entries(site, path);
CREATE TABLE IF NOT EXISTS tags (tag TEXT NOT NULL, id INTEGER NOT NULL, PRIMARY KEY (tag, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS totals (one INTEGER PRIMARY KEY CHECK (one = 1), entries INTEGER NOT NULL, bytes INTEGER NOT NULL);
INSERT OR IGNORE INTO totals VALUES (1, 0, 0);
CREATE TABLE IF NOT EXISTS state (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS recorded_purges (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, selector TEXT NOT NULL);
`;

/** Bumped when the schema changes; an index of another version is rebuilt. */
const SCHEMA_VERSION = 2;

/** Page cache of the index inside the process; the rest stays in the OS page cache. */
const PAGE_CACHE_MIB = 64;
/** How often the checkpoint worker folds the write-ahead log into the file. */
const CHECKPOINT_INTERVAL_MS = 1000;

const blob = (hex: string): Buffer => Buffer.from(hex, 'hex');
const refOf = (row: { source: Buffer; variant: Buffer }): EntryRef => ({
  sourceHash: row.source.toString('hex'),
  variantHash: row.variant.toString('hex'),
});

/**
 * The disk cache's index: a SQLite file (better-sqlite3) beside the entries. It holds no JS object
 * per entry, opens in milliseconds whatever it holds, and every call is synchronous and short:
 * callers walk large selections in batches and yield between them.
 */
export class EntryIndex {
  private db!: Database.Database;
  private sql!: ReturnType<typeof prepare>;
  private counted: IndexTotals = { entries: 0, bytes: 0 };
  private checkpointer: Worker | undefined;
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
   * data. `pageCacheMiB` (default 64) bounds SQLite's own cache: bulk loads of millions of rows
   * want more, so that the pages their random keys dirty are written once per batch, not per row.
   */
  static open(file: string, opts: { pageCacheMiB?: number } = {}): EntryIndex {
    const index = new EntryIndex(file, (opts.pageCacheMiB ?? PAGE_CACHE_MIB) * 1024);
    try {
      index.connect();
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code !== 'SQLITE_CORRUPT' && code !== 'SQLITE_NOTADB') throw err;
      if (index.db?.open) index.db.close(); // failed before its checkpoint worker started
      removeDatabaseFiles(file);
      index.discarded = `${code}: ${(err as Error).message}`;
      index.connect();
    }
    return index;
  }

  get closed(): boolean {
    return !this.db.open;
  }

  get totals(): IndexTotals {
    return this.counted;
  }

  lookup(ref: EntryRef): { size: number; expiresAt: number } | undefined {
    const row = this.sql.lookup.get(blob(ref.sourceHash), blob(ref.variantHash)) as { size: number; expires: number } | undefined;
    return row && { size: row.size, expiresAt: row.expires };
  }

  /**
   * Writes in one transaction entries just stored (replacing any row of their key, tags and all)
   * and entries found on disk (left out when their key has a row already: a put's row wins).
   */
  write(stored: IndexRow[], found: IndexRow[] = []): void {
    this.transact(() => {
      for (const row of stored) {
        this.removeRow(row);
        this.insertRow(row, false);
      }
      for (const row of found) this.insertRow(row, true);
    });
  }

  /** Removes these entries; answers those the index held. */
  remove(refs: EntryRef[]): EntryRef[] {
    return this.transact(() => refs.filter((ref) => this.removeRow(ref)));
  }

  /** Removes every entry of a source; answers them. */
  removeSource(sourceHash: string): EntryRef[] {
    const rows = this.sql.bySource.all(blob(sourceHash)) as Array<{ source: Buffer; variant: Buffer }>;
    return this.remove(rows.map(refOf));
  }

  /** Removes the entries of a source last used before `before` (reconciliation of a vanished directory). */
  removeSourceUsedBefore(sourceHash: string, before: number): EntryRef[] {
    const rows = this.sql.bySourceUsedBefore.all(blob(sourceHash), before) as Array<{ source: Buffer; variant: Buffer }>;
    return this.remove(rows.map(refOf));
  }

  variantsOf(sourceHash: string): string[] {
    return (this.sql.bySource.all(blob(sourceHash)) as Array<{ variant: Buffer }>).map((r) => r.variant.toString('hex'));
  }

  /** The distinct sources whose hash starts with these two hex characters. */
  sourcesInShard(shard: string): string[] {
    const lo = blob(shard);
    const hi = Buffer.from([lo[0]! + 1]);
    const rows = (lo[0] === 0xff ? this.sql.sourcesFrom.all(lo) : this.sql.sourcesBetween.all(lo, hi)) as Array<{ source: Buffer }>;
    return rows.map((r) => r.source.toString('hex'));
  }

  /** The least recently used entries. */
  leastRecentlyUsed(limit: number): Array<EntryRef & { size: number }> {
    return (this.sql.oldest.all(limit) as Array<{ source: Buffer; variant: Buffer; size: number }>).map((r) => ({ ...refOf(r), size: r.size }));
  }

  expiredBefore(cutoff: number, limit: number): EntryRef[] {
    return (this.sql.expired.all(cutoff, limit) as Array<{ source: Buffer; variant: Buffer }>).map(refOf);
  }

  tagged(tag: string, limit: number): EntryRef[] {
    return (this.sql.tagged.all(tag, limit) as Array<{ source: Buffer; variant: Buffer }>).map(refOf);
  }

  /** Entries of `site` whose source path starts with `prefix` (a range scan of the path index). */
  prefixed(site: string, prefix: string, limit: number): EntryRef[] {
    const upper = prefixUpperBound(prefix);
    const rows = upper === undefined ? this.sql.pathFrom.all(site, prefix, limit) : this.sql.pathBetween.all(site, prefix, upper, limit);
    return (rows as Array<{ source: Buffer; variant: Buffer }>).map(refOf);
  }

  /** Writes recency for many entries in one transaction. */
  markUsed(uses: Array<{ ref: EntryRef; at: number }>): void {
    this.sql.markUsed(uses);
  }

  getState(name: string): string | undefined {
    return (this.sql.getState.get(name) as { value: string } | undefined)?.value;
  }

  setState(name: string, value: string): void {
    this.sql.setState.run(name, value);
  }

  recordPurge(at: number, selector: EntrySelector): RecordedPurge {
    const { lastInsertRowid } = this.sql.recordPurge.run(at, JSON.stringify(selector));
    return { id: Number(lastInsertRowid), at, selector };
  }

  recordedPurges(): RecordedPurge[] {
    return (this.sql.recordedPurges.all() as Array<{ id: number; at: number; selector: string }>).map((r) => ({ ...r, selector: JSON.parse(r.selector) }));
  }

  forgetRecordedPurge(id: number): void {
    this.sql.forgetRecordedPurge.run(id);
  }

  /** Starts over with an empty index: faster than deleting millions of rows. */
  async recreate(): Promise<void> {
    await this.close();
    removeDatabaseFiles(this.file);
    this.connect();
  }

  /** Stops the checkpoint worker, folds the log into the file and closes. */
  async close(): Promise<void> {
    const worker = this.checkpointer;
    this.checkpointer = undefined;
    if (worker) {
      const exited = new Promise((resolve) => worker.once('exit', resolve));
      worker.ref(); // an unref'd worker would let the process end before it has stopped
      worker.postMessage('stop');
      await exited;
    }
    if (!this.db?.open) return;
    this.db.pragma('wal_checkpoint(TRUNCATE)');
    this.db.close();
  }

  private connect(): void {
    this.db = new Database(this.file);
    this.db.pragma('journal_mode = WAL');
    // A process crash loses nothing committed; a power loss may lose the last commits, which the
    // store's reconciliation after an unclean stop repairs from the files.
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma(`cache_size = -${this.pageCacheKiB}`);
    this.created = !this.db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'entries'").get();
    if (!this.created && this.db.pragma('user_version', { simple: true }) !== SCHEMA_VERSION) {
      // An index written by another version: it is derived data, rebuilt from the files.
      this.db.close();
      removeDatabaseFiles(this.file);
      return this.connect();
    }
    this.db.exec(SCHEMA);
    this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
    // Checkpoints run on a worker thread's connection: an automatic one would fsync inside a
    // commit, on the event loop (measured: 100 ms stalls during purges).
    this.db.pragma('wal_autocheckpoint = 0');
    // Never wait on the checkpointer: a writer that finds it busy appends to the log instead of
    // restarting it (SQLite's own rule), where better-sqlite3's default 5 s busy handler would
    // sleep on the event loop (measured: 178 ms).
    this.db.pragma('busy_timeout = 0');
    this.checkpointer = new Worker(new URL('./index-checkpoint-worker.js', import.meta.url), {
      workerData: { file: this.file, intervalMs: CHECKPOINT_INTERVAL_MS },
    });
    this.checkpointer.unref();
    this.checkpointer.on('message', (m: { error?: string }) => this.onCheckpointError?.(m.error ?? 'unknown'));
    this.checkpointer.on('error', (err) => this.onCheckpointError?.(err.message));
    this.sql = prepare(this.db);
    this.recount();
  }

  private recount(): void {
    this.counted = this.sql.totals.get() as IndexTotals;
  }

  /** Runs `fn` in a transaction that ends by saving the totals; on failure the totals are read back. */
  private transact<T>(fn: () => T): T {
    try {
      return this.db.transaction(() => {
        const result = fn();
        this.sql.saveTotals.run(this.counted.entries, this.counted.bytes);
        return result;
      })();
    } catch (err) {
      this.recount();
      throw err;
    }
  }

  private insertRow(row: IndexRow, ifAbsent: boolean): boolean {
    const tags = row.tags.length > 0 ? JSON.stringify(row.tags) : null;
    const values = [blob(row.sourceHash), blob(row.variantHash), row.size, row.expiresAt, row.usedAt, row.site, row.path, tags] as const;
    const { changes, lastInsertRowid } = (ifAbsent ? this.sql.insertOrIgnore : this.sql.insert).run(...values);
    if (changes === 0) return false;
    for (const tag of new Set(row.tags)) this.sql.addTag.run(tag, lastInsertRowid);
    this.counted.entries++;
    this.counted.bytes += row.size;
    return true;
  }

  private removeRow(ref: EntryRef): boolean {
    const gone = this.sql.removeOne.get(blob(ref.sourceHash), blob(ref.variantHash)) as { id: number; size: number; tags: string | null } | undefined;
    if (!gone) return false;
    if (gone.tags) for (const tag of JSON.parse(gone.tags) as string[]) this.sql.removeTag.run(tag, gone.id);
    this.counted.entries--;
    this.counted.bytes -= gone.size;
    return true;
  }
}

function prepare(db: Database.Database) {
  const columns = '(source, variant, size, expires, used, site, path, tags) VALUES (?, ?, ?, ?, ?, ?, ?, ?)';
  const touch = db.prepare('UPDATE entries SET used = ? WHERE source = ? AND variant = ?');
  return {
    insert: db.prepare(`INSERT INTO entries ${columns}`),
    insertOrIgnore: db.prepare(`INSERT OR IGNORE INTO entries ${columns}`),
    removeOne: db.prepare('DELETE FROM entries WHERE source = ? AND variant = ? RETURNING id, size, tags'),
    addTag: db.prepare('INSERT OR IGNORE INTO tags (tag, id) VALUES (?, ?)'),
    removeTag: db.prepare('DELETE FROM tags WHERE tag = ? AND id = ?'),
    saveTotals: db.prepare('UPDATE totals SET entries = ?, bytes = ? WHERE one = 1'),
    totals: db.prepare('SELECT entries, bytes FROM totals WHERE one = 1'),
    lookup: db.prepare('SELECT size, expires FROM entries WHERE source = ? AND variant = ?'),
    markUsed: db.transaction((uses: Array<{ ref: EntryRef; at: number }>) => {
      for (const { ref, at } of uses) touch.run(at, blob(ref.sourceHash), blob(ref.variantHash));
    }),
    bySource: db.prepare('SELECT source, variant FROM entries WHERE source = ?'),
    bySourceUsedBefore: db.prepare('SELECT source, variant FROM entries WHERE source = ? AND used < ?'),
    sourcesBetween: db.prepare('SELECT DISTINCT source FROM entries WHERE source >= ? AND source < ?'),
    sourcesFrom: db.prepare('SELECT DISTINCT source FROM entries WHERE source >= ?'),
    oldest: db.prepare('SELECT source, variant, size FROM entries ORDER BY used LIMIT ?'),
    expired: db.prepare('SELECT source, variant FROM entries WHERE expires < ? ORDER BY expires LIMIT ?'),
    tagged: db.prepare('SELECT e.source, e.variant FROM tags t JOIN entries e ON e.id = t.id WHERE t.tag = ? LIMIT ?'),
    pathBetween: db.prepare('SELECT source, variant FROM entries WHERE site = ? AND path >= ? AND path < ? LIMIT ?'),
    pathFrom: db.prepare('SELECT source, variant FROM entries WHERE site = ? AND path >= ? LIMIT ?'),
    getState: db.prepare('SELECT value FROM state WHERE name = ?'),
    setState: db.prepare('INSERT INTO state (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value'),
    recordPurge: db.prepare('INSERT INTO recorded_purges (at, selector) VALUES (?, ?)'),
    recordedPurges: db.prepare('SELECT id, at, selector FROM recorded_purges ORDER BY at'),
    forgetRecordedPurge: db.prepare('DELETE FROM recorded_purges WHERE id = ?'),
  };
}

/**
 * The least string greater than every string that starts with `prefix`, or undefined when there is
 * none (empty prefix). SQLite compares text as UTF-8 bytes, which orders like code points, so
 * raising the last code point bounds the range.
 */
export function prefixUpperBound(prefix: string): string | undefined {
  const points = [...prefix];
  while (points.length > 0) {
    const last = points.pop()!.codePointAt(0)!;
    if (last < 0x10ffff) {
      // skip the surrogate range, which UTF-8 cannot hold
      const next = last + 1 === 0xd800 ? 0xe000 : last + 1;
      return points.join('') + String.fromCodePoint(next);
    }
  }
  return undefined;
}

function removeDatabaseFiles(file: string): void {
  for (const suffix of ['', '-wal', '-shm']) rmSync(file + suffix, { force: true });
}
