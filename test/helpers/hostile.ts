/**
 * Hostile sources the project makes itself (nothing downloaded): headers that lie about their
 * size, truncated and corrupt files, polyglots, frame bombs and SVGs that try to reach outside.
 * Every maker is deterministic, so a failing case can be replayed byte for byte.
 */
import sharp from 'sharp';
import { photoJpeg } from './images.js';

/** Deterministic bytes (an LCG), so "random" corruption is the same on every run. */
export function noise(length: number, seed = 7): Buffer {
  const out = Buffer.alloc(length);
  let s = seed >>> 0;
  for (let i = 0; i < length; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

/** A smaller real JPEG to patch (photo-like, so its scan data is not trivial). */
export function smallJpeg(): Promise<Buffer> {
  return photoJpeg({ width: 320, height: 240, quality: 80 });
}

/** A real PNG with enough detail that its IDAT is several KiB. */
export async function detailedPng(): Promise<Buffer> {
  return sharp(await smallJpeg()).png({ compressionLevel: 6 }).toBuffer();
}

// ---------------------------------------------------------------------------------------------
// Headers that claim huge sizes

/** A PNG whose IHDR claims width × height, followed by an IDAT of `extra` bytes. */
export async function claimedPng(width: number, height: number, extra = 64 * 1024): Promise<Buffer> {
  const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#888' } }).png().toBuffer();
  png.writeUInt32BE(width, 16);
  png.writeUInt32BE(height, 20);
  const idat = Buffer.alloc(8);
  idat.writeUInt32BE(extra, 0);
  idat.write('IDAT', 4, 'latin1');
  return Buffer.concat([png.subarray(0, 33), idat, Buffer.alloc(extra, 1)]);
}

/** Offset of the first SOFn segment's marker (0xFF) in a JPEG; throws when there is none. */
function sofOffset(jpeg: Buffer): number {
  let pos = 2;
  while (pos + 4 <= jpeg.length) {
    if (jpeg[pos] !== 0xff) throw new Error(`no JPEG marker at ${pos}`);
    const marker = jpeg[pos + 1]!;
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) return pos;
    pos += 2 + jpeg.readUInt16BE(pos + 2);
  }
  throw new Error('no SOF segment');
}

/** A real JPEG whose frame header (SOF) claims width × height; the scan data is the original's. */
export async function claimedJpeg(width: number, height: number): Promise<Buffer> {
  const jpeg = Buffer.from(await smallJpeg());
  const sof = sofOffset(jpeg);
  // FF Cn, length (2), precision (1), height (2), width (2)
  jpeg.writeUInt16BE(height, sof + 5);
  jpeg.writeUInt16BE(width, sof + 7);
  return jpeg;
}

/** A WebP with a VP8X chunk (sharp writes one for alpha) whose canvas claims width × height. */
export async function claimedWebp(width: number, height: number): Promise<Buffer> {
  const webp = Buffer.from(
    await sharp({ create: { width: 16, height: 16, channels: 4, background: { r: 200, g: 30, b: 30, alpha: 0.5 } } }).webp().toBuffer(),
  );
  if (webp.toString('latin1', 12, 16) !== 'VP8X') throw new Error('sharp wrote no VP8X chunk');
  // RIFF(12) + chunk header(8) + flags(1) + reserved(3): canvas width-1, height-1 as 24-bit little endian.
  webp.writeUIntLE(width - 1, 24, 3);
  webp.writeUIntLE(height - 1, 27, 3);
  return webp;
}

// ---------------------------------------------------------------------------------------------
// GIF writer (enough of GIF89a for hostile files: screen, frames, comments, loop)

/** GIF LZW of palette indices (variable code width, a clear code when the table is full). */
export function gifLzw(indices: Uint8Array, minCodeSize: number): Buffer {
  const clear = 1 << minCodeSize;
  const eoi = clear + 1;
  const bytes: number[] = [];
  let acc = 0;
  let nbits = 0;
  let width = minCodeSize + 1;
  const emit = (code: number) => {
    acc |= code << nbits;
    nbits += width;
    while (nbits >= 8) {
      bytes.push(acc & 0xff);
      acc >>>= 8;
      nbits -= 8;
    }
  };
  let table = new Map<string, number>();
  let next = eoi + 1;
  emit(clear);
  let prefix = indices[0]!;
  for (let i = 1; i < indices.length; i++) {
    const k = indices[i]!;
    const key = `${prefix},${k}`;
    const known = table.get(key);
    if (known !== undefined) {
      prefix = known;
      continue;
    }
    emit(prefix);
    if (next < 4096) {
      table.set(key, next++);
      // The decoder reads one code behind: it widens once the table holds a code of the next width.
      if (next > 1 << width && width < 12) width++;
    } else {
      emit(clear);
      table = new Map();
      next = eoi + 1;
      width = minCodeSize + 1;
    }
    prefix = k;
  }
  emit(prefix);
  emit(eoi);
  if (nbits > 0) bytes.push(acc & 0xff);
  return Buffer.from(bytes);
}

/** Data sub-blocks (at most 255 bytes each) and the 0 block that ends them. */
function subBlocks(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < data.length; i += 255) {
    const piece = data.subarray(i, i + 255);
    parts.push(Buffer.from([piece.length]), piece);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

const u16le = (v: number) => Buffer.from([v & 0xff, v >> 8]);

export interface GifFrame {
  left?: number;
  top?: number;
  width: number;
  height: number;
  /** palette index of every pixel (a solid frame) */
  index?: number;
}

export interface GifSpec {
  /** logical screen (what the file claims) */
  screen: { width: number; height: number };
  frames: GifFrame[];
  /** a NETSCAPE2.0 loop extension (set for more than one frame unless false) */
  loop?: boolean;
  /** comment extensions (0x21 0xFE) written after the last frame, before the trailer */
  trailingComment?: string;
  /** a graphic control extension before each frame (default true) */
  gce?: boolean;
}

/** Four-colour global palette: red, green, blue, white. */
const PALETTE = Buffer.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255]);

