import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { makeCacheKey } from '../cache/key.js';
import { remainingCacheControl } from '../cache/policy.js';
import type { SingleFlight } from '../cache/single-flight.js';
import { acceptedFormats, acceptTag } from '../transform/negotiate.js';
import type { ParsedParams } from '../transform/types.js';
import type { RequestLog } from './request-log.js';
import { sendImage } from './respond.js';
import type { Site } from './sites.js';
import { produceVariant, type Variant, type VariantDeps } from './variant.js';

export interface ImageDeps extends VariantDeps {
  variantFlights: SingleFlight<Variant>;
}

/** The site's source-identity query parameters, sorted, as the origin gets them. */
function sourceQueryOf(url: URL, site: Site): string {
  const allowed = new Set(site.config.sourceQueryParams);
  const kept = [...url.searchParams].filter(([name]) => allowed.has(name)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return new URLSearchParams(kept).toString();
}

/** An image request: cache lookup, else one shared miss that fills the cache, then the answer. */
export async function handleImage(
  req: IncomingMessage,
  res: ServerResponse,
  site: Site,
  url: URL,
  parsed: ParsedParams,
  log: RequestLog,
  deps: ImageDeps,
): Promise<void> {
  const accepted = parsed.params.auto.format ? acceptedFormats(req.headers.accept, site.config.formats) : undefined;
  const sourceQuery = sourceQueryOf(url, site);
  const keyParts = { site: site.config.name, path: url.pathname, sourceQuery };
  const key = makeCacheKey({ ...keyParts, spec: parsed.canonical, format: accepted ? acceptTag(accepted) : '-' });

  const lookupStart = performance.now();
  const cached = await deps.cache.get(key);
  const cacheMs = performance.now() - lookupStart;
  if (cached && cached.meta.expiresAt > Date.now()) {
    log.cache = 'HIT';
    log.formatOut = cached.meta.contentType;
    log.bytesOut = cached.body.length;
    sendImage(req, res, {
      body: cached.body,
      contentType: cached.meta.contentType,
      etag: cached.meta.etag,
      cacheControl: remainingCacheControl(cached.meta.expiresAt),
      cacheStatus: 'HIT',
      timings: { cache: cacheMs },
      headers: cached.meta.headers,
    });
    return;
  }

  log.cache = 'MISS';
  const sourceKey = makeCacheKey({ ...keyParts, spec: '', format: 'source' });
  const originPath = sourceQuery ? `${url.pathname}?${sourceQuery}` : url.pathname;
  const variant = await deps.variantFlights.run(key.variantHash, async () => {
    const v = await produceVariant({ site, key, sourceKey, originPath, params: parsed.params, accepted }, deps);
    // Stored before the flight settles, so a request arriving right after is a HIT.
    if (v.cacheable && !v.bypass) await deps.storeEntry(v.entry);
    return v;
  });
  const { entry } = variant;
  Object.assign(log, {
    cache: variant.bypass ? 'BYPASS' : 'MISS',
    formatIn: variant.info?.format,
    formatOut: entry.meta.contentType,
    bytesIn: variant.info?.bytes,
    bytesOut: entry.body.length,
    dimsIn: variant.info && `${variant.info.width}x${variant.info.height}`,
    dimsOut: variant.result && `${variant.result.width}x${variant.result.height}`,
    quality: variant.result?.quality,
    fetchMs: round(variant.fetchMs),
    transformMs: round(variant.transformMs),
  });
  sendImage(req, res, {
    body: entry.body,
    contentType: entry.meta.contentType,
    etag: entry.meta.etag,
    cacheControl: variant.cacheControl,
    cacheStatus: variant.bypass ? 'BYPASS' : 'MISS',
    timings: { fetch: variant.fetchMs, transform: variant.transformMs, cache: cacheMs },
    headers: entry.meta.headers,
  });
}

const round = (ms: number): number => Math.round(ms * 10) / 10;
