/**
 * The sharp pipeline: orientation → trim → rect → resize per fit → rot → flip → bg → blur →
 * sharpen → adjustments and stylize → watermark → text → mask, border, padding → sRGB → encode.
 * Most requests run as one sharp pipeline; trim (whose result size is only known after it runs)
 * and rot/flip (which sharp would apply before its own crop) each hand raw pixels to a further
 * pipeline so the imgix order holds, and so does each imgix stage after sharpen (it works on the
 * pixels made so far). Those raw hand-overs drop a kept ICC profile, as trim and rot do.
 */
import sharp, { type Sharp, type SharpOptions } from 'sharp';
import { EdgeError } from '../errors.js';
import { applyAdjustments } from './adjust.js';
import { blurhashOf, extractPalette, paletteCss } from './describe-pixels.js';
import { applyFrame } from './frame.js';
import { applyText } from './text.js';
import { applyWatermark } from './watermark.js';
import { encodePerImage, perImageMode } from './auto-encode.js';
import { CONTENT_TYPES, applyEncoder, hasAlphaChannel, type AnimationTiming } from './encode.js';
import { orientationOps, orientedSize, planGeometry, rotateFlipOps, type GeometryPlan, type Size } from './geometry.js';
import { SOURCE_CONTENT_TYPES } from './sniff.js';
import { exifToKeep } from './exif.js';
import type { Color, EncodePolicy, ImageInfo, OutputChoice, TransformLimits, TransformParams, TransformResult } from './types.js';

const WHITE: Color = { r: 255, g: 255, b: 255, alpha: 1 };
const TRANSPARENT: Color = { r: 0, g: 0, b: 0, alpha: 0 };

/** `top` composited over `bottom` (straight alpha). */
function over(top: Color, bottom: Color): Color {
  const alpha = top.alpha + bottom.alpha * (1 - top.alpha);
  if (alpha === 0) return TRANSPARENT;
  const mix = (t: number, b: number) => Math.round((t * top.alpha + b * bottom.alpha * (1 - top.alpha)) / alpha);
  return { r: mix(top.r, bottom.r), g: mix(top.g, bottom.g), b: mix(top.b, bottom.b), alpha };
}

/** imgix blur 0–2000 → Gaussian sigma (sharp accepts 0.3–1000). */
const blurSigma = (blur: number) => Math.min(1000, Math.max(0.3, blur / 20));
/** imgix sharp 0–100 → unsharp-mask sigma 0.5–3. */
const sharpenSigma = (amount: number) => 0.5 + amount / 40;

/**
 * Operations sharp cannot run on a multi-frame image (or that would reorder its frames);
 * with any of them an animated source renders its first frame only.
 */
function keepsFrames(p: TransformParams, orientation: number): boolean {
  const smartCrop = (p.fit === 'crop' || p.fit === 'min') && !p.crop.includes('focalpoint')
    && (p.crop.includes('entropy') || p.crop.includes('edges'));
  return orientation === 1 && !p.trim && !p.rot && !p.flip && !smartCrop;
}

/** Hand the pixels so far to a fresh pipeline (8-bit sRGB raw, so nothing is lost between them). */
async function restart(img: Sharp, timeoutSeconds: number): Promise<{ img: Sharp; size: Size }> {
  const { data, info } = await img.toColourspace('srgb').raw().timeout({ seconds: timeoutSeconds }).toBuffer({ resolveWithObject: true });
  const raw = { width: info.width, height: info.height, channels: info.channels };
  return { img: sharp(data, { raw }), size: { width: info.width, height: info.height } };
}

function applyGeometry(img: Sharp, plan: GeometryPlan, pad: Color): void {
  if (plan.extract) img.extract(plan.extract);
  if (plan.resize) {
    const position = plan.position === 'entropy' || plan.position === 'attention' ? sharp.strategy[plan.position] : plan.position;
    img.resize({ ...plan.resize, fit: plan.position ? 'cover' : 'fill', ...(position !== undefined ? { position } : {}) });
  }
  if (plan.pad) img.extend({ ...plan.pad, background: pad });
}

/**
 * Colour: converted to sRGB through the source's profile (a P3 or CMYK source keeps its colours;
 * dropping the profile without converting would desaturate it), or the profile kept as it is
 * where the site asks (lost when trim/rot/flip hand sRGB pixels to a second pipeline). All other
 * metadata is stripped; the EXIF copyright and artist stay where the site asks (and the dates
 * and geotag where the optimization API is asked).
 */
