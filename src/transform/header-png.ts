/** PNG: IHDR, then the chunks before the first IDAT (acTL, iCCP, tRNS, eXIf). */
import { ascii, malformed, u32, u8 } from './header-fields.js';
import { readExifBlock } from './exif.js';
import type { HeaderInfo } from './header-fields.js';

/** Samples per pixel of each colour type (3 = palette, decoded to RGB). */
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 3, 4: 2, 6: 4 };
const MAX_PNG = 0x7fffffff; // PNG's 4-byte integers stop at 2^31-1

export function readPng(b: Buffer, h: HeaderInfo): void {
  if (u32(b, 8, false) !== 13 || ascii(b, 12, 4) !== 'IHDR') throw malformed('png', 'IHDR is not the first chunk');
  const width = u32(b, 16, false);
  const height = u32(b, 20, false);
  const colourType = u8(b, 25);
  const interlace = u8(b, 28);
  const channels = CHANNELS[colourType];
  if (width === 0 || height === 0 || width > MAX_PNG || height > MAX_PNG) throw malformed('png', `size ${width}x${height}`);
  if (channels === undefined || interlace > 1) throw malformed('png', `colour type ${colourType}, interlace ${interlace}`);
  h.width = width;
  h.height = height;
  h.channels = channels;
  h.hasAlpha = colourType === 4 || colourType === 6;
  h.space = colourType === 0 || colourType === 4 ? 'b-w' : 'srgb';
  h.progressive = interlace === 1; // Adam7, as libvips reports it

  for (let pos = 33; ; ) {
    const length = u32(b, pos, false);
    const type = ascii(b, pos + 4, 4);
    if (length > MAX_PNG || !/^[A-Za-z]{4}$/.test(type)) throw malformed('png', `chunk at byte ${pos}`);
    const data = pos + 8;
    if (type === 'IDAT') {
      h.complete = true;
      return;
    }
    if (type === 'IEND') throw malformed('png', 'no image data');
    if (type === 'acTL') {
      const frames = u32(b, data, false);
      if (frames >= 1 && frames <= MAX_PNG) Object.assign(h, { animated: true, frames, framesComplete: true });
    } else if (type === 'iCCP') {
      h.hasIcc = true;
    } else if (type === 'tRNS' && !h.hasAlpha) {
      h.hasAlpha = true;
      h.channels = channels + 1;
    } else if (type === 'eXIf' && !h.hasExif) {
      readExifBlock(b, data, data + length, h);
    }
    pos = data + length + 4; // data, then CRC
  }
}
