import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { EdgeError } from '../../src/errors.js';
import { statusOf } from '../../src/http/errors.js';
import { identify } from '../../src/transform/identify.js';
import { parseParams } from '../../src/transform/params.js';
import { describeMetadata, transform } from '../../src/transform/pipeline.js';
import { QUALITY_TARGETS } from '../../src/transform/quality.js';
import { ssimulacra2 } from '../../src/transform/ssimulacra2.js';
import type { EncodePolicy, ImageInfo, OutputChoice, OutputFormat, TransformLimits, TransformResult } from '../../src/transform/types.js';
import { alphaPng, animatedGif, cmykJpeg, colorAt, displayP3Png, orientedJpeg, photoJpeg, quadrantPng, storedPixelAt } from '../helpers/images.js';

const POLICY: EncodePolicy = { qualityTarget: 'high', keepCopyright: false, keepIccProfile: false };
const LIMITS: TransformLimits = { maxOutputDimension: 2048, maxOutputPixels: 4_000_000, maxSourcePixels: 40_000_000, avifEffort: 2, timeoutSeconds: 20, maxFrames: 50 };

function outFor(format: OutputFormat, extra: Partial<OutputChoice> = {}): OutputChoice {
  return { format, progressive: false, palette: false, animated: false, ...extra };
}

async function run(src: Buffer, query: string, format: OutputFormat = 'png', extra: Partial<OutputChoice> = {}, limits = LIMITS): Promise<TransformResult> {
  return transform(src, await identify(src), parseParams(new URLSearchParams(query)).params, outFor(format, extra), limits, POLICY);
}

const size = (r: TransformResult) => `${r.width}x${r.height}`;

type Rgba = { r: number; g: number; b: number; a: number };
const RED = { r: 255, g: 0, b: 0 };
const GREEN = { r: 0, g: 255, b: 0 };
const BLUE = { r: 0, g: 0, b: 255 };
const YELLOW = { r: 255, g: 255, b: 0 };

function near(actual: Rgba, expected: { r: number; g: number; b: number; a?: number }, tolerance = 12, label = ''): void {
  const ok = Math.abs(actual.r - expected.r) <= tolerance && Math.abs(actual.g - expected.g) <= tolerance
    && Math.abs(actual.b - expected.b) <= tolerance && (expected.a === undefined || Math.abs(actual.a - expected.a) <= tolerance);
  assert.ok(ok, `${label} got ${JSON.stringify(actual)}, expected about ${JSON.stringify(expected)}`);
}

/** Colours at the four corners (3 px in), clockwise from top-left. */
async function corners(img: Buffer): Promise<Rgba[]> {
  const { width = 0, height = 0 } = await sharp(img).metadata();
  return Promise.all([[3, 3], [width - 4, 3], [width - 4, height - 4], [3, height - 4]].map(([x, y]) => colorAt(img, x!, y!)));
}

async function assertCorners(img: Buffer, expected: { r: number; g: number; b: number }[], label: string): Promise<void> {
  const got = await corners(img);
  expected.forEach((e, i) => near(got[i]!, e, 12, `${label} corner ${i}:`));
}

async function stdev(img: Buffer): Promise<number> {
  const { channels } = await sharp(img).stats();
  return channels.slice(0, 3).reduce((s, c) => s + c.stdev, 0) / 3;
}

async function rejectsWith(p: Promise<unknown>, code: string, status: number): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof EdgeError, `expected an EdgeError, got ${String(e)}`);
    assert.equal(e.code, code);
    assert.equal(statusOf(e), status);
    return true;
  });
}

