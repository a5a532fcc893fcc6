/**
 * The watermark (`mark`) of a variant: an image on the site's own origin, or on one of its
 * allowed origins, loaded as a source of that site (the source tier, one shared fetch, the SSRF
 * guard and size checks of any source). Variants drawn with it carry its purge tag, so purging
 * the mark's URL purges them too.
 */
import { makeCacheKey, markTag, sourceHashOf } from '../cache/key.js';
import { EdgeError, badParam } from '../errors.js';
import type { Origin } from '../origin/types.js';
import { sourceQueryOf } from './source-query.js';
import { loadSource, type Source, type SourceDeps } from './source.js';
import type { Site } from './sites.js';

interface MarkLocation {
  /** the path and query asked of the origin */
  url: URL;
  /** the path the mark is keyed by: its path on the site, or its absolute URL on an allowed origin */
  keyPath: string;
  /** an allowed origin to fetch from, instead of the site's */
  origin?: Origin;
}

/** Where a mark lives: a path on the site, an absolute URL under the site's origin, or on an allowed origin. */
function locateMark(site: Site, src: string): MarkLocation {
  if (src.startsWith('/')) {
    const url = new URL(src, 'http://mark.invalid');
    return { url, keyPath: url.pathname };
  }
  const absolute = new URL(src);
  const base = new URL(site.config.origin);
  const basePath = base.pathname.replace(/\/$/, '');
  if (absolute.origin === base.origin && absolute.pathname.startsWith(`${basePath}/`)) {
    const url = new URL(`${absolute.pathname.slice(basePath.length)}${absolute.search}`, 'http://mark.invalid');
    return { url, keyPath: url.pathname };
  }
  const origin = site.allowedOrigins.get(absolute.origin);
  if (origin) return { url: new URL(`${absolute.pathname}${absolute.search}`, 'http://mark.invalid'), keyPath: `${absolute.origin}${absolute.pathname}`, origin };
  throw badParam('mark', `mark must be an image on this site's origin (${base.origin}${basePath}/…) or one of its allowedOrigins, got "${src}"`);
}

/** Loads the mark; a missing or refused mark is the request's bad parameter, not a missing image. */
export async function loadMark(site: Site, src: string, epoch: number, deps: SourceDeps): Promise<{ source: Source; tag: string }> {
  const { url, keyPath, origin } = locateMark(site, src);
  const sourceQuery = sourceQueryOf(url, site);
  const sourceKey = makeCacheKey({ site: site.config.name, path: keyPath, sourceQuery, spec: '', format: 'source' });
  const originPath = sourceQuery ? `${url.pathname}?${sourceQuery}` : url.pathname;
  try {
    const source = await loadSource({ site, sourceKey, originPath, epoch, ...(origin ? { origin } : {}) }, deps);
    return { source, tag: markTag(sourceKey.sourceHash) };
  } catch (err) {
    if (err instanceof EdgeError && (err.code === 'EDGE_ORIGIN_STATUS' || err.code === 'EDGE_NOT_AN_IMAGE' || err.code === 'EDGE_IMAGE_TOO_LARGE')) {
      throw badParam('mark', `the mark ${url.pathname}: ${err.message}`);
    }
    throw err;
  }
}

/**
 * The source hashes of a mark on an allowed origin, named by its absolute URL (it has no URL on
 * the edge): one per site that allows that origin; none when no site does. A purge removes these
 * sources and, by their mark tags, the variants drawn with them.
 */
export function allowedOriginMarkSources(sites: readonly Site[], target: string): string[] {
  if (!/^https?:\/\//i.test(target)) return [];
  const url = new URL(target);
  return sites
    .filter((site) => site.allowedOrigins.has(url.origin))
    .map((site) => sourceHashOf(site.config.name, `${url.origin}${url.pathname}`, sourceQueryOf(url, site)));
}

/** The source hash of a mark at `url`'s path on the site (as loadMark keys it). */
export function sameSiteMarkSource(site: Site, url: URL): string {
  return sourceHashOf(site.config.name, url.pathname, sourceQueryOf(url, site));
}
