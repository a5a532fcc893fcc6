/**
 * The hit fast path. A request target (Host, raw URL, Accept, Accept-Language) that was answered
 * with an image variant once maps to the same cache key every time: parsing, the signature, the
 * bounds and the negotiation depend on nothing else, and none of them changes while the process
 * runs. So a repeat request skips them and goes straight to the cache; purges still apply, since
 * the cache lookup itself is not skipped. Only answers from the cache or a fresh transform are
 * remembered, never errors, passthrough or stale answers.
 */
import type { IncomingMessage } from 'node:http';
import { LRUCache } from 'lru-cache';
import type { CacheKey } from '../cache/types.js';
import type { Site } from '../optimize/sites.js';

export interface KnownVariant {
  site: Site;
  /** the URL's path, for the request log */
  path: string;
  key: CacheKey;
  vary: string;
}

export class KnownVariants {
  private readonly lru: LRUCache<string, KnownVariant>;

  constructor(max: number) {
    this.lru = new LRUCache({ max });
  }

  /** The identity of a request as far as choosing a variant goes. */
  static targetOf(req: IncomingMessage): string {
    const h = req.headers;
    const target = `${h.host ?? ''}\n${req.url ?? ''}\n${h.accept ?? ''}\n${h['accept-language'] ?? ''}`;
    // Client hints can change the variant (ch= in the URL, or in a site's defaults): when a
    // browser sends any, they are part of the identity.
    const hints = h['sec-ch-width'] ?? h.width ?? h['sec-ch-dpr'] ?? h.dpr ?? h['save-data'];
    if (hints === undefined) return target;
    return `${target}\n${h['sec-ch-width'] ?? ''}\n${h.width ?? ''}\n${h['sec-ch-dpr'] ?? ''}\n${h.dpr ?? ''}\n${h['save-data'] ?? ''}`;
  }

  get(target: string): KnownVariant | undefined {
    return this.lru.get(target);
  }

  remember(target: string, known: KnownVariant): void {
    this.lru.set(target, known);
  }
}
