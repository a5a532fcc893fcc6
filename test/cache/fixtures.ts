import { createHash } from 'node:crypto';
import { mkdtemp, readdir, stat } from 'node:fs/promises';
import os from 'node:os';
import Database from 'better-sqlite3';
import path from 'node:path';
import { INDEX_FILE } from '../../src/cache/disk-store.js';
import { makeCacheKey } from '../../src/cache/key.js';
import type { CacheEntry, CacheKey, CacheStats } from '../../src/cache/types.js';

export function tempCacheDir(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), 'imgedge-cache-test-'));
}

/** Variant `spec` of source `/img/<source>.jpg`. */
export function keyFor(source: string | number, spec = 'w=100', format = 'webp'): CacheKey {
  return makeCacheKey({ site: 'test', path: `/img/${source}.jpg`, sourceQuery: '', spec, format });
}

/** A body that is a pure function of its seed, so readers can recompute it. */
export function bodyFor(seed: string, size = 1000): Buffer {
  return Buffer.alloc(size, createHash('sha256').update(seed).digest());
}

export function entryFor(key: CacheKey, body: Buffer, expiresAt = Date.now() + 3_600_000, tags: string[] = []): CacheEntry {
  return {
    meta: {
      key: key.variant,
      sourceHash: key.sourceHash,
      variantHash: key.variantHash,
      source: key.source,
      contentType: 'image/webp',
      etag: `"${createHash('sha256').update(body).digest('hex').slice(0, 32)}"`,
      size: body.length,
      createdAt: Date.now(),
      expiresAt,
      tags,
      headers: { 'cache-control': 'public, max-age=3600' },
    },
    body,
  };
}

/** Where the disk store must put an entry: `<dir>/aa/bb/cc/<rest>/<variantHash>.entry`. */
export function entryPathOf(dir: string, key: CacheKey): string {
  const h = key.sourceHash;
  return path.join(dir, h.slice(0, 2), h.slice(2, 4), h.slice(4, 6), h.slice(6), `${key.variantHash}.entry`);
}

/** Every file under `dir` with its size, except the disk store's index (directories pruned meanwhile are skipped). */
export async function filesUnder(dir: string): Promise<Array<{ path: string; size: number }>> {
  const out: Array<{ path: string; size: number }> = [];
  const walk = async (at: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(at, { withFileTypes: true });
    } catch {
      return; // removed while we walked
    }
    for (const d of entries) {
      const file = path.join(at, d.name);
      if (d.isDirectory()) await walk(file);
      else if (d.isFile() && !d.name.startsWith(INDEX_FILE)) {
        const size = await stat(file).then((s) => s.size, () => undefined);
        if (size !== undefined) out.push({ path: file, size });
      }
    }
  };
  await walk(dir);
  return out;
}

/** Leaves the store's index as a crash would: not marked as closed cleanly. */
export function markUncleanStop(dir: string): void {
  const db = new Database(path.join(dir, INDEX_FILE));
  db.prepare("UPDATE state SET value = '0' WHERE name = 'clean'").run();
  db.close();
}

/** The store's counts once its bookkeeping has caught up with the calls made so far. */
export async function statsOf(store: { settled(): Promise<void>; stats(): CacheStats }): Promise<CacheStats> {
  await store.settled();
  return store.stats();
}
