/**
 * What the quality search encodes and measures. Outputs up to WHOLE_MAX_PIXELS: the whole image.
 * Larger ones (camera originals through the CLI and the optimization API): a mosaic of tiles cut
 * from it at full resolution on an even grid, so the probes cost a fraction of a whole encode
 * while the artifacts that decide (1–4 px ringing and blocking) are measured at the size they are
 * served. Tiles start on multiples of 16, JPEG's largest block (a 4:2:0 MCU), so JPEG codes each
 * tile's blocks as it codes them in the whole image; WebP and AVIF predict across block edges, so
 * there the mosaic is an estimate. Downscaling instead would average those artifacts away.
 */
import type { RawImage } from './types.js';

export interface MeasurementView {
  image: RawImage;
  /** true when `image` is the whole output, so a probe's bytes are the answer */
  whole: boolean;
}

export const WHOLE_MAX_PIXELS = 640_000;
const TILE = 256;

/** Tile origins along one axis: `count` evenly spaced, aligned down to 16. */
function origins(length: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => Math.floor(((length - TILE) * i) / (count - 1) / 16) * 16);
}

export function measurementView(ref: RawImage): MeasurementView {
  if (ref.width * ref.height <= WHOLE_MAX_PIXELS || ref.width < 2 * TILE || ref.height < 2 * TILE) return { image: ref, whole: true };
  // 6 tiles (393 216 px), three along the longer side.
  const cols = ref.width >= ref.height ? 3 : 2;
  const rows = 5 - cols;
  const xs = origins(ref.width, cols);
  const ys = origins(ref.height, rows);
  const { channels } = ref;
  const width = cols * TILE;
  const data = Buffer.alloc(width * rows * TILE * channels);
  ys.forEach((y0, r) => {
    xs.forEach((x0, c) => {
      for (let y = 0; y < TILE; y++) {
        const from = ((y0 + y) * ref.width + x0) * channels;
        ref.data.copy(data, ((r * TILE + y) * width + c * TILE) * channels, from, from + TILE * channels);
      }
    });
  });
  return { image: { data, width, height: rows * TILE, channels }, whole: false };
}
