import { LruIndex } from './lru-index.js';
import { selects } from './selector.js';
import type { CacheEntry, CacheKey, CacheStats, EntryRef, EntrySelector, PurgeableStore } from './types.js';

/** Rough per-entry cost of the meta object, counted against the byte budget. */
const META_OVERHEAD_BYTES = 512;

/** Hot tier: whole entries in memory, least recently used dropped beyond maxBytes. */
export class MemoryStore implements PurgeableStore {
  private readonly index: LruIndex<CacheEntry>;
  private readonly maxEntryBytes: number;

  /**
   * maxEntryBytes (default an eighth of the tier) keeps one large body, such as a source
   * original, from pushing out the many small hot variants the tier exists for.
   */
  constructor(opts: { maxBytes: number; maxEntryBytes?: number }) {
    this.maxEntryBytes = opts.maxEntryBytes ?? Math.floor(opts.maxBytes / 8);
    this.index = new LruIndex<CacheEntry>({
      // lru-cache needs a positive budget; 1 byte holds nothing, so 0 turns the tier off.
      maxSize: Math.max(1, opts.maxBytes),
      sizeOf: (entry) => entry.body.length + META_OVERHEAD_BYTES,
    });
  }

  async get(key: CacheKey): Promise<CacheEntry | undefined> {
    return this.peek(key);
  }

  /** get() without a promise. */
  peek(key: CacheKey): CacheEntry | undefined {
    const entry = this.index.get(key);
    return entry?.meta.key === key.variant ? entry : undefined;
  }

  async put(entry: CacheEntry): Promise<boolean> {
    const ref: EntryRef = { sourceHash: entry.meta.sourceHash, variantHash: entry.meta.variantHash };
    if (entry.body.length + META_OVERHEAD_BYTES > Math.min(this.maxEntryBytes, this.index.maxSize)) {
      this.index.delete(ref);
      return false;
    }
    this.index.set(ref, { meta: { ...entry.meta, size: entry.body.length }, body: entry.body });
    return true;
  }

  async delete(key: CacheKey): Promise<boolean> {
    return this.forget(key);
  }

  /** delete() without a promise. */
  forget(ref: EntryRef): boolean {
    return this.index.delete(ref);
  }

  async deleteSource(sourceHash: string): Promise<number> {
    return this.index.deleteSource(sourceHash).length;
  }

  /** Walks the whole tier: it is bounded by memory, so small. */
  async deleteSelected(selector: EntrySelector): Promise<number> {
    return (await this.index.deleteWhere((_, entry) => selects(selector, entry.meta))).length;
  }

  async deleteAll(): Promise<number> {
    return this.index.clear();
  }

  stats(): CacheStats {
    return { entries: this.index.entries, bytes: this.index.bytes };
  }

  /** Counts as it goes: nothing to wait for. */
  async settled(): Promise<void> {}

  async close(): Promise<void> {}
}
