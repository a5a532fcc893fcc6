/** What format a source is, from its magic bytes alone. */
import type { SourceFormat } from './types.js';

export const SOURCE_CONTENT_TYPES: Readonly<Record<SourceFormat, string>> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  gif: 'image/gif',
  webp: 'image/webp',
  avif: 'image/avif',
  heif: 'image/heif',
  tiff: 'image/tiff',
  svg: 'image/svg+xml',
};

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const AVIF_BRANDS = new Set(['avif', 'avis']);
const HEIF_BRANDS = new Set(['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis', 'hevm', 'hevs', 'mif1', 'msf1']);

const ascii = (b: Buffer, start: number, end: number) => b.toString('latin1', start, end);

/** ISO-BMFF `ftyp` box: major brand, then compatible brands up to the box size. */
function bmffBrand(head: Buffer): SourceFormat | undefined {
  if (head.length < 16 || ascii(head, 4, 8) !== 'ftyp') return undefined;
  const end = Math.min(head.readUInt32BE(0), head.length);
  const brands = [ascii(head, 8, 12)];
  for (let i = 16; i + 4 <= end; i += 4) brands.push(ascii(head, i, i + 4));
  if (brands.some((b) => AVIF_BRANDS.has(b))) return 'avif';
  if (brands.some((b) => HEIF_BRANDS.has(b))) return 'heif';
  return undefined;
}

/** One prolog item before the root element: whitespace, XML declaration, comment or DOCTYPE. */
const SVG_PROLOG = /^(?:\s+|<\?xml[\s\S]*?\?>|<!--[\s\S]*?-->|<!doctype\s+svg[^[>]*(?:\[[\s\S]*?\]\s*)?>)/i;

/** SVG: optional BOM, whitespace, XML declaration, comments and DOCTYPE, then an `<svg` element. */
function isSvg(head: Buffer): boolean {
  let s = head.toString('utf8').replace(/^\uFEFF/, '');
  for (let m = SVG_PROLOG.exec(s); m; m = SVG_PROLOG.exec(s)) s = s.slice(m[0].length);
  return /^<svg[\s>/]/.test(s);
}

/** Format by magic bytes only; undefined when the bytes are not an image this edge handles. */
export function sniffFormat(head: Buffer): SourceFormat | undefined {
  if (head.length >= 3 && head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return 'jpeg';
  if (head.subarray(0, 8).equals(PNG_SIGNATURE)) return 'png';
  const six = ascii(head, 0, 6);
  if (six === 'GIF87a' || six === 'GIF89a') return 'gif';
  if (head.length >= 12 && ascii(head, 0, 4) === 'RIFF' && ascii(head, 8, 12) === 'WEBP') return 'webp';
  const four = ascii(head, 0, 4);
  if (four === 'II*\0' || four === 'MM\0*') return 'tiff';
  return bmffBrand(head) ?? (isSvg(head) ? 'svg' : undefined);
}
