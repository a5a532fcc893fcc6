/**
 * What every header parser shares: the facts it fills in (HeaderInfo) and bounds-checked reads (a
 * read past the prefix never happens, it throws OutOfBytes).
 */
import { EdgeError } from '../errors.js';
import type { ExifFields, SourceFormat } from './types.js';

export interface HeaderInfo {
  format: SourceFormat;
  /** stored pixel size, before EXIF orientation (HEIF: after irot, which libheif applies); for animations one frame's canvas */
  width?: number;
  height?: number;
  /** JPEG SOF2/6/10/14; PNG Adam7 interlace (libvips reports that as progressive too) */
  progressive?: boolean;
  /** GIF NETSCAPE/ANIMEXTS loop or a 2nd image, APNG acTL, WebP ANIM flag/ANIM/ANMF, AVIF 'avis' brand */
  animated: boolean;
  /** APNG acTL, WebP ANMF, GIF images, TIFF pages: counted so far, final only when framesComplete */
  frames?: number;
  framesComplete: boolean;
  /** GIF: a GCE with transparency seen so far (later frames may add one) */
  hasAlpha?: boolean;
  hasIcc: boolean;
  hasExif: boolean;
  /** EXIF 274, 1..8; 1 when absent or invalid */
  orientation: number;
  /** EXIF IFD0 Copyright (0x8298) and Artist (0x013B) */
  copyright?: string;
  artist?: string;
  /** EXIF dates and the GPS IFD's fields, by IFD as sharp writes them */
  dates?: ExifFields;
  geotag?: ExifFields;
  /** decoded samples per pixel, as sharp reports channels; unknown for GIF */
  channels?: number;
  space?: 'srgb' | 'cmyk' | 'b-w';
  /**
   * Every fact above is final, except `frames` while framesComplete is false (and GIF hasAlpha).
   * False when the bytes end first: more bytes may tell more, up to HEADER_LIMIT.
   */
  complete: boolean;
}

/** The prefix ends before a field a parser needs; readHeader returns what is known so far. */
export class OutOfBytes extends Error {}

export function need(b: Buffer, end: number): void {
  if (end > b.length) throw new OutOfBytes();
}

export function malformed(format: SourceFormat, why: string): EdgeError {
  return new EdgeError('EDGE_BAD_IMAGE', `the ${format} header is malformed: ${why}`);
}

export function u8(b: Buffer, at: number): number {
  need(b, at + 1);
  return b[at]!;
}

export function u16(b: Buffer, at: number, le: boolean): number {
  need(b, at + 2);
  return le ? b.readUInt16LE(at) : b.readUInt16BE(at);
}

export function u24le(b: Buffer, at: number): number {
  need(b, at + 3);
  return b.readUIntLE(at, 3);
}

export function u32(b: Buffer, at: number, le: boolean): number {
  need(b, at + 4);
  return le ? b.readUInt32LE(at) : b.readUInt32BE(at);
}

export function ascii(b: Buffer, at: number, length: number): string {
  need(b, at + length);
  return b.toString('latin1', at, at + length);
}

/** True when `[start, end)` is long enough for `sig` and begins with it. */
export function startsWith(b: Buffer, start: number, end: number, sig: string): boolean {
  return end - start >= sig.length && ascii(b, start, sig.length) === sig;
}
