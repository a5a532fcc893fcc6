import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import { EdgeError } from '../../src/errors.js';
import { statusOf } from '../../src/http/errors.js';
import { HEADER_LIMIT, headerToInfo, readHeader, type HeaderInfo } from '../../src/transform/header.js';
import { identify } from '../../src/transform/identify.js';

interface Fixture {
  name: string;
  buf: Buffer;
  /** facts sharp's metadata does not tell, checked on readHeader's answer */
  expect?: Partial<HeaderInfo>;
}

const background = { r: 200, g: 60, b: 20 };
const rgb = () => sharp({ create: { width: 40, height: 30, channels: 3, background } });
const rgba = () => sharp({ create: { width: 40, height: 30, channels: 4, background: { ...background, alpha: 0.5 } } });
const exif = { IFD0: { Copyright: '(c) Test', Artist: 'A' } };

/** Every format and variant sharp can write, small enough to sit wholly within HEADER_LIMIT. */
async function headerFixtures(): Promise<Fixture[]> {
  const colours = ['red', 'green', 'blue'].map((c) => sharp({ create: { width: 40, height: 30, channels: 3, background: c } }).png().toBuffer());
  const animatedGif = await sharp(await Promise.all(colours), { join: { animated: true } }).gif().toBuffer();
  const p3Jpeg = await rgb().jpeg().withIccProfile('p3').toBuffer();
  const alphaPng = await rgba().png().toBuffer();
  const made: [string, Promise<Buffer>, Partial<HeaderInfo>?][] = [
    ['jpeg baseline', rgb().jpeg().toBuffer(), { space: 'srgb', progressive: false }],
    ['jpeg progressive, exif, p3', rgb().jpeg({ progressive: true }).withIccProfile('p3').withExif(exif).toBuffer(), { copyright: '(c) Test', artist: 'A', hasExif: true }],
    ['jpeg keepIccProfile', sharp(p3Jpeg).keepIccProfile().jpeg().toBuffer()],
    ['jpeg orientation 6', rgb().jpeg().withMetadata({ orientation: 6 }).toBuffer(), { orientation: 6 }],
    ['jpeg cmyk', rgb().toColourspace('cmyk').jpeg().toBuffer(), { space: 'cmyk', channels: 4 }],
    ['jpeg grey', rgb().toColourspace('b-w').jpeg().toBuffer(), { space: 'b-w' }],
    ['jpeg 40 KB exif', rgb().jpeg().withExif({ IFD0: { ImageDescription: 'd'.repeat(40_000) } }).toBuffer()],
    ['png rgb', rgb().png().toBuffer()],
    ['png alpha', Promise.resolve(alphaPng)],
    ['png palette tRNS', rgba().png({ palette: true }).toBuffer()],
    ['png grey', rgb().toColourspace('b-w').png().toBuffer(), { space: 'b-w' }],
    ['png interlaced', rgb().png({ progressive: true }).toBuffer()],
    ['png exif orientation 6', rgb().png().withMetadata({ orientation: 6 }).withExif(exif).toBuffer(), { copyright: '(c) Test' }],
    ['gif still, transparent', rgba().gif().toBuffer()],
    ['gif animated', Promise.resolve(animatedGif), { animated: true }],
    ['webp lossy', rgb().webp().toBuffer()],
    ['webp lossy alpha', rgba().webp().toBuffer()],
    ['webp lossless alpha', rgba().webp({ lossless: true }).toBuffer()],
    ['webp p3', rgb().webp().withIccProfile('p3').toBuffer()],
    ['webp exif orientation 6', rgb().webp().withMetadata({ orientation: 6 }).withExif(exif).toBuffer(), { orientation: 6, artist: 'A' }],
    ['webp animated', sharp(animatedGif, { animated: true }).webp().toBuffer(), { animated: true }],
    ['avif', rgb().avif({ effort: 0 }).toBuffer()],
    ['avif alpha', rgba().avif({ effort: 0 }).toBuffer()],
    ['avif p3', rgb().avif({ effort: 0 }).withIccProfile('p3').toBuffer()],
    ['avif orientation 6 (irot)', rgb().avif({ effort: 0 }).withMetadata({ orientation: 6 }).toBuffer(), { width: 30, height: 40, hasExif: true }],
    ['tiff', rgb().tiff().toBuffer()],
    ['tiff alpha', sharp(alphaPng).tiff({ compression: 'lzw' }).toBuffer(), { hasAlpha: true, channels: 4 }], // sharp's default JPEG compression has no alpha
    ['tiff orientation 6, p3', rgb().tiff().withIccProfile('p3').withMetadata({ orientation: 6 }).toBuffer()],
    ['tiff cmyk', rgb().toColourspace('cmyk').tiff().toBuffer(), { space: 'cmyk' }],
    ['tiff grey', rgb().toColourspace('b-w').tiff().toBuffer(), { space: 'b-w' }],
    ['tiff pages', sharp(animatedGif, { animated: true }).tiff().toBuffer()],
    ['svg', Promise.resolve(Buffer.from('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="64" height="48"><rect width="10" height="10"/></svg>'))],
  ];
  return Promise.all(made.map(async ([name, buf, expect]) => ({ name, buf: await buf, ...(expect ? { expect } : {}) })));
}

