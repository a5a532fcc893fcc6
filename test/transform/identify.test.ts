import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { EdgeError } from '../../src/errors.js';
import { statusOf } from '../../src/http/errors.js';
import { identify } from '../../src/transform/identify.js';
import { sniffFormat } from '../../src/transform/sniff.js';
import { alphaPng, animatedGif, cmykJpeg, orientedJpeg, photoJpeg, quadrantPng } from '../helpers/images.js';

/** An ISO-BMFF `ftyp` box with the given major and compatible brands. */
function ftyp(major: string, ...compatible: string[]): Buffer {
  const size = 16 + 4 * compatible.length;
  const box = Buffer.alloc(size + 8);
  box.writeUInt32BE(size, 0);
  box.write('ftyp', 4, 'latin1');
  box.write(major, 8, 'latin1');
  compatible.forEach((b, i) => box.write(b, 16 + 4 * i, 'latin1'));
  box.write('meta', size + 4, 'latin1');
  return box;
}

const svg = (s: string) => Buffer.from(s, 'utf8');

describe('sniffFormat', () => {
  it('knows the raster formats by their magic bytes', async () => {
    const q = await quadrantPng({ width: 16, height: 16 });
    assert.equal(sniffFormat(await photoJpeg({ width: 32, height: 32 })), 'jpeg');
    assert.equal(sniffFormat(q), 'png');
    assert.equal(sniffFormat(await animatedGif({ frames: 2 })), 'gif');
    assert.equal(sniffFormat(Buffer.from('GIF87a\x01\x00', 'latin1')), 'gif');
    assert.equal(sniffFormat(await sharp(q).webp().toBuffer()), 'webp');
    assert.equal(sniffFormat(await sharp(q).avif({ effort: 0 }).toBuffer()), 'avif');
    assert.equal(sniffFormat(await sharp(q).tiff().toBuffer()), 'tiff');
    assert.equal(sniffFormat(Buffer.from([0x4d, 0x4d, 0x00, 0x2a, 0, 0, 0, 8])), 'tiff');
  });

  it('tells AVIF from HEIF by the ftyp brands, and refuses other ISO-BMFF files', () => {
    assert.equal(sniffFormat(ftyp('avif', 'mif1', 'miaf')), 'avif');
    assert.equal(sniffFormat(ftyp('avis', 'msf1')), 'avif');
    assert.equal(sniffFormat(ftyp('mif1', 'avif')), 'avif');
    assert.equal(sniffFormat(ftyp('heic', 'mif1')), 'heif');
    assert.equal(sniffFormat(ftyp('mif1', 'heic')), 'heif');
    assert.equal(sniffFormat(ftyp('isom', 'iso2', 'mp41')), undefined, 'an MP4 video');
  });

  it('finds <svg after a BOM, whitespace, XML declaration, comments and DOCTYPE', () => {
    assert.equal(sniffFormat(svg('<svg xmlns="http://www.w3.org/2000/svg"/>')), 'svg');
    assert.equal(sniffFormat(svg('\uFEFF\n  <?xml version="1.0"?>\n<!-- made by hand -->\n<svg>')), 'svg');
    assert.equal(sniffFormat(svg('<?xml version="1.0"?><!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "x.dtd"><svg width="1">')), 'svg');
    assert.equal(sniffFormat(svg('<!DOCTYPE svg [ <!ENTITY a "b"> ]>\n<svg>')), 'svg');
    assert.equal(sniffFormat(svg('<html><svg></svg></html>')), undefined);
    assert.equal(sniffFormat(svg('<svgx>')), undefined);
    assert.equal(sniffFormat(svg('<!-- <svg> in a comment that never ends')), undefined);
  });

  it('refuses what is not an image', () => {
    assert.equal(sniffFormat(Buffer.alloc(0)), undefined);
    assert.equal(sniffFormat(svg('<!doctype html><html></html>')), undefined);
    assert.equal(sniffFormat(svg('{"json": true}')), undefined);
    assert.equal(sniffFormat(Buffer.from([0xff, 0xd8])), undefined, 'two bytes are not enough for JPEG');
    assert.equal(sniffFormat(Buffer.from('RIFF\0\0\0\0WAVE', 'latin1')), undefined);
  });
});

