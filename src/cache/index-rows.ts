import type Database from 'better-sqlite3';
import { blob, prefixUpperBound, refOf, type IndexTotals } from './index-db.js';
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

/** A purge recorded in the index (see DiskStore.deleteSelected). */
export interface RecordedPurge {
  id: number;
  at: number;
  selector: EntrySelector;
}

/**
 * Every read and write of the index's rows, synchronous, on one connection: the index's thread
 * (index-thread.ts) runs it, and bulk builds may call it directly. It keeps the totals in
 * step with the rows, saving them in each transaction.
 */
export class IndexRows {
  private readonly sql: ReturnType<typeof prepareWrites>;
  private counted: IndexTotals;

  constructor(private readonly db: Database.Database) {
    this.sql = prepareWrites(db);
    this.counted = this.sql.totals.get() as IndexTotals;
  }

  get totals(): IndexTotals {
    return { ...this.counted };
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
    return this.remove(this.variantsOf(sourceHash).map((variantHash) => ({ sourceHash, variantHash })));
  }

  /** Removes the entries of a source last used before `before` (reconciliation of a vanished directory). */
  removeSourceUsedBefore(sourceHash: string, before: number): EntryRef[] {
    const rows = this.sql.bySourceUsedBefore.all(blob(sourceHash), before) as Array<{ source: Buffer; variant: Buffer }>;
    return this.remove(rows.map(refOf));
  }

  /** Removes up to `limit` entries a purge selects (one of its tags or prefixes); answers them. */
  removeSelected(part: { tag: string } | { site: string; prefix: string }, limit: number): EntryRef[] {
    let rows: unknown[];
    if ('tag' in part) {
      rows = this.sql.tagged.all(part.tag, limit);
    } else {
      const upper = prefixUpperBound(part.prefix);
      rows = upper === undefined ? this.sql.pathFrom.all(part.site, part.prefix, limit) : this.sql.pathBetween.all(part.site, part.prefix, upper, limit);
    }
    return this.remove((rows as Array<{ source: Buffer; variant: Buffer }>).map(refOf));
  }

  /** Those of these entries that have a row. */
  present(refs: EntryRef[]): EntryRef[] {
    return refs.filter((ref) => this.sql.exists.get(blob(ref.sourceHash), blob(ref.variantHash)) !== undefined);
  }

  variantsOf(sourceHash: string): string[] {
    return (this.sql.bySource.all(blob(sourceHash)) as Array<{ variant: Buffer }>).map((r) => r.variant.toString('hex'));
  }

  getState(name: string): string | undefined {
    return (this.sql.getState.get(name) as { value: string } | undefined)?.value;
  }

  recordedPurges(): RecordedPurge[] {
    return (this.sql.recordedPurges.all() as Array<{ id: number; at: number; selector: string }>).map((r) => ({ ...r, selector: JSON.parse(r.selector) }));
  }

  /** The distinct sources whose hash starts with these two hex characters. */
  sourcesInShard(shard: string): string[] {
    const lo = blob(shard);
    const rows = (lo[0] === 0xff ? this.sql.sourcesFrom.all(lo) : this.sql.sourcesBetween.all(lo, Buffer.from([lo[0]! + 1]))) as Array<{ source: Buffer }>;
    return rows.map((r) => r.source.toString('hex'));
  }

  /** The least recently used entries. */
  leastRecentlyUsed(limit: number): Array<EntryRef & { size: number }> {
    return (this.sql.oldest.all(limit) as Array<{ source: Buffer; variant: Buffer; size: number }>).map((r) => ({ ...refOf(r), size: r.size }));
  }

  expiredBefore(cutoff: number, limit: number): EntryRef[] {
    return (this.sql.expired.all(cutoff, limit) as Array<{ source: Buffer; variant: Buffer }>).map(refOf);
  }

  /** Writes recency for many entries in one transaction. */
  markUsed(uses: Array<{ ref: EntryRef; at: number }>): void {
    this.sql.markUsed(uses);
  }

  setState(name: string, value: string): void {
    this.sql.setState.run(name, value);
  }

  recordPurge(at: number, selector: EntrySelector): RecordedPurge {
    const { lastInsertRowid } = this.sql.recordPurge.run(at, JSON.stringify(selector));
    return { id: Number(lastInsertRowid), at, selector };
  }

  forgetRecordedPurge(id: number): void {
    this.sql.forgetRecordedPurge.run(id);
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
      this.counted = this.sql.totals.get() as IndexTotals;
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

function prepareWrites(db: Database.Database) {
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
    markUsed: db.transaction((uses: Array<{ ref: EntryRef; at: number }>) => {
      for (const { ref, at } of uses) touch.run(at, blob(ref.sourceHash), blob(ref.variantHash));
    }),
    bySource: db.prepare('SELECT source, variant FROM entries WHERE source = ?'),
    exists: db.prepare('SELECT 1 FROM entries WHERE source = ? AND variant = ?'),
    bySourceUsedBefore: db.prepare('SELECT source, variant FROM entries WHERE source = ? AND used < ?'),
    sourcesBetween: db.prepare('SELECT DISTINCT source FROM entries WHERE source >= ? AND source < ?'),
    sourcesFrom: db.prepare('SELECT DISTINCT source FROM entries WHERE source >= ?'),
    oldest: db.prepare('SELECT source, variant, size FROM entries ORDER BY used LIMIT ?'),
    expired: db.prepare('SELECT source, variant FROM entries WHERE expires < ? ORDER BY expires LIMIT ?'),
    tagged: db.prepare('SELECT e.source, e.variant FROM tags t JOIN entries e ON e.id = t.id WHERE t.tag = ? LIMIT ?'),
    pathBetween: db.prepare('SELECT source, variant FROM entries WHERE site = ? AND path >= ? AND path < ? LIMIT ?'),
    pathFrom: db.prepare('SELECT source, variant FROM entries WHERE site = ? AND path >= ? LIMIT ?'),
    getState: db.prepare('SELECT value FROM state WHERE name = ?'),
    recordedPurges: db.prepare('SELECT id, at, selector FROM recorded_purges ORDER BY at'),
    setState: db.prepare('INSERT INTO state (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value'),
    recordPurge: db.prepare('INSERT INTO recorded_purges (at, selector) VALUES (?, ?)'),
    forgetRecordedPurge: db.prepare('DELETE FROM recorded_purges WHERE id = ?'),
  };
}
