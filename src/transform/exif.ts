/**
 * TIFF structure: the body of EXIF blocks (JPEG APP1, PNG eXIf, WebP EXIF) and of TIFF files.
 * Offsets are relative to the buffer given, which starts at the "II*\0" / "MM\0*" header.
 */
import { OutOfBytes, need, u16, u32, u8 } from './header-fields.js';
import type { HeaderInfo } from './header-fields.js';

const TAG_ORIENTATION = 274;
const TAG_ARTIST = 0x013b;
const TAG_COPYRIGHT = 0x8298;

/** One IFD entry; `at` is where its value bytes start (inline, or at the offset the entry names). */
export interface IfdEntry {
  type: number;
  count: number;
  at: number;
}

/** Bytes per value of each TIFF field type (index = type, 13 = IFD); 0 for types we cannot size. */
const TYPE_SIZE = [0, 1, 1, 2, 4, 8, 1, 1, 2, 4, 8, 4, 8, 4];

/** true for little-endian (II), false for big-endian (MM), undefined when this is no TIFF structure. */
function byteOrder(b: Buffer): boolean | undefined {
  need(b, 4);
  const sig = b.toString('latin1', 0, 4);
  return sig === 'II*\0' ? true : sig === 'MM\0*' ? false : undefined;
}

/** The entries of the IFD at `at`, by tag. Entries of unknown type or with no value are left out. */
export function readIfd(b: Buffer, le: boolean, at: number): Map<number, IfdEntry> {
  const n = u16(b, at, le);
  need(b, at + 2 + 12 * n);
  const entries = new Map<number, IfdEntry>();
  for (let i = 0; i < n; i++) {
    const e = at + 2 + 12 * i;
    const type = u16(b, e + 2, le);
    const count = u32(b, e + 4, le);
    const size = (TYPE_SIZE[type] ?? 0) * count;
    if (size > 0) entries.set(u16(b, e, le), { type, count, at: size <= 4 ? e + 8 : u32(b, e + 8, le) });
  }
  return entries;
}

/** Value `i` of a BYTE, SHORT or LONG entry; undefined for other types, absent entries or past the count. */
export function uintValue(b: Buffer, le: boolean, e: IfdEntry | undefined, i = 0): number | undefined {
  if (!e || i >= e.count) return undefined;
  if (e.type === 1) return u8(b, e.at + i);
  if (e.type === 3) return u16(b, e.at + 2 * i, le);
  if (e.type === 4) return u32(b, e.at + 4 * i, le);
  return undefined;
}

/** An ASCII entry up to its first NUL (EXIF Copyright may be "photographer\0editor"); undefined when empty. */
function textValue(b: Buffer, e: IfdEntry | undefined): string | undefined {
  if (!e || e.type !== 2) return undefined;
  need(b, e.at + e.count);
  const raw = b.subarray(e.at, e.at + e.count);
  const nul = raw.indexOf(0);
  return raw.toString('utf8', 0, nul < 0 ? raw.length : nul) || undefined;
}

/** Orientation (1 when absent or out of 1..8), Copyright and Artist from IFD0. */
export function readIfd0Facts(b: Buffer, le: boolean, ifd0: Map<number, IfdEntry>, h: HeaderInfo): void {
  const o = uintValue(b, le, ifd0.get(TAG_ORIENTATION));
  h.orientation = o !== undefined && o >= 1 && o <= 8 ? o : 1;
  const copyright = textValue(b, ifd0.get(TAG_COPYRIGHT));
  if (copyright !== undefined) h.copyright = copyright;
  const artist = textValue(b, ifd0.get(TAG_ARTIST));
  if (artist !== undefined) h.artist = artist;
}

/**
 * The EXIF block at `[start, end)` of `b`. A block that is all there but broken is ignored, as
 * libexif does; one the prefix cuts short throws OutOfBytes, since more bytes may tell more.
 */
export function readExifBlock(b: Buffer, start: number, end: number, h: HeaderInfo): void {
  h.hasExif = true;
  try {
    const tiff = b.subarray(start, end);
    const le = byteOrder(tiff);
    if (le !== undefined) readIfd0Facts(tiff, le, readIfd(tiff, le, u32(tiff, 4, le)), h);
  } catch (err) {
    if (!(err instanceof OutOfBytes) || end > b.length) throw err;
  }
}
