/**
 * auto=compress: the quality of each image is searched, not fixed. Candidates are encoded with the
 * edge's own encoder settings (encode.ts), decoded, and scored against the resized reference by
 * SSIMULACRA 2 (ssimulacra2.ts); the search stops at the lowest quality it finds whose score meets
 * the site's target, within a small tolerance above it. Chroma subsampling is judged by the same
 * metric. Large outputs are measured on a mosaic of full-resolution tiles (measure-view.ts).
 */
import sharp from 'sharp';
import { applyEncoder } from './encode.js';
import { measurementView, type MeasurementView } from './measure-view.js';
import { SSIMULACRA2_ALPHA_BACKGROUND, Ssimulacra2Reference } from './ssimulacra2.js';
import type { ExifFields, OutputChoice, QualityTarget, RawImage, TransformParams } from './types.js';

/**
 * SSIMULACRA 2 score each target searches for (100 = identical). Chosen on the metric's own
 * anchors: 90 is "impossible to tell from the original at 1:1", 70 "high quality" (the mean of
 * mozjpeg q70), 50 "medium". `high` sits between the two top anchors, so nobody has to look; `low`
 * just under the "high quality" one. docs/QUALITY.md shows where they land on real photographs.
 */
export const QUALITY_TARGETS: Record<QualityTarget, number> = { high: 80, medium: 74, low: 68 };

/** A passing candidate this close above the target ends the search (score points). */
const TOLERANCE = 2;
/** The search aims this far above the target, inside the tolerance band, so a guess tends to pass. */
const AIM = 0.8;
/** Never more encodes than the bisection this search replaced (6, and a 7th when all failed). */
const MAX_SEARCH_ENCODES = 7;

export interface EncodeSettings {
  format: 'jpeg' | 'webp' | 'avif';
  progressive: boolean;
  chroma: '4:2:0' | '4:4:4';
  avifEffort: number;
  /** keep the reference's alpha (WebP/AVIF); otherwise it is composited over white */
  alpha: boolean;
  /** EXIF fields to write (copyright, dates, geotag), in every candidate so the measured bytes are the served ones */
  exif?: ExifFields;
  /** libvips gives up on one encode or decode after this long */
  timeoutSeconds?: number;
}

export interface QualityChoice {
  body: Buffer;
  quality: number;
  /** SSIMULACRA 2 score of the chosen quality, on the measurement view */
  score: number;
  /** encodes made: the probes, plus the final whole image when probes ran on a mosaic */
  encodes: number;
}

/** Integer quality range searched per format (AVIF's scale runs lower for the same look). */
export const QUALITY_RANGES: Record<EncodeSettings['format'], { min: number; max: number }> = {
  jpeg: { min: 30, max: 95 },
  webp: { min: 30, max: 95 },
  avif: { min: 25, max: 90 },
};

/**
 * Where the search starts: the corpus median quality per format and target, moved by how much
 * more detailed (or flatter) this image is than the corpus median. Least squares on the corpus
 * (JPEG, `high`): q ≈ 69 + 7.4·ln(detail) + 15·flat, residual sd 4.1 against 5.4 for the median
 * alone; the same slopes serve the other formats. WebP and AVIF at `high` are their corpus medians;
 * their `medium` and `low` keep JPEG's steps, scaled to their ranges. With the typical score points per quality step
 * near there, a photograph usually ends after one to three encodes (docs/QUALITY.md).
 */
const START: Record<EncodeSettings['format'], Record<QualityTarget, number>> = {
  jpeg: { high: 84, medium: 74, low: 63 },
  webp: { high: 86, medium: 80, low: 74 },
  avif: { high: 66, medium: 58, low: 50 },
};
const CORPUS_DETAIL = 4.1;
const CORPUS_FLAT = 0.24;
const DETAIL_WEIGHT = 7.4;
const FLAT_WEIGHT = 15;
const SLOPE: Record<EncodeSettings['format'], number> = { jpeg: 0.6, webp: 0.55, avif: 0.5 };

function predictQuality(stats: ImageStatistics, format: EncodeSettings['format'], target: QualityTarget): number {
  const { min, max } = QUALITY_RANGES[format];
  const q = START[format][target] + DETAIL_WEIGHT * Math.log(Math.max(stats.detail, 0.25) / CORPUS_DETAIL) + FLAT_WEIGHT * (stats.flat - CORPUS_FLAT);
  return Math.min(max, Math.max(min, Math.round(q)));
}

function sharpRaw(img: RawImage) {
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: img.channels as 3 | 4 } });
}

