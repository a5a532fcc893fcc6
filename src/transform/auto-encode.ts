/**
 * Encodings chosen per image from the rendered pixels: the perceptual quality search for
 * auto=compress (JPEG, WebP, AVIF) and the PNG plan (exact palette, quantized palette or
 * truecolour, whichever is smaller). Both start from one raw reference of the output.
 */
import sharp, { type Sharp } from 'sharp';
import { measurementView } from './measure-view.js';
import { planPng, pngOptions, type PngPlan } from './png.js';
import { encodeInWorker } from './quality-pool.js';
import { QUALITY_TARGETS, autoCompress, decodeRaw, meterFor, type EncodeSettings } from './quality.js';
import { exifToKeep } from './exif.js';
import type { EncodePolicy, ExifFields, ImageInfo, OutputChoice, PerImageEncoding, PerImageMode, PerImageTask, QualityTarget, RawImage, TransformLimits, TransformParams } from './types.js';

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

function fromRaw(ref: RawImage, timeoutSeconds: number, exif: ExifFields | undefined): Sharp {
  const img = sharp(ref.data, { raw: { width: ref.width, height: ref.height, channels: ref.channels as 3 | 4 } });
  if (exif) img.withExif(exif);
  return img.timeout({ seconds: timeoutSeconds });
}

/** Whether a lossy encode of `ref` stays within the site's target, measured as the search measures. */
async function withinTarget(ref: RawImage, body: Buffer, target: QualityTarget, limits: TransformLimits): Promise<boolean> {
  const decoded = await decodeRaw(body, limits.timeoutSeconds);
  const meter = meterFor(measurementView(ref).image, { format: 'png', alpha: ref.channels === 4 });
  try {
    return meter.compare(measurementView(decoded).image) >= QUALITY_TARGETS[target];
  } finally {
    meter.dispose();
  }
}

async function encodePng(ref: RawImage, p: TransformParams, out: OutputChoice, limits: TransformLimits, exif: ExifFields | undefined, target: QualityTarget): Promise<Buffer> {
  const plan = planPng(ref, { compress: p.auto.compress, requestedPalette: out.palette, ...(p.q !== undefined ? { quality: p.q } : {}) });
  const encode = (pl: PngPlan) => fromRaw(ref, limits.timeoutSeconds, exif).png(pngOptions(pl)).toBuffer();
  const chosen = await encode(plan);
  // fm=png8 asked for a palette whatever it costs.
  if (!plan.palette || out.palette) return chosen;
  const truecolour = () => encode({ palette: false, lossless: true });
  // A quantized palette is kept only where it stays within the site's quality target (by the same
  // metric as every other format), and then only when smaller (smooth gradients quantize badly).
  if (!plan.lossless && !(await withinTarget(ref, chosen, target, limits))) return truecolour();
  const full = await truecolour();
  return full.length < chosen.length ? full : chosen;
}

/** What encodePerImage hands to a worker thread: plain data only. */

/** Encodes rendered pixels the way this image needs (runs on a worker thread, see quality-pool.ts). */
export async function encodeRaw(task: PerImageTask): Promise<PerImageEncoding> {
  const { ref, mode, p, out, limits, policy, info } = task;
  const exif = exifToKeep(info, policy);
  const size = { width: ref.width, height: ref.height };
  if (mode === 'png') return { body: await encodePng(ref, p, out, limits, exif, policy.qualityTarget), ...size };
  // An explicit chromasub wins (422 keeps full chroma: sharp cannot write 4:2:2; WebP's
  // "full chroma" is its sharp YUV conversion, see encode.ts).
  const explicitChroma = p.chromasub ? (p.chromasub === 420 ? '4:2:0' : '4:4:4') : undefined;
  const choice = await autoCompress(ref, {
    format: out.format as EncodeSettings['format'],
    progressive: out.progressive,
    avifEffort: limits.avifEffort,
    alpha: ref.channels === 4,
    timeoutSeconds: limits.timeoutSeconds,
    ...(exif ? { exif } : {}),
  }, policy.qualityTarget, explicitChroma);
  return { body: choice.body, quality: choice.quality, ...size };
}

/** Renders `img` once to raw pixels (libvips), then encodes them per image on a worker thread. */
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
  return encodeInWorker({ ref, mode, p, out, limits, policy, info });
}
