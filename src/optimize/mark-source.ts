/**
 * The watermark (`mark`) of a variant: an image on the site's own origin, loaded as a source of
 * that site (the source tier, one shared fetch, the SSRF guard and size checks of any source).
 * Variants drawn with it carry its purge tag, so purging the mark's URL purges them too.
 */
import { makeCacheKey, markTag } from '../cache/key.js';
import { EdgeError, badParam } from '../errors.js';
import { sourceQueryOf } from './source-query.js';
import { loadSource, type Source, type SourceDeps } from './source.js';
import type { Site } from './sites.js';

/** The mark's path (and kept query) on the site's origin; an absolute URL must lie under the origin's base. */
export function markUrl(site: Site, src: string): URL {
  if (src.startsWith('/')) return new URL(src, 'http://mark.invalid');
  const url = new URL(src);
  const base = new URL(site.config.origin);
  const basePath = base.pathname.replace(/\/$/, '');
  if (url.origin !== base.origin || !url.pathname.startsWith(`${basePath}/`)) {
    throw badParam('mark', `mark must be an image on this site's origin (${base.origin}${basePath}/…), got "${src}"`);
  }
  return new URL(`${url.pathname.slice(basePath.length)}${url.search}`, 'http://mark.invalid');
}

/** Loads the mark; a missing or refused mark is the request's bad parameter, not a missing image. */
export async function loadMark(site: Site, src: string, epoch: number, deps: SourceDeps): Promise<{ source: Source; tag: string }> {
  const url = markUrl(site, src);
  const sourceQuery = sourceQueryOf(url, site);
  const sourceKey = makeCacheKey({ site: site.config.name, path: url.pathname, sourceQuery, spec: '', format: 'source' });
  const originPath = sourceQuery ? `${url.pathname}?${sourceQuery}` : url.pathname;
  try {
    return { source: await loadSource({ site, sourceKey, originPath, epoch }, deps), tag: markTag(sourceKey.sourceHash) };
  } catch (err) {
    if (err instanceof EdgeError && (err.code === 'EDGE_ORIGIN_STATUS' || err.code === 'EDGE_NOT_AN_IMAGE' || err.code === 'EDGE_IMAGE_TOO_LARGE')) {
      throw badParam('mark', `the mark ${url.pathname}: ${err.message}`);
    }
    throw err;
  }
}