/** A GIF89a built byte by byte: header, screen, global palette, optional loop, frames, comment, trailer. */
export function gifBytes(spec: GifSpec): Buffer {
  const parts: Buffer[] = [Buffer.from('GIF89a', 'latin1'), u16le(spec.screen.width), u16le(spec.screen.height)];
  // global colour table of 4 entries (size field 1), colour resolution 2 bits; background 0; aspect 0
  parts.push(Buffer.from([0x80 | (1 << 4) | 1, 0, 0]), PALETTE);
  if (spec.loop ?? spec.frames.length > 1) {
    parts.push(Buffer.from([0x21, 0xff, 11]), Buffer.from('NETSCAPE2.0', 'latin1'), Buffer.from([3, 1, 0, 0, 0]));
  }
  const lzwCache = new Map<string, Buffer>();
  for (const f of spec.frames) {
    // graphic control: no disposal, 10 ms, no transparency
    if (spec.gce ?? true) parts.push(Buffer.from([0x21, 0xf9, 4, 0, 1, 0, 0, 0]));
    parts.push(Buffer.from([0x2c]), u16le(f.left ?? 0), u16le(f.top ?? 0), u16le(f.width), u16le(f.height), Buffer.from([0]));
    const key = `${f.width}x${f.height}:${f.index ?? 0}`;
    let data = lzwCache.get(key);
    if (!data) {
      data = Buffer.concat([Buffer.from([2]), subBlocks(gifLzw(new Uint8Array(f.width * f.height).fill(f.index ?? 0), 2))]);
      lzwCache.set(key, data);
    }
    parts.push(data);
  }
  if (spec.trailingComment !== undefined) {
    parts.push(Buffer.from([0x21, 0xfe]), subBlocks(Buffer.from(spec.trailingComment, 'latin1')));
  }
  parts.push(Buffer.from([0x3b]));
  return Buffer.concat(parts);
}

/** `count` solid frames of size×size on a screen of the same size (a frame-count bomb). */
export function manyFramesGif(count: number, size = 16, screen = size): Buffer {
  const frames = Array.from({ length: count }, (_, i) => ({ width: size, height: size, index: i % 4 }));
  return gifBytes({ screen: { width: screen, height: screen }, frames });
}

/** The JavaScript a GIF/JS polyglot runs (a marker the tests look for in outputs). */
export const POLYGLOT_JS = 'alert(1)';

/**
 * A GIF that is also a valid script: the logical screen width is the bytes `/*`, which opens a
 * comment the binary rest lives in; a GIF comment extension after the frame closes it with
 * `*\/=1;alert(1)//`, and the line comment swallows the trailer. As JS: `GIF89a = 1; alert(1)`.
 * No graphic control extension, so the file is as small as it can be: a plain re-encode comes
 * out larger (for a 1x1 frame), which is when "never larger" would hand back these bytes.
 */
export function polyglotGif(frame = 16): Buffer {
  const gif = gifBytes({
    screen: { width: 0x2a2f, height: 0x0a0a }, // little endian: "/*", then two newlines
    frames: [{ width: frame, height: frame, index: 2 }],
    loop: false,
    gce: false,
    trailingComment: `*/=1;${POLYGLOT_JS}//`,
  });
  const js = gif.toString('latin1');
  if (js.indexOf('*/') !== js.lastIndexOf('*/')) throw new Error('the GIF body closes the JS comment early');
  return gif;
}

// ---------------------------------------------------------------------------------------------
// Truncated, corrupt and appended payloads

export const truncated = (file: Buffer, fraction = 0.5): Buffer => file.subarray(0, Math.floor(file.length * fraction));