/** Encodes `ref` exactly as the edge does (applyEncoder), with this image's chroma. */
export async function encodeCandidate(ref: RawImage, settings: EncodeSettings, quality: number): Promise<Buffer> {
  const img = sharpRaw(ref);
  if (ref.channels === 4 && (!settings.alpha || settings.format === 'jpeg')) img.flatten({ background: '#ffffff' });
  if (settings.exif) img.withExif(settings.exif);
  const params: TransformParams = {
    fit: 'clip',
    crop: [],
    auto: { format: false, compress: true },
    lossless: false,
    q: quality,
    chromasub: settings.chroma === '4:4:4' ? 444 : 420,
  };
  const out: OutputChoice = { format: settings.format, progressive: settings.progressive, palette: false, animated: false };
  applyEncoder(img, out, params, settings.avifEffort);
  if (settings.timeoutSeconds) img.timeout({ seconds: settings.timeoutSeconds });
  return img.toBuffer();
}

export async function decodeRaw(body: Buffer, timeoutSeconds?: number): Promise<RawImage> {
  const img = sharp(body).raw();
  if (timeoutSeconds) img.timeout({ seconds: timeoutSeconds });
  const { data, info } = await img.toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

/** What the metric compares against: JPEG (no alpha) is measured as served, over white. */
export function meterFor(view: RawImage, settings: { format: string; alpha: boolean }): Ssimulacra2Reference {
  const overWhite = settings.format === 'jpeg' || !settings.alpha;
  return new Ssimulacra2Reference(view, overWhite ? 1 : SSIMULACRA2_ALPHA_BACKGROUND);
}

interface Probe {
  quality: number;
  score: number;
  body: Buffer;
}

/** The largest step one extrapolation may take: a flat stretch of the curve must not throw the search across the range. */
const MAX_STEP = 10;

/**
 * The next quality to try. With a failing and a passing probe on either side: where the line
 * between them reaches goal + AIM (regula falsi, so always inside the bracket). With one side only:
 * extrapolate from the two probes nearest the goal, or from the format's typical slope when those
 * two are flat or falling (encoders have plateaus), at most MAX_STEP away. Never a quality tried.
 */
function nextQuality(probes: Probe[], goal: number, pass: Probe | undefined, fail: Probe | undefined, format: EncodeSettings['format']): number {
  const { min, max } = QUALITY_RANGES[format];
  const lo = fail ? fail.quality + 1 : min;
  const hi = pass ? pass.quality - 1 : max;
  let q: number;
  if (pass && fail) {
    q = fail.quality + ((goal + AIM - fail.score) * (pass.quality - fail.quality)) / Math.max(pass.score - fail.score, 1e-6);
  } else {
    const [a, b] = [...probes].sort((x, y) => Math.abs(x.score - goal) - Math.abs(y.score - goal));
    let slope = SLOPE[format];
    if (a && b && a.quality !== b.quality) {
      const secant = (a.score - b.score) / (a.quality - b.quality);
      if (secant > SLOPE[format] / 4) slope = secant;
    }
    const step = (goal + AIM - a!.score) / slope;
    q = a!.quality + Math.sign(step) * Math.min(MAX_STEP, Math.max(1, Math.abs(step)));
  }
  q = Math.min(hi, Math.max(lo, Math.round(q)));
  const tried = new Set(probes.map((p) => p.quality));
  if (tried.has(q)) q = Math.round((lo + hi) / 2);
  return q;
}

/**
 * The lowest quality in the format's range whose score meets `target` (within TOLERANCE above it
 * when the search ends early), or the top of the range when none does. Starts at the format's
 * typical quality for the target, then extrapolates or interpolates on the scores inside a
 * shrinking bracket: two or three encodes on most photographs, at most MAX_SEARCH_ENCODES.
 * When even the top fails at 4:2:0, the same search runs at full chroma with the encodes left
 * (4:4:4 for JPEG and AVIF, libwebp's sharp YUV conversion for WebP): chroma judged by the
 * metric. Returns the whole image's bytes.
 */
export async function searchQuality(
  ref: RawImage,
  settings: EncodeSettings,
  target: QualityTarget,
  view: MeasurementView = measurementView(ref),
  mayRaiseChroma = true,
): Promise<QualityChoice & { chroma: EncodeSettings['chroma'] }> {
  const goal = QUALITY_TARGETS[target];
  const meter = meterFor(view.image, settings);
  const { min, max } = QUALITY_RANGES[settings.format];
  let encodes = 0;
  const start = predictQuality(imageStatistics(view.image), settings.format, target);
  const search = async (chroma: EncodeSettings['chroma'], budget: number) => {
    const probes: Probe[] = [];
    const probe = async (quality: number): Promise<Probe> => {
      const body = await encodeCandidate(view.image, { ...settings, chroma }, quality);
      encodes++;
      const p = { quality, body, score: meter.compare(await decodeRaw(body, settings.timeoutSeconds)) };
      probes.push(p);
      return p;
    };
    let pass: Probe | undefined; // lowest passing
    let fail: Probe | undefined; // highest failing
    let q = start;
    while (probes.length < budget) {
      const p = await probe(q);
      if (p.score >= goal) {
        if (!pass || p.quality < pass.quality) pass = p;
      } else if (!fail || p.quality > fail.quality) fail = p;
      if (pass && pass.score - goal <= TOLERANCE) break;
      if (pass && fail && pass.quality - fail.quality <= 1) break;
      if ((!pass && p.quality >= max) || (!fail && p.quality <= min)) break;
      q = nextQuality(probes, goal, pass, fail, settings.format);
    }
    // Nothing passed: the top of the range, when the budget still allows trying it.
    const best = [...probes].sort((x, y) => y.score - x.score)[0];
    return pass ?? probes.find((p) => p.quality === max) ?? (probes.length < budget ? await probe(max) : best!);
  };
  let chroma = settings.chroma;
  let chosen: Probe;
  try {
    chosen = await search(chroma, MAX_SEARCH_ENCODES);
    if (chosen.score < goal && chroma === '4:2:0' && mayRaiseChroma && encodes < MAX_SEARCH_ENCODES) {
      const full = await search('4:4:4', MAX_SEARCH_ENCODES - encodes);
      if (full.score > chosen.score) [chosen, chroma] = [full, '4:4:4'];
    }
  } finally {
    meter.dispose();
  }
  const result = { quality: chosen.quality, score: chosen.score, chroma };
  if (view.whole) return { ...result, body: chosen.body, encodes };
  return { ...result, body: await encodeCandidate(ref, { ...settings, chroma }, chosen.quality), encodes: encodes + 1 };
}

/**
 * auto=compress for one rendered image: the measurement view, the chroma (unless given), then the
 * search. What the edge runs per image and what the benchmark measures.
 */
export async function autoCompress(
  ref: RawImage,
  base: Omit<EncodeSettings, 'chroma'>,
  target: QualityTarget,
  explicitChroma?: EncodeSettings['chroma'],
): Promise<QualityChoice & { chroma: EncodeSettings['chroma']; whole: boolean }> {
  const view = measurementView(ref);
  const chroma = explicitChroma ?? chooseChroma(view.image, target);
  const choice = await searchQuality(ref, { ...base, chroma }, target, view, !explicitChroma);
  return { ...choice, whole: view.whole };
}

const clamp8 = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : Math.round(v));

