import type { DiskStore } from './disk-store.js';
import type { EntrySummary } from './lru-index.js';
import type { MemoryStore } from './memory-store.js';
import type { CacheEntry, CacheKey, CacheStats, CacheStore } from './types.js';

/**
 * A hot memory tier in front of the disk store. Memory only ever holds entries the disk index
 * also holds: a memory hit is checked against (and refreshes) the disk index, so disk evictions,
 * sweeps and purges apply to both tiers and disk recency follows the real traffic.
 */
export class TieredStore implements CacheStore {
  /** hits answered from each tier since start */
  readonly hits = { memory: 0, disk: 0 };

  constructor(
    private readonly memory: MemoryStore,
    private readonly disk: DiskStore,
  ) {}

  getFromMemory(key: CacheKey): CacheEntry | undefined {
    const hot = this.memory.peek(key);
    if (!hot) return undefined;
    if (this.disk.touch(key)) {
      this.hits.memory++;
      return hot;
    }
    void this.memory.delete(key); // gone from disk (evicted, swept, purged): gone here too
    return undefined;
  }

  async get(key: CacheKey): Promise<CacheEntry | undefined> {
    const hot = this.getFromMemory(key);
    if (hot) return hot;
    // Not in the disk index (purged, evicted) answers undefined without touching the disk.
    const entry = await this.disk.get(key);
    if (entry) {
      this.hits.disk++;
      await this.memory.put(entry);
    }
    return entry;
  }

  async put(entry: CacheEntry): Promise<void> {
    await this.disk.put(entry);
    // Not stored on disk (too large, or purged meanwhile): an older copy in memory dies on its next get.
    if (this.disk.has(entry.meta)) await this.memory.put(entry);
  }

  async delete(key: CacheKey): Promise<boolean> {
    const [inMemory, onDisk] = await Promise.all([this.memory.delete(key), this.disk.delete(key)]);
    return inMemory || onDisk;
  }

  async deleteSource(sourceHash: string): Promise<number> {
    const variants = new Set([...this.memory.variantsOf(sourceHash), ...this.disk.variantsOf(sourceHash)]);
    await Promise.all([this.memory.deleteSource(sourceHash), this.disk.deleteSource(sourceHash)]);
    return variants.size;
  }

  async deleteWhere(pred: (entry: EntrySummary) => boolean): Promise<number> {
    const removed = new Set<string>();
    const select = (entry: EntrySummary): boolean => {
      const hit = pred(entry);
      if (hit) removed.add(entry.variantHash);
      return hit;
    };
    await Promise.all([this.memory.deleteWhere(select), this.disk.deleteWhere(select)]);
    return removed.size;
  }

  async deleteAll(): Promise<number> {
    const memoryOnly = await this.memory.deleteWhere((entry) => !this.disk.has(entry));
    const [, onDisk] = await Promise.all([this.memory.deleteAll(), this.disk.deleteAll()]);
    return memoryOnly + onDisk;
  }

  /** The disk holds every entry, so its numbers are the cache's. */
  stats(): CacheStats {
    return this.disk.stats();
  }

  async close(): Promise<void> {
    await Promise.all([this.memory.close(), this.disk.close()]);
  }
}