/** The facts that must not change once `complete` is true (frames may still grow). */
function settledFacts(h: HeaderInfo) {
  const { frames: _f, framesComplete: _c, complete: _d, ...rest } = h;
  return rest;
}

function assertBadImage(buf: Buffer, why: string): void {
  assert.throws(() => readHeader(buf), (err: unknown) => err instanceof EdgeError && err.code === 'EDGE_BAD_IMAGE' && statusOf(err) === 422, why);
}

/** Prefix lengths: every one near the start (where the headers are), then sparser. */
function prefixLengths(len: number): number[] {
  const max = Math.min(len, HEADER_LIMIT);
  const out: number[] = [];
  for (let n = 0; n < max; n += n < 1024 ? 1 : n < 8192 ? 13 : 127) out.push(n);
  return [...out, max];
}

/** A PNG chunk with its CRC. */
function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}

/** A hand-made GIF: screen size, then 1-pixel-coded frames at the given rectangles, optionally with a GCE each. */
function gif(screen: [number, number], frames: [number, number, number, number][], opts: { gce?: boolean; trailer?: boolean } = {}): Buffer {
  const le16 = (v: number) => [v & 255, v >> 8];
  const parts = [Buffer.from('GIF89a', 'latin1'), Buffer.from([...le16(screen[0]), ...le16(screen[1]), 0x80, 0, 0, 0, 0, 0, 255, 255, 255])];
  for (const [x, y, w, h] of frames) {
    if (opts.gce) parts.push(Buffer.from([0x21, 0xf9, 4, 1, 0, 0, 0, 0]));
    parts.push(Buffer.from([0x2c, ...le16(x), ...le16(y), ...le16(w), ...le16(h), 0, 2, 2, 0x44, 0x01, 0]));
  }
  if (opts.trailer !== false) parts.push(Buffer.from([0x3b]));
  return Buffer.concat(parts);
}

let fixtures: Fixture[] = [];
before(async () => {
  fixtures = await headerFixtures();
});

describe('readHeader agrees with sharp on files sharp wrote', () => {
  it('reads width, height, pages, alpha, orientation, profile, progressive, channels and space', async () => {
    for (const { name, buf, expect } of fixtures) {
      const h = readHeader(buf);
      assert.equal(h.complete, true, `${name}: complete`);
      if (expect) assert.deepEqual({ ...h, ...expect }, h, `${name}: expected facts`);
      const m = await sharp(buf).metadata();
      const facts = { width: h.width, height: h.height, pages: h.frames, hasAlpha: h.hasAlpha ?? false, orientation: h.orientation, hasProfile: h.hasIcc, isProgressive: h.progressive ?? false };
      const told = { width: m.width, height: m.height, pages: m.pages ?? 1, hasAlpha: m.hasAlpha, orientation: m.orientation ?? 1, hasProfile: m.hasProfile, isProgressive: m.isProgressive };
      assert.deepEqual(facts, told, name);
      if (h.channels !== undefined) assert.equal(h.channels, m.channels, `${name}: channels`);
      if (['srgb', 'cmyk', 'b-w'].includes(m.space)) assert.equal(h.space ?? 'srgb', m.space, `${name}: space`);
      assert.equal(h.framesComplete, true, `${name}: framesComplete`);
    }
  });

  it('headerToInfo gives what identify() gives', async () => {
    for (const { name, buf } of fixtures) {
      assert.deepEqual(headerToInfo(readHeader(buf), buf.length), await identify(buf), name);
    }
  });

  it('headerToInfo is undefined while the size is unknown', () => {
    const jpeg = fixtures.find((f) => f.name === 'jpeg baseline')!.buf;
    const h = readHeader(jpeg.subarray(0, 4));
    assert.equal(h.complete, false);
    assert.equal(headerToInfo(h, 4), undefined);
  });
});

