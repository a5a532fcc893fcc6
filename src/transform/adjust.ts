/**
 * imgix's adjustment and stylize parameters, applied to the output's pixels after geometry, in
 * one pass over raw 8-bit sRGB (alpha untouched), then unsharp masking through libvips. The order
 * is fixed: tone (exp, bri, con, gam, high, shad) → colour (hue, sat, vib) → stylize (sepia,
 * monochrome, duotone) → invert → px → htn → usm. imgix publishes ranges and intent, not
 * formulas: each mapping below is documented in docs/IMGIX.md.
 */
import type { Sharp } from 'sharp';
import { pixelsInWorker } from './quality-pool.js';
import { fromRawFrames, toRawFrames, type RawFrames } from './raw-frames.js';
import type { Adjustments, Color } from './types.js';

/** True when any adjustment asks for the pixel pass. */
export function hasPixelAdjustments(a: Adjustments | undefined): a is Adjustments {
  if (!a) return false;
  return (
    a.exp !== undefined || a.bri !== undefined || a.con !== undefined || a.gam !== undefined || a.high !== undefined ||
    a.shad !== undefined || a.hue !== undefined || a.sat !== undefined || a.vib !== undefined || a.sepia !== undefined ||
    a.monochrome !== undefined || a.duotone !== undefined || a.invert === true || a.px !== undefined || a.htn !== undefined
  );
}

const clamp01 = (x: number) => (x < 0 ? 0 : x > 1 ? 1 : x);
const smoothstep = (a: number, b: number, x: number) => {
  const t = clamp01((x - a) / (b - a));
  return t * t * (3 - 2 * t);
};

/** The tone curve (exp, bri, con, gam, high, shad) as a table on 0..255, the same for R, G and B. */
function toneTable(a: Adjustments): Uint8Array {
  const table = new Uint8Array(256);
  for (let v = 0; v < 256; v++) {
    let x = v / 255;
    if (a.exp) x *= 2 ** (a.exp / 50); // ±2 stops
    if (a.bri) x += a.bri / 200; // ±half the range
    if (a.con) x = (x - 0.5) * (a.con >= 0 ? 1 + a.con / 50 : 1 + a.con / 100) + 0.5; // ×3 … flat grey
    x = clamp01(x);
    if (a.gam) x = x ** (2 ** (-a.gam / 100)); // exponent ½ … 2: positive lifts the mid-tones
    if (a.high) x += (a.high / 100) * 0.25 * smoothstep(0.5, 1, x); // highlights down by up to a quarter
    if (a.shad) x += (a.shad / 100) * 0.25 * (1 - smoothstep(0, 0.5, x)); // shadows up by up to a quarter
    table[v] = Math.round(clamp01(x) * 255);
  }
  return table;
}

/** The CSS hue-rotate matrix (luminance-preserving rotation about the grey axis), row-major. */
function hueMatrix(degrees: number): number[] {
  const r = (degrees * Math.PI) / 180;
  const c = Math.cos(r);
  const s = Math.sin(r);
  return [
    0.213 + c * 0.787 - s * 0.213, 0.715 - c * 0.715 - s * 0.715, 0.072 - c * 0.072 + s * 0.928,
    0.213 - c * 0.213 + s * 0.143, 0.715 + c * 0.285 + s * 0.14, 0.072 - c * 0.072 - s * 0.283,
    0.213 - c * 0.213 - s * 0.787, 0.715 - c * 0.715 + s * 0.715, 0.072 + c * 0.928 + s * 0.072,
  ];
}

const SEPIA = [0.393, 0.769, 0.189, 0.349, 0.686, 0.168, 0.272, 0.534, 0.131];

/** Overlay of a grey level on a colour: black stays black, white stays white, mid-grey takes the colour. */
const overlay = (l: number, c: number) => (l < 0.5 ? 2 * l * c : 1 - 2 * (1 - l) * (1 - c));

/** Mean of each `size`×`size` block written over the block (per frame, alpha too). */
function pixellate(data: Buffer, width: number, height: number, channels: number, size: number): void {
  const sums = new Float64Array(channels);
  for (let by = 0; by < height; by += size) {
    for (let bx = 0; bx < width; bx += size) {
      const y1 = Math.min(height, by + size);
      const x1 = Math.min(width, bx + size);
      sums.fill(0);
      for (let y = by; y < y1; y++) for (let x = bx; x < x1; x++) for (let c = 0; c < channels; c++) sums[c]! += data[(y * width + x) * channels + c]!;
      const n = (y1 - by) * (x1 - bx);
      for (let y = by; y < y1; y++) for (let x = bx; x < x1; x++) for (let c = 0; c < channels; c++) data[(y * width + x) * channels + c] = Math.round(sums[c]! / n);
    }
  }
}

/**
 * A halftone screen: each cell becomes a dot of its own mean colour on white, the dot's area
 * growing with the cell's darkness (cells of 2 + htn/10 pixels, rounded).
 */
