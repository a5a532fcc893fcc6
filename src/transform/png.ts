/**
 * PNG strategy (Kraken.io's rule): count unique colours only where it decides something.
 * ≤ 256 colours → an exact palette PNG; more, with compress or png8 → libimagequant
 * quantization; otherwise truecolour at the strongest deflate.
 */
import type { PngOptions } from 'sharp';
import type { RawImage } from './types.js';

const MAX_PALETTE = 256;
/** libimagequant's quality ceiling for a lossy palette (sharp sets no floor, so quantizing never fails). */
const LOSSY_QUALITY = 80;
/**
 * sharp's PNG `effort` is libimagequant's speed (11 − effort), not deflate effort, and any
 * effort turns palette on. An exact palette is cheap at 10; effort ≤ 3 posterizes (drops each
 * channel's low bit), so exact palettes need ≥ 4. For lossy quantization 10 costs ~2× the time
 * of 7 (pngquant's default speed 4) for ~0.1 % smaller files, so 7.
 */
const EXACT_EFFORT = 10;
const LOSSY_EFFORT = 7;

export interface PngPlan {
  palette: boolean;
  /** palette entries; also sets the bit depth (≤ 2 → 1 bit, ≤ 4 → 2, ≤ 16 → 4) */
  colours?: number;
  quality?: number;
  dither?: number;
  /** decoding gives back the input's pixels */
  lossless: boolean;
}

function nextPowerOfTwo(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/**
 * Distinct colours of `img`, stopping at `limit + 1`. Every fully transparent pixel counts as
 * one colour whatever its RGB: it is invisible, and libimagequant rewrites it anyway.
 */
export function countColours(img: RawImage, limit: number): number {
  const { data, channels } = img;
  const pixels = img.width * img.height;
  // Open addressing in typed arrays: a Set of numbers is several times slower on large images.
  const size = nextPowerOfTwo(2 * Math.min(limit + 1, pixels) + 1);
  const mask = size - 1;
  const keys = new Uint32Array(size);
  const used = new Uint8Array(size);
  const hasAlpha = channels === 2 || channels === 4;
  let count = 0;
  let previous = -1;
  for (let i = 0, o = 0; i < pixels; i++, o += channels) {
    let key = data[o]!;
    for (let c = 1; c < channels; c++) key = (key | (data[o + c]! << (8 * c))) >>> 0;
    if (hasAlpha && data[o + channels - 1] === 0) key = 0;
    if (key === previous) continue; // flat art repeats the same colour in long runs
    previous = key;
    let slot = Math.imul(key, 0x9e3779b1) & mask;
    while (used[slot] && keys[slot] !== key) slot = (slot + 1) & mask;
    if (used[slot]) continue;
    if (++count > limit) return limit + 1;
    used[slot] = 1;
    keys[slot] = key;
  }
  return count;
}

/**
 * `quality` is an explicit q (libimagequant's ceiling for a lossy palette), not imgix's default
 * 45: without one the palette aims at 80. It does not apply to ≤ 256 colours, which stay exact.
 */
export function planPng(img: RawImage, opts: { compress: boolean; requestedPalette: boolean; quality?: number }): PngPlan {
  const colours = countColours(img, MAX_PALETTE);
  if (colours <= MAX_PALETTE) {
    // quality 100 stops libimagequant from merging colours; no dither since nothing needs it.
    return { palette: true, colours: Math.max(2, colours), quality: 100, dither: 0, lossless: true };
  }
  if (opts.compress || opts.requestedPalette) {
    return { palette: true, quality: opts.quality ?? LOSSY_QUALITY, dither: 1, lossless: false };
  }
  return { palette: false, lossless: true };
}

export function pngOptions(plan: PngPlan): PngOptions {
  if (!plan.palette) return { compressionLevel: 9, adaptiveFiltering: true, palette: false };
  return {
    compressionLevel: 9,
    // Row filters help exact flat art but fight dither noise (a dithered photo grows ~70 % with them).
    adaptiveFiltering: plan.lossless,
    palette: true,
    effort: plan.lossless ? EXACT_EFFORT : LOSSY_EFFORT,
    ...(plan.colours !== undefined ? { colours: plan.colours } : {}),
    ...(plan.quality !== undefined ? { quality: plan.quality } : {}),
    ...(plan.dither !== undefined ? { dither: plan.dither } : {}),
  };
}
