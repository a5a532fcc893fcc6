/**
 * The imgix stages after sharpen (adjust, watermark, text, frame) work on what the pipeline has
 * made so far as raw 8-bit sRGB, animation frames stacked, and hand a new pipeline on: these are
 * the hand-overs, and the compositing of raw overlays (sharp refuses one that reaches outside).
 */
import sharp, { type OverlayOptions, type Sharp } from 'sharp';

export interface RawFrames {
  data: Buffer;
  width: number;
  /** of one frame */
  frameHeight: number;
  frames: number;
  channels: number;
}

/** What `img` has made so far, as raw sRGB (with an alpha channel added when asked). */
export async function toRawFrames(img: Sharp, frames: number, timeoutSeconds: number, withAlpha = false): Promise<RawFrames> {
  const srgb = img.toColourspace('srgb');
  const { data, info } = await (withAlpha ? srgb.ensureAlpha() : srgb).raw().timeout({ seconds: timeoutSeconds }).toBuffer({ resolveWithObject: true });
  return { data, width: info.width, frameHeight: info.height / frames, frames, channels: info.channels };
}

/** A new pipeline on raw pixels; the page height is kept, so an animation stays one. */
export function fromRawFrames(r: RawFrames): Sharp {
  const pages = r.frames > 1 ? { pageHeight: r.frameHeight } : {};
  return sharp(r.data, { raw: { width: r.width, height: r.frameHeight * r.frames, channels: r.channels as 1 | 2 | 3 | 4, ...pages } });
}

/**
 * Overlays placed on one frame (in its coordinates; cut to it) drawn on every frame of the raw
 * pixels, as a new pipeline: a layer never bleeds into the next frame, and an image without alpha
 * stays without (an opaque output stays RGB).
 */
export async function drawOnEveryFrame(r: RawFrames, onOneFrame: OverlayOptions[]): Promise<Sharp> {
  const cut = onOneFrame.map((o) => clipOverlay(o, r.width, r.frameHeight));
  const overlays = Array.from({ length: r.frames }, (_, f) => cut.map((o) => ({ ...o, top: o.top! + f * r.frameHeight }))).flat();
  const drawn = fromRawFrames(r).composite(overlays);
  const { data, info } = await (r.channels === 4 ? drawn : drawn.removeAlpha()).raw().toBuffer({ resolveWithObject: true });
  return fromRawFrames({ ...r, data, channels: info.channels });
}

/** An overlay cut to the part inside a `width`×`height` canvas (sharp refuses one that sticks out). */
function clipOverlay(o: OverlayOptions, width: number, height: number): OverlayOptions {
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
