/**
 * AVIF/HEIF (ISO-BMFF): ftyp brands, then the `meta` box: primary item (pitm), item types (iinf),
 * and the properties (iprp → ipco) associated with each item (ipma).
 * libheif applies irot/imir when it decodes, so sizes are reported after irot and orientation stays 1.
 */
import { ascii, malformed, need, u16, u32, u8 } from './header-fields.js';
import type { HeaderInfo } from './header-fields.js';
import type { SourceFormat } from './types.js';

interface Box {
  type: string;
  /** first payload byte */
  start: number;
  end: number;
}

const ALPHA_URNS = new Set(['urn:mpeg:mpegB:cicp:systems:auxiliary:alpha', 'urn:mpeg:hevc:2015:auxid:1']);

/** The box at `pos`; size 0 runs to the end of the parent (of the file, at the top level). */
function boxAt(b: Buffer, pos: number, parentEnd: number, f: SourceFormat): Box {
  let size = u32(b, pos, false);
  const type = ascii(b, pos + 4, 4);
  let start = pos + 8;
  if (size === 1) {
    const high = u32(b, pos + 8, false);
    if (high >= 2 ** 21) throw malformed(f, `${type} box larger than 2^53 bytes`);
    size = high * 2 ** 32 + u32(b, pos + 12, false);
    start = pos + 16;
  } else if (size === 0) {
    size = parentEnd - pos;
  }
  if (size < start - pos || pos + size > parentEnd) throw malformed(f, `${type} box size ${size}`);
  return { type, start, end: pos + size };
}

/** Child boxes filling `[start, end)`, which the caller has checked is all in `b`. */
function children(b: Buffer, start: number, end: number, f: SourceFormat): Box[] {
  const boxes: Box[] = [];
  for (let pos = start; pos < end; pos = boxes[boxes.length - 1]!.end) boxes.push(boxAt(b, pos, end, f));
  return boxes;
}

export function readBmff(b: Buffer, h: HeaderInfo): void {
  for (let pos = 0; ; ) {
    const box = boxAt(b, pos, Infinity, h.format);
    if (box.type === 'ftyp' || box.type === 'meta') need(b, box.end);
    if (box.type === 'ftyp') {
      // major brand, minor version, then compatible brands
      for (let i = box.start; i + 4 <= box.end; i += i === box.start ? 8 : 4) if (ascii(b, i, 4) === 'avis') h.animated = true;
    } else if (box.type === 'meta') {
      readMeta(b, box, h);
      h.complete = true;
      return;
    }
    pos = box.end;
  }
}

function readMeta(b: Buffer, meta: Box, h: HeaderInfo): void {
  const f = h.format;
  let primary: number | undefined;
  const properties: Box[] = [];
  const associations = new Map<number, number[]>();
  for (const c of children(b, meta.start + 4, meta.end, f)) {
    if (c.type === 'pitm') primary = u8(b, c.start) === 0 ? u16(b, c.start + 4, false) : u32(b, c.start + 4, false);
    else if (c.type === 'iinf') h.hasExif = hasExifItem(b, c, f);
    else if (c.type === 'iprp') {
      for (const p of children(b, c.start, c.end, f)) {
        if (p.type === 'ipco') properties.push(...children(b, p.start, p.end, f));
        else if (p.type === 'ipma') readIpma(b, p, associations, f);
      }
    }
  }
  const own = (primary !== undefined ? associations.get(primary) : undefined)
    ?.map((i) => properties[i - 1])
    .filter((p): p is Box => p !== undefined);
  const mine = own?.length ? own : properties;

  const size = (ispe: Box) => [u32(b, ispe.start + 4, false), u32(b, ispe.start + 8, false)] as const;
  const primarySize = mine.find((p) => p.type === 'ispe');
  const [width, height] = primarySize
    ? size(primarySize)
    : properties.filter((p) => p.type === 'ispe').map(size).reduce((a, s) => (s[0] * s[1] > a[0] * a[1] ? s : a), [0, 0] as const);
  if (width === 0 || height === 0) throw malformed(f, 'no image size (ispe)');
  const irot = mine.find((p) => p.type === 'irot');
  const quarterTurn = irot !== undefined && (u8(b, irot.start) & 1) === 1;
  h.width = quarterTurn ? height : width;
  h.height = quarterTurn ? width : height;
  h.hasIcc = mine.some((p) => p.type === 'colr' && ['prof', 'rICC'].includes(ascii(b, p.start, 4)));
  h.hasAlpha = properties.some((p) => p.type === 'auxC' && ALPHA_URNS.has(cString(b, p.start + 4, p.end)));
  h.channels = h.hasAlpha ? 4 : 3; // libheif decodes to RGB or RGBA
}

/** ipma: per item, a list of 1-based indices into ipco (7 bits, or 15 when flags bit 0 is set). */
function readIpma(b: Buffer, box: Box, out: Map<number, number[]>, f: SourceFormat): void {
  const version = u8(b, box.start);
  const wide = (u8(b, box.start + 3) & 1) === 1;
  const count = u32(b, box.start + 4, false);
  let pos = box.start + 8;
  for (let i = 0; i < count; i++) {
    if (pos >= box.end) throw malformed(f, 'ipma runs past its box');
    const item = version < 1 ? u16(b, pos, false) : u32(b, pos, false);
    pos += version < 1 ? 2 : 4;
    const n = u8(b, pos++);
    if (pos + n * (wide ? 2 : 1) > box.end) throw malformed(f, 'ipma runs past its box');
    const indices: number[] = [];
    for (let j = 0; j < n; j++, pos += wide ? 2 : 1) indices.push(wide ? u16(b, pos, false) & 0x7fff : u8(b, pos) & 0x7f);
    out.set(item, indices);
  }
}

/** iinf holds one infe per item; infe version 2/3 names the item type, e.g. 'Exif'. */
function hasExifItem(b: Buffer, iinf: Box, f: SourceFormat): boolean {
  const first = iinf.start + (u8(b, iinf.start) === 0 ? 6 : 8);
  return children(b, first, iinf.end, f).some((infe) => {
    const version = u8(b, infe.start);
    return infe.type === 'infe' && version >= 2 && ascii(b, infe.start + (version === 2 ? 8 : 10), 4) === 'Exif';
  });
}

/** A NUL-terminated string within `[start, end)`. */
function cString(b: Buffer, start: number, end: number): string {
  const s = b.subarray(start, end);
  const nul = s.indexOf(0);
  return s.toString('latin1', 0, nul >= 0 ? nul : s.length);
}
