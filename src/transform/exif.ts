/**
 * TIFF structure: the body of EXIF blocks (JPEG APP1, PNG eXIf, WebP EXIF) and of TIFF files.
 * Offsets are relative to the buffer given, which starts at the "II*\0" / "MM\0*" header.
 */
import { OutOfBytes, need, u16, u32, u8 } from './header-fields.js';
import type { HeaderInfo } from './header-fields.js';
import type { EncodePolicy, ExifFields, ImageInfo } from './types.js';

const TAG_ORIENTATION = 274;
const TAG_ARTIST = 0x013b;
const TAG_COPYRIGHT = 0x8298;
const TAG_DATE_TIME = 0x0132;
const TAG_EXIF_IFD = 0x8769;
const TAG_GPS_IFD = 0x8825;
const GPS_ALTITUDE_REF = 0x05;

/** The Exif IFD's dates, under libexif's names (the names sharp's withExif writes by). */
const EXIF_DATES = new Map([
  [0x9003, 'DateTimeOriginal'],
  [0x9004, 'DateTimeDigitized'],
  [0x9010, 'OffsetTime'],
  [0x9011, 'OffsetTimeOriginal'],
  [0x9012, 'OffsetTimeDigitized'],
]);

/**
 * The GPS IFD's fields a geotag is made of, as libvips writes them from text. It cannot write a
 * BYTE field from text (it writes 0), so the altitude's reference (0 above sea level, 1 below) is
 * not among them: see gpsFields.
 */
const GPS_FIELDS = new Map([
  [0x01, 'GPSLatitudeRef'],
  [0x02, 'GPSLatitude'],
  [0x03, 'GPSLongitudeRef'],
  [0x04, 'GPSLongitude'],
  [0x06, 'GPSAltitude'],
  [0x07, 'GPSTimeStamp'],
  [0x0c, 'GPSSpeedRef'],
  [0x0d, 'GPSSpeed'],
  [0x10, 'GPSImgDirectionRef'],
  [0x11, 'GPSImgDirection'],
  [0x12, 'GPSMapDatum'],
  [0x1d, 'GPSDateStamp'],
]);

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

/** The Exif IFD of a TIFF structure (an EXIF block's body) and its byte order; undefined when there is none. */
export function exifIfdOf(tiff: Buffer): { le: boolean; entries: Map<number, IfdEntry> } | undefined {
  const le = byteOrder(tiff);
  if (le === undefined) return undefined;
  const at = uintValue(tiff, le, readIfd(tiff, le, u32(tiff, 4, le)).get(TAG_EXIF_IFD));
  return at === undefined ? undefined : { le, entries: readIfd(tiff, le, at) };
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

/**
 * A field as libvips takes it from text: ASCII as it is, numbers and rationals ("51/1 30/1 2640/100")
 * separated by spaces. Undefined for other types and for values too long to be the fields kept here.
 */
function fieldText(b: Buffer, le: boolean, e: IfdEntry): string | undefined {
  if (e.type === 2) return e.count <= 256 ? textValue(b, e) : undefined;
  if (e.count > 16) return undefined;
  const values: string[] = [];
  for (let i = 0; i < e.count; i++) {
    if (e.type === 5) values.push(`${u32(b, e.at + 8 * i, le)}/${u32(b, e.at + 8 * i + 4, le)}`);
    else {
      const v = uintValue(b, le, e, i);
      if (v === undefined) return undefined;
      values.push(String(v));
    }
  }
  return values.join(' ');
}

/** The fields of the IFD at `at` that `names` names, by name; undefined when none is there. */
function namedFields(b: Buffer, le: boolean, ifd: Map<number, IfdEntry>, names: Map<number, string>): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const [tag, e] of ifd) {
    const name = names.get(tag);
    const text = name && fieldText(b, le, e);
    if (name && text) out[name] = text;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/**
 * Orientation (1 when absent or out of 1..8), Copyright and Artist from IFD0; the dates (IFD0 and
 * the Exif IFD) and the GPS IFD, for callers who keep them. A date or geotag that cannot be read
 * whole is left out: they are kept only on request, and never decide anything.
 */
export function readIfd0Facts(b: Buffer, le: boolean, ifd0: Map<number, IfdEntry>, h: HeaderInfo): void {
  const o = uintValue(b, le, ifd0.get(TAG_ORIENTATION));
  h.orientation = o !== undefined && o >= 1 && o <= 8 ? o : 1;
  const copyright = textValue(b, ifd0.get(TAG_COPYRIGHT));
  if (copyright !== undefined) h.copyright = copyright;
  const artist = textValue(b, ifd0.get(TAG_ARTIST));
  if (artist !== undefined) h.artist = artist;
  const guarded = <T>(read: () => T | undefined): T | undefined => {
    try {
      return read();
    } catch {
      return undefined;
    }
  };
  const exifAt = uintValue(b, le, ifd0.get(TAG_EXIF_IFD));
  const gpsAt = uintValue(b, le, ifd0.get(TAG_GPS_IFD));
  const dateTime = guarded(() => textValue(b, ifd0.get(TAG_DATE_TIME)));
  const exifDates = exifAt === undefined ? undefined : guarded(() => namedFields(b, le, readIfd(b, le, exifAt), EXIF_DATES));
  if (dateTime !== undefined || exifDates) h.dates = { ...(dateTime !== undefined ? { IFD0: { DateTime: dateTime } } : {}), ...(exifDates ? { IFD2: exifDates } : {}) };
  const gps = gpsAt === undefined ? undefined : guarded(() => gpsFields(b, le, gpsAt));
  if (gps) h.geotag = { IFD3: gps };
}

const GPS_FIELDS_WITHOUT_ALTITUDE = new Map([...GPS_FIELDS].filter(([, name]) => name !== 'GPSAltitude'));

/** The geotag's fields; an altitude below sea level is left out, as it would be written as above. */
function gpsFields(b: Buffer, le: boolean, at: number): Record<string, string> | undefined {
  const ifd = readIfd(b, le, at);
  const belowSeaLevel = uintValue(b, le, ifd.get(GPS_ALTITUDE_REF)) === 1;
  return namedFields(b, le, ifd, belowSeaLevel ? GPS_FIELDS_WITHOUT_ALTITUDE : GPS_FIELDS);
}

/** The EXIF fields an output carries: those of the source the policy keeps, merged by IFD; undefined for none. */
export function exifToKeep(info: ImageInfo, policy: EncodePolicy): ExifFields | undefined {
  const kept: ExifFields[] = [];
  if (policy.keepCopyright && (info.copyright || info.artist)) {
    kept.push({ IFD0: { ...(info.copyright ? { Copyright: info.copyright } : {}), ...(info.artist ? { Artist: info.artist } : {}) } });
  }
  if (policy.keepDate && info.dates) kept.push(info.dates);
  if (policy.keepGeotag && info.geotag) kept.push(info.geotag);
  if (kept.length === 0) return undefined;
  const out: ExifFields = {};
  for (const fields of kept) for (const ifd of ['IFD0', 'IFD2', 'IFD3'] as const) if (fields[ifd]) out[ifd] = { ...out[ifd], ...fields[ifd] };
  return out;
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
