/**
 * imgix's watermark (`mark*`): a second image, fetched by the miss path like any source, sized
 * (`mark-w`/`mark-h` in pixels or as a fraction of the image, with `mark-fit`, or `mark-scale` as
 * a percentage of the image's width), made translucent (`mark-alpha`), and placed by
 * `mark-align` + `mark-pad`, by `mark-x`/`mark-y`, or repeated over the image (`mark-tile=grid`).
 */
import sharp, { type OverlayOptions, type Sharp } from 'sharp';
import { EdgeError } from '../errors.js';
import { clipOverlay } from './overlay.js';
import type { MarkParams } from './types.js';

/** Resolves a size given in pixels or (0..1) as a fraction of `whole`. */
const sizeOf = (v: number | undefined, whole: number) => (v === undefined ? undefined : Math.max(1, Math.round(v <= 1 ? v * whole : v)));

const FITS = { clip: 'inside', max: 'inside', crop: 'cover', fill: 'contain', scale: 'fill' } as const;

/** The watermark as RGBA at its drawn size, its alpha scaled by mark-alpha. */
async function markLayer(image: Buffer, m: MarkParams, width: number, height: number, timeoutSeconds: number): Promise<{ data: Buffer; width: number; height: number }> {
  let img = sharp(image, { failOn: 'error', limitInputPixels: 50_000_000 }).autoOrient();
  const meta = await img.metadata().catch(() => undefined);
  if (!meta?.width || !meta.height) throw new EdgeError('EDGE_BAD_PARAM', 'mark is not an image', { param: 'mark' });
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
  const { data, info } = await img.toColourspace('srgb').ensureAlpha().raw().timeout({ seconds: timeoutSeconds }).toBuffer({ resolveWithObject: true });
  if (m.alpha < 100) for (let i = 3; i < data.length; i += 4) data[i] = Math.round((data[i]! * m.alpha) / 100);
  return { data, width: info.width, height: info.height };
}

/** Where the watermark's top-left corner goes on a `width`×`height` image. */
function placement(m: MarkParams, width: number, height: number, mw: number, mh: number): { left: number; top: number } {
  const left = m.x ?? (m.align.h === 'left' ? m.pad : m.align.h === 'right' ? width - m.pad - mw : Math.round((width - mw) / 2));
  const top = m.y ?? (m.align.v === 'top' ? m.pad : m.align.v === 'bottom' ? height - m.pad - mh : Math.round((height - mh) / 2));
  return { left, top };
}

/** Draws the watermark (`image`, already fetched) on what `img` has made so far, on every frame. */
export async function applyWatermark(img: Sharp, m: MarkParams, image: Buffer, frames: number, timeoutSeconds: number): Promise<Sharp> {
  const { data, info } = await img.toColourspace('srgb').ensureAlpha().raw().timeout({ seconds: timeoutSeconds }).toBuffer({ resolveWithObject: true });
  const frameHeight = info.height / frames;
  const mark = await markLayer(image, m, info.width, frameHeight, timeoutSeconds);
  const spots: { left: number; top: number }[] = [];
  if (m.tile) {
    // A grid from the top-left, mark-pad apart, over the whole image.
    const stepX = mark.width + Math.max(0, m.pad);
    const stepY = mark.height + Math.max(0, m.pad);
    const count = Math.ceil(info.width / stepX) * Math.ceil(frameHeight / stepY);
    if (count > 10_000) throw new EdgeError('EDGE_BAD_PARAM', `mark-tile would draw ${count} copies; make the mark larger`, { param: 'mark-tile' });
    for (let y = 0; y < frameHeight; y += stepY) for (let x = 0; x < info.width; x += stepX) spots.push({ left: x, top: y });
  } else {
    spots.push(placement(m, info.width, frameHeight, mark.width, mark.height));
  }
  const overlays: OverlayOptions[] = [];
  for (let f = 0; f < frames; f++) {
    for (const s of spots) {
      if (s.left >= info.width || s.top >= frameHeight || s.left + mark.width <= 0 || s.top + mark.height <= 0) continue;
      // Cut to this frame, then moved down to it: a mark never bleeds into the next frame.
      const inFrame = clipOverlay({ input: mark.data, raw: { width: mark.width, height: mark.height, channels: 4 }, left: s.left, top: s.top }, info.width, frameHeight);
      overlays.push({ ...inFrame, top: inFrame.top! + f * frameHeight });
    }
  }
  const raw = { width: info.width, height: info.height, channels: 4 as const, ...(frames > 1 ? { pageHeight: frameHeight } : {}) };
  const { data: out } = await sharp(data, { raw }).composite(overlays).raw().toBuffer({ resolveWithObject: true });
  return sharp(out, { raw });
}
