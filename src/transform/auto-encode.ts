/**
 * Encodings chosen per image from the rendered pixels: the perceptual quality search for
 * auto=compress (JPEG, WebP, AVIF) and the PNG plan (exact palette, quantized palette or
 * truecolour, whichever is smaller). Both start from one raw reference of the output.
 */
import sharp, { type Sharp } from 'sharp';
import { planPng, pngOptions, type PngPlan } from './png.js';
import { chooseChroma, encodeCandidate, needsDeringing, searchQuality, type EncodeSettings } from './quality.js';
import type { RawImage } from './ssim.js';
import type { EncodePolicy, ImageInfo, OutputChoice, QualityTarget, TransformLimits, TransformParams } from './types.js';

export type PerImageMode = 'search' | 'png';

/** Outputs above this many pixels get a fixed quality per target instead of the search. */
const SEARCH_MAX_PIXELS = 4_000_000;

/** Near the median the search picks on the benchmark (docs/QUALITY.md), per target and format. */
const LARGE_OUTPUT_QUALITY: Record<QualityTarget, Record<EncodeSettings['format'], number>> = {
  high: { jpeg: 88, webp: 85, avif: 68 },
  medium: { jpeg: 82, webp: 80, avif: 62 },
  low: { jpeg: 74, webp: 74, avif: 52 },
};

export interface PerImageEncoding {
  body: Buffer;
  quality?: number;
  width: number;
  height: number;
}

/**
 * Which outputs are encoded per image. Not animations (one frame would not speak for all), and
 * not a kept colour profile (the raw reference carries no profile to re-attach).
 */
export function perImageMode(p: TransformParams, out: OutputChoice, info: ImageInfo, policy: EncodePolicy): PerImageMode | undefined {
  if (out.animated || (policy.keepIccProfile && info.hasProfile)) return undefined;
  if (out.format === 'png') return 'png';
  const searchable = out.format === 'jpeg' || out.format === 'webp' || out.format === 'avif';
  return searchable && p.auto.compress && p.q === undefined && !p.lossless ? 'search' : undefined;
}

/** EXIF credits to write, where the site keeps them. */
export function creditsFor(info: ImageInfo, policy: EncodePolicy): Record<string, string> | undefined {
  if (!policy.keepCopyright || (!info.copyright && !info.artist)) return undefined;
  return { ...(info.copyright ? { Copyright: info.copyright } : {}), ...(info.artist ? { Artist: info.artist } : {}) };
}

function fromRaw(ref: RawImage, timeoutSeconds: number, credits: Record<string, string> | undefined): Sharp {
  const img = sharp(ref.data, { raw: { width: ref.width, height: ref.height, channels: ref.channels as 3 | 4 } });
  if (credits) img.withExif({ IFD0: credits });
  return img.timeout({ seconds: timeoutSeconds });
}

async function encodePng(ref: RawImage, p: TransformParams, out: OutputChoice, limits: TransformLimits, credits: Record<string, string> | undefined): Promise<Buffer> {
  const plan = planPng(ref, { compress: p.auto.compress, requestedPalette: out.palette, ...(p.q !== undefined ? { quality: p.q } : {}) });
  const encode = (pl: PngPlan) => fromRaw(ref, limits.timeoutSeconds, credits).png(pngOptions(pl)).toBuffer();
  const chosen = await encode(plan);
  // A palette is not always smaller (smooth gradients quantize badly); fm=png8 asked for one.
  if (!plan.palette || out.palette) return chosen;
  const truecolour = await encode({ palette: false, lossless: true });
  return truecolour.length < chosen.length ? truecolour : chosen;
}

/** Renders `img` once to raw pixels, then encodes them the way this image needs. */
export async function encodePerImage(
  img: Sharp,
  mode: PerImageMode,
  p: TransformParams,
  out: OutputChoice,
  limits: TransformLimits,
  policy: EncodePolicy,
  info: ImageInfo,
): Promise<PerImageEncoding> {
  const { data, info: raw } = await img.raw().timeout({ seconds: limits.timeoutSeconds }).toBuffer({ resolveWithObject: true });
  const ref: RawImage = { data, width: raw.width, height: raw.height, channels: raw.channels };
  const credits = creditsFor(info, policy);
  const size = { width: ref.width, height: ref.height };
  if (mode === 'png') return { body: await encodePng(ref, p, out, limits, credits), ...size };
  const format = out.format as EncodeSettings['format'];
  const large = ref.width * ref.height > SEARCH_MAX_PIXELS;
  const explicitChroma = p.chromasub ? (p.chromasub === 420 ? '4:2:0' : '4:4:4') : undefined;
  const settings: EncodeSettings = {
    format,
    progressive: out.progressive,
    // An explicit chromasub wins (422 keeps full chroma: sharp cannot write 4:2:2).
    chroma: explicitChroma ?? (large ? '4:2:0' : chooseChroma(ref)),
    dering: format === 'jpeg' && needsDeringing(ref),
    avifEffort: limits.avifEffort,
    alpha: ref.channels === 4,
    timeoutSeconds: limits.timeoutSeconds,
    ...(credits ? { credits } : {}),
  };
  if (large) {
    // Searching costs six encodes plus measuring on the main thread: too much at this size.
    const quality = LARGE_OUTPUT_QUALITY[policy.qualityTarget][format];
    return { body: await encodeCandidate(ref, settings, quality), quality, ...size };
  }
  const choice = await searchQuality(ref, settings, policy.qualityTarget);
  return { body: choice.body, quality: choice.quality, ...size };
}