describe('identify', () => {
  it('reads the EXIF dates and the GPS fields by IFD, as libvips names them for writing', async () => {
    const written = {
      IFD0: { DateTime: '2020:01:02 03:04:05', Copyright: 'Someone' },
      IFD2: { DateTimeOriginal: '2019:05:06 07:08:09', OffsetTimeOriginal: '+02:00' },
      IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '51/1 30/1 2640/100', GPSAltitude: '355/10', GPSMapDatum: 'WGS-84' },
    };
    const info = await identify(await sharp(await photoJpeg({ width: 64, height: 48 })).withExif(written).jpeg().toBuffer());
    assert.deepEqual(info.dates, { IFD0: { DateTime: written.IFD0.DateTime }, IFD2: written.IFD2 });
    assert.deepEqual(info.geotag, { IFD3: written.IFD3 });
    assert.equal(info.copyright, 'Someone');
    // Below sea level (GPSAltitudeRef 1, a byte libvips cannot write from text): no altitude, rather than a wrong one.
    const below = await sharp(await photoJpeg({ width: 64, height: 48 })).withExif({ IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '31/1 30/1 0/1', GPSAltitudeRef: '0', GPSAltitude: '430/1' } }).jpeg().toBuffer();
    const refAt = below.indexOf(Buffer.from([0x05, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00])); // tag 5, BYTE, count 1 (little-endian)
    assert.ok(refAt > 0, 'libvips wrote a GPSAltitudeRef entry');
    below[refAt + 8] = 1;
    assert.deepEqual((await identify(below)).geotag, { IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '31/1 30/1 0/1' } });
  });

  it('reads size, frames, orientation and colour facts from the header', async () => {
    const jpeg = await photoJpeg({ width: 320, height: 240 });
    const info = await identify(jpeg);
    assert.deepEqual(
      { ...info, space: info.space },
      { format: 'jpeg', width: 320, height: 240, pages: 1, hasAlpha: false, orientation: 1, hasProfile: false, space: 'srgb', progressive: false, bytes: jpeg.length, hasExif: false },
    );
    const oriented = await identify(await orientedJpeg(6));
    assert.equal(oriented.orientation, 6);
    assert.equal(oriented.hasExif, true);
    assert.deepEqual([oriented.width, oriented.height], [400, 200], 'stored size, before orientation');
    const gif = await identify(await animatedGif({ frames: 5, width: 60, height: 40 }));
    assert.deepEqual([gif.format, gif.pages, gif.width, gif.height], ['gif', 5, 60, 40]);
    assert.equal((await identify(await alphaPng())).hasAlpha, true);
    assert.equal((await identify(await cmykJpeg())).space, 'cmyk');
    const progressive = await sharp(jpeg).jpeg({ progressive: true }).toBuffer();
    assert.equal((await identify(progressive)).progressive, true);
  });

  it('answers EDGE_NOT_AN_IMAGE (415) for bytes that are no image', async () => {
    for (const body of [Buffer.from('<html>hello</html>'), Buffer.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16])]) {
      await assert.rejects(identify(body), (e: unknown) => e instanceof EdgeError && e.code === 'EDGE_NOT_AN_IMAGE' && statusOf(e) === 415);
    }
  });

  it('answers EDGE_BAD_IMAGE (422) when the header cannot be read', async () => {
    const png = await quadrantPng();
    const broken = Buffer.concat([png.subarray(0, 8), Buffer.from('not a png chunk at all, just text')]);
    await assert.rejects(identify(broken), (e: unknown) => e instanceof EdgeError && e.code === 'EDGE_BAD_IMAGE' && statusOf(e) === 422);
    await assert.rejects(identify(Buffer.from([0xff, 0xd8, 0xff, 0x00])), (e: unknown) => e instanceof EdgeError && e.code === 'EDGE_BAD_IMAGE');
  });
});
