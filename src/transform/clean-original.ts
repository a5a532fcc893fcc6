/**
 * Whether a source's own bytes may be served in place of a larger re-encode ("never larger"):
 * only when they carry nothing but the image. Metadata (EXIF GPS, XMP, comments) must not ride
 * along, and neither may a payload after the image's end (a polyglot). GIF and other formats
 * are always re-encoded: their extension blocks and headers can carry a second file.
 */
import type { ImageInfo } from './types.js';

/** JPEG markers that hold only image data or colour (APP0 JFIF, APP2 ICC, APP14 Adobe). */
const JPEG_KEPT_APP = new Set([0xe0, 0xe2, 0xee]);

function cleanJpeg(b: Buffer): boolean {
  if (b.length < 4 || b[b.length - 2] !== 0xff || b[b.length - 1] !== 0xd9) return false;
  let i = 2;
  while (i + 4 <= b.length) {
    if (b[i] !== 0xff) return false;
    const marker = b[i + 1]!;
    if (marker === 0xff) {
      i++;
      continue;
    }
    if (marker === 0xda) return true; // scan data follows: no more metadata segments before it
    const isApp = marker >= 0xe0 && marker <= 0xef;
    if (marker === 0xfe || (isApp && !JPEG_KEPT_APP.has(marker))) return false;
    i += 2 + b.readUInt16BE(i + 2);
  }
  return false;
}

/** PNG chunks that hold text or EXIF. */
const PNG_METADATA = new Set(['tEXt', 'zTXt', 'iTXt', 'eXIf']);

function cleanPng(b: Buffer): boolean {
  let i = 8;
  while (i + 12 <= b.length) {
    const length = b.readUInt32BE(i);
    const type = b.toString('latin1', i + 4, i + 8);
    if (PNG_METADATA.has(type)) return false;
    const next = i + 12 + length;
    if (type === 'IEND') return next === b.length;
    i = next;
  }
  return false;
}

/** A WebP that is exactly its RIFF chunk, without the EXIF or XMP flags of an extended header. */
function cleanWebp(b: Buffer): boolean {
  if (b.length < 21 || b.readUInt32LE(4) + 8 !== b.length) return false;
  const extended = b.toString('latin1', 12, 16) === 'VP8X';
  return !extended || (b[20]! & 0x0c) === 0;
}

export function isCleanOriginal(info: ImageInfo, source: Buffer): boolean {
  switch (info.format) {
    case 'jpeg':
      return cleanJpeg(source);
    case 'png':
      return cleanPng(source);
    case 'webp':
      return cleanWebp(source);
    default:
      return false;
  }
}
