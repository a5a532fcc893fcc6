/** TIFF: IFD0 tags, then the IFD chain (one IFD per page) as far as the prefix goes. */
import { malformed, u16, u32 } from './header-fields.js';
import { readIfd, readIfd0Facts, uintValue } from './exif.js';
import type { HeaderInfo } from './header-fields.js';

const WIDTH = 256;
const HEIGHT = 257;
const PHOTOMETRIC = 262;
const SAMPLES_PER_PIXEL = 277;
const EXTRA_SAMPLES = 338;
const EXIF_IFD = 34665;
const ICC_PROFILE = 34675;

export function readTiff(b: Buffer, h: HeaderInfo): void {
  const le = b[0] === 0x49; // "II"; sniffFormat has checked the rest of the signature
  const ifd0 = u32(b, 4, le);
  if (ifd0 < 8) throw malformed('tiff', `IFD0 at byte ${ifd0}`);
  const ifd = readIfd(b, le, ifd0);
  const width = uintValue(b, le, ifd.get(WIDTH));
  const height = uintValue(b, le, ifd.get(HEIGHT));
  if (!width || !height) throw malformed('tiff', `size ${width}x${height}`);
  h.width = width;
  h.height = height;
  const photometric = uintValue(b, le, ifd.get(PHOTOMETRIC));
  const samples = uintValue(b, le, ifd.get(SAMPLES_PER_PIXEL)) ?? 1;
  h.space = photometric === 0 || photometric === 1 ? 'b-w' : photometric === 5 ? 'cmyk' : 'srgb';
  const colourSamples = h.space === 'b-w' || photometric === 3 ? 1 : h.space === 'cmyk' ? 4 : 3; // 3: palette
  h.channels = samples;
  h.hasAlpha = ifd.has(EXTRA_SAMPLES) || samples > colourSamples;
  h.hasIcc = ifd.has(ICC_PROFILE);
  h.hasExif = ifd.has(EXIF_IFD);
  readIfd0Facts(b, le, ifd, h);
  h.frames = 1;
  h.complete = true; // from here on only the page count can change

  const nextIfd = (at: number) => u32(b, at + 2 + 12 * u16(b, at, le), le);
  const seen = new Set([ifd0]);
  for (let next = nextIfd(ifd0); next !== 0; next = nextIfd(next)) {
    if (next < 8 || seen.has(next)) throw malformed('tiff', `IFD chain loops or points into the header (${next})`);
    seen.add(next);
    h.frames = seen.size;
  }
  h.framesComplete = true;
}
