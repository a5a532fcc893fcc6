import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { makeCacheKey } from '../cache/key.js';
import { remainingCacheControl } from '../cache/policy.js';
import type { SingleFlight } from '../cache/single-flight.js';
import type { CacheEntry, CacheKey } from '../cache/types.js';
import type { BackgroundQueue } from '../transform/background-queue.js';
import type { TransformLimiter } from '../transform/limiter.js';
import type { PurgeEpoch } from '../purge/epoch.js';
import { acceptedFormats, acceptTag, type AcceptedFormats } from '../transform/negotiate.js';
import type { ParsedParams } from '../transform/types.js';
import { EdgeError } from '../errors.js';
import { statusOf } from './errors.js';
import { pick as pickAcceptedLanguage } from 'accept-language-parser';
import type { RequestLog } from './request-log.js';
import { sendImage, type CacheStatus } from './respond.js';
import type { Site } from '../optimize/sites.js';
import type { KnownVariant, KnownVariants } from './known-variants.js';
import { keyedSourceQuery, sourceQueryOf } from '../optimize/source-query.js';
import { needsRevalidation } from '../optimize/source.js';
import { produceVariant, type Variant, type VariantDeps } from '../optimize/variant.js';

export interface ImageDeps extends VariantDeps {
  epoch: PurgeEpoch;
  knownVariants: KnownVariants;
  variantFlights: SingleFlight<Variant>;
  limiter: TransformLimiter;
  background: BackgroundQueue;
  onBackgroundDropped(): void;
}

/** The origin is down, too slow or failing: what stale-if-error covers (not a 404 or a bad image). */
function isOriginFailure(err: unknown): boolean {
  if (!(err instanceof EdgeError)) return false;
  return err.code === 'EDGE_ORIGIN_UNREACHABLE' || err.code === 'EDGE_ORIGIN_TIMEOUT' || (err.code === 'EDGE_ORIGIN_STATUS' && statusOf(err) >= 500);
}

/** The site language that best matches Accept-Language; the first one when none does. */
function pickLanguage(header: string | undefined, languages: string[]): string | undefined {
  if (languages.length === 0) return undefined;
  return pickAcceptedLanguage(languages, header ?? '', { loose: true }) ?? languages[0];
}

/** How long a browser may keep the WebP it got while its AVIF is still being made. */
const PENDING_AVIF_MAX_AGE = 60;

export interface Lookup {
  cached: CacheEntry | undefined;
  cacheMs: number;
}

/** A lookup already made for `key` (by the fast path), for the full path to reuse. */
export interface PriorLookup {
  key: CacheKey;
  lookup: Lookup;
}

interface Answer {
  entry: CacheEntry;
  status: CacheStatus;
  cacheControl: string;
  cacheable: boolean;
  variant?: Variant;
  cacheMs: number;
}

export async function lookup(deps: Pick<ImageDeps, 'cache'>, key: CacheKey): Promise<Lookup> {
  const started = performance.now();
  const cached = await deps.cache.get(key);
  return { cached, cacheMs: performance.now() - started };
}

function freshHit(entry: CacheEntry, cacheMs: number): Answer {
  return { entry, status: 'HIT', cacheControl: remainingCacheControl(entry.meta.expiresAt), cacheable: true, cacheMs };
}

/** One image request: its keys and how to produce any of its variants. */
class ImageRequest {
  readonly sourceKey: CacheKey;
  readonly originPath: string;
  private readonly keyParts: { site: string; path: string; sourceQuery: string };

  constructor(
    readonly site: Site,
    url: URL,
    readonly parsed: ParsedParams,
    private readonly deps: ImageDeps,
    private readonly language: string | undefined,
  ) {
    const sourceQuery = sourceQueryOf(url, site);
    // Each language is its own source.
    this.keyParts = { site: site.config.name, path: url.pathname, sourceQuery: keyedSourceQuery(sourceQuery, language) };
    this.sourceKey = makeCacheKey({ ...this.keyParts, spec: '', format: 'source' });
    this.originPath = sourceQuery ? `${url.pathname}?${sourceQuery}` : url.pathname;
  }

  keyFor(accepted: AcceptedFormats | undefined): CacheKey {
    return makeCacheKey({ ...this.keyParts, spec: this.parsed.canonical, format: accepted ? acceptTag(accepted) : '-' });
  }

