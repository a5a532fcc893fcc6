import { createHash } from 'node:crypto';
import type { CacheKey } from './types.js';

/** Bumped when the canonical form changes, so old entries can never match new keys. */
const KEY_VERSION = 'v1';

export interface CacheKeyParts {
  site: string;
  path: string;
  /** the source's own query, transform parameters removed */
  sourceQuery: string;
  /** normalized transform spec */
  spec: string;
  /** negotiated output format */
  format: string;
}

/** Escapes the separator (and the escape character itself) so joined parts stay unambiguous. */
function escapePart(part: string): string {
  return part.replace(/[%|]/g, (c) => (c === '%' ? '%25' : '%7C'));
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

function sourceStringOf(site: string, path: string, sourceQuery: string): string {
  return [KEY_VERSION, site, path, sourceQuery].map(escapePart).join('|');
}

export function makeCacheKey(parts: CacheKeyParts): CacheKey {
  const source = sourceStringOf(parts.site, parts.path, parts.sourceQuery);
  const variant = `${source}|${escapePart(parts.spec)}|${escapePart(parts.format)}`;
  return { source, variant, sourceHash: sha256Hex(source), variantHash: sha256Hex(variant) };
}

/** Site and path of a canonical source string (the inverse of sourceStringOf), for prefix purges. */
export function parseSourceString(source: string): { site: string; path: string } | undefined {
  const parts = source.split('|').map((p) => p.replace(/%7C|%25/g, (e) => (e === '%7C' ? '|' : '%')));
  if (parts.length !== 4 || parts[0] !== KEY_VERSION) return undefined;
  return { site: parts[1]!, path: parts[2]! };
}

/** The sourceHash makeCacheKey gives for this source (names the directory a purge removes). */
export function sourceHashOf(site: string, path: string, sourceQuery: string): string {
  return sha256Hex(sourceStringOf(site, path, sourceQuery));
}

/** The purge tag every variant drawn with a watermark carries: purging the mark's URL purges them. */
export const markTag = (markSourceHash: string): string => `imgedge:mark:${markSourceHash}`;
