/**
 * imgix's watermark (`mark*`): a second image, fetched by the miss path like any source, sized
 * (`mark-w`/`mark-h` in pixels or as a fraction of the image, with `mark-fit`, or `mark-scale` as
 * a percentage of the image's width), made translucent (`mark-alpha`), and placed by
 * `mark-align` + `mark-pad`, by `mark-x`/`mark-y`, or repeated over the image (`mark-tile=grid`).
 */
import sharp, { type Sharp } from 'sharp';
import { EdgeError } from '../errors.js';
import { drawOnEveryFrame, toRawFrames } from './raw-frames.js';
import type { MarkParams, TransformLimits } from './types.js';

/** Resolves a size given in pixels or (0..1) as a fraction of `whole`. */
const sizeOf = (v: number | undefined, whole: number) => (v === undefined ? undefined : Math.max(1, Math.round(v <= 1 ? v * whole : v)));

const FITS = { clip: 'inside', max: 'inside', crop: 'cover', fill: 'contain', scale: 'fill' } as const;

/**
 * The watermark as RGBA at its drawn size, never larger than the image it goes on, its alpha
 * scaled by mark-alpha (all by libvips, off the event loop).
 */
async function markLayer(image: Buffer, m: MarkParams, width: number, height: number, limits: MarkLimits): Promise<{ data: Buffer; width: number; height: number }> {
  let img = sharp(image, { failOn: 'error', limitInputPixels: Math.floor(limits.maxSourcePixels) }).autoOrient();
  const meta = await img.metadata().catch(() => undefined);
  if (!meta?.width || !meta.height) throw new EdgeError('EDGE_BAD_PARAM', 'mark is not an image', { param: 'mark' });
  if (meta.width * meta.height > limits.maxSourcePixels) throw new EdgeError('EDGE_BAD_PARAM', `the mark has ${meta.width}x${meta.height} pixels, more than the ${limits.maxSourcePixels} allowed`, { param: 'mark' });
  let w = sizeOf(m.w, width);
  let h = sizeOf(m.h, height);
  if (m.scale !== undefined) {
    w = Math.max(1, Math.round((width * m.scale) / 100));
    h = undefined;
  }
  if (w !== undefined || h !== undefined) {
    const fit = FITS[m.fit];
    img = img.resize({ ...(w ? { width: w } : {}), ...(h ? { height: h } : {}), fit, withoutEnlargement: m.fit === 'max', ...(fit === 'contain' ? { background: { r: 0, g: 0, b: 0, alpha: 0 } } : {}) });
  }
  const sized = await img.toColourspace('srgb').ensureAlpha().raw().timeout({ seconds: limits.timeoutSeconds }).toBuffer({ resolveWithObject: true });
  // What shows of a mark larger than the image is the image's size: it is cut, never drawn bigger.
  const cut = { width: Math.min(sized.info.width, width), height: Math.min(sized.info.height, height) };
  const { data, info } = await sharp(sized.data, { raw: { width: sized.info.width, height: sized.info.height, channels: 4 } })
    .extract({ left: 0, top: 0, ...cut })
    .linear([1, 1, 1, m.alpha / 100], [0, 0, 0, 0])
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

/** Where the watermark's top-left corner goes on a `width`×`height` image. */
function placement(m: MarkParams, width: number, height: number, mw: number, mh: number): { left: number; top: number } {
  const left = m.x ?? (m.align.h === 'left' ? m.pad : m.align.h === 'right' ? width - m.pad - mw : Math.round((width - mw) / 2));
  const top = m.y ?? (m.align.v === 'top' ? m.pad : m.align.v === 'bottom' ? height - m.pad - mh : Math.round((height - mh) / 2));
  return { left, top };
}

type MarkLimits = Pick<TransformLimits, 'maxSourcePixels' | 'timeoutSeconds'>;

/** Copies drawn at most, tiles times frames. */
const MAX_COPIES = 10_000;

/** Draws the watermark (`image`, already fetched) on what `img` has made so far, on every frame. */
export async function applyWatermark(img: Sharp, m: MarkParams, image: Buffer, frames: number, limits: MarkLimits): Promise<Sharp> {
  const raw = await toRawFrames(img, frames, limits.timeoutSeconds);
  const { width, frameHeight } = raw;
  const mark = await markLayer(image, m, width, frameHeight, limits);
  const spots: { left: number; top: number }[] = [];
  if (m.tile) {
    // A grid from the top-left, mark-pad apart, over the whole image.
    const stepX = mark.width + m.pad;
    const stepY = mark.height + m.pad;
    const count = Math.ceil(width / stepX) * Math.ceil(frameHeight / stepY) * frames;
    if (count > MAX_COPIES) throw new EdgeError('EDGE_BAD_PARAM', `mark-tile would draw ${count} copies (at most ${MAX_COPIES}); make the mark larger`, { param: 'mark-tile' });
    for (let y = 0; y < frameHeight; y += stepY) for (let x = 0; x < width; x += stepX) spots.push({ left: x, top: y });
  } else {
    spots.push(placement(m, width, frameHeight, mark.width, mark.height));
  }
  const shown = spots.filter((s) => s.left < width && s.top < frameHeight && s.left + mark.width > 0 && s.top + mark.height > 0);
  return drawOnEveryFrame(raw, shown.map((s) => ({ input: mark.data, raw: { width: mark.width, height: mark.height, channels: 4 }, left: s.left, top: s.top })));
}
