import { performance } from 'node:perf_hooks';
import { cachePolicyFor, type CachePolicy } from '../cache/policy.js';
import type { SingleFlight } from '../cache/single-flight.js';
import type { CacheEntry, CacheKey, CacheStore } from '../cache/types.js';
import type { EdgeMetrics } from '../observe/metrics.js';
import type { HeadInspector } from '../origin/types.js';
import { EdgeError } from './errors.js';
import type { Site } from './sites.js';

export interface Source {
  body: Buffer;
  /** origin content type (lower-case header) */
  contentType: string;
  policy: CachePolicy;
  /** when the source itself expires; variants made from it expire with it */
  expiresAt: number;
  /** ms spent fetching from the origin (0 when it came from the source tier) */
  fetchMs: number;
}

export interface SourceDeps {
  cache: CacheStore;
  /** looks at a source's first bytes while it downloads, to refuse it early */
  inspectSource: HeadInspector;
  /** Puts an entry; a failed write is logged and counted, never turned into a failed response. */
  storeEntry(entry: CacheEntry): Promise<void>;
  flights: SingleFlight<Source>;
  metrics: EdgeMetrics;
}

function originStatusError(status: number): EdgeError {
  if (status === 404 || status === 410) return new EdgeError('EDGE_ORIGIN_STATUS', 404, 'not found at the origin', { originStatus: status });
  const edgeStatus = status >= 400 && status < 500 ? status : 502;
  return new EdgeError('EDGE_ORIGIN_STATUS', edgeStatus, `the origin answered ${status}`, { originStatus: status });
}

/**
 * The origin's bytes for one source: from the source tier while fresh, else one origin fetch
 * shared by every concurrent caller, kept in the source tier when the origin allows caching.
 */
export async function loadSource(site: Site, sourceKey: CacheKey, pathAndQuery: string, deps: SourceDeps): Promise<Source> {
  const cached = await deps.cache.get(sourceKey);
  if (cached && cached.meta.expiresAt > Date.now()) {
    return {
      body: cached.body,
      contentType: cached.meta.contentType,
      policy: { cacheable: true, ttl: Math.round((cached.meta.expiresAt - Date.now()) / 1000), cacheControl: cached.meta.headers['cache-control'] ?? '' },
      expiresAt: cached.meta.expiresAt,
      fetchMs: 0,
    };
  }
  return deps.flights.run(sourceKey.sourceHash, async () => {
    const started = performance.now();
    deps.metrics.originFetches.inc();
    const res = await site.origin.fetch(pathAndQuery, deps.inspectSource);
    const fetchMs = performance.now() - started;
    deps.metrics.originBytes.inc(res.body.length);
    if (res.status !== 200) throw originStatusError(res.status);
    const policy = cachePolicyFor(res.headers, site.config.ttl);
    const now = Date.now();
    const source: Source = {
      body: res.body,
      contentType: res.headers['content-type'] ?? 'application/octet-stream',
      policy,
      expiresAt: now + policy.ttl * 1000,
      fetchMs,
    };
    if (policy.cacheable) {
      await deps.storeEntry({
        meta: {
          key: sourceKey.variant,
          sourceHash: sourceKey.sourceHash,
          variantHash: sourceKey.variantHash,
          contentType: source.contentType,
          etag: res.headers['etag'] ?? '',
          size: res.body.length,
          createdAt: now,
          expiresAt: source.expiresAt,
          tags: [],
          headers: pickValidators(res.headers),
        },
        body: res.body,
      });
    }
    return source;
  });
}

/** What a later conditional request to the origin needs. */
function pickValidators(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of ['etag', 'last-modified', 'cache-control']) {
    const v = headers[name];
    if (v !== undefined) out[name] = v;
  }
  return out;
}