describe('readHeader on prefixes', () => {
  it('returns or throws EdgeError for every prefix, and once complete, the facts are final', () => {
    for (const { name, buf } of fixtures) {
      const full = readHeader(buf);
      for (const n of prefixLengths(buf.length)) {
        let h: HeaderInfo;
        try {
          h = readHeader(buf.subarray(0, n));
        } catch (err) {
          // a valid prefix is never malformed; it may be too short to tell the format
          assert.ok(err instanceof EdgeError && err.code === 'EDGE_NOT_AN_IMAGE' && n < 32, `${name} [0, ${n}): ${String(err)}`);
          continue;
        }
        assert.equal(h.format, full.format, `${name} [0, ${n})`);
        if (!h.complete) continue;
        assert.deepEqual(settledFacts(h), settledFacts(full), `${name} [0, ${n})`);
        if (h.framesComplete) assert.equal(h.frames, full.frames, `${name} [0, ${n}) frames`);
        else assert.ok((h.frames ?? 0) <= (full.frames ?? Infinity), `${name} [0, ${n}) frames so far`);
      }
    }
  });

  it('finds the size of a JPEG behind a 40 KB EXIF block, and looks no further than HEADER_LIMIT', async () => {
    const big = await sharp({ create: { width: 900, height: 700, channels: 3, background, noise: { type: 'gaussian', mean: 128, sigma: 60 } } })
      .jpeg({ quality: 95 })
      .withExif({ IFD0: { ImageDescription: 'x'.repeat(40_000), Copyright: '(c) Big' } })
      .toBuffer();
    assert.ok(big.length > 2 * HEADER_LIMIT);
    const h = readHeader(big.subarray(0, HEADER_LIMIT));
    assert.deepEqual([h.width, h.height, h.complete, h.copyright, h.hasExif], [900, 700, true, '(c) Big', true]);
    assert.deepEqual(readHeader(big), h);
  });

  it('stays incomplete while the bytes end before the size, and tells so', () => {
    const png = fixtures.find((f) => f.name === 'png rgb')!.buf;
    const h = readHeader(png.subarray(0, 20));
    assert.deepEqual([h.format, h.width, h.complete], ['png', undefined, false]);
  });
});

describe('readHeader: refusals', () => {
  it('throws EDGE_NOT_AN_IMAGE (415) for what is no image format, short prefixes included', () => {
    for (const s of ['', 'GIF', '<html><body>', '{"a":1}', 'RIFF\0\0\0\0WAVEfmt ', '%PDF-1.7\n', '\xff\xd8']) {
      assert.throws(() => readHeader(Buffer.from(s, 'latin1')), (err: unknown) => err instanceof EdgeError && err.code === 'EDGE_NOT_AN_IMAGE' && statusOf(err) === 415, JSON.stringify(s));
    }
  });

  it('throws EDGE_BAD_IMAGE (422) for malformed headers', () => {
    const jpeg = Buffer.from(fixtures.find((f) => f.name === 'jpeg baseline')!.buf);
    const sof = jpeg.indexOf(Buffer.from([0xff, 0xc0]));
    jpeg.writeUInt16BE(0, sof + 7); // width 0
    assertBadImage(jpeg, 'JPEG width 0');
    assertBadImage(Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x01]), 'JPEG segment length 1');
    assertBadImage(Buffer.from([0xff, 0xd8, 0xff, 0xda, 0x00, 0x08]), 'JPEG scan before frame');

    const png = Buffer.from(fixtures.find((f) => f.name === 'png rgb')!.buf);
    const inflated = Buffer.from(png);
    inflated.writeUInt32BE(0xffffffff, 33); // the chunk after IHDR claims 4 GiB
    assertBadImage(inflated, 'PNG chunk length past 2^31');
    const zero = Buffer.from(png);
    zero.writeUInt32BE(0, 16);
    assertBadImage(zero, 'PNG width 0');

    const webp = Buffer.from(fixtures.find((f) => f.name === 'webp lossy')!.buf);
    webp.writeUInt32LE(0xfffffff0, 16); // first chunk larger than the RIFF
    assertBadImage(webp, 'WebP chunk past RIFF');

    assertBadImage(gif([10, 10], [[0, 0, 10, 10]]).fill(0x99, 13 + 6, 13 + 7), 'GIF unknown block');
    const tiffLoop = Buffer.from('II*\0\x08\0\0\0\x02\0\0\x01\x03\0\x01\0\0\0\x05\0\0\0\x01\x01\x03\0\x01\0\0\0\x05\0\0\0\x08\0\0\0', 'latin1');
    assertBadImage(tiffLoop, 'TIFF IFD chain that loops');
    assertBadImage(Buffer.from('<svg width="0" height="10">'), 'SVG width 0');
  });
});

