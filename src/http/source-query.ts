import type { Site } from './sites.js';

/** The site's source-identity query parameters, sorted, as the origin gets them and the key holds them. */
export function sourceQueryOf(url: URL, site: Site): string {
  const allowed = new Set(site.config.sourceQueryParams);
  const kept = [...url.searchParams].filter(([name]) => allowed.has(name)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return new URLSearchParams(kept).toString();
}
