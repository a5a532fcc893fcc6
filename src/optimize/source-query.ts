import type { SiteConfig } from '../config/schema.js';
import type { Site } from './sites.js';

/** The site's source-identity query parameters, sorted, as the origin gets them and the key holds them. */
export function sourceQueryOf(url: URL, site: { config: Pick<SiteConfig, 'sourceQueryParams'> }): string {
  const allowed = new Set(site.config.sourceQueryParams);
  const kept = [...url.searchParams].filter(([name]) => allowed.has(name)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return new URLSearchParams(kept).toString();
}

/** The keyed source query for a language variant; '#' cannot occur in a query, so it is unambiguous. */
export function keyedSourceQuery(sourceQuery: string, language: string | undefined): string {
  return language ? `${sourceQuery}#lang=${language}` : sourceQuery;
}

/** Every keyed source query one URL stands for: one per language on a site with language variants. */
export function sourceQueriesOf(url: URL, site: Site): string[] {
  const query = sourceQueryOf(url, site);
  const languages = site.config.languages;
  return languages.length > 0 ? languages.map((l) => keyedSourceQuery(query, l)) : [query];
}