function halftone(data: Buffer, width: number, height: number, channels: number, amount: number): void {
  const cell = Math.max(2, Math.round(2 + amount / 10));
  const mean = new Float64Array(3);
  for (let by = 0; by < height; by += cell) {
    for (let bx = 0; bx < width; bx += cell) {
      const y1 = Math.min(height, by + cell);
      const x1 = Math.min(width, bx + cell);
      mean.fill(0);
      for (let y = by; y < y1; y++) for (let x = bx; x < x1; x++) for (let c = 0; c < 3; c++) mean[c]! += data[(y * width + x) * channels + c]!;
      const n = (y1 - by) * (x1 - bx);
      for (let c = 0; c < 3; c++) mean[c]! /= n;
      const luma = (0.2126 * mean[0]! + 0.7152 * mean[1]! + 0.0722 * mean[2]!) / 255;
      // A dot covering (1 - luma) of the cell: area πr² = (1 - luma)·cell².
      const radius = Math.sqrt(((1 - luma) * cell * cell) / Math.PI);
      const cx = bx + cell / 2;
      const cy = by + cell / 2;
      for (let y = by; y < y1; y++) {
        for (let x = bx; x < x1; x++) {
          const inside = (x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2 <= radius * radius;
          for (let c = 0; c < 3; c++) data[(y * width + x) * channels + c] = inside ? Math.round(mean[c]! * Math.min(1, luma + 0.5)) : 255;
        }
      }
    }
  }
}

export interface PixelPass extends RawFrames {
  a: Adjustments;
}

/** Applies every pixel adjustment to raw sRGB pixels in place (3 or 4 channels; alpha untouched). */
export function adjustPixels({ data, width, frameHeight, frames, channels, a }: PixelPass): void {
  const tone = a.exp || a.bri || a.con || a.gam || a.high || a.shad ? toneTable(a) : undefined;
  const hue = a.hue ? hueMatrix(a.hue) : undefined;
  const satFactor = a.sat ? 1 + a.sat / 100 : 1;
  const sepia = a.sepia ? a.sepia / 100 : 0;
  const mono: Color | undefined = a.monochrome;
  const duo = a.duotone;
  const duoAlpha = (a.duotoneAlpha ?? 100) / 100;
  const pixels = width * frameHeight * frames;
  for (let i = 0; i < pixels; i++) {
    const o = i * channels;
    let r = data[o]!;
    let g = data[o + 1]!;
    let b = data[o + 2]!;
    if (tone) {
      r = tone[r]!;
      g = tone[g]!;
      b = tone[b]!;
    }
    let R = r / 255;
    let G = g / 255;
    let B = b / 255;
    if (hue) {
      const [m0, m1, m2, m3, m4, m5, m6, m7, m8] = hue as [number, number, number, number, number, number, number, number, number];
      [R, G, B] = [m0 * R + m1 * G + m2 * B, m3 * R + m4 * G + m5 * B, m6 * R + m7 * G + m8 * B];
    }
    if (satFactor !== 1 || a.vib) {
      const L = 0.2126 * R + 0.7152 * G + 0.0722 * B;
      // Vibrance: saturation changed most where the pixel is least saturated.
      const spread = Math.max(R, G, B) - Math.min(R, G, B);
      const f = satFactor * (a.vib ? 1 + (a.vib / 100) * (1 - spread) : 1);
      R = L + (R - L) * f;
      G = L + (G - L) * f;
      B = L + (B - L) * f;
    }
    if (sepia) {
      const s = SEPIA;
      const [sr, sg, sb] = [s[0]! * R + s[1]! * G + s[2]! * B, s[3]! * R + s[4]! * G + s[5]! * B, s[6]! * R + s[7]! * G + s[8]! * B];
      R += (sr - R) * sepia;
      G += (sg - G) * sepia;
      B += (sb - B) * sepia;
    }
    if (mono) {
      const L = clamp01(0.2126 * R + 0.7152 * G + 0.0722 * B);
      R += (overlay(L, mono.r / 255) - R) * mono.alpha;
      G += (overlay(L, mono.g / 255) - G) * mono.alpha;
      B += (overlay(L, mono.b / 255) - B) * mono.alpha;
    }
    if (duo) {
      const L = clamp01(0.2126 * R + 0.7152 * G + 0.0722 * B);
      const [lo, hi] = duo;
      R += ((lo.r + (hi.r - lo.r) * L) / 255 - R) * duoAlpha;
      G += ((lo.g + (hi.g - lo.g) * L) / 255 - G) * duoAlpha;
      B += ((lo.b + (hi.b - lo.b) * L) / 255 - B) * duoAlpha;
    }
    if (a.invert) {
      R = 1 - R;
      G = 1 - G;
      B = 1 - B;
    }
    data[o] = Math.round(clamp01(R) * 255);
    data[o + 1] = Math.round(clamp01(G) * 255);
    data[o + 2] = Math.round(clamp01(B) * 255);
  }
  for (let f = 0; f < frames; f++) {
    const frame = data.subarray(f * width * frameHeight * channels, (f + 1) * width * frameHeight * channels);
    if (a.px) pixellate(frame, width, frameHeight, channels, a.px);
    if (a.htn) halftone(frame, width, frameHeight, channels, a.htn);
  }
}

/**
 * Runs the pixel pass (on a worker thread) on what `img` has made so far (its blur, sharpen and flatten included) and
 * answers a new pipeline on the result, with unsharp masking added last. Frames are kept (the raw
 * image keeps its page height); frame delays fall back to the encoder's default.
 */
export async function applyAdjustments(img: Sharp, a: Adjustments, frames: number, timeoutSeconds: number): Promise<Sharp> {
  const raw = await toRawFrames(img, frames, timeoutSeconds);
  const changed = hasPixelAdjustments(a) ? await pixelsInWorker<Uint8Array>('adjustPixelsTask', { ...raw, a }) : raw.data;
  const next = fromRawFrames({ ...raw, data: Buffer.from(changed.buffer, changed.byteOffset, changed.byteLength) });
  if (a.usm) {
    // usmrad is imgix's radius (default 2.5); libvips' sigma is about half a radius.
    const sigma = Math.max(0.3, Math.min(10, (a.usmrad ?? 2.5) / 2));
    // Positive: up to 2× in flat areas and 4× on edges; negative: a Gaussian of up to twice sigma.
    if (a.usm > 0) next.sharpen({ sigma, m1: (a.usm / 100) * 2, m2: (a.usm / 100) * 4 });
    else next.blur(Math.max(0.3, (sigma * -a.usm) / 50));
  }
  return next;
}