  /** One shared miss per variant; the entry is stored before the flight settles, so the next request hits. */
  produce(key: CacheKey, accepted: AcceptedFormats | undefined, stale?: CacheEntry): Promise<Variant> {
    const { site, sourceKey, originPath, deps, language } = this;
    // The limiter sits inside the flight: requests that join a flight take no turn of their own.
    const epoch = deps.epoch.value;
    return deps.variantFlights.run(`${epoch}:${key.variantHash}`, () => deps.limiter.run(async () => {
      const request = { site, key, sourceKey, originPath, epoch, params: this.parsed.params, accepted, ...(language ? { language } : {}), ...(stale ? { stale } : {}) };
      const v = await produceVariant(request, deps);
      if (v.cacheable && !v.bypass) await deps.storeEntry(v.entry, epoch);
      return v;
    }));
  }

  /**
   * The cached entry when fresh. Expired: served as STALE while it is refreshed in the background
   * (stale.whileRevalidate), else refreshed now — and served as STALE if the origin fails
   * (stale.ifError). Otherwise a foreground miss.
   */
  async answer(key: CacheKey, accepted: AcceptedFormats | undefined): Promise<Answer> {
    return this.answerFrom(await this.lookup(key), key, accepted);
  }

  lookup(key: CacheKey): Promise<Lookup> {
    return lookup(this.deps, key);
  }

  /** answer() for a lookup already made. */
  async answerFrom({ cached, cacheMs }: Lookup, key: CacheKey, accepted: AcceptedFormats | undefined): Promise<Answer> {
    // An entry from before a gap in the purge log is neither a hit nor served stale: revalidated first.
    const suspect = cached !== undefined && needsRevalidation(cached, this.deps);
    if (cached && !suspect && cached.meta.expiresAt > Date.now()) return freshHit(cached, cacheMs);
    const pastExpiry = cached ? Date.now() - cached.meta.expiresAt : Infinity;
    const { whileRevalidate, ifError } = this.site.config.stale;
    const staleAnswer = (entry: CacheEntry, reason: string): Answer => {
      this.deps.metrics.staleServed.inc({ reason });
      return { entry, status: 'STALE', cacheControl: 'public, max-age=0', cacheable: true, cacheMs };
    };
    if (cached && !suspect && pastExpiry <= whileRevalidate * 1000) {
      this.deps.background.enqueue(`refresh:${key.variantHash}`, async () => {
        try {
          await this.produce(key, accepted, cached);
        } catch (err) {
          // Gone at the origin: the stale copy must not outlive it.
          if (err instanceof EdgeError && statusOf(err) === 404) await this.deps.cache.delete(key);
          throw err;
        }
      });
      return staleAnswer(cached, 'revalidating');
    }
    // A variant this source never had must fit under the site's cap (an expired one is no new one).
    if (!cached) this.site.variantCounter?.admit(key.sourceHash, key.variantHash);
    let variant: Variant;
    try {
      variant = await this.deps.background.foregroundWork(() => this.produce(key, accepted, cached));
    } catch (err) {
      if (cached && !suspect && pastExpiry <= ifError * 1000 && isOriginFailure(err)) return staleAnswer(cached, 'origin-error');
      throw err;
    }
    return {
      entry: variant.entry,
      status: variant.bypass ? 'BYPASS' : variant.renewed ? (suspect ? 'REVALIDATED' : 'HIT') : 'MISS',
      cacheControl: variant.cacheControl,
      cacheable: variant.cacheable && !variant.bypass,
      variant,
      cacheMs,
    };
  }
}

