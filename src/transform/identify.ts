/** Learn what a source is from its header alone, before anything is decoded. */
import sharp, { type Metadata } from 'sharp';
import { EdgeError } from '../errors.js';
import type { HeadInspector } from '../origin/types.js';
import { exifFacts, HEADER_LIMIT, headerToInfo, readHeader, type HeaderInfo } from './header.js';
import type { ImageInfo } from './types.js';

/**
 * Header facts of a source without decoding it: parsed from its first 64 KiB, with sharp's
 * header reader for what those bytes did not settle (a GIF's frame count, late metadata).
 */
export async function identify(body: Buffer): Promise<ImageInfo> {
  const header = readHeader(body.subarray(0, HEADER_LIMIT));
  const fromHeader = headerToInfo(header, body.length);
  if (fromHeader && header.complete && header.framesComplete) return fromHeader;
  let meta: Metadata;
  try {
    meta = await sharp(body).metadata();
  } catch (err) {
    throw new EdgeError('EDGE_BAD_IMAGE', `the ${header.format} source cannot be read: ${(err as Error).message}`);
  }
  if (!meta.width || !meta.height) throw new EdgeError('EDGE_BAD_IMAGE', `the ${header.format} source has no size`);
  return {
    format: header.format,
    width: meta.width,
    height: meta.pageHeight ?? meta.height,
    pages: meta.pages ?? 1,
    hasAlpha: meta.hasAlpha,
    orientation: meta.orientation && meta.orientation <= 8 ? meta.orientation : 1,
    hasProfile: meta.hasProfile,
    space: meta.space,
    progressive: meta.isProgressive,
    bytes: body.length,
    ...exifFacts(header),
    hasExif: header.hasExif || meta.exif !== undefined,
  };
}

/** At least this much of a body before "not an image" is final (a first chunk can be tiny). */
const SNIFF_BYTES = 64;

/**
 * Refuses a source from its first bytes while it downloads: too many pixels (frames counted,
 * up to the frame cap), or not an image although the origin calls it one. Anything else is left
 * to identify() on the whole body (so onError: "original" still has the bytes to serve).
 */
export function sourceInspector(limits: { maxSourcePixels: number; maxFrames: number }): HeadInspector {
  return (head, headers) => {
    let header: HeaderInfo;
    try {
      header = readHeader(head);
    } catch (err) {
      const notImage = err instanceof EdgeError && err.code === 'EDGE_NOT_AN_IMAGE';
      if (notImage && head.length >= SNIFF_BYTES && (headers['content-type'] ?? '').startsWith('image/')) throw err;
      return head.length >= SNIFF_BYTES;
    }
    if (header.width && header.height) {
      const frames = Math.min(header.frames ?? 1, limits.maxFrames);
      if (header.width * header.height * frames > limits.maxSourcePixels) {
        throw new EdgeError('EDGE_IMAGE_TOO_LARGE', `the source has ${header.width}x${header.height}x${frames} pixels, more than the ${limits.maxSourcePixels} allowed`);
      }
    }
    return header.complete && header.framesComplete;
  };
}
