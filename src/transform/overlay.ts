/** Raw RGBA overlays composited by sharp, which refuses one that reaches outside the image. */
import type { OverlayOptions } from 'sharp';

/** An overlay cut to the part inside a `width`×`height` canvas (sharp refuses one that sticks out). */
export function clipOverlay(o: OverlayOptions, width: number, height: number): OverlayOptions {
  const raw = o.raw!;
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
