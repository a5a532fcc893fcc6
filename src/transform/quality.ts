/**
 * auto=compress: the quality of each image is searched, not fixed. Candidates are encoded with the
 * edge's own encoder settings (encode.ts), decoded, and measured against the resized reference with
 * SSIM on luma (ssim.ts); the lowest quality whose mean AND worst windows meet the target wins.
 * Also per image: chroma subsampling (4:4:4 only where 4:2:0 would wash out saturated detail) and
 * JPEG overshoot deringing (subjects on flat white).
 */
import sharp from 'sharp';
import { applyEncoder } from './encode.js';
import { SsimReference, chromaDistance, chromaPlanes, type ChromaPlanes, type RawImage, type SsimScore } from './ssim.js';
import type { OutputChoice, QualityTarget, TransformParams } from './types.js';

export type { RawImage } from './ssim.js';

/**
 * SSIM thresholds per target, calibrated with loadtest/quality.ts (docs/QUALITY.md). Anchored on
 * smooth photos (sky, skin, hills), where SSIM is most lenient: there `high` lands where a 2×
 * zoom shows no difference, `medium` where only a search for artifacts finds them, `low` where
 * blocking starts to show at 2× but not at 1×. Textures, noise and flat-background graphics score
 * lower at the same look, so they land at or above their own visual anchor (never below).
 * `worst` (the worst 1 % of 8×8 windows) is the binding threshold for most images: it keeps
 * banding in a sky or ringing next to an edge on white from hiding behind a good mean.
 */
export const QUALITY_TARGETS: Record<QualityTarget, SsimScore> = {
  high: { mean: 0.98, worst: 0.96 },
  medium: { mean: 0.97, worst: 0.945 },
  low: { mean: 0.96, worst: 0.925 },
};

export interface EncodeSettings {
  format: 'jpeg' | 'webp' | 'avif';
  progressive: boolean;
  chroma: '4:2:0' | '4:4:4';
  dering: boolean;
  avifEffort: number;
  /** keep the reference's alpha (WebP/AVIF); otherwise it is composited over white */
  alpha: boolean;
  /** EXIF IFD0 entries to write (e.g. Copyright, Artist), in every candidate so the measured bytes are the served ones */
  credits?: Record<string, string>;
  /** libvips gives up on one encode or decode after this long */
  timeoutSeconds?: number;
}

export interface QualityChoice {
  body: Buffer;
  quality: number;
  mean: number;
  worst: number;
  encodes: number;
}

/** Integer quality range searched per format (AVIF's scale runs lower for the same look). */
export const QUALITY_RANGES: Record<EncodeSettings['format'], { min: number; max: number }> = {
  jpeg: { min: 30, max: 95 },
  webp: { min: 30, max: 95 },
  avif: { min: 25, max: 90 },
};

/** Bisection over 66 values resolves to ±1 in 6 encodes; a 7th only when even the top fails and was not tried. */
const MAX_SEARCH_ENCODES = 6;

function sharpRaw(img: RawImage) {
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: img.channels as 3 | 4 } });
}

/** Encodes `ref` exactly as the edge does (applyEncoder), with this image's chroma and deringing. */
export async function encodeCandidate(ref: RawImage, settings: EncodeSettings, quality: number): Promise<Buffer> {
  const img = sharpRaw(ref);
  if (ref.channels === 4 && (!settings.alpha || settings.format === 'jpeg')) img.flatten({ background: '#ffffff' });
  if (settings.credits) img.withExif({ IFD0: settings.credits });
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
  // encode.ts always turns deringing on; here only where it pays (a second jpeg() call changes only this option).
  if (settings.format === 'jpeg') img.jpeg({ overshootDeringing: settings.dering });
  if (settings.timeoutSeconds) img.timeout({ seconds: settings.timeoutSeconds });
  return img.toBuffer();
}