describe('readHeader: what sharp cannot write', () => {
  it('reads APNG frames from acTL', () => {
    const png = fixtures.find((f) => f.name === 'png rgb')!.buf;
    const actl = Buffer.alloc(8);
    actl.writeUInt32BE(5, 0);
    const apng = Buffer.concat([png.subarray(0, 33), pngChunk('acTL', actl), png.subarray(33)]);
    const h = readHeader(apng);
    assert.deepEqual([h.animated, h.frames, h.framesComplete, h.complete], [true, 5, true, true]);
  });

  it('reads HEIF (AVIF bytes under a heic brand: sharp has no HEVC encoder) and avis as animated', () => {
    const avif = fixtures.find((f) => f.name === 'avif alpha')!.buf;
    const ftypEnd = avif.readUInt32BE(0);
    const rebrand = (brand: string) => {
      const b = Buffer.from(avif);
      for (let i = 8; i < ftypEnd; i += 4) if (b.toString('latin1', i, i + 4) === 'avif') b.write(brand, i, 'latin1');
      return b;
    };
    const heif = readHeader(rebrand('heic'));
    assert.deepEqual([heif.format, heif.width, heif.height, heif.hasAlpha, heif.animated, heif.frames], ['heif', 40, 30, true, false, 1]);
    const avis = readHeader(rebrand('avis'));
    assert.deepEqual([avis.format, avis.animated, avis.frames, avis.framesComplete, avis.complete], ['avif', true, undefined, false, true]);
  });

  it('sizes GIFs as libnsgif does: the first frame grows the screen, desktop-sized screens are ignored', async () => {
    const cases = [gif([10, 10], [[0, 0, 10, 10]]), gif([800, 600], [[0, 0, 10, 10]]), gif([10, 10], [[5, 5, 10, 10]]), gif([0, 0], [[0, 0, 7, 9]]), gif([10, 10], [[0, 0, 10, 10], [5, 5, 10, 10]], { gce: true })];
    for (const g of cases) {
      const h = readHeader(g);
      const m = await sharp(g).metadata();
      assert.deepEqual([h.width, h.height, h.frames, h.hasAlpha ?? false], [m.width, m.height, m.pages, m.hasAlpha]);
    }
  });

  it('counts GIF frames so far when the bytes end, and marks the count unfinished', () => {
    const frames = Array.from({ length: 6 }, () => [0, 0, 10, 10] as [number, number, number, number]);
    const full = gif([10, 10], frames);
    const cut = readHeader(full.subarray(0, full.length - 1));
    assert.deepEqual([cut.animated, cut.frames, cut.framesComplete, cut.complete], [true, 6, false, true]);
    const one = readHeader(gif([10, 10], [[0, 0, 10, 10]], { trailer: false }));
    assert.equal(one.complete, false, 'one frame and no trailer: a second frame may follow');
  });

  it('sizes SVGs as libvips asks librsvg: px and absolute units, else the viewBox aspect, else unknown', async () => {
    const svgs = [
      '<svg xmlns="http://www.w3.org/2000/svg" width="100.5" height="50.4"/>',
      '<svg xmlns="http://www.w3.org/2000/svg" width="100" viewBox="0 0 30 20"/>',
      '<svg xmlns="http://www.w3.org/2000/svg" width="1in" height="2cm"/>',
      '<svg xmlns="http://www.w3.org/2000/svg" width="50%" height="20" viewBox="0 0 30.6 20.5"/>',
      '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0,0,64,48"><rect width="10" height="10"/></svg>',
      '\uFEFF<?xml version="1.0"?>\n<!-- a > comment --><!DOCTYPE svg>\n<svg xmlns="http://www.w3.org/2000/svg" data-x=\'a>b\' width="12pt" height="3em"/>',
    ];
    for (const s of svgs) {
      const buf = Buffer.from(s);
      const h = readHeader(buf);
      const m = await sharp(buf).metadata();
      assert.deepEqual([h.width, h.height, h.complete], [m.width, m.height, true], s);
    }
    const unsized = readHeader(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><rect width="10" height="10"/></svg>'));
    assert.deepEqual([unsized.width, unsized.height, unsized.complete], [undefined, undefined, true]);
    assert.equal(readHeader(Buffer.from('<svg width="10" height="10"')).complete, false, 'root tag not closed yet');
  });
});
