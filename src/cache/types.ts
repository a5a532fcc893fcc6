/** The cache store contract. Every implementation passes test/cache/conformance.ts. */

/** Identity of one cached variant, built by key.ts. */
export interface CacheKey {
  /** canonical source identity: `v1|site|path|source query` */
  source: string;
  /** full canonical variant string (source + spec + negotiated format); stored and compared on read */
  variant: string;
  /** sha256 hex of `source`: names the sharded directory */
  sourceHash: string;
  /** sha256 hex of `variant`: names the entry file */
  variantHash: string;
}

/** Where one variant lives: its source directory and its entry name (sha256 hex each). */
export interface EntryRef {
  sourceHash: string;
  variantHash: string;
}

export interface CacheEntryMeta {
  /** the full variant key string, compared on every read */
  key: string;
  sourceHash: string;
  variantHash: string;
  /** the canonical source string (CacheKey.source): what prefix purges match on */
  source: string;
  contentType: string;
  /** strong ETag, quoted, hash of the body */
  etag: string;
  /** body length in bytes */
  size: number;
  createdAt: number;
  /** epoch ms after which the entry is stale */
  expiresAt: number;
  /** purge tags (Surrogate-Key / Cache-Tag) */
  tags: string[];
  /** response headers to replay on a hit (e.g. Cache-Control, X-Original-Bytes) */
  headers: Record<string, string>;
  /** the origin's validator (ETag, else Last-Modified) of the source version this was made from */
  validator?: string;
  /** an origin 404 remembered for a short while (negative caching); the body is empty */
  negative?: boolean;
}

export interface CacheEntry {
  meta: CacheEntryMeta;
  body: Buffer;
}

export interface CacheStats {
  entries: number;
  bytes: number;
}

/** How far the disk store's background reconciliation of index and files has come. */
export interface ReconcileProgress {
  /** true once the index is known to list every entry file */
  complete: boolean;
  /** share of the tree's 256 top-level shards done, 0..1 */
  fraction: number;
  /** entry files read since this reconciliation started */
  filesRead: number;
  /** files the index did not know, now indexed */
  adopted: number;
  /** index rows without a file, and damaged or leftover files, removed */
  dropped: number;
}

/** What a purge selects besides whole sources: entries carrying any of `tags`, or whose source path starts with one of `prefixes` on its site. */
export interface EntrySelector {
  tags: string[];
  prefixes: Array<{ site: string; prefix: string }>;
}

/** A store that purges can select in. */
export interface PurgeableStore extends CacheStore {
  /** Removes the entries `selector` selects; answers how many. */
  deleteSelected(selector: EntrySelector): Promise<number>;
  deleteAll(): Promise<number>;
}

export interface CacheStore {
  /**
   * The entry for this key, or undefined when missing, unreadable or stored under another key.
   * Expired entries are returned too: freshness is the caller's decision (stale serving).
   */
  get(key: CacheKey): Promise<CacheEntry | undefined>;
  /** get() answered without waiting, for an entry a memory tier holds; undefined otherwise. */
  getFromMemory?(key: CacheKey): CacheEntry | undefined;
  /**
   * Stores atomically: a reader sees the old entry, the new one or none, never a part. Answers
   * false when it did not store (too large for the store): no older version of the key remains.
   */
  put(entry: CacheEntry): Promise<boolean>;
  delete(key: CacheKey): Promise<boolean>;
  /** Removes every variant of one source; answers how many. */
  deleteSource(sourceHash: string): Promise<number>;
  /** What the store holds, as its bookkeeping has counted so far (see settled). */
  stats(): CacheStats;
  /** Resolves when the bookkeeping of every call made so far is done: stats() then count it. */
  settled(): Promise<void>;
  close(): Promise<void>;
}
