import { rmSync } from 'node:fs';
import Database from 'better-sqlite3';
import type { EntryRef } from './types.js';

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

export interface IndexTotals {
  entries: number;
  bytes: number;
}

export const blob = (hex: string): Buffer => Buffer.from(hex, 'hex');
export const refOf = (row: { source: Buffer; variant: Buffer }): EntryRef => ({
  sourceHash: row.source.toString('hex'),
  variantHash: row.variant.toString('hex'),
});

/**
 * Opens a connection in WAL mode with a page cache of `pageCacheKiB`. With `create`, makes the
 * schema (answering whether the file was new) and rebuilds a file of another schema version: the
 * index is derived data. Throws SQLITE_CORRUPT / SQLITE_NOTADB for a damaged file.
 */
export function connectIndex(file: string, pageCacheKiB: number, create: boolean): { db: Database.Database; created: boolean } {
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    // A process crash loses nothing committed; a power loss may lose the last commits, which the
    // store's reconciliation after an unclean stop repairs from the files.
    db.pragma('synchronous = NORMAL');
    db.pragma(`cache_size = -${pageCacheKiB}`);
    if (!create) return { db, created: false };
    const created = !db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'entries'").get();
    if (!created && db.pragma('user_version', { simple: true }) !== SCHEMA_VERSION) {
      db.close();
      removeIndexFiles(file);
      return connectIndex(file, pageCacheKiB, create);
    }
    db.exec(SCHEMA);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
    return { db, created };
  } catch (err) {
    if (db.open) db.close();
    throw err;
  }
}

export function isDamaged(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === 'SQLITE_CORRUPT' || code === 'SQLITE_NOTADB';
}

export function removeIndexFiles(file: string): void {
  for (const suffix of ['', '-wal', '-shm']) rmSync(file + suffix, { force: true });
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
