import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { LRUCache } from 'lru-cache';
import type { EntryRef } from './types.js';

/** Entries visited between two yields to the event loop in long walks. */
const WALK_BATCH = 256;

/**
 * Byte-bounded LRU of cache entries, with a per-source map so a source's variants are found
 * without scanning everything: the memory tier's index.
 */
export class LruIndex<V extends {}> {
  private readonly lru: LRUCache<string, V>;
  private readonly bySource = new Map<string, Set<string>>();

  constructor(opts: {
    maxSize: number;
    sizeOf: (value: V) => number;
    /** called when the byte budget pushes an entry out (not for explicit deletes) */
    onEvict?: (ref: EntryRef, value: V) => void;
  }) {
    this.lru = new LRUCache<string, V>({
      maxSize: opts.maxSize,
      sizeCalculation: (value) => opts.sizeOf(value),
      dispose: (value, key, reason) => {
        // 'set' means the same key got a newer value: nothing leaves the index.
        if (reason === 'set') return;
        const ref = refOf(key);
        this.forget(ref);
        if (reason === 'evict') opts.onEvict?.(ref, value);
      },
    });
  }

  get maxSize(): number {
    return this.lru.maxSize;
  }

  get entries(): number {
    return this.lru.size;
  }

  get bytes(): number {
    return this.lru.calculatedSize;
  }

  /** The value, marking it most recently used. */
  get(ref: EntryRef): V | undefined {
    return this.lru.get(keyOf(ref));
  }

  has(ref: EntryRef): boolean {
    return this.lru.has(keyOf(ref));
  }

  /** Caller checks the size fits maxSize first (lru-cache silently drops oversized values). */
  set(ref: EntryRef, value: V): void {
    this.lru.set(keyOf(ref), value);
    let variants = this.bySource.get(ref.sourceHash);
    if (!variants) this.bySource.set(ref.sourceHash, (variants = new Set()));
    variants.add(ref.variantHash);
  }

  delete(ref: EntryRef): boolean {
    return this.lru.delete(keyOf(ref));
  }

  private variantsOf(sourceHash: string): string[] {
    return [...(this.bySource.get(sourceHash) ?? [])];
  }

  /** Deletes every variant of a source; answers the removed refs. */
  deleteSource(sourceHash: string): EntryRef[] {
    const refs = this.variantsOf(sourceHash).map((variantHash) => ({ sourceHash, variantHash }));
    for (const ref of refs) this.delete(ref);
    return refs;
  }

  /**
   * Deletes the entries matching `test`, yielding to the event loop every few hundred entries so
   * a walk over a large index never stalls requests. Map and Set iterators stay valid while
   * entries are added or removed in between.
   */
  async deleteWhere(test: (ref: EntryRef, value: V) => boolean): Promise<EntryRef[]> {
    const removed: EntryRef[] = [];
    let visited = 0;
    for (const [sourceHash, variants] of this.bySource) {
      for (const variantHash of variants) {
        const ref = { sourceHash, variantHash };
        const value = this.lru.peek(keyOf(ref));
        if (value !== undefined && test(ref, value) && this.delete(ref)) removed.push(ref);
        if (++visited % WALK_BATCH === 0) await yieldToEventLoop();
      }
    }
    return removed;
  }

  /** Empties the index (no eviction callbacks); answers how many entries it held. */
  clear(): number {
    const count = this.lru.size;
    this.lru.clear();
    this.bySource.clear();
    return count;
  }

  private forget(ref: EntryRef): void {
    const variants = this.bySource.get(ref.sourceHash);
    if (!variants) return;
    variants.delete(ref.variantHash);
    if (variants.size === 0) this.bySource.delete(ref.sourceHash);
  }
}

function keyOf(ref: EntryRef): string {
  return `${ref.sourceHash}/${ref.variantHash}`;
}

function refOf(key: string): EntryRef {
  const slash = key.indexOf('/');
  return { sourceHash: key.slice(0, slash), variantHash: key.slice(slash + 1) };
}