describe('pipeline: sizes', async () => {
  const photo = await photoJpeg(); // 640×480

  it('w, h and dpr', async () => {
    assert.equal(size(await run(photo, 'w=320')), '320x240');
    assert.equal(size(await run(photo, 'h=120')), '160x120');
    assert.equal(size(await run(photo, 'w=100&dpr=2')), '200x150');
    assert.equal(size(await run(photo, '')), '640x480');
  });

  it('each fit mode', async () => {
    assert.equal(size(await run(photo, 'w=300&h=300')), '300x225', 'clip fits inside');
    assert.equal(size(await run(photo, 'w=1000&h=1000&fit=clip')), '1000x750', 'clip upscales');
    assert.equal(size(await run(photo, 'w=1000&h=1000&fit=max')), '640x480', 'max never upscales');
    assert.equal(size(await run(photo, 'w=300&h=100&fit=max')), '133x100');
    assert.equal(size(await run(photo, 'w=300&h=300&fit=crop')), '300x300');
    assert.equal(size(await run(photo, 'w=300&h=100&fit=scale')), '300x100');
    assert.equal(size(await run(photo, 'w=1000&h=500&fit=min')), '640x320', 'min shrinks the box to fit the source');
    assert.equal(size(await run(photo, 'w=320&h=320&fit=min')), '320x320');
  });

  it('fill pads to exactly w×h; fillmax pads without upscaling', async () => {
    const fill = await run(photo, 'w=300&h=300&fit=fill');
    assert.equal(size(fill), '300x300');
    assert.equal((await colorAt(fill.body, 150, 5)).a, 0, 'png padding is transparent');
    assert.equal((await colorAt(fill.body, 150, 150)).a, 255);
    const jpeg = await run(photo, 'w=300&h=300&fit=fill', 'jpeg');
    near(await colorAt(jpeg.body, 150, 5), { r: 255, g: 255, b: 255 }, 8, 'jpeg padding is white');
    const red = await run(photo, 'w=300&h=300&fit=fill&fill-color=f00', 'jpeg');
    near(await colorAt(red.body, 150, 5), RED, 8, 'fill-color');
    const max = await run(photo, 'w=1000&h=1000&fit=fillmax');
    assert.equal(size(max), '1000x1000');
    assert.equal((await colorAt(max.body, 170, 500)).a, 0, 'left of the unscaled 640 px image');
    assert.equal((await colorAt(max.body, 190, 500)).a, 255);
    assert.equal((await colorAt(max.body, 500, 250)).a, 0, 'above the unscaled 480 px image');
  });

  it('ar with fit=crop', async () => {
    assert.equal(size(await run(photo, 'fit=crop&ar=16:9&w=320')), '320x180');
    assert.equal(size(await run(photo, 'fit=crop&ar=16:9&h=90')), '160x90');
    assert.equal(size(await run(photo, 'fit=crop&ar=1:1')), '480x480', 'largest crop of that ratio');
    assert.equal(size(await run(photo, 'fit=crop&ar=1:1&w=200&h=100')), '200x100', 'w and h win over ar');
  });

  it('rect crops the source first, clamped to the image', async () => {
    const quad = await quadrantPng();
    const green = await run(quad, 'rect=200,0,200,100');
    assert.equal(size(green), '200x100');
    await assertCorners(green.body, [GREEN, GREEN, GREEN, GREEN], 'rect');
    const clamped = await run(quad, 'rect=300,100,500,500');
    assert.equal(size(clamped), '100x100');
    await assertCorners(clamped.body, [YELLOW, YELLOW, YELLOW, YELLOW], 'clamped rect');
    assert.equal(size(await run(quad, 'rect=0,0,200,200&w=50')), '50x50');
    await assert.rejects(run(quad, 'rect=400,0,10,10'), (e: unknown) => e instanceof EdgeError && e.code === 'EDGE_BAD_PARAM' && e.details.param === 'rect');
  });

  it('caps every side at maxOutputDimension', async () => {
    const limits = { ...LIMITS, maxOutputDimension: 500 };
    assert.equal(size(await run(photo, 'w=4000', 'png', {}, limits)), '500x375');
    assert.equal(size(await run(photo, '', 'png', {}, limits)), '500x375');
    assert.equal(size(await run(photo, 'w=3000&h=2000&fit=fill', 'png', {}, limits)), '500x333');
    assert.equal(size(await run(photo, 'w=1000&h=1000&fit=crop', 'png', {}, limits)), '500x500');
    assert.equal(size(await run(photo, 'w=1000&rot=90', 'png', {}, limits)), '375x500');
    const turned = await run(photo, 'w=1000&rot=30', 'png', {}, limits);
    assert.ok(Math.max(turned.width, turned.height) <= 500 && Math.max(turned.width, turned.height) >= 490, size(turned));
  });

  it('caps the output area at maxOutputPixels, so a tiny source cannot buy a huge encode', async () => {
    const limits = { ...LIMITS, maxOutputDimension: 8192, maxOutputPixels: 1_000_000 };
    const out = await run(photo, 'w=8000&h=8000&fit=scale', 'png', {}, limits);
    assert.ok(out.width * out.height <= 1_000_000, size(out));
    assert.ok(out.width * out.height >= 990_000, size(out));
    assert.equal(out.width, out.height);
  });
});

