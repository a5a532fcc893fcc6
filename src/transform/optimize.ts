import { isCleanOriginal } from './clean-original.js';
import { SOURCE_CONTENT_TYPES } from './sniff.js';
import { transform } from './pipeline.js';
import type { EncodePolicy, ImageInfo, OutputChoice, OutputFormat, TransformLimits, TransformParams, TransformResult } from './types.js';

export interface Rendered {
  result: TransformResult;
  /** the source's own bytes are served: re-encoding would not have made them smaller */
  original: boolean;
  /** the formats encoded to choose this one, first choice first */
  tried: OutputFormat[];
}

/**
 * True when the parameters ask for pixels other than the source's own (beyond size, format and
 * quality): the source's bytes can never stand in for such an answer.
 */
export function altersPixels(p: TransformParams): boolean {
  return Boolean(
    p.blur || p.sharp || p.rot || p.flip || p.or !== undefined || p.trim || p.rect ||
      p.adjust || p.frame || p.text || p.mark || (p.bg && p.bg.alpha > 0),
  );
}

/** Output as large as the source, in its format and with nothing visible changed. */
function isPlainReencode(info: ImageInfo, params: TransformParams, result: TransformResult): boolean {
  return (
    !altersPixels(params) &&
    result.format === info.format &&
    result.width === info.width &&
    result.height === info.height &&
    info.orientation === 1 &&
    info.pages === 1
  );
}

/**
 * One encoding, and the promise that an optimized image is never larger: when a re-encode in the
 * source's own format and size is not smaller, the source's bytes win — if they carry nothing but
 * the image (clean-original.ts).
 */
async function renderAs(source: Buffer, info: ImageInfo, params: TransformParams, out: OutputChoice, limits: TransformLimits, policy: EncodePolicy): Promise<Omit<Rendered, 'tried'>> {
  const result = await transform(source, info, params, out, limits, policy);
  if (isPlainReencode(info, params, result) && result.body.length >= source.length && isCleanOriginal(info, source)) {
    const { quality: _ignored, ...rest } = result;
    return { result: { ...rest, body: source, contentType: SOURCE_CONTENT_TYPES[info.format] }, original: true };
  }
  return { result, original: false };
}

/** Outputs this small are cheap to encode losslessly: icons, badges, thumbnails of graphics. */
const SMALL_OUTPUT_PIXELS = 250_000;

/** Below this many bytes per pixel a source is drawn, not photographed (photos as PNG take 1.5–3). */
const GRAPHIC_BYTES_PER_PIXEL = 0.5;

const sourceBytesPerPixel = (info: ImageInfo) => info.bytes / (info.width * info.height * Math.max(1, info.pages));

/**
 * Whether the fallback may come out smaller than the first choice, so is worth its encode (the
 * cases measured in docs/FORMAT-CHOICE.md):
 * - GIF and animations: always; they are small, and their source's bytes say little about a
 *   re-encode (a 42 KB animated GIF re-encodes to 5.2 KB, smaller than its WebP);
 * - JPEG at a fixed q: always (behind AVIF, 20 of 54 photo answers were larger than their JPEG;
 *   behind WebP, 4 of 54 that the bounds below missed);
 * - PNG: when the output is small, the source is a drawing (few bytes per pixel), or the first
 *   choice weighs more per pixel than the source;
 * - JPEG at a perceptual target: when the first choice weighs more per pixel than the source, or
 *   the search needed a quality of 85 or more (grain that WebP's 4:2:0 keeps only at high quality).
 */
function worthTrying(info: ImageInfo, params: TransformParams, first: TransformResult, fallback: OutputChoice): boolean {
  if (fallback.animated || fallback.format === 'gif') return true;
  // At a fixed q a modern format's q keeps more detail than JPEG's, so it often weighs more, and a
  // JPEG at one q is a single quick encode. (At one perceptual target, auto=compress, the modern
  // format nearly always wins, and the search is what costs: there the bounds below decide.)
  if (fallback.format === 'jpeg' && !(params.auto.compress && params.q === undefined)) return true;
  const heavier = first.body.length > sourceBytesPerPixel(info) * first.width * first.height;
  if (fallback.format === 'png') {
    return heavier || first.width * first.height <= SMALL_OUTPUT_PIXELS || sourceBytesPerPixel(info) < GRAPHIC_BYTES_PER_PIXEL;
  }
  return heavier || (first.quality ?? 0) >= 85;
}

/**
 * Transforms a source into `out`, never larger than the source in its own format and size. With
 * a `fallback` (the other format auto=format considers), that is encoded too when it may win
 * (worthTrying), and the smaller answer wins; a tie keeps the first choice.
 */
export async function renderVariant(
  source: Buffer,
  info: ImageInfo,
  params: TransformParams,
  out: OutputChoice,
  limits: TransformLimits,
  policy: EncodePolicy,
  fallback?: OutputChoice,
): Promise<Rendered> {
  const first = await renderAs(source, info, params, out, limits, policy);
  if (!fallback || !worthTrying(info, params, first.result, fallback)) return { ...first, tried: [first.result.format] };
  const second = await renderAs(source, info, params, fallback, limits, policy);
  const tried: OutputFormat[] = [first.result.format, second.result.format];
  return second.result.body.length < first.result.body.length ? { ...second, tried } : { ...first, tried };
}
