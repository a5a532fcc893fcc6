/**
 * imgix's masks, borders and padding, applied last, on raw RGBA pixels: the mask shapes the image
 * (transparent outside, or `mask-bg`), the border is added around it (its outer corners rounded by
 * `border-radius`, the image's own corners by `border-radius-inner`), then the padding around
 * that. Borders and padding add to the output's size. Edges are anti-aliased by coverage.
 */
import type { Sharp } from 'sharp';
import { EdgeError } from '../errors.js';
import { pixelsInWorker } from './quality-pool.js';
import { fromRawFrames, toRawFrames, type RawFrames } from './raw-frames.js';
import type { Color, Corners, FrameParams, TransformLimits } from './types.js';

/**
 * True when the frame's shape needs transparent pixels (a mask without `mask-bg`, a border's
 * rounded outer corners), so a JPEG family gives way to PNG. Padding does not: it takes the
 * background, transparent only where the output has alpha anyway.
 */
export function frameNeedsAlpha(f: FrameParams | undefined): boolean {
  if (!f) return false;
  return (f.mask !== undefined && (!f.maskBg || f.maskBg.alpha < 1)) || f.border?.radius !== undefined;
}

interface Sides {
  top: number;
  right: number;
  bottom: number;
  left: number;
}

/**
 * Signed distance from (x, y) to the edge of a rounded rectangle [0,w]×[0,h] with corner radii
 * (tl, tr, br, bl): negative inside.
 */
function roundedRectDistance(x: number, y: number, w: number, h: number, r: Corners): number {
  const right = x > w / 2;
  const bottom = y > h / 2;
  const radius = bottom ? (right ? r[2] : r[3]) : right ? r[1] : r[0];
  const cx = right ? w - radius : radius;
  const cy = bottom ? h - radius : radius;
  const inCornerX = right ? x > cx : x < cx;
  const inCornerY = bottom ? y > cy : y < cy;
  if (radius > 0 && inCornerX && inCornerY) return Math.hypot(x - cx, y - cy) - radius;
  return Math.max(-x, x - w, -y, y - h);
}

/** Signed distance to an ellipse inscribed in [0,w]×[0,h] (approximate, exact on the axes). */
function ellipseDistance(x: number, y: number, w: number, h: number): number {
  const rx = w / 2;
  const ry = h / 2;
  const k = Math.hypot((x - rx) / rx, (y - ry) / ry);
  return (k - 1) * Math.min(rx, ry);
}

const coverage = (distance: number) => Math.max(0, Math.min(1, 0.5 - distance));

/** Corner radii no larger than half the shorter side (CSS clamps the same way). */
const clampCorners = (r: Corners, w: number, h: number): Corners => r.map((v) => Math.min(v, Math.min(w, h) / 2)) as Corners;

/** Paints `colour` over the pixel at `o` with coverage `amount` (0..1), in straight alpha. */
function paint(data: Buffer, o: number, colour: Color, amount: number): void {
  if (amount <= 0) return;
  const a0 = data[o + 3]! / 255;
  const a1 = colour.alpha * amount;
  const a = a1 + a0 * (1 - a1);
  if (a <= 0) {
    data.fill(0, o, o + 4);
    return;
  }
  data[o] = Math.round((colour.r * a1 + data[o]! * a0 * (1 - a1)) / a);
  data[o + 1] = Math.round((colour.g * a1 + data[o + 1]! * a0 * (1 - a1)) / a);
  data[o + 2] = Math.round((colour.b * a1 + data[o + 2]! * a0 * (1 - a1)) / a);
  data[o + 3] = Math.round(a * 255);
}

/** One frame through mask, border and padding; answers the new frame and its size. */
function frameOne(src: Buffer, width: number, height: number, f: FrameParams, fill: Color): { data: Buffer; width: number; height: number } {
  const data = Buffer.from(src);
  if (f.mask) {
    const radii = clampCorners(f.cornerRadius ?? [0, 0, 0, 0].map(() => 0.2 * Math.min(width, height)) as Corners, width, height);
    const clear = (x: number, y: number, inside: number) => {
      if (inside >= 1) return;
      const o = (y * width + x) * 4;
      data[o + 3] = Math.round(data[o + 3]! * inside);
      if (f.maskBg) paint(data, o, f.maskBg, 1 - inside);
    };
    if (f.mask === 'corners') forCornerSquares(width, height, radii, (x, y) => clear(x, y, coverage(roundedRectDistance(x + 0.5, y + 0.5, width, height, radii))));
    else for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) clear(x, y, coverage(ellipseDistance(x + 0.5, y + 0.5, width, height)));
  }
  let out: { data: Buffer; width: number; height: number } = { data, width, height };
  if (f.border) out = surround(out, f.border.sides, f.border.color, f.border.radius, f.border.innerRadius);
  if (f.pad) out = surround(out, f.pad, fill);
  return out;
}

