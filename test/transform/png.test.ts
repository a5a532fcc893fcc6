import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { describe, it } from 'node:test';
import sharp, { type PngOptions } from 'sharp';
import { countColours, planPng, pngOptions } from '../../src/transform/png.js';
import type { RawImage } from '../../src/transform/types.js';

function draw(width: number, height: number, channels: 3 | 4, pixel: (x: number, y: number) => number[]): RawImage {
  const data = Buffer.alloc(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data.set(pixel(x, y).map((v) => Math.max(0, Math.min(255, Math.round(v)))), (y * width + x) * channels);
  }
  return { data, width, height, channels };
}

/** Flat art: 20 colours in tiles. */
const flatArt = () => draw(640, 480, 3, (x, y) => {
  const i = (Math.floor(x / 40) * 7 + Math.floor(y / 30) * 3) % 20;
  return [i * 12, 255 - i * 11, (i * 37) % 256];
});

/** Photo-like: gradients plus deterministic noise, far more than 256 colours. */
const photo = () => {
  let s = 42;
  const noise = () => ((s = (s * 1664525 + 1013904223) >>> 0) / 0x100000000 - 0.5) * 40;
  return draw(320, 240, 3, (x, y) => {
    const u = x / 320;
    const v = y / 240;
    const n = noise();
    return [40 + 180 * u + n, 60 + 120 * v + 40 * Math.sin(u * 9) + n, 200 - 150 * u * v + n];
  });
};

const encode = (img: RawImage, options: PngOptions) =>
  sharp(img.data, { raw: { width: img.width, height: img.height, channels: img.channels as 3 | 4 } }).png(options).toBuffer();

const truecolour = (img: RawImage) => encode(img, pngOptions({ palette: false, lossless: true }));

async function decode(png: Buffer, channels: number): Promise<Buffer> {
  const img = sharp(png);
  return (channels === 4 ? img.ensureAlpha() : img.removeAlpha()).raw().toBuffer();
}

/** Pixels that differ; fully transparent pixels are equal whatever their RGB. */
function differingPixels(a: RawImage, b: Buffer): number {
  let diff = 0;
  for (let o = 0; o < a.data.length; o += a.channels) {
    const transparent = a.channels === 4 && a.data[o + 3] === 0 && b[o + 3] === 0;
    if (!transparent && !a.data.subarray(o, o + a.channels).equals(b.subarray(o, o + a.channels))) diff++;
  }
  return diff;
}

describe('countColours', () => {
  it('counts exactly, and stops one past the limit', () => {
    const art = flatArt();
    assert.equal(countColours(art, 256), 20);
    assert.equal(countColours(art, 20), 20);
    assert.equal(countColours(art, 10), 11);
  });

  it('counts every fully transparent pixel as one colour', () => {
    const img = draw(30, 10, 4, (x) => (x < 10 ? [x * 20, 0, 0, 0] : x < 20 ? [0, 0, 255, 128] : [0, 0, 255, 255]));
    assert.equal(countColours(img, 256), 3);
  });

  it('returns limit + 1 on a 4000×4000 noise image without scanning it', () => {
    const data = randomFillSync(Buffer.alloc(4000 * 4000 * 4));
    const start = performance.now();
    assert.equal(countColours({ data, width: 4000, height: 4000, channels: 4 }, 256), 257);
    assert.ok(performance.now() - start < 50, `took ${performance.now() - start} ms`);
  });
});

describe('planPng', () => {
  it('keeps 20-colour flat art as an exact palette PNG, smaller than truecolour', async () => {
    const art = flatArt();
    const plan = planPng(art, { compress: false, requestedPalette: false });
    assert.deepEqual(plan, { palette: true, colours: 20, quality: 100, dither: 0, lossless: true });
    const png = await encode(art, pngOptions(plan));
    assert.equal((await sharp(png).metadata()).isPalette, true);
    assert.ok((await decode(png, 3)).equals(art.data), 'pixels identical after decode');
    assert.ok(png.length < (await truecolour(art)).length);
  });

  it('keeps translucent flat art exact (only the RGB of invisible pixels may change)', async () => {
    // 13 × 7 colours; alpha 0 (with varying RGB), 255, and 1..201 for the right half
    const art = draw(200, 100, 4, (x, y) => [(x >> 4) * 20, 60, (y >> 4) * 30, x < 20 ? 0 : x < 96 ? 255 : 1 + ((x >> 4) % 5) * 50]);
    const plan = planPng(art, { compress: true, requestedPalette: false });
    assert.equal(plan.lossless, true);
    assert.ok(plan.colours! > 50);
    assert.equal(differingPixels(art, await decode(await encode(art, pngOptions(plan)), 4)), 0);
  });

  it('keeps a photo truecolour and pixel-identical without compress', async () => {
    const img = photo();
    const plan = planPng(img, { compress: false, requestedPalette: false });
    assert.deepEqual(plan, { palette: false, lossless: true });
    assert.ok((await decode(await encode(img, pngOptions(plan)), 3)).equals(img.data));
  });

  it('quantizes a photo with compress (or fm=png8) into a smaller palette PNG', async () => {
    const img = photo();
    const plan = planPng(img, { compress: true, requestedPalette: false });
    assert.deepEqual(plan, { palette: true, quality: 80, dither: 1, lossless: false });
    assert.deepEqual(planPng(img, { compress: false, requestedPalette: true, quality: 60 }), { ...plan, quality: 60 });
    const png = await encode(img, pngOptions(plan));
    assert.equal((await sharp(png).metadata()).isPalette, true);
    assert.ok(png.length < (await truecolour(img)).length * 0.6, `${png.length} bytes`);
  });
});

describe('pngOptions', () => {
  it('uses maximum deflate, and libimagequant effort only for palettes', () => {
    assert.deepEqual(pngOptions({ palette: false, lossless: true }), { compressionLevel: 9, adaptiveFiltering: true, palette: false });
    assert.deepEqual(pngOptions({ palette: true, colours: 3, quality: 100, dither: 0, lossless: true }), {
      compressionLevel: 9, adaptiveFiltering: true, palette: true, effort: 10, colours: 3, quality: 100, dither: 0,
    });
    assert.deepEqual(pngOptions({ palette: true, quality: 80, dither: 1, lossless: false }), {
      compressionLevel: 9, adaptiveFiltering: false, palette: true, effort: 7, quality: 80, dither: 1,
    });
  });
});
