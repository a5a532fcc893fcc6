import { performance } from 'node:perf_hooks';
import { cachePolicyFor, type CachePolicy } from '../cache/policy.js';
import type { SingleFlight } from '../cache/single-flight.js';
import type { CacheEntry, CacheEntryMeta, CacheKey, CacheStore } from '../cache/types.js';
import type { EdgeMetrics } from '../observe/metrics.js';
import type { HeadInspector, Origin, OriginResponse } from '../origin/types.js';
import { EdgeError } from '../errors.js';
import type { Site } from './sites.js';

export interface Source {
  body: Buffer;
  /** purge tags from the origin's Surrogate-Key / Cache-Tag headers */
  tags: string[];
  /** origin content type (lower-case header) */
  contentType: string;
  policy: CachePolicy;
  /** when the source itself expires; variants made from it expire with it */
  expiresAt: number;
  /** ms spent fetching from the origin (0 when it came from the source tier) */
  fetchMs: number;
  /** the origin's ETag (else Last-Modified) of this version: variants record it */
  validator?: string;
}

export interface SourceDeps {
  cache: CacheStore;
  flights: SingleFlight<Source>;
  metrics: EdgeMetrics;
  /** looks at a source's first bytes while it downloads, to refuse it early */
  inspectSource: HeadInspector;
  /**
   * Puts an entry made by work that started at purge epoch `epoch` (skipped when a purge came
   * since); a failed write is logged and counted, never turned into a failed response.
   */
  storeEntry(entry: CacheEntry, epoch: number): Promise<void>;
  /** see PurgeBus.unverifiedBefore: entries stored before it are revalidated before they are served */
  unverifiedBefore(): number | undefined;
}

/**
 * An entry this node cannot vouch for: stored before it started, while it has not yet read the
 * shared purge log, so a purge it has not read may have removed it. It is revalidated with the
 * origin (a conditional request) before it is served.
 */
export function needsRevalidation(entry: CacheEntry, deps: Pick<SourceDeps, 'unverifiedBefore'>): boolean {
  const before = deps.unverifiedBefore();
  return before !== undefined && entry.meta.createdAt < before;
}

export interface SourceRequest {
  site: Site;
  sourceKey: CacheKey;
  /** path and source query as sent to the origin */
  originPath: string;
  /** the language asked of the origin (sites with language variants) */
  language?: string;
  /** the purge epoch when this work started */
  epoch: number;
  /** where to fetch from instead of the site's origin (a watermark on one of its allowed origins) */
  origin?: Origin;
}

/** Answered as 404 for the origin's 404 and 410, its other 4xx as they are, else 502 (http/errors.ts). */
function originStatusError(status: number): EdgeError {
  if (status === 404 || status === 410) return new EdgeError('EDGE_ORIGIN_STATUS', 'not found at the origin', { originStatus: status });
  return new EdgeError('EDGE_ORIGIN_STATUS', `the origin answered ${status}`, { originStatus: status });
}

/** Surrogate-Key is space-separated (Fastly), Cache-Tag comma-separated (Cloudflare). */
export function purgeTagsOf(headers: Record<string, string>): string[] {
  const tags = [...(headers['surrogate-key'] ?? '').split(/\s+/), ...(headers['cache-tag'] ?? '').split(',')];
  return [...new Set(tags.map((t) => t.trim()).filter(Boolean))];
}

/** What a later conditional request needs, and what clients are told. */
function pickValidators(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of ['etag', 'last-modified', 'cache-control']) {
    const v = headers[name];
    if (v !== undefined) out[name] = v;
  }
  return out;
}

const validatorOf = (headers: Record<string, string>): string | undefined => headers['etag'] ?? headers['last-modified'];

function sourceFromEntry(entry: CacheEntry, fetchMs: number): Source {
  return {
    body: entry.body,
    tags: entry.meta.tags,
    contentType: entry.meta.contentType,
    policy: { cacheable: true, ttl: Math.max(0, Math.round((entry.meta.expiresAt - Date.now()) / 1000)), cacheControl: entry.meta.headers['cache-control'] ?? '' },
    expiresAt: entry.meta.expiresAt,
    fetchMs,
    ...(entry.meta.validator ? { validator: entry.meta.validator } : {}),
  };
}

function sourceMeta(key: CacheKey, fields: Pick<CacheEntryMeta, 'contentType' | 'size' | 'expiresAt' | 'tags' | 'headers'> & Partial<CacheEntryMeta>): CacheEntryMeta {
  return { key: key.variant, sourceHash: key.sourceHash, variantHash: key.variantHash, source: key.source, etag: '', createdAt: Date.now(), ...fields };
}