/**
 * The image as 4:2:0 leaves it before any quantization: BT.601 full-range YCbCr (as JFIF stores
 * it, alpha over white as JPEG is served), each 2×2 block's chroma averaged (an odd last row or
 * column pairs with itself, as libjpeg pads), luma kept. Also returns how far that moved the
 * colour of saturated pixels at colour edges: the share of such pixels and their median shift.
 * Without `withImage` only those two are computed (the cheap test most photographs stop at).
 */
export function simulate420(img: RawImage, withImage = true): { image?: RawImage; edgeShare: number; medianShift: number } {
  const { width, height, channels, data } = img;
  const n = width * height;
  const Y = new Float32Array(n);
  const Cb = new Float32Array(n);
  const Cr = new Float32Array(n);
  for (let i = 0, o = 0; i < n; i++, o += channels) {
    const a = channels === 4 ? data[o + 3]! / 255 : 1;
    const r = data[o]! * a + 255 * (1 - a);
    const g = data[o + 1]! * a + 255 * (1 - a);
    const b = data[o + 2]! * a + 255 * (1 - a);
    Y[i] = 0.299 * r + 0.587 * g + 0.114 * b;
    Cb[i] = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b;
    Cr[i] = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b;
  }
  const out = withImage ? Buffer.alloc(n * 3) : undefined;
  const shifts: number[] = [];
  for (let y = 0; y < height; y += 2) {
    const below = y + 1 < height ? width : 0;
    for (let x = 0; x < width; x += 2) {
      const i = y * width + x;
      const right = x + 1 < width ? 1 : 0;
      const cb = (Cb[i]! + Cb[i + right]! + Cb[i + below]! + Cb[i + below + right]!) / 4;
      const cr = (Cr[i]! + Cr[i + right]! + Cr[i + below]! + Cr[i + below + right]!) / 4;
      // the block's distinct pixels (an odd edge repeats one)
      for (let k = 0; k < 4; k++) {
        if ((k & 1 && !right) || (k & 2 && !below)) continue;
        const p = i + (k & 1 ? 1 : 0) + (k & 2 ? width : 0);
        const dCb = Cb[p]! - cb;
        const dCr = Cr[p]! - cr;
        const shift2 = dCb * dCb + dCr * dCr;
        if (shift2 > EDGE_SHIFT * EDGE_SHIFT) {
          const sCb = Cb[p]! - 128;
          const sCr = Cr[p]! - 128;
          if (sCb * sCb + sCr * sCr >= SATURATED * SATURATED) shifts.push(Math.sqrt(shift2));
        }
        if (out) {
          const l = Y[p]!;
          out[p * 3] = clamp8(l + 1.402 * (cr - 128));
          out[p * 3 + 1] = clamp8(l - 0.344136 * (cb - 128) - 0.714136 * (cr - 128));
          out[p * 3 + 2] = clamp8(l + 1.772 * (cb - 128));
        }
      }
    }
  }
  shifts.sort((a, b) => a - b);
  return {
    ...(out ? { image: { data: out, width, height, channels: 3 } } : {}),
    edgeShare: shifts.length / n,
    medianShift: shifts[shifts.length >> 1] ?? 0,
  };
}

