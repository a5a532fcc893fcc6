/** WebP: RIFF chunks. Simple lossy (VP8) and lossless (VP8L) files, or VP8X with its flags and chunks. */
import { ascii, malformed, startsWith, u16, u24le, u32, u8 } from './header-fields.js';
import { readExifBlock } from './exif.js';
import type { HeaderInfo } from './header-fields.js';

const ICC_FLAG = 0x20;
const ALPHA_FLAG = 0x10;
const EXIF_FLAG = 0x08;
const ANIMATION_FLAG = 0x02;

interface Chunk {
  type: string;
  data: number;
  size: number;
  /** start of the next chunk: chunks are padded to an even size */
  next: number;
}

function chunkAt(b: Buffer, pos: number, riffEnd: number): Chunk {
  const type = ascii(b, pos, 4);
  const size = u32(b, pos + 4, true);
  const data = pos + 8;
  if (data + size > riffEnd) throw malformed('webp', `${type} chunk runs past the RIFF size`);
  return { type, data, size, next: data + size + (size & 1) };
}

export function readWebp(b: Buffer, h: HeaderInfo): void {
  const riffEnd = 8 + u32(b, 4, true);
  if (riffEnd < 20) throw malformed('webp', 'RIFF size leaves no room for a chunk');
  const first = chunkAt(b, 12, riffEnd);
  if (first.type === 'VP8 ') return readLossy(b, first.data, h);
  if (first.type === 'VP8L') return readLossless(b, first.data, h);
  if (first.type !== 'VP8X' || first.size < 10) throw malformed('webp', `first chunk ${JSON.stringify(first.type)}`);

  const flags = u8(b, first.data);
  const width = u24le(b, first.data + 4) + 1;
  const height = u24le(b, first.data + 7) + 1;
  if (width * height > 0xffffffff) throw malformed('webp', `canvas ${width}x${height}`); // the spec's cap
  h.width = width;
  h.height = height;
  h.hasIcc = (flags & ICC_FLAG) !== 0;
  h.hasAlpha = (flags & ALPHA_FLAG) !== 0;
  h.hasExif = (flags & EXIF_FLAG) !== 0;
  h.animated = (flags & ANIMATION_FLAG) !== 0;
  let sawImage = false;
  let exifRead = false;
  let frames = 0;
  // The EXIF chunk comes after the image data; until it is read, orientation is not final.
  const settled = () => (sawImage || h.animated) && (exifRead || (flags & EXIF_FLAG) === 0);
  h.complete = settled();
  for (let pos = first.next; pos + 8 <= riffEnd; ) {
    const c = chunkAt(b, pos, riffEnd);
    if (c.type === 'ANIM') h.animated = true;
    else if (c.type === 'ANMF') Object.assign(h, { animated: true, frames: ++frames });
    else if (c.type === 'ALPH') h.hasAlpha = true;
    else if (c.type === 'ICCP') h.hasIcc = true;
    else if (c.type === 'VP8L' && (u32(b, c.data + 1, true) >>> 28) & 1) h.hasAlpha = true;
    else if (c.type === 'EXIF' && !exifRead) {
      const tiff = startsWith(b, c.data, c.data + c.size, 'Exif\0\0') ? c.data + 6 : c.data; // some writers keep JPEG's prefix
      readExifBlock(b, tiff, c.data + c.size, h);
      exifRead = true;
    }
    if (c.type === 'VP8 ' || c.type === 'VP8L') sawImage = true;
    h.complete ||= settled();
    pos = c.next;
  }
  if (h.animated && frames === 0) throw malformed('webp', 'animation without frames');
  if (h.animated) Object.assign(h, { frames, framesComplete: true });
  h.complete = true;
}

/** VP8 key frame: 3-byte frame tag, start code 9d 01 2a, then 14-bit width and height (2 scale bits above). */
function readLossy(b: Buffer, data: number, h: HeaderInfo): void {
  if ((u8(b, data) & 1) !== 0) throw malformed('webp', 'VP8 data does not start with a key frame');
  if (u8(b, data + 3) !== 0x9d || u8(b, data + 4) !== 0x01 || u8(b, data + 5) !== 0x2a) throw malformed('webp', 'VP8 start code');
  setSize(h, u16(b, data + 6, true) & 0x3fff, u16(b, data + 8, true) & 0x3fff);
  Object.assign(h, { hasAlpha: false, channels: 3, complete: true });
}

/** VP8L: signature 0x2f, then 14 bits width-1, 14 bits height-1, 1 alpha bit, 3 version bits (0). */
function readLossless(b: Buffer, data: number, h: HeaderInfo): void {
  if (u8(b, data) !== 0x2f) throw malformed('webp', 'VP8L signature');
  const bits = u32(b, data + 1, true);
  if (bits >>> 29 !== 0) throw malformed('webp', 'VP8L version');
  const alpha = ((bits >>> 28) & 1) === 1;
  setSize(h, (bits & 0x3fff) + 1, ((bits >>> 14) & 0x3fff) + 1);
  Object.assign(h, { hasAlpha: alpha, channels: alpha ? 4 : 3, complete: true });
}

function setSize(h: HeaderInfo, width: number, height: number): void {
  if (width === 0 || height === 0) throw malformed('webp', `size ${width}x${height}`);
  h.width = width;
  h.height = height;
}