/** An image request: cache lookup, else one shared miss that fills the cache, then the answer. */
export async function handleImage(
  req: IncomingMessage,
  res: ServerResponse,
  target: { site: Site; url: URL; id: string; vary?: string[] },
  parsed: ParsedParams,
  log: RequestLog,
  deps: ImageDeps,
  prior?: PriorLookup,
): Promise<void> {
  const { site, url } = target;
  const accepted = parsed.params.auto.format ? acceptedFormats(req.headers.accept, site.config.formats) : undefined;
  const request = new ImageRequest(site, url, parsed, deps, pickLanguage(req.headers['accept-language'], site.config.languages));
  const key = request.keyFor(accepted);
  log.cache = 'MISS';
  // The fast path looked this key up already (and found it expired or missing): not again.
  const first = prior?.key.variantHash === key.variantHash ? prior.lookup : await request.lookup(key);
  let answer: Answer;
  if (accepted?.avif && site.config.formats.avifInBackground) {
    answer = await answerWithoutWaitingForAvif(request, key, accepted, deps, first);
  } else {
    answer = await request.answerFrom(first, key, accepted);
  }
  const vary = ['Accept', ...(site.config.languages.length > 0 ? ['Accept-Language'] : []), ...(target.vary ?? [])].join(', ');
  respond(req, res, answer, log, vary);
  if (answer.status === 'HIT' || answer.status === 'MISS') deps.knownVariants.remember(target.id, { site, path: url.pathname, key, vary });
}

/** The memory tier's lookup for a key, made without waiting; undefined when the tier does not hold it. */
export function lookupInMemory(deps: Pick<ImageDeps, 'cache'>, key: CacheKey): Lookup | undefined {
  const started = performance.now();
  const cached = deps.cache.getFromMemory?.(key);
  return cached && { cached, cacheMs: performance.now() - started };
}

/**
 * A repeat of a request answered before, from its lookup: served when the entry is fresh. False
 * when it is expired or gone, for the full path to handle (stale, renewal, miss) with this lookup.
 */
export function answerKnownVariant(req: IncomingMessage, res: ServerResponse, known: KnownVariant, { cached, cacheMs }: Lookup, log: RequestLog, deps: Pick<ImageDeps, 'unverifiedBefore'>): boolean {
  if (!cached || cached.meta.expiresAt <= Date.now() || needsRevalidation(cached, deps)) return false;
  log.site = known.site.config.name;
  log.path = known.path;
  respond(req, res, freshHit(cached, cacheMs), log, known.vary);
  return true;
}

/**
 * AVIF costs ten to a hundred WebP encodes. A cached AVIF is served; otherwise the browser gets
 * what a WebP-only browser gets, for a short time, while the AVIF is made in the background.
 */
async function answerWithoutWaitingForAvif(request: ImageRequest, key: CacheKey, accepted: AcceptedFormats, deps: ImageDeps, found: Lookup): Promise<Answer> {
  // An AVIF the cache holds, fresh or expired, goes the usual way (hit, stale, renewal).
  if (found.cached) return request.answerFrom(found, key, accepted);
  const fallback = await request.answer(request.keyFor({ avif: false, webp: accepted.webp }), { avif: false, webp: accepted.webp });
  if (!fallback.cacheable) return fallback;
  const queued = deps.background.enqueue(key.variantHash, async () => {
    await request.produce(key, accepted);
  });
  if (queued === 'full') deps.onBackgroundDropped();
  const remaining = Math.round((fallback.entry.meta.expiresAt - Date.now()) / 1000);
  return { ...fallback, cacheControl: `public, max-age=${Math.max(0, Math.min(PENDING_AVIF_MAX_AGE, remaining))}` };
}

function respond(req: IncomingMessage, res: ServerResponse, answer: Answer, log: RequestLog, vary: string): void {
  const { entry, variant } = answer;
  const originalBytes = entry.meta.headers['x-original-bytes'];
  Object.assign(log, {
    cache: answer.status,
    formatIn: variant?.info?.format,
    formatOut: entry.meta.contentType,
    formatsTried: variant?.formatsTried?.join(','),
    bytesIn: originalBytes === undefined ? undefined : Number(originalBytes),
    bytesOut: entry.body.length,
    dimsIn: variant?.info && `${variant.info.width}x${variant.info.height}`,
    dimsOut: variant?.result && `${variant.result.width}x${variant.result.height}`,
    quality: variant?.result?.quality,
    fetchMs: variant && round(variant.fetchMs),
    transformMs: variant && round(variant.transformMs),
  });
  sendImage(req, res, {
    body: entry.body,
    contentType: entry.meta.contentType,
    etag: entry.meta.etag,
    cacheControl: answer.cacheControl,
    cacheStatus: answer.status,
    vary,
    timings: variant ? { fetch: variant.fetchMs, transform: variant.transformMs, cache: answer.cacheMs } : { cache: answer.cacheMs },
    headers: entry.meta.headers,
  });
}

const round = (ms: number): number => Math.round(ms * 10) / 10;
