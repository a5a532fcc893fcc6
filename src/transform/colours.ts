/**
 * How many distinct colours (RGB, alpha ignored) an image has: what the seed's logs recorded for
 * its data mining. Exact, over a decode of every pixel, so only for images up to `maxPixels`
 * (undefined past it). The counting loop yields to the event loop every million pixels.
 */
import { setImmediate as yieldNow } from 'node:timers/promises';
import sharp from 'sharp';

const CHUNK = 1 << 20;

export async function countColours(source: Buffer, width: number, height: number, maxPixels = 12_000_000): Promise<number | undefined> {
  if (width * height > maxPixels) return undefined;
  const { data, info } = await sharp(source, { failOn: 'none' }).toColourspace('srgb').removeAlpha().raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) return undefined;
  const seen = new Uint32Array(1 << 19); // one bit per 24-bit colour: 2 MiB
  let count = 0;
  const pixels = data.length / 3;
  for (let start = 0; start < pixels; start += CHUNK) {
    const end = Math.min(pixels, start + CHUNK);
    for (let p = start * 3; p < end * 3; p += 3) {
      const c = (data[p]! << 16) | (data[p + 1]! << 8) | data[p + 2]!;
      const word = c >>> 5;
      const bit = 1 << (c & 31);
      if ((seen[word]! & bit) === 0) {
        seen[word]! |= bit;
        count++;
      }
    }
    if (end < pixels) await yieldNow();
  }
  return count;
}