/**
 * The image with a band of `colour` around it (`sides` wide): the band's outer corners rounded by
 * `outer` (transparent beyond), the image's corners by `inner` (the band's colour over them).
 * Rows are copied whole; only the corner squares are shaded pixel by pixel.
 */
function surround(img: { data: Buffer; width: number; height: number }, sides: Sides, colour: Color, outer?: Corners, inner?: Corners): { data: Buffer; width: number; height: number } {
  const width = img.width + sides.left + sides.right;
  const height = img.height + sides.top + sides.bottom;
  const data = Buffer.alloc(width * height * 4).fill(Buffer.from([colour.r, colour.g, colour.b, Math.round(colour.alpha * 255)]));
  for (let y = 0; y < img.height; y++) {
    img.data.copy(data, ((y + sides.top) * width + sides.left) * 4, y * img.width * 4, (y + 1) * img.width * 4);
  }
  if (inner) {
    const radii = clampCorners(inner, img.width, img.height);
    forCornerSquares(img.width, img.height, radii, (x, y) => {
      const over = 1 - coverage(roundedRectDistance(x + 0.5, y + 0.5, img.width, img.height, radii));
      paint(data, ((y + sides.top) * width + x + sides.left) * 4, colour, over);
    });
  }
  if (outer) {
    const radii = clampCorners(outer, width, height);
    forCornerSquares(width, height, radii, (x, y) => {
      const o = (y * width + x) * 4;
      data[o + 3] = Math.round(data[o + 3]! * coverage(roundedRectDistance(x + 0.5, y + 0.5, width, height, radii)));
    });
  }
  return { data, width, height };
}

/** Calls `visit` for every pixel of the four corner squares (radius × radius) of a rectangle. */
function forCornerSquares(width: number, height: number, radii: Corners, visit: (x: number, y: number) => void): void {
  const squares: [number, number, number][] = [
    [0, 0, radii[0]], [width - radii[1], 0, radii[1]], [width - radii[2], height - radii[2], radii[2]], [0, height - radii[3], radii[3]],
  ];
  for (const [x0, y0, r] of squares) {
    const side = Math.ceil(r);
    for (let y = Math.max(0, Math.floor(y0)); y < Math.min(height, Math.floor(y0) + side); y++) {
      for (let x = Math.max(0, Math.floor(x0)); x < Math.min(width, Math.floor(x0) + side); x++) visit(x, y);
    }
  }
}

export interface FrameTask extends RawFrames {
  f: FrameParams;
  fill: Color;
}

/** Every frame of raw RGBA through mask, border and padding (run on a worker thread). */
export function framePixels({ data, width, frameHeight, frames, f, fill }: FrameTask): RawFrames {
  const framed = [];
  for (let i = 0; i < frames; i++) {
    framed.push(frameOne(data.subarray(i * width * frameHeight * 4, (i + 1) * width * frameHeight * 4), width, frameHeight, f, fill));
  }
  return { data: Buffer.concat(framed.map((x) => x.data)), width: framed[0]!.width, frameHeight: framed[0]!.height, frames, channels: 4 };
}

/**
 * Runs mask, border and padding on what `img` has made so far and answers a new pipeline on the
 * result (frames kept). `fill` is what padding and cleared pixels become: the background, or
 * transparent where the output keeps alpha. Refuses a result past the output's size limits.
 */
export async function applyFrame(img: Sharp, f: FrameParams, fill: Color, frames: number, limits: Pick<TransformLimits, 'maxOutputPixels' | 'maxOutputDimension' | 'timeoutSeconds'>): Promise<Sharp> {
  const raw = await toRawFrames(img, frames, limits.timeoutSeconds, true);
  const extraW = (f.border ? f.border.sides.left + f.border.sides.right : 0) + (f.pad ? f.pad.left + f.pad.right : 0);
  const extraH = (f.border ? f.border.sides.top + f.border.sides.bottom : 0) + (f.pad ? f.pad.top + f.pad.bottom : 0);
  const [width, height] = [raw.width + extraW, raw.frameHeight + extraH];
  if (width * height * frames > limits.maxOutputPixels || Math.max(width, height) > limits.maxOutputDimension) {
    throw new EdgeError('EDGE_IMAGE_TOO_LARGE', `border and padding would make the output ${width}x${height}, past the limits (${limits.maxOutputDimension} px a side, ${limits.maxOutputPixels} pixels)`);
  }
  const framed = await pixelsInWorker<RawFrames & { data: Uint8Array }>('framePixelsTask', { ...raw, f, fill });
  return fromRawFrames({ ...framed, data: Buffer.from(framed.data.buffer, framed.data.byteOffset, framed.data.byteLength) });
}
