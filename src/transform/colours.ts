/**
 * How many distinct colours (RGB, alpha ignored) an image has: what the seed's logs recorded for
 * its data mining. Exact, over a decode of every pixel, so only for images up to `maxPixels`
 * (undefined past it). Runs on a worker thread (quality-pool.ts): the count is a loop over every
 * pixel, about 20 ms for a 0.4-megapixel image, too long for the event loop.
 */
import sharp from 'sharp';

/** One bit per 24-bit colour (2 MiB): sets each pixel's bit, counts the bits it was first to set. */
function countDistinct(rgb: Uint8Array): number {
  const seen = new Uint32Array(1 << 19);
  let count = 0;
  for (let p = 0; p + 2 < rgb.length; p += 3) {
    const c = (rgb[p]! << 16) | (rgb[p + 1]! << 8) | rgb[p + 2]!;
    const word = c >>> 5;
    const bit = 1 << (c & 31);
    const had = seen[word]!;
    if ((had & bit) === 0) {
      seen[word] = had | bit;
      count++;
    }
  }
  return count;
}

export interface ColourTask {
  source: Uint8Array;
  width: number;
  height: number;
  maxPixels: number;
}

export async function distinctColours({ source, width, height, maxPixels }: ColourTask): Promise<number | undefined> {
  if (width * height > maxPixels) return undefined;
  const input = Buffer.from(source.buffer, source.byteOffset, source.byteLength);
  const { data, info } = await sharp(input, { failOn: 'none' }).toColourspace('srgb').removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return info.channels === 3 ? countDistinct(data) : undefined;
}
