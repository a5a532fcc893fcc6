import { parseSourceString } from '../cache/key.js';
import type { EntrySummary, PurgeableStore } from '../cache/types.js';
import type { PurgeApplier, PurgeRequest } from './types.js';

function selector(req: PurgeRequest): ((entry: EntrySummary) => boolean) | undefined {
  if (req.tags.length === 0 && req.prefixes.length === 0) return undefined;
  const tags = new Set(req.tags);
  return (entry) => {
    if (entry.tags.some((t) => tags.has(t))) return true;
    if (req.prefixes.length === 0) return false;
    const source = parseSourceString(entry.source);
    return source !== undefined && req.prefixes.some((p) => p.site === source.site && source.path.startsWith(p.prefix));
  };
}

/** Applies a purge to this node's cache: answers the entries removed (variants and stored originals). */
export function purgeApplier(cache: PurgeableStore): PurgeApplier {
  return async (req) => {
    if (req.all) return cache.deleteAll();
    let removed = 0;
    for (const sourceHash of req.sourceHashes) removed += await cache.deleteSource(sourceHash);
    const select = selector(req);
    if (select) removed += await cache.deleteWhere(select);
    return removed;
  };
}