describe('pipeline: crop position, rotation and orientation (measured on quadrant colours)', async () => {
  const quad = await quadrantPng(); // 400×200: red | green / blue | yellow

  it('crop gravity', async () => {
    await assertCorners((await run(quad, 'w=100&h=100&fit=crop')).body, [RED, GREEN, YELLOW, BLUE], 'centre');
    await assertCorners((await run(quad, 'w=100&h=100&fit=crop&crop=left')).body, [RED, RED, BLUE, BLUE], 'left');
    await assertCorners((await run(quad, 'w=100&h=100&fit=crop&crop=right')).body, [GREEN, GREEN, YELLOW, YELLOW], 'right');
    await assertCorners((await run(quad, 'w=200&h=20&fit=crop&crop=top')).body, [RED, GREEN, GREEN, RED], 'top');
    await assertCorners((await run(quad, 'w=200&h=20&fit=crop&crop=bottom')).body, [BLUE, YELLOW, YELLOW, BLUE], 'bottom');
    await assertCorners((await run(quad, 'w=100&h=10&fit=crop&crop=bottom,right')).body, [BLUE, YELLOW, YELLOW, BLUE], 'bottom,right');
  });

  it('crop=focalpoint centres the window on fp-x/fp-y, clamped inside the image', async () => {
    await assertCorners((await run(quad, 'w=100&h=100&fit=crop&crop=focalpoint&fp-x=0.9')).body, [GREEN, GREEN, YELLOW, YELLOW], 'fp-x=0.9');
    await assertCorners((await run(quad, 'w=100&h=100&fit=crop&crop=focalpoint&fp-x=0.1')).body, [RED, RED, BLUE, BLUE], 'fp-x=0.1');
    await assertCorners((await run(quad, 'w=200&h=20&fit=crop&crop=focalpoint&fp-y=0.95')).body, [BLUE, YELLOW, YELLOW, BLUE], 'fp-y=0.95');
  });

  it('crop=entropy and crop=edges find the detailed part', async () => {
    // 600×200: flat grey, with a photo in the right third only.
    const detail = await photoJpeg({ width: 200, height: 200 });
    const src = await sharp({ create: { width: 600, height: 200, channels: 3, background: '#808080' } })
      .composite([{ input: detail, left: 400, top: 0 }])
      .png()
      .toBuffer();
    const isPhoto = (c: Rgba) => Math.abs(c.r - 128) + Math.abs(c.g - 128) + Math.abs(c.b - 128) > 30;
    const centre = (await run(src, 'w=100&h=100&fit=crop')).body;
    assert.ok(!isPhoto(await colorAt(centre, 96, 50)) && !isPhoto(await colorAt(centre, 3, 50)), 'a centre crop is all grey');
    for (const mode of ['entropy', 'edges']) {
      const r = await run(src, `w=100&h=100&fit=crop&crop=${mode}`);
      assert.equal(size(r), '100x100');
      assert.ok(isPhoto(await colorAt(r.body, 96, 50)), `${mode}: the window should reach into the photo`);
    }
    assert.ok(isPhoto(await colorAt((await run(src, 'w=100&h=100&fit=crop&crop=entropy')).body, 3, 50)), 'entropy: all photo');
  });

  it('rot turns clockwise, flip mirrors after rot', async () => {
    const rot90 = await run(quad, 'rot=90');
    assert.equal(size(rot90), '200x400');
    await assertCorners(rot90.body, [BLUE, RED, GREEN, YELLOW], 'rot=90');
    await assertCorners((await run(quad, 'rot=180')).body, [YELLOW, BLUE, RED, GREEN], 'rot=180');
    await assertCorners((await run(quad, 'rot=270')).body, [GREEN, YELLOW, BLUE, RED], 'rot=270');
    await assertCorners((await run(quad, 'flip=h')).body, [GREEN, RED, BLUE, YELLOW], 'flip=h');
    await assertCorners((await run(quad, 'flip=v')).body, [BLUE, YELLOW, GREEN, RED], 'flip=v');
    await assertCorners((await run(quad, 'flip=hv')).body, [YELLOW, BLUE, RED, GREEN], 'flip=hv');
    await assertCorners((await run(quad, 'rot=90&flip=h')).body, [RED, BLUE, YELLOW, GREEN], 'rot=90 then flip=h');
    await assertCorners((await run(quad, 'w=100&h=100&fit=crop&crop=left&rot=90')).body, [BLUE, RED, RED, BLUE], 'crop before rot');
  });

  it('rot by any angle turns the same way and fills the corners with bg', async () => {
    const r80 = await run(quad, 'rot=80');
    assert.ok(r80.width > 200 && r80.height > 400);
    near(await colorAt(r80.body, Math.round(r80.width * 0.35), Math.round(r80.height * 0.3)), BLUE, 12, 'rot=80 like rot=90:');
    assert.equal((await colorAt(r80.body, 1, 1)).a, 0, 'transparent corners in png');
    const r45 = await run(quad, 'rot=45&bg=00f', 'jpeg');
    near(await colorAt(r45.body, 2, 2), BLUE, 10, 'corner takes bg:');
  });

  it('or overrides the EXIF orientation, 90 meaning EXIF 6', async () => {
    const or6 = await run(quad, 'or=6');
    assert.equal(size(or6), '200x400');
    await assertCorners(or6.body, [BLUE, RED, GREEN, YELLOW], 'or=6');
    await assertCorners((await run(quad, 'or=90')).body, [BLUE, RED, GREEN, YELLOW], 'or=90');
    await assertCorners((await run(quad, 'or=2')).body, [GREEN, RED, BLUE, YELLOW], 'or=2 mirrors');
    await assertCorners((await run(quad, 'or=5')).body, [RED, BLUE, YELLOW, GREEN], 'or=5 transposes');
    await assertCorners((await run(quad, 'or=6&w=100&h=100&fit=crop&crop=top')).body, [BLUE, RED, RED, BLUE], 'crop after or');
  });

  it('EXIF orientation 6 comes out portrait with the marker top-right', async () => {
    const r = await run(await orientedJpeg(6), 'w=100', 'jpeg');
    assert.equal(size(r), '100x200');
    near(await colorAt(r.body, 95, 4), RED, 30, 'marker:');
    near(await colorAt(r.body, 4, 4), { r: 128, g: 128, b: 128 }, 20, 'top-left:');
    const meta = await sharp(r.body).metadata();
    assert.equal(meta.orientation, undefined, 'no orientation tag left to apply twice');
    const overridden = await run(await orientedJpeg(6), 'or=1', 'jpeg');
    assert.equal(size(overridden), '400x200', 'or=1 ignores the tag');
    near(await colorAt(overridden.body, 4, 4), RED, 30, 'stored top-left:');
  });

  it('every EXIF orientation matches the same or override on an untagged image', async () => {
    const plain = await orientedJpeg(1);
    for (let o = 2; o <= 8; o++) {
      const tagged = await corners((await run(await orientedJpeg(o), 'w=100', 'jpeg')).body);
      const forced = await corners((await run(plain, `w=100&or=${o}`, 'jpeg')).body);
      tagged.forEach((c, i) => near(c, forced[i]!, 30, `orientation ${o} corner ${i}:`));
      assert.ok(tagged.filter((c) => c.r > 200 && c.g < 60).length === 1, `orientation ${o}: marker in exactly one corner`);
    }
  });
});

