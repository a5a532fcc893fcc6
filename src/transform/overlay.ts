/** Raw RGBA overlays composited by sharp, which refuses one that reaches outside the image. */
import sharp, { type OverlayOptions, type Sharp } from 'sharp';

/**
 * Raw pixels (3 or 4 channels, `frames` stacked) with the overlays drawn on, as a new pipeline
 * (frames kept); an image without alpha stays without (an opaque output stays RGB).
 */
export async function compositeRaw(data: Buffer, info: { width: number; height: number; channels: number }, frameHeight: number, frames: number, overlays: OverlayOptions[]): Promise<Sharp> {
  const pages = frames > 1 ? { pageHeight: frameHeight } : {};
  const base = sharp(data, { raw: { width: info.width, height: info.height, channels: info.channels as 3 | 4, ...pages } });
  const drawn = base.composite(overlays);
  const { data: out, info: outInfo } = await (info.channels === 4 ? drawn : drawn.removeAlpha()).raw().toBuffer({ resolveWithObject: true });
  return sharp(out, { raw: { width: outInfo.width, height: outInfo.height, channels: outInfo.channels as 3 | 4, ...pages } });
}

/** An overlay cut to the part inside a `width`×`height` canvas (sharp refuses one that sticks out). */
export function clipOverlay(o: OverlayOptions, width: number, height: number): OverlayOptions {
  const raw = o.raw!;
  // Wholly inside: as it is (tiles share one buffer).
  if (o.left! >= 0 && o.top! >= 0 && o.left! + raw.width <= width && o.top! + raw.height <= height) return o;
  const x0 = Math.max(0, o.left!);
  const y0 = Math.max(0, o.top!);
  const x1 = Math.min(width, o.left! + raw.width);
  const y1 = Math.min(height, o.top! + raw.height);
  const w = Math.max(1, x1 - x0);
  const h = Math.max(1, y1 - y0);
  const src = o.input as Buffer;
  const out = Buffer.alloc(w * h * 4);
  if (x1 > x0 && y1 > y0) {
    for (let y = 0; y < h; y++) src.copy(out, y * w * 4, ((y0 - o.top! + y) * raw.width + (x0 - o.left!)) * 4, ((y0 - o.top! + y) * raw.width + (x0 - o.left! + w)) * 4);
  }
  return { input: out, raw: { width: w, height: h, channels: 4 }, left: Math.min(x0, width - 1), top: Math.min(y0, height - 1) };
}