/** A standard JFIF APP0 segment: version 1.1, no density unit, 1:1, no thumbnail. */
const JFIF_APP0 = Buffer.from([0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00]);

/** SOI and a valid JFIF APP0 segment, then noise where the next marker should be. */
export function corruptJpeg(): Buffer {
  return Buffer.concat([Buffer.from([0xff, 0xd8]), JFIF_APP0, noise(8 * 1024)]);
}

/** A real PNG whose first IDAT's compressed data is overwritten with noise (CRC left as it was). */
export async function garbledIdatPng(): Promise<Buffer> {
  const png = Buffer.from(await detailedPng());
  for (let pos = 8; pos + 8 <= png.length; ) {
    const length = png.readUInt32BE(pos);
    if (png.toString('latin1', pos + 4, pos + 8) === 'IDAT') {
      // keep the 2-byte zlib header so the stream starts right and breaks inside the deflate data
      const start = pos + 8 + 2;
      noise(Math.min(length - 2, 4096), 11).copy(png, start);
      return png;
    }
    pos += 12 + length;
  }
  throw new Error('no IDAT');
}

/** An HTML page that would run script if a browser ever rendered the bytes as a document. */
export const HTML_PAYLOAD = '<html><body><script>alert(document.cookie)</script></body></html>';

/** A real JPEG with an HTML document appended after its EOI marker. */
export async function jpegWithHtml(): Promise<Buffer> {
  return Buffer.concat([await smallJpeg(), Buffer.from(HTML_PAYLOAD)]);
}

/** A real JPEG carrying the HTML document inside a comment (COM) segment right after SOI: it ends cleanly at EOI. */
export async function jpegWithHtmlComment(): Promise<Buffer> {
  const jpeg = await smallJpeg();
  const payload = Buffer.from(HTML_PAYLOAD);
  const com = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from([(payload.length + 2) >> 8, (payload.length + 2) & 0xff]), payload]);
  return Buffer.concat([jpeg.subarray(0, 2), com, jpeg.subarray(2)]);
}

// ---------------------------------------------------------------------------------------------
// SVGs that try to run script or reach files and the network

const svg = (body: string, extraNs = '') =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"${extraNs} width="200" height="100" viewBox="0 0 200 100">\n` +
  `<rect x="0" y="0" width="200" height="100" fill="#ffffff"/>\n<rect x="10" y="10" width="40" height="40" fill="#0000ff"/>\n${body}</svg>\n`;

export const SVG = {
  /** the plain drawing every variant below is compared with */
  plain: svg(''),
  script: svg('<script type="text/javascript">alert(document.domain)</script>\n'),
  onload: svg('').replace('<svg ', '<svg onload="alert(document.domain)" '),
  /** an external raster the renderer must not fetch */
  externalImage: (url: string) => svg(`<image x="100" y="0" width="100" height="100" href="${url}" xlink:href="${url}"/>\n`),
  /** a local file the renderer must not read */
  fileImage: (file: string) => svg(`<image x="100" y="0" width="100" height="100" href="file://${file}" xlink:href="file://${file}"/>\n`),
  /** CVE-2023-38633: librsvg < 2.56.3 drew the text of a file named by xi:include */
  xinclude: svg(
    '<text x="60" y="80" font-family="DejaVu Sans, sans-serif" font-size="20" fill="#000000"><xi:include href=".?../../../../../../../etc/passwd" parse="text" encoding="UTF-8"><xi:fallback/></xi:include></text>\n',
    ' xmlns:xi="http://www.w3.org/2001/XInclude"',
  ),
  /** CVE-2023-38633's plain form */
  xincludePlain: svg(
    '<text x="60" y="80" font-family="DejaVu Sans, sans-serif" font-size="20" fill="#000000"><xi:include href="/etc/passwd" parse="text"/></text>\n',
    ' xmlns:xi="http://www.w3.org/2001/XInclude"',
  ),
  /** a canvas of 10^10 pixels, declared in the root tag */
  hugeCanvas: '<svg xmlns="http://www.w3.org/2000/svg" width="100000" height="100000"><rect width="10" height="10"/></svg>\n',
  /** billion laughs: nested entities that expand to 10^9 copies of "lol" */
  billionLaughs:
    '<?xml version="1.0"?>\n<!DOCTYPE svg [\n<!ENTITY lol "lol">\n' +
    Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i || ''};`.repeat(10)}">`).join('\n') +
    '\n]>\n<svg xmlns="http://www.w3.org/2000/svg" width="200" height="100"><text x="0" y="50">&lol9;</text></svg>\n',
  /** control: the same text written inline, to prove text does draw pixels on this machine */
  inlineText: svg('<text x="60" y="80" font-family="DejaVu Sans, sans-serif" font-size="20" fill="#000000">root:x:0:0</text>\n'),
};
