/** What the origin's headers allow the edge to cache, and for how long. */

export interface CachePolicy {
  cacheable: boolean;
  /** seconds the edge keeps the entry (0 when not cacheable) */
  ttl: number;
  /** Cache-Control sent to clients */
  cacheControl: string;
  /** why it is not cacheable, for the log */
  reason?: string;
}

/** Parses `Cache-Control` into lower-case directives; `max-age=60` → ['max-age', '60']. */
export function parseCacheControl(header: string | undefined): Map<string, string | true> {
  const out = new Map<string, string | true>();
  for (const part of (header ?? '').split(',')) {
    const [rawName, ...rest] = part.split('=');
    const name = rawName?.trim().toLowerCase();
    if (!name) continue;
    const value = rest.join('=').trim().replace(/^"|"$/g, '');
    out.set(name, value === '' ? true : value);
  }
  return out;
}

function seconds(v: string | true | undefined): number | undefined {
  if (typeof v !== 'string' || !/^\d+$/.test(v)) return undefined;
  return Number(v);
}

const uncacheable = (reason: string, cacheControl: string): CachePolicy => ({ cacheable: false, ttl: 0, cacheControl, reason });

/**
 * The site's TTL, shortened by the origin's s-maxage / max-age. Nothing is cached that the
 * origin marks private or no-store, sets a cookie on, or varies on Cookie or Authorization
 * (caching those would hand one user's image to another).
 */
export function cachePolicyFor(headers: Record<string, string>, siteTtl: number): CachePolicy {
  const cc = parseCacheControl(headers['cache-control']);
  const originCc = headers['cache-control'] ?? 'no-store';
  if (cc.has('private')) return uncacheable('private', originCc);
  if (cc.has('no-store')) return uncacheable('no-store', originCc);
  if (cc.has('no-cache')) return uncacheable('no-cache', originCc);
  if (headers['set-cookie'] !== undefined) return uncacheable('set-cookie', 'private, no-store');
  const vary = (headers['vary'] ?? '').toLowerCase().split(',').map((v) => v.trim());
  if (vary.some((v) => v === '*' || v === 'cookie' || v === 'authorization')) {
    return uncacheable(`vary: ${headers['vary']}`, 'private, no-store');
  }
  const originMaxAge = seconds(cc.get('s-maxage')) ?? seconds(cc.get('max-age'));
  const ttl = Math.min(siteTtl, originMaxAge ?? siteTtl);
  if (ttl <= 0) return uncacheable('max-age=0', originCc);
  return { cacheable: true, ttl, cacheControl: `public, max-age=${ttl}` };
}

/** Cache-Control for a hit: what is left of the entry's lifetime. */
export function remainingCacheControl(expiresAt: number, now = Date.now()): string {
  return `public, max-age=${Math.max(0, Math.round((expiresAt - now) / 1000))}`;
}