function applyMetadata(img: Sharp, info: ImageInfo, policy: EncodePolicy): void {
  if (policy.keepIccProfile && info.hasProfile) img.keepIccProfile();
  else img.toColourspace('srgb');
  const exif = exifToKeep(info, policy);
  if (exif) img.withExif(exif);
}

function tooLarge(info: ImageInfo, limit: number): EdgeError {
  return new EdgeError('EDGE_IMAGE_TOO_LARGE', `the source has ${info.width}x${info.height}x${info.pages} pixels, more than the ${limit} allowed`);
}

/** Refuses a source whose header claims more pixels (frames counted up to the cap) than allowed. */
export function refuseOversizedSource(info: ImageInfo, limits: Pick<TransformLimits, 'maxSourcePixels' | 'maxFrames'>): void {
  if (info.width * info.height * Math.min(Math.max(1, info.pages), limits.maxFrames) > limits.maxSourcePixels) {
    throw tooLarge(info, limits.maxSourcePixels);
  }
}

/**
 * The pipeline up to the encoder: geometry, rotation, background, blur, sharpen, then the
 * imgix stages on raw pixels (adjustments and stylize, watermark, text, mask/border/padding), and
 * colour. An animation's timing is read from the source, since the raw stages drop it.
 */
async function render(
  source: Buffer,
  info: ImageInfo,
  p: TransformParams,
  out: OutputChoice,
  limits: TransformLimits,
  policy: EncodePolicy,
): Promise<{ img: Sharp; timing: AnimationTiming }> {
  const orientation = p.or ?? info.orientation;
  const animated = out.animated && info.pages > 1 && keepsFrames(p, orientation);
  const input: SharpOptions = {
    failOn: 'error',
    limitInputPixels: Math.floor(limits.maxSourcePixels),
    // Animated: every frame up to the cap; frames past it are dropped.
    ...(animated ? { pages: Math.min(info.pages, limits.maxFrames) } : {}),
    autoOrient: p.or === undefined,
  };
  let img = sharp(source, input);
  if (p.or !== undefined) {
    // `or` replaces the EXIF orientation: orient by hand instead of by the tag.
    const o = orientationOps(p.or);
    if (o.angle) img.rotate(o.angle);
    if (o.flip) img.flip();
    if (o.flop) img.flop();
  }
  let size = orientedSize(info, orientation);
  if (p.trim) ({ img, size } = await restart(img.trim(), limits.timeoutSeconds));

  // Transparent areas take bg; an output without alpha is flattened onto bg or white. sharp's
  // flatten is opaque, so a partly transparent bg is first blended over white.
  const alphaOut = hasAlphaChannel(out.format);
  const bg = p.bg && (p.bg.alpha > 0 || !alphaOut) ? over(p.bg, WHITE) : undefined;
  const flattenTo = alphaOut ? bg : (bg ?? WHITE);
  // Colours sharp adds later (fill padding, rotation corners) are pre-flattened, since its flatten runs early.
  const padColor = (c: Color = TRANSPARENT) => (flattenTo ? over(c, flattenTo) : c);

  // The output's pixel budget covers every frame an animation keeps.
  const frames = animated ? Math.min(info.pages, limits.maxFrames) : 1;
  applyGeometry(img, planGeometry(size, p, limits.maxOutputDimension, limits.maxOutputPixels / frames), padColor(p.fillColor));

  if (p.rot || p.flip) {
    ({ img } = await restart(img, limits.timeoutSeconds));
    const r = rotateFlipOps(p.rot, p.flip);
    if (r.angle) img.rotate(r.angle, { background: padColor() });
    if (r.flip) img.flip();
    if (r.flop) img.flop();
  }
  if (flattenTo) img.flatten({ background: flattenTo });
  if (p.blur) img.blur(blurSigma(p.blur));
  if (p.sharp) img.sharpen({ sigma: sharpenSigma(p.sharp) });
  if (p.adjust) img = await applyAdjustments(img, p.adjust, frames, limits.timeoutSeconds);
  if (p.mark) {
    if (!p.markImage) throw new EdgeError('EDGE_INTERNAL', 'the watermark was not fetched before the transform');
    img = await applyWatermark(img, p.mark, p.markImage, frames, limits);
  }
  if (p.text) img = await applyText(img, p.text, frames, limits.timeoutSeconds);
  if (p.frame) {
    img = await applyFrame(img, p.frame, flattenTo ?? TRANSPARENT, frames, limits);
    if (flattenTo && !alphaOut) img.flatten({ background: flattenTo });
  }
  applyMetadata(img, info, policy);
  const rawStages = p.adjust || p.mark || p.text || p.frame;
  const timing: AnimationTiming = animated && rawStages ? await sharp(source).metadata().then((m) => ({ ...(m.delay ? { delay: m.delay.slice(0, frames) } : {}), ...(m.loop !== undefined ? { loop: m.loop } : {}) })) : {};
  return { img, timing };
}