/** Chroma this far from grey counts as saturated (pure red ≈ 190, sky blue ≈ 60, skin ≈ 30). */
const SATURATED = 50;
/** A saturated pixel whose chroma 4:2:0 moves by more than this sits at a colour edge. */
const EDGE_SHIFT = 2;
/**
 * The metric is asked only where such edges cover at least this share of the pixels and 4:2:0
 * moves them by a median of more than WASHED_OUT: hard saturated edges (text, logos, red on white)
 * lose a third of their colour or more. On the 39 photographs of the corpus at 800 px the median
 * stays at or under 12 (rocky-coast 11.9, the rocket night sky 10.7); where 4:2:0 still misses the
 * target on a photograph (that rocket), the search's own fallback to full chroma catches it.
 */
const MIN_EDGE_SHARE = 0.0005;
const WASHED_OUT = 12;
/**
 * 4:4:4 when 4:2:0 alone (no quantization yet) leaves less than this many score points above the
 * target: the encoder would have to spend the difference on every other block.
 */
const CHROMA_HEADROOM = 10;

/**
 * '4:4:4' where 4:2:0 by itself would cost most of the quality budget (red text on white, thin
 * saturated lines), judged by the search's own metric; '4:2:0' for everything else.
 */
export function chooseChroma(view: RawImage, target: QualityTarget): '4:2:0' | '4:4:4' {
  const { edgeShare, medianShift } = simulate420(view, false);
  if (edgeShare < MIN_EDGE_SHARE || medianShift <= WASHED_OUT) return '4:2:0';
  const meter = new Ssimulacra2Reference(view, 1); // alpha over white, as simulated
  let score: number;
  try {
    score = meter.compare(simulate420(view).image!);
  } finally {
    meter.dispose();
  }
  return score < QUALITY_TARGETS[target] + CHROMA_HEADROOM ? '4:4:4' : '4:2:0';
}

/** Cheap statistics of an image's luma that predict where the search starts. */
interface ImageStatistics {
  /** mean absolute difference between neighbouring pixels (0–255): texture and edge density */
  detail: number;
  /** share of 8×8 blocks whose luma varies by under 2 levels (sky, studio backgrounds) */
  flat: number;
}

function imageStatistics(img: RawImage): ImageStatistics {
  const { width, height, channels, data } = img;
  const y = new Float32Array(width * height);
  for (let i = 0, o = 0; i < y.length; i++, o += channels) y[i] = 0.299 * data[o]! + 0.587 * data[o + 1]! + 0.114 * data[o + 2]!;
  let sum = 0;
  for (let r = 0; r < height - 1; r++) {
    for (let x = 0, i = r * width; x < width - 1; x++, i++) sum += Math.abs(y[i + 1]! - y[i]!) + Math.abs(y[i + width]! - y[i]!);
  }
  let flat = 0;
  let blocks = 0;
  for (let by = 0; by + 8 <= height; by += 8) {
    for (let bx = 0; bx + 8 <= width; bx += 8) {
      let s = 0, ss = 0;
      for (let r = by; r < by + 8; r++) for (let i = r * width + bx, end = i + 8; i < end; i++) { s += y[i]!; ss += y[i]! * y[i]!; }
      blocks++;
      if (ss / 64 - (s / 64) ** 2 < 4) flat++;
    }
  }
  return { detail: sum / Math.max(1, 2 * (width - 1) * (height - 1)), flat: blocks ? flat / blocks : 0 };
}
