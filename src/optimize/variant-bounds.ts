import { LRUCache } from 'lru-cache';
import { badParam, EdgeError } from '../errors.js';
import type { TransformParams } from '../transform/types.js';

/** A site's limits on which variants may be made, so nobody can fill the disk with unique sizes. */
export interface VariantBounds {
  /** Allowed output widths. Only `w` is checked, not `h`: `h` is bounded by maxVariantsPerSource. */
  widths?: number[];
  /** Allowed explicit `q` values; a quality the edge picks itself (auto=compress) is not checked. */
  qualities?: number[];
  /** Distinct variants one source may have on this node. */
  maxVariantsPerSource?: number;
}

/**
 * Throws EdgeError('EDGE_BAD_PARAM', …, { param: 'w' | 'q' }) when w or q is not in its
 * allow-list. params.w already has dpr folded in, so the list holds output pixels, like Next.js
 * deviceSizes: `w=150&dpr=2` passes when 300 is allowed. Absent w or q is not checked.
 */
export function checkVariantBounds(params: TransformParams, bounds: VariantBounds): void {
  if (bounds.widths && params.w !== undefined && !bounds.widths.includes(params.w)) {
    throw badParam('w', `w (times dpr) must be one of ${bounds.widths.join(', ')}, got ${params.w}`);
  }
  if (bounds.qualities && params.q !== undefined && !bounds.qualities.includes(params.q)) {
    throw badParam('q', `q must be one of ${bounds.qualities.join(', ')}, got ${params.q}`);
  }
}

/**
 * Counts the distinct variants made of each source, in memory on this node. A new variant beyond
 * the cap is refused; variants already admitted keep being served. Memory stays bounded: at most
 * `maxSources` sources (least recently used dropped first), each with at most `max` variant
 * hashes. A dropped source starts counting afresh; call forget() when a source is purged.
 */
export class VariantCounter {
  private readonly variants: LRUCache<string, Set<string>>;

  constructor(
    private readonly max: number,
    maxSources = 10_000,
  ) {
    this.variants = new LRUCache({ max: maxSources });
  }

  /** Throws EdgeError('EDGE_TOO_MANY_VARIANTS') for a new variant beyond the cap. */
  admit(sourceHash: string, variantHash: string): void {
    let seen = this.variants.get(sourceHash);
    if (seen?.has(variantHash)) return;
    if (!seen) this.variants.set(sourceHash, (seen = new Set()));
    if (seen.size >= this.max) {
      throw new EdgeError('EDGE_TOO_MANY_VARIANTS', `this image already has ${this.max} variants; use one of its existing sizes`, { limit: this.max });
    }
    seen.add(variantHash);
  }

  forget(sourceHash: string): void {
    this.variants.delete(sourceHash);
  }
}