export async function decodeRaw(body: Buffer, timeoutSeconds?: number): Promise<RawImage> {
  const img = sharp(body).raw();
  if (timeoutSeconds) img.timeout({ seconds: timeoutSeconds });
  const { data, info } = await img.toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

/**
 * The lowest quality in the format's range whose decoded encode meets both SSIM thresholds of
 * `target`, by bisection; the top of the range when none does. Returns that encode's bytes.
 *
 * Measured at full size, every window: the artifacts that decide (ringing, jaggies, mosquito
 * noise) are 1–4 px wide and a 2× downscale averages them away. On the benchmark's product shot
 * at JPEG q30, visibly damaged along its edge, the worst windows score 0.68 at full size but 0.95
 * at half size, better than a clean sky there. Tile subsets would miss a lone damaged edge. The
 * reference side is prepared once; a decode + SSIM costs about half a JPEG encode and a quarter
 * of an AVIF one (docs/QUALITY.md).
 */
export async function searchQuality(ref: RawImage, settings: EncodeSettings, target: QualityTarget): Promise<QualityChoice> {
  const goal = QUALITY_TARGETS[target];
  const meter = new SsimReference(ref);
  const { min, max } = QUALITY_RANGES[settings.format];
  let encodes = 0;
  const probe = async (quality: number) => {
    const body = await encodeCandidate(ref, settings, quality);
    encodes++;
    return { body, quality, ...meter.compare(await decodeRaw(body, settings.timeoutSeconds)) };
  };
  let lo = min;
  let hi = max; // every q < lo fails; `best` (if any) passes at q = hi + 1
  let best: Awaited<ReturnType<typeof probe>> | undefined;
  let top: typeof best;
  while (lo <= hi && encodes < MAX_SEARCH_ENCODES) {
    const c = await probe(Math.floor((lo + hi) / 2));
    if (c.quality === max) top = c;
    if (c.mean >= goal.mean && c.worst >= goal.worst) {
      best = c;
      hi = c.quality - 1;
    } else {
      lo = c.quality + 1;
    }
  }
  const chosen = best ?? top ?? (await probe(max));
  return { body: chosen.body, quality: chosen.quality, mean: chosen.mean, worst: chosen.worst, encodes };
}

/** The chroma 4:2:0 keeps: each 2×2 block's mean, replicated back over the block (luma untouched). */
function subsample420(p: ChromaPlanes, width: number, height: number): ChromaPlanes {
  const cb = new Float32Array(p.cb.length);
  const cr = new Float32Array(p.cr.length);
  for (let y = 0; y < height; y += 2) {
    const below = y + 1 < height ? width : 0; // an odd last row or column pairs with itself
    for (let x = 0; x < width; x += 2) {
      const i = y * width + x;
      const right = x + 1 < width ? 1 : 0;
      const mCb = (p.cb[i]! + p.cb[i + right]! + p.cb[i + below]! + p.cb[i + below + right]!) / 4;
      const mCr = (p.cr[i]! + p.cr[i + right]! + p.cr[i + below]! + p.cr[i + below + right]!) / 4;
      cb[i] = cb[i + right] = cb[i + below] = cb[i + below + right] = mCb;
      cr[i] = cr[i + right] = cr[i + below] = cr[i + below + right] = mCr;
    }
  }
  return { cb, cr };
}

/** Reference chroma this far from grey counts as saturated (pure red ≈ 190 from grey, sky blue ≈ 60, skin ≈ 30). */
const SATURATED = 50;
/** Saturated pixels that 4:2:0 moves more than this sit at colour edges: the ones that can wash out. */
const EDGE_SHIFT = 2;
/**
 * 4:4:4 when the median shift at those edges passes 12: hard saturated edges (text, logos, red on
 * white or white on red) lose a third of their colour or more, and JPEG's clamping of what is
 * left also darkens them. Photos' soft colour edges stay at 2–8 (loadtest/quality.ts).
 */
const WASHED_OUT = 12;
/** Colour edges on fewer than this share of the pixels are specks, not worth 4:4:4's bytes. */
const MIN_EDGE_SHARE = 0.0005;

/** '4:4:4' where saturated high-frequency colour (red text, thin coloured edges) would wash out at 4:2:0. */
export function chooseChroma(ref: RawImage): '4:2:0' | '4:4:4' {
  const planes = chromaPlanes(ref);
  const distance = chromaDistance(planes, subsample420(planes, ref.width, ref.height));
  const shifts: number[] = [];
  for (let i = 0; i < distance.length; i++) {
    const cb = planes.cb[i]! - 128;
    const cr = planes.cr[i]! - 128;
    if (distance[i]! > EDGE_SHIFT && cb * cb + cr * cr >= SATURATED ** 2) shifts.push(distance[i]!);
  }
  if (shifts.length < MIN_EDGE_SHARE * distance.length) return '4:2:0';
  return median(shifts) > WASHED_OUT ? '4:4:4' : '4:2:0';
}

const median = (xs: number[]) => Float64Array.from(xs).sort()[xs.length >> 1]!;

/**
 * True for a subject on flat white (a product shot): most of the border near-white and flat.
 * There mozjpeg's overshoot deringing keeps the white next to the subject's edges clean.
 */
export function needsDeringing(ref: RawImage): boolean {
  const { width, height, channels, data } = ref;
  const ring = Math.max(1, Math.round(Math.min(width, height) * 0.02));
  const over = (o: number, c: number) => {
    const alpha = channels === 4 ? data[o + 3]! / 255 : 1;
    return data[o + c]! * alpha + 255 * (1 - alpha);
  };
  let border = 0;
  let flatWhite = 0;
  const visit = (x: number, y: number) => {
    border++;
    const o = (y * width + x) * channels;
    const n = (y * width + (x + 1 < width ? x + 1 : Math.max(0, x - 1))) * channels;
    let white = true;
    let flat = true;
    for (let c = 0; c < 3; c++) {
      white &&= over(o, c) >= 248;
      flat &&= Math.abs(over(o, c) - over(n, c)) <= 2;
    }
    if (white && flat) flatWhite++;
  };
  for (let y = 0; y < height; y++) {
    const edgeRow = y < ring || y >= height - ring;
    for (let x = 0; x < width; x++) {
      if (!edgeRow && x === ring) x = Math.max(ring, width - ring);
      visit(x, y);
    }
  }
  return flatWhite >= 0.9 * border;
}
