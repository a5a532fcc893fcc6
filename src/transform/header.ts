/**
 * What a source is, from its first bytes as they stream in: format, size, frames, alpha, profile,
 * orientation. Pure JavaScript over at most HEADER_LIMIT bytes, no pixel decoding, so the edge can
 * refuse early and pick the pipeline before the body is downloaded.
 */
import { EdgeError } from '../errors.js';
import { OutOfBytes, type HeaderInfo } from './header-fields.js';
import { readBmff } from './header-bmff.js';
import { readGif } from './header-gif.js';
import { readJpeg } from './header-jpeg.js';
import { readPng } from './header-png.js';
import { readSvg } from './header-svg.js';
import { readTiff } from './header-tiff.js';
import { readWebp } from './header-webp.js';
import { sniffFormat } from './sniff.js';
import type { ImageInfo, SourceFormat } from './types.js';

export type { HeaderInfo } from './header-fields.js';

export const HEADER_LIMIT = 64 * 1024;
/** identify() sniffs this much too, so both accept the same sources (an SVG prolog must fit in it). */
const SNIFF_WINDOW = 4096;

const PARSERS: Record<SourceFormat, (b: Buffer, h: HeaderInfo) => void> = {
  jpeg: readJpeg,
  png: readPng,
  gif: readGif,
  webp: readWebp,
  avif: readBmff,
  heif: readBmff,
  tiff: readTiff,
  svg: readSvg,
};

/**
 * Header facts of a prefix of a source (only its first HEADER_LIMIT bytes are looked at).
 * Throws EDGE_NOT_AN_IMAGE (415) when the magic bytes are no image format (short prefixes too:
 * call with at least 16 bytes, or the whole body) and EDGE_BAD_IMAGE (422) for malformed headers.
 */
export function readHeader(head: Buffer): HeaderInfo {
  const b = head.subarray(0, HEADER_LIMIT);
  const format = sniffFormat(b.subarray(0, SNIFF_WINDOW));
  if (!format) throw new EdgeError('EDGE_NOT_AN_IMAGE', 'the source is not an image format the edge handles');
  const h: HeaderInfo = { format, animated: false, framesComplete: false, hasIcc: false, hasExif: false, orientation: 1, complete: false };
  try {
    PARSERS[format](b, h);
  } catch (err) {
    if (!(err instanceof OutOfBytes)) throw err;
  }
  if (h.complete && !h.animated && h.frames === undefined) {
    h.frames = 1;
    h.framesComplete = true;
  }
  return h;
}

/** The ImageInfo the header tells, or undefined while the size is unknown. */
export function headerToInfo(h: HeaderInfo, bytes: number): ImageInfo | undefined {
  if (h.width === undefined || h.height === undefined) return undefined;
  return {
    format: h.format,
    width: h.width,
    height: h.height,
    pages: h.frames ?? 1,
    hasAlpha: h.hasAlpha ?? false,
    orientation: h.orientation,
    hasProfile: h.hasIcc,
    space: h.space ?? 'srgb',
    progressive: h.progressive ?? false,
    bytes,
    ...exifFacts(h),
  };
}

/** The EXIF fields an output may keep (copyright and artist, dates, geotag), and whether there is EXIF at all. */
export function exifFacts(h: HeaderInfo): Pick<ImageInfo, 'copyright' | 'artist' | 'dates' | 'geotag' | 'hasExif'> {
  return {
    hasExif: h.hasExif,
    ...(h.copyright ? { copyright: h.copyright } : {}),
    ...(h.artist ? { artist: h.artist } : {}),
    ...(h.dates ? { dates: h.dates } : {}),
    ...(h.geotag ? { geotag: h.geotag } : {}),
  };
}
