import type { PurgeableStore } from '../cache/types.js';
import type { PurgeApplier } from './types.js';

/** Applies a purge to this node's cache: answers the entries removed (variants and stored originals). */
export function purgeApplier(cache: PurgeableStore): PurgeApplier {
  return async (req) => {
    if (req.all) return cache.deleteAll();
    let removed = 0;
    for (const sourceHash of req.sourceHashes) removed += await cache.deleteSource(sourceHash);
    if (req.tags.length > 0 || req.prefixes.length > 0) removed += await cache.deleteSelected({ tags: req.tags, prefixes: req.prefixes });
    return removed;
  };
}