describe('pipeline: formats and encoders', async () => {
  const photo = await photoJpeg();

  it('writes the asked format with the right magic bytes and content type', async () => {
    const cases: [OutputFormat, string, (b: Buffer) => boolean][] = [
      ['jpeg', 'image/jpeg', (b) => b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff],
      ['png', 'image/png', (b) => b.subarray(1, 4).toString() === 'PNG'],
      ['webp', 'image/webp', (b) => b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WEBP'],
      ['avif', 'image/avif', (b) => b.toString('latin1', 4, 12) === 'ftypavif'],
      ['gif', 'image/gif', (b) => b.toString('latin1', 0, 6) === 'GIF89a'],
    ];
    for (const [format, type, magic] of cases) {
      const r = await run(photo, 'w=64', format);
      assert.equal(r.contentType, type);
      assert.equal(r.format, format);
      assert.ok(magic(r.body), `${format} magic bytes`);
      assert.equal(size(r), '64x48');
    }
  });

  it('lower q gives smaller files; quality defaults to 75; auto=compress picks it per image', async () => {
    for (const format of ['jpeg', 'webp', 'avif'] as const) {
      const low = await run(photo, 'q=20', format);
      const high = await run(photo, 'q=90', format);
      assert.ok(low.body.length < high.body.length, `${format}: q=20 ${low.body.length} vs q=90 ${high.body.length}`);
      assert.equal(low.quality, 20);
    }
    assert.equal((await run(photo, 'w=64', 'jpeg')).quality, 75);
    // Per image: a smooth picture needs a lower quality than a detailed one for the same look.
    const smooth = await sharp({ create: { width: 256, height: 256, channels: 3, background: '#6080c0' } }).blur(0.5).png().toBuffer();
    const smoothQ = (await run(smooth, 'w=256&auto=compress', 'jpeg')).quality!;
    const detailedQ = (await run(photo, 'w=256&auto=compress', 'jpeg')).quality!;
    assert.ok(smoothQ < detailedQ, `smooth q=${smoothQ}, detailed q=${detailedQ}`);
    assert.equal((await run(photo, 'w=64&auto=compress&q=60', 'jpeg')).quality, 60);
    assert.equal((await run(photo, 'w=64', 'png')).quality, undefined);
  });

  it('PNG: few colours become an exact palette, smaller than truecolour', async () => {
    const flat = await quadrantPng({ width: 256, height: 256 });
    const out = await run(flat, 'w=256', 'png');
    const meta = await sharp(out.body).metadata();
    assert.equal(meta.isPalette, true);
    const [a, b] = await Promise.all([sharp(out.body).removeAlpha().raw().toBuffer(), sharp(flat).removeAlpha().raw().toBuffer()]);
    assert.ok(a.equals(b), 'pixels identical');
    const truecolour = await sharp(flat).png({ compressionLevel: 9, palette: false }).toBuffer();
    assert.ok(out.body.length < truecolour.length, `${out.body.length} vs ${truecolour.length}`);
  });

  it('lossless webp gives back the exact pixels', async () => {
    const source = await sharp(photo).png().toBuffer();
    const r = await run(source, 'lossless=1', 'webp');
    assert.equal(r.quality, undefined);
    const expected = await sharp(source).raw().toBuffer();
    assert.ok((await sharp(r.body).raw().toBuffer()).equals(expected));
    const lossy = await run(source, '', 'webp');
    assert.ok(!(await sharp(lossy.body).raw().toBuffer()).equals(expected), 'the lossy default is not exact');
  });

  it('chromasub picks JPEG chroma subsampling (422 keeps full chroma)', async () => {
    const sub = async (q: string) => (await sharp((await run(photo, q, 'jpeg')).body).metadata()).chromaSubsampling;
    assert.equal(await sub(''), '4:2:0');
    assert.equal(await sub('chromasub=444'), '4:4:4');
    assert.equal(await sub('chromasub=422'), '4:4:4');
    assert.equal(await sub('chromasub=420'), '4:2:0');
  });

  it('progressive JPEG only when asked (pjpg)', async () => {
    assert.equal((await sharp((await run(photo, 'w=200', 'jpeg', { progressive: true })).body).metadata()).isProgressive, true);
    assert.equal((await sharp((await run(photo, 'w=200', 'jpeg')).body).metadata()).isProgressive, false);
  });

  it('auto=compress PNG keeps a quantized palette only where it stays within the site\'s target', async () => {
    const raw = async (b: Buffer) => {
      const { data, info } = await sharp(b).raw().toBuffer({ resolveWithObject: true });
      return { data, width: info.width, height: info.height, channels: info.channels };
    };
    const png = (src: Buffer, target: EncodePolicy['qualityTarget']) =>
      identify(src).then((info) => transform(src, info, parseParams(new URLSearchParams('auto=compress')).params, outFor('png'), LIMITS, { ...POLICY, qualityTarget: target }));
    // A drawn graphic with thousands of colours (soft edges, a gradient): a palette holds it.
    const art = await sharp(Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="320" height="200"><defs>
      <linearGradient id="g"><stop offset="0" stop-color="#fff"/><stop offset="1" stop-color="#dfe8f5"/></linearGradient></defs>
      <rect width="320" height="200" fill="url(#g)"/><circle cx="100" cy="100" r="70" fill="#e4572e"/>
      <text x="180" y="110" font-family="sans-serif" font-size="40" fill="#29335c">imgedge</text></svg>`)).png().toBuffer();
    const artOut = await png(art, 'high');
    assert.equal((await sharp(artOut.body).metadata()).isPalette, true, 'the graphic keeps its palette');
    assert.ok(ssimulacra2(await raw(await sharp(art).removeAlpha().toBuffer()), await raw(await sharp(artOut.body).removeAlpha().toBuffer())) >= QUALITY_TARGETS.high);
    // A noisy photograph: 256 colours and dither cannot hold it at `high`, so truecolour.
    const noisy = await sharp(photo).png().toBuffer();
    assert.equal((await sharp((await png(noisy, 'high')).body).metadata()).isPalette, false, 'the photograph is truecolour');
  });

  it('png8 writes a palette PNG', async () => {
    const r = await run(photo, 'w=200', 'png', { palette: true });
    assert.equal((await sharp(r.body).metadata()).isPalette, true);
    assert.equal((await sharp((await run(photo, 'w=200', 'png')).body).metadata()).isPalette, false);
  });
});

describe('pipeline: colour, alpha and filters', async () => {
  const photo = await photoJpeg();
  const alpha = await alphaPng(); // 200×200, transparent corners

  it('bg fills transparency; JPEG output flattens onto white unless bg is given', async () => {
    assert.equal((await colorAt((await run(alpha, '')).body, 2, 2)).a, 0);
    near(await colorAt((await run(alpha, 'bg=00f')).body, 2, 2), { ...BLUE, a: 255 }, 2, 'png bg:');
    near(await colorAt((await run(alpha, '', 'jpeg')).body, 2, 2), { r: 255, g: 255, b: 255 }, 4, 'jpeg default:');
    near(await colorAt((await run(alpha, 'bg=00f', 'jpeg')).body, 2, 2), BLUE, 8, 'jpeg bg:');
    assert.equal((await colorAt((await run(alpha, 'bg=0f00', 'webp')).body, 2, 2)).a, 0);
    near(await colorAt((await run(alpha, 'bg=00f')).body, 100, 100), { r: 255, g: 128, b: 0, a: 255 }, 4, 'opaque centre kept:');
  });

  it('blur reduces detail, sharp adds it', async () => {
    const base = await run(photo, 'w=320');
    const blurred = await run(photo, 'w=320&blur=200');
    assert.ok((await sharp(blurred.body).stats()).sharpness < (await sharp(base.body).stats()).sharpness / 2);
    const more = await run(photo, 'w=320&blur=800');
    assert.ok((await stdev(more.body)) < (await stdev(blurred.body)));
    const sharpened = await run(photo, 'w=320&sharp=100');
    assert.ok((await sharp(sharpened.body).stats()).sharpness > (await sharp(base.body).stats()).sharpness);
  });

  it('trim=auto removes a uniform border', async () => {
    const inner = await photoJpeg({ width: 200, height: 100 });
    const framed = await sharp(inner).extend({ top: 40, bottom: 40, left: 30, right: 30, background: '#ffffff' }).png().toBuffer();
    const r = await run(framed, 'trim=auto');
    assert.ok(Math.abs(r.width - 200) <= 2 && Math.abs(r.height - 100) <= 2, `trimmed to ${size(r)}`);
    assert.equal(size(await run(framed, 'trim=auto&w=100')), '100x50');
  });

  it('a CMYK source comes out as 3-channel sRGB with the right colours', async () => {
    const r = await run(await cmykJpeg(), '', 'jpeg');
    const meta = await sharp(r.body).metadata();
    assert.equal(meta.space, 'srgb');
    assert.equal(meta.channels, 3);
    const c = await colorAt(r.body, 10, 10);
    assert.ok(c.r > 180 && c.g > 80 && c.g < 190 && c.b < 110, `orange expected, got ${JSON.stringify(c)}`);
  });

  it('an ICC-tagged source is converted to sRGB and the profile dropped', async () => {
    const colour = { r: 200, g: 60, b: 40 };
    const p3 = await sharp({ create: { width: 64, height: 64, channels: 3, background: colour } })
      .withIccProfile('p3')
      .png()
      .toBuffer();
    const raw = await sharp(p3, { ignoreIcc: true }).raw().toBuffer();
    assert.ok(Math.abs(raw[0]! - colour.r) > 8 || Math.abs(raw[1]! - colour.g) > 8, 'the stored values are P3, not sRGB');
    const r = await run(p3, 'w=32');
    near(await colorAt(r.body, 16, 16), colour, 4, 'converted back:');
    assert.equal((await sharp(r.body).metadata()).hasProfile, false);
  });
});

describe('pipeline: colour profiles and metadata', async () => {
  const p3 = await displayP3Png([0, 220, 0]);
  const withPolicy = async (src: Buffer, policy: Partial<EncodePolicy>, info?: Partial<ImageInfo>) =>
    transform(src, { ...(await identify(src)), ...info }, parseParams(new URLSearchParams('w=32')).params, outFor('png'), LIMITS, { ...POLICY, ...policy });

  it('converts a Display P3 source to sRGB through its profile, never desaturating it', async () => {
    const stored = await storedPixelAt(p3, 0, 0);
    assert.ok(stored[0] > 60, `the fixture really stores P3 values (${stored})`);
    const out = await withPolicy(p3, {});
    assert.equal((await sharp(out.body).metadata()).hasProfile, false);
    const px = await storedPixelAt(out.body, 4, 4);
    assert.ok(px[0] <= 12 && px[1] >= 210 && px[2] <= 12, `sRGB green expected, got ${px}`);
  });

  it('keeps the profile as it is where the site asks', async () => {
    const out = await withPolicy(p3, { keepIccProfile: true });
    assert.equal((await sharp(out.body).metadata()).hasProfile, true);
    assert.deepEqual(await storedPixelAt(out.body, 4, 4), await storedPixelAt(p3, 4, 4));
  });

  it('strips EXIF, and keeps copyright and artist only where the site asks', async () => {
    const src = await sharp(await photoJpeg({ width: 64, height: 48 })).withExif({ IFD0: { Copyright: '(c) Example Photo', Artist: 'A. Person', Software: 'secret-tool' } }).jpeg().toBuffer();
    const facts = { copyright: '(c) Example Photo', artist: 'A. Person' };
    const stripped = await withPolicy(src, {}, facts);
    assert.equal((await sharp(stripped.body).metadata()).exif, undefined);
    const kept = await withPolicy(src, { keepCopyright: true }, facts);
    const exif = (await sharp(kept.body).metadata()).exif?.toString('latin1') ?? '';
    assert.match(exif, /\(c\) Example Photo/);
    assert.match(exif, /A\. Person/);
    assert.doesNotMatch(exif, /secret-tool/);
    // The per-image quality search writes them too.
    const searched = await transform(src, { ...(await identify(src)), ...facts }, parseParams(new URLSearchParams('auto=compress')).params, outFor('jpeg'), LIMITS, { ...POLICY, keepCopyright: true });
    assert.ok(searched.quality !== undefined);
    assert.match((await sharp(searched.body).metadata()).exif?.toString('latin1') ?? '', /\(c\) Example Photo/);
  });
});

describe('pipeline: animation', async () => {
  const gif = await animatedGif({ frames: 4, width: 120, height: 80 });

  it('keeps every frame when the output animates, resizing each', async () => {
    const r = await run(gif, 'w=60', 'gif', { animated: true });
    assert.equal(size(r), '60x40');
    const meta = await sharp(r.body).metadata();
    assert.equal(meta.pages, 4);
    const frames = await Promise.all([0, 3].map((page) => sharp(r.body, { page }).raw().toBuffer()));
    assert.ok(!frames[0]!.equals(frames[1]!), 'frames differ');
    const webp = await run(gif, 'w=60&h=60&fit=crop', 'webp', { animated: true });
    assert.equal((await sharp(webp.body).metadata()).pages, 4);
    assert.equal(size(webp), '60x60');
  });

  it('keeps at most maxFrames frames, and counts only those against the pixel limit', async () => {
    const limits = { ...LIMITS, maxFrames: 2, maxSourcePixels: 120 * 80 * 3 };
    const r = await run(gif, 'w=60', 'webp', { animated: true }, limits);
    assert.equal((await sharp(r.body).metadata()).pages, 2);
  });

  it('renders the first frame only when the output does not animate', async () => {
    const r = await run(gif, 'w=60', 'gif');
    assert.equal((await sharp(r.body).metadata()).pages ?? 1, 1);
    near(await colorAt(r.body, 2, 2), { r: 220, g: 30, b: 30 }, 20, 'first frame:');
  });
});

describe('pipeline: limits and broken sources', async () => {
  it('refuses a source with too many pixels before decoding it', async () => {
    const photo = await photoJpeg();
    await rejectsWith(run(photo, 'w=10', 'jpeg', {}, { ...LIMITS, maxSourcePixels: 640 * 480 - 1 }), 'EDGE_IMAGE_TOO_LARGE', 422);
    const gif = await animatedGif({ frames: 4, width: 100, height: 100 });
    await rejectsWith(run(gif, 'w=10', 'gif', { animated: true }, { ...LIMITS, maxSourcePixels: 30_000 }), 'EDGE_IMAGE_TOO_LARGE', 422);
    // Header facts that understate the size are still caught by sharp's own limit.
    const info = { ...(await identify(photo)), width: 10, height: 10 };
    const p = parseParams(new URLSearchParams('w=10')).params;
    await rejectsWith(transform(photo, info, p, outFor('jpeg'), { ...LIMITS, maxSourcePixels: 1000 }, POLICY), 'EDGE_IMAGE_TOO_LARGE', 422);
  });

  it('a truncated JPEG is EDGE_BAD_IMAGE, not a crash', async () => {
    const photo = await photoJpeg();
    const truncated = photo.subarray(0, Math.floor(photo.length / 2));
    await rejectsWith(run(truncated, 'w=100', 'jpeg'), 'EDGE_BAD_IMAGE', 422);
    await rejectsWith(run(truncated, 'w=100&trim=auto&rot=90', 'webp'), 'EDGE_BAD_IMAGE', 422);
  });

  it('random bytes are EDGE_NOT_AN_IMAGE at identify, EDGE_BAD_IMAGE if handed to transform anyway', async () => {
    const noise = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 251));
    await rejectsWith(identify(noise), 'EDGE_NOT_AN_IMAGE', 415);
    const info = await identify(await photoJpeg({ width: 16, height: 16 }));
    await rejectsWith(transform(noise, info, parseParams(new URLSearchParams('')).params, outFor('jpeg'), LIMITS, POLICY), 'EDGE_BAD_IMAGE', 422);
  });
});

describe('describeMetadata', () => {
  it('answers imgix-style keys for fm=json', async () => {
    const src = await orientedJpeg(6);
    const json = describeMetadata(await identify(src));
    assert.deepEqual(json, {
      PixelWidth: 400,
      PixelHeight: 200,
      Orientation: 6,
      ColorModel: 'RGB',
      HasAlpha: false,
      Frames: 1,
      'Content-Type': 'image/jpeg',
      'Content-Length': String(src.length),
      Profile: true, // withMetadata() tags the fixture with an sRGB profile
      Progressive: false,
    });
    assert.equal(describeMetadata(await identify(await photoJpeg({ width: 32, height: 32 }))).Profile, false);
    assert.equal(describeMetadata(await identify(await cmykJpeg())).ColorModel, 'CMYK');
    assert.equal(describeMetadata(await identify(await animatedGif({ frames: 3 }))).Frames, 3);
  });
});
