import type { DiskStore } from './disk-store.js';
import type { MemoryStore } from './memory-store.js';
import type { CacheEntry, CacheKey, CacheStats, EntrySelector, PurgeableStore, ReconcileProgress } from './types.js';

/**
 * A hot memory tier in front of the disk store. Memory only ever holds entries the disk index
 * also holds: whatever leaves the disk (evicted, swept, purged, found gone) leaves memory with it,
 * and a memory hit counts as a use of the disk entry, so disk recency follows the real traffic.
 */
export class TieredStore implements PurgeableStore {
  /** hits answered from each tier since start */
  readonly hits = { memory: 0, disk: 0 };

  constructor(
    private readonly memory: MemoryStore,
    private readonly disk: DiskStore,
  ) {
    disk.onRemoved((refs) => {
      for (const ref of refs) memory.forget(ref);
    });
  }

  getFromMemory(key: CacheKey): CacheEntry | undefined {
    const hot = this.memory.peek(key);
    if (!hot) return undefined;
    this.disk.touch(key);
    this.hits.memory++;
    return hot;
  }

  async get(key: CacheKey): Promise<CacheEntry | undefined> {
    const hot = this.getFromMemory(key);
    if (hot) return hot;
    const entry = await this.disk.get(key);
    if (entry) {
      this.hits.disk++;
      await this.memory.put(entry);
    }
    return entry;
  }

  async put(entry: CacheEntry): Promise<boolean> {
    // Not stored on disk (too large, or purged meanwhile): no older copy may stay in memory either.
    if (!(await this.disk.put(entry))) {
      this.memory.forget(entry.meta);
      return false;
    }
    await this.memory.put(entry);
    return true;
  }

  async delete(key: CacheKey): Promise<boolean> {
    const [inMemory, onDisk] = await Promise.all([this.memory.delete(key), this.disk.delete(key)]);
    return inMemory || onDisk;
  }

  /** Memory follows the disk's removals; the disk's count is the cache's. */
  async deleteSource(sourceHash: string): Promise<number> {
    await this.memory.deleteSource(sourceHash);
    return this.disk.deleteSource(sourceHash);
  }

  async deleteSelected(selector: EntrySelector): Promise<number> {
    await this.memory.deleteSelected(selector);
    return this.disk.deleteSelected(selector);
  }

  async deleteAll(): Promise<number> {
    await this.memory.deleteAll();
    return this.disk.deleteAll();
  }

  /** The disk holds every entry, so its numbers are the cache's. */
  stats(): CacheStats {
    return this.disk.stats();
  }

  settled(): Promise<void> {
    return this.disk.settled();
  }

  reconcileProgress(): ReconcileProgress {
    return this.disk.reconcileProgress();
  }

  async close(): Promise<void> {
    await Promise.all([this.memory.close(), this.disk.close()]);
  }
}
