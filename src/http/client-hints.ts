/**
 * imgix's `ch=`: client hints a URL opts into change its output. `Sec-CH-Width`/`Width` sets the
 * width when the URL gives none (physical pixels, snapped up to the site's step or its allowed
 * widths, so hints cannot split the cache without limit), `Sec-CH-DPR`/`DPR` multiplies the sizes
 * the URL gives (in half steps), `Save-Data: on` lowers the quality. The folded parameters form the
 * cache key; `Vary` names exactly the hint headers the URL asked for.
 */
import type { IncomingMessage } from 'node:http';
import { MAX_SIZE, canonicalize } from '../transform/params.js';
import type { ParsedParams } from '../transform/types.js';
import type { Site } from '../optimize/sites.js';

const VARY: Record<string, string[]> = { width: ['Sec-CH-Width', 'Width'], dpr: ['Sec-CH-DPR', 'DPR'], 'save-data': ['Save-Data'] };

const hint = (req: IncomingMessage, names: string[]): number | undefined => {
  for (const name of names) {
    const v = Number(req.headers[name.toLowerCase()]);
    if (Number.isFinite(v) && v > 0) return v;
  }
  return undefined;
};

/** `px` snapped up to the site's allowed widths (the largest when past them all), else to its step. */
function snapWidth(px: number, site: Site): number {
  const allowed = site.config.bounds.widths;
  if (allowed && allowed.length > 0) {
    const sorted = [...allowed].sort((a, b) => a - b);
    return sorted.find((w) => w >= px) ?? sorted[sorted.length - 1]!;
  }
  const step = site.config.clientHints.widthStep;
  return Math.min(MAX_SIZE, Math.ceil(px / step) * step);
}

/**
 * The parameters with the request's hints folded in, and the hint headers to name in Vary.
 * `urlDpr`: the URL gave its own dpr (already folded into w and h), which the DPR hint leaves be.
 */
export function applyClientHints(req: IncomingMessage, parsed: ParsedParams, site: Site, urlDpr: boolean): { parsed: ParsedParams; vary: string[] } {
  const asked = parsed.params.ch;
  if (!asked) return { parsed, vary: [] };
  const p = { ...parsed.params };
  const width = asked.includes('width') ? hint(req, VARY.width!) : undefined;
  const dpr = asked.includes('dpr') && !urlDpr ? hint(req, VARY.dpr!) : undefined;
  if (width !== undefined && p.w === undefined && p.h === undefined) {
    // Width is already in physical pixels: DPR is not applied again.
    p.w = snapWidth(width, site);
  } else if (dpr !== undefined && dpr > 1) {
    // Both sides by one ratio (the width's, after snapping), so the shape asked for is kept.
    const factor = Math.min(5, Math.ceil(dpr * 2) / 2);
    const ratio = p.w !== undefined ? snapWidth(p.w * factor, site) / p.w : factor;
    if (p.w !== undefined) p.w = Math.min(MAX_SIZE, Math.round(p.w * ratio));
    if (p.h !== undefined) p.h = Math.min(MAX_SIZE, Math.round(p.h * ratio));
  }
  if (asked.includes('save-data') && String(req.headers['save-data'] ?? '').trim().toLowerCase() === 'on') p.saveData = true;
  return { parsed: { ...parsed, params: p, canonical: canonicalize(p) }, vary: asked.flatMap((h) => VARY[h] ?? []) };
}