/**
 * The origin's bytes for one source: from the source tier while fresh; else one origin request
 * shared by every concurrent caller — conditional when the edge holds an expired copy, so a 304
 * renews that copy without a download. Origin 404s are remembered for `negativeTtl` seconds.
 */
export async function loadSource(req: SourceRequest, deps: SourceDeps): Promise<Source> {
  const { site, sourceKey } = req;
  const cached = await deps.cache.get(sourceKey);
  if (cached && cached.meta.expiresAt > Date.now() && !needsRevalidation(cached, deps)) {
    if (cached.meta.negative) throw originStatusError(404);
    return sourceFromEntry(cached, 0);
  }
  const held = cached && !cached.meta.negative ? cached : undefined;
  // A flight from before a purge is not joined: its bytes may be what was purged.
  return deps.flights.run(`${req.epoch}:${sourceKey.variantHash}`, async () => {
    const started = performance.now();
    deps.metrics.originFetches.inc();
    const res = await (req.origin ?? site.origin).fetch(req.originPath, {
      inspect: deps.inspectSource,
      ...(held?.meta.headers['etag'] ? { ifNoneMatch: held.meta.headers['etag'] } : {}),
      ...(held?.meta.headers['last-modified'] ? { ifModifiedSince: held.meta.headers['last-modified'] } : {}),
      ...(req.language ? { acceptLanguage: req.language } : {}),
    });
    const fetchMs = performance.now() - started;
    deps.metrics.originBytes.inc(res.body.length);
    if (res.status === 304 && held) return renew(held, res, req, deps, fetchMs);
    if (res.status === 404 || res.status === 410) await rememberNotFound(req, deps);
    if (res.status !== 200) throw originStatusError(res.status);
    return fresh(res, req, deps, fetchMs);
  });
}

/** A 304: the held copy is current again, for a new lifetime; nothing is downloaded or transformed. */
async function renew(held: CacheEntry, res: OriginResponse, req: SourceRequest, deps: SourceDeps, fetchMs: number): Promise<Source> {
  deps.metrics.originNotModified.inc();
  const headers = { ...held.meta.headers, ...pickValidators(res.headers) };
  const policy = cachePolicyFor(headers, req.site.config.ttl);
  const entry: CacheEntry = { meta: { ...held.meta, headers, expiresAt: Date.now() + policy.ttl * 1000 }, body: held.body };
  if (policy.cacheable) await deps.storeEntry(entry, req.epoch);
  return { ...sourceFromEntry(entry, fetchMs), policy };
}

async function rememberNotFound(req: SourceRequest, deps: SourceDeps): Promise<void> {
  const ttl = req.site.config.negativeTtl;
  if (ttl <= 0) return;
  const meta = sourceMeta(req.sourceKey, { contentType: 'text/plain', size: 0, expiresAt: Date.now() + ttl * 1000, tags: [], headers: {}, negative: true });
  await deps.storeEntry({ meta, body: Buffer.alloc(0) }, req.epoch);
}

async function fresh(res: OriginResponse, req: SourceRequest, deps: SourceDeps, fetchMs: number): Promise<Source> {
  // One type or none: a list ("image/jpeg, text/html") is a response to distrust, not to pick from.
  if ((res.headers['content-type'] ?? '').includes(',')) {
    throw new EdgeError('EDGE_NOT_AN_IMAGE', 'the origin sent an ambiguous Content-Type');
  }
  const policy = cachePolicyFor(res.headers, req.site.config.ttl);
  const validator = validatorOf(res.headers);
  const source: Source = {
    body: res.body,
    tags: purgeTagsOf(res.headers),
    contentType: res.headers['content-type'] ?? 'application/octet-stream',
    policy,
    expiresAt: Date.now() + policy.ttl * 1000,
    fetchMs,
    ...(validator ? { validator } : {}),
  };
  if (policy.cacheable) {
    const meta = sourceMeta(req.sourceKey, {
      contentType: source.contentType,
      etag: res.headers['etag'] ?? '',
      size: res.body.length,
      expiresAt: source.expiresAt,
      tags: source.tags,
      headers: pickValidators(res.headers),
      ...(validator ? { validator } : {}),
    });
    await deps.storeEntry({ meta, body: res.body }, req.epoch);
  }
  return source;
}