async function run(
  source: Buffer,
  info: ImageInfo,
  p: TransformParams,
  out: OutputChoice,
  limits: TransformLimits,
  policy: EncodePolicy,
): Promise<TransformResult> {
  const { img, timing } = await render(source, info, p, out, limits, policy);
  const mode = perImageMode(p, out, info, policy);
  if (mode) {
    const enc = await encodePerImage(img, mode, p, out, limits, policy, info);
    return { contentType: CONTENT_TYPES[out.format], format: out.format, ...enc };
  }
  const quality = applyEncoder(img, out, p, limits.avifEffort, timing);
  img.timeout({ seconds: limits.timeoutSeconds });

  const { data, info: enc } = await img.toBuffer({ resolveWithObject: true });
  const result: TransformResult = {
    body: data,
    contentType: CONTENT_TYPES[out.format],
    format: out.format,
    width: enc.width,
    height: enc.pageHeight ?? enc.height,
  };
  if (quality !== undefined) result.quality = quality;
  return result;
}

/** Resize and re-encode one source. Every failure is an EdgeError. */
export function transform(
  source: Buffer,
  info: ImageInfo,
  params: TransformParams,
  out: OutputChoice,
  limits: TransformLimits,
  policy: EncodePolicy,
): Promise<TransformResult> {
  return asEdgeErrors(info, limits, () => run(source, info, params, out, limits, policy));
}

/**
 * A text answer about the rendered pixels instead of an image: `palette=json|css` (after every
 * adjustment and crop, as imgix extracts it) or `fm=blurhash`. Every failure is an EdgeError.
 */
export function describeRendered(source: Buffer, info: ImageInfo, params: TransformParams, limits: TransformLimits, policy: EncodePolicy): Promise<{ body: Buffer; contentType: string }> {
  return asEdgeErrors(info, limits, async () => {
    const { img } = await render(source, info, params, { format: 'png', progressive: false, palette: false, animated: false }, limits, policy);
    if (params.palette) {
      const palette = await extractPalette(img, params.palette.colors, limits.timeoutSeconds);
      return params.palette.format === 'css'
        ? { body: Buffer.from(paletteCss(palette, params.palette.prefix)), contentType: 'text/css; charset=utf-8' }
        : { body: Buffer.from(JSON.stringify(palette)), contentType: 'application/json' };
    }
    return { body: Buffer.from(await blurhashOf(img, limits.timeoutSeconds)), contentType: 'text/plain; charset=utf-8' };
  });
}

async function asEdgeErrors<T>(info: ImageInfo, limits: TransformLimits, work: () => Promise<T>): Promise<T> {
  refuseOversizedSource(info, limits);
  try {
    return await work();
  } catch (err) {
    if (err instanceof EdgeError) throw err;
    const message = (err as Error).message ?? String(err);
    if (/pixel limit/i.test(message)) throw tooLarge(info, limits.maxSourcePixels);
    // libvips' timeout kills the pipeline; its message names internals, so say what happened.
    if (/timeout|killed/i.test(message)) {
      throw new EdgeError('EDGE_IMAGE_TOO_LARGE', `the image took longer than ${limits.timeoutSeconds} s to process`);
    }
    throw new EdgeError('EDGE_BAD_IMAGE', `the source image cannot be processed: ${message}`);
  }
}

const COLOR_MODELS: Record<string, string> = {
  srgb: 'RGB', rgb: 'RGB', rgb16: 'RGB', scrgb: 'RGB', 'b-w': 'Gray', grey16: 'Gray', cmyk: 'CMYK', lab: 'Lab', labs: 'Lab',
};

/** The `fm=json` body: the source's header facts with imgix's key names. */
export function describeMetadata(info: ImageInfo): Record<string, unknown> {
  return {
    PixelWidth: info.width,
    PixelHeight: info.height,
    Orientation: info.orientation,
    ColorModel: COLOR_MODELS[info.space] ?? info.space.toUpperCase(),
    HasAlpha: info.hasAlpha,
    Frames: info.pages,
    'Content-Type': SOURCE_CONTENT_TYPES[info.format],
    'Content-Length': String(info.bytes),
    Profile: info.hasProfile,
    Progressive: info.progressive,
  };
}
