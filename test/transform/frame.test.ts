/**
 * imgix's masks, borders and padding: transparent outside a mask (so a JPEG family gives way to
 * PNG), borders and padding around the image with their colours, sides and radii; frames kept.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { EdgeError } from '../../src/errors.js';
import { identify } from '../../src/transform/identify.js';
import { chooseOutput } from '../../src/transform/negotiate.js';
import { parseParams } from '../../src/transform/params.js';
import { transform } from '../../src/transform/pipeline.js';
import type { EncodePolicy, OutputFormat, TransformLimits } from '../../src/transform/types.js';
import { animatedGif } from '../helpers/images.js';

const POLICY: EncodePolicy = { qualityTarget: 'high', keepCopyright: false, keepIccProfile: false };
const LIMITS: TransformLimits = { maxOutputDimension: 2048, maxOutputPixels: 4_000_000, maxSourcePixels: 40_000_000, avifEffort: 2, timeoutSeconds: 20, maxFrames: 50 };
const GREY: [number, number, number] = [100, 110, 120];

const source = await sharp({ create: { width: 200, height: 100, channels: 3, background: { r: GREY[0], g: GREY[1], b: GREY[2] } } }).jpeg({ quality: 100 }).toBuffer();
const info = await identify(source);

async function render(query: string, format: OutputFormat = 'png') {
  const r = await transform(source, info, parseParams(new URLSearchParams(query)).params, { format, progressive: false, palette: false, animated: false }, LIMITS, POLICY);
  const { data, info: raw } = await sharp(r.body).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  const at = (x: number, y: number) => [...data.subarray((y * raw.width + x) * 4, (y * raw.width + x) * 4 + 4)];
  return { width: raw.width, height: raw.height, at };
}

const close = (actual: number[], expected: number[], label: string) =>
  assert.ok(actual.every((v, i) => Math.abs(v - expected[i]!) <= 3), `${label}: got ${actual}, expected ${expected}`);

describe('masks (imgix mask, corner-radius, mask-bg)', () => {
  it('mask=ellipse clears the corners and keeps the centre', async () => {
    const r = await render('mask=ellipse');
    assert.equal(r.at(0, 0)[3], 0);
    assert.equal(r.at(199, 99)[3], 0);
    close(r.at(100, 50), [...GREY, 255], 'centre');
    close(r.at(100, 1), [...GREY, 255], 'top middle, on the ellipse');
  });

  it('mask=corners rounds by 20 % of the shorter side, or by corner-radius per corner', async () => {
    const r = await render('mask=corners');
    assert.equal(r.at(1, 1)[3], 0, 'a 20 px corner is cleared');
    close(r.at(25, 1), [...GREY, 255], 'past the corner');
    const squareTopLeft = await render('mask=corners&corner-radius=0,30,30,30');
    close(squareTopLeft.at(0, 0), [...GREY, 255], 'top-left square');
    assert.equal(squareTopLeft.at(199, 0)[3], 0, 'top-right rounded');
  });

  it('mask-bg fills the cleared area, so a JPEG stays a JPEG; without it a JPEG family becomes PNG', async () => {
    const filled = await render('mask=ellipse&mask-bg=ff0000', 'jpeg');
    close(filled.at(0, 0).slice(0, 3), [255, 0, 0], 'corner');
    const jpegInfo = { ...info };
    const out = (q: string) => chooseOutput(parseParams(new URLSearchParams(q)).params, jpegInfo, undefined, { avif: true, avifMaxDimension: 1600 }).format;
    assert.equal(out('mask=ellipse'), 'png');
    assert.equal(out('mask=ellipse&mask-bg=fff'), 'jpeg');
    assert.equal(out('mask=ellipse&fm=jpg'), 'jpeg', 'an explicit fm is kept');
    assert.equal(out('pad=10'), 'jpeg', 'padding takes the background: no need for alpha');
  });
});

describe('borders and padding (imgix border*, pad*)', () => {
  it('border=width,colour adds a band of that colour around the image; border-top sets one side', async () => {
    const r = await render('border=10,ff0000');
    assert.deepEqual([r.width, r.height], [220, 120]);
    close(r.at(2, 2), [255, 0, 0, 255], 'band');
    close(r.at(110, 60), [...GREY, 255], 'image');
    const top = await render('border=10,ff0000&border-top=30');
    assert.deepEqual([top.width, top.height], [220, 140]);
    close(top.at(110, 25), [255, 0, 0, 255], 'top band is 30 px');
    close(top.at(110, 35), [...GREY, 255], 'image starts below it');
  });

  it('border-radius rounds the band\'s outer corners, border-radius-inner covers the image\'s', async () => {
    const r = await render('border=10,0000ff&border-radius=30&border-radius-inner=20');
    assert.equal(r.at(0, 0)[3], 0, 'outside the outer radius');
    close(r.at(11, 11), [0, 0, 255, 255], 'the image corner is under the band');
    close(r.at(110, 60), [...GREY, 255], 'image');
  });

  it('pad adds the background around the image, per side; white on a JPEG without bg', async () => {
    const r = await render('pad=20&pad-left=50&bg=00ff00');
    assert.deepEqual([r.width, r.height], [270, 140]);
    close(r.at(45, 70), [0, 255, 0, 255], 'left pad');
    close(r.at(60, 70), [...GREY, 255], 'image');
    close((await render('pad=20', 'jpeg')).at(5, 5).slice(0, 3), [255, 255, 255], 'white pad on JPEG');
    assert.equal((await render('pad=20')).at(5, 5)[3], 0, 'clear pad where the output has alpha');
  });

  it('keeps every frame of an animation', async () => {
    const gif = await animatedGif({ frames: 3, width: 40, height: 30 });
    const r = await transform(gif, await identify(gif), parseParams(new URLSearchParams('border=5,000000')).params, { format: 'gif', progressive: false, palette: false, animated: true }, LIMITS, POLICY);
    const meta = await sharp(r.body).metadata();
    assert.deepEqual([meta.pages, meta.width, meta.pageHeight ?? meta.height], [3, 50, 40]);
  });

  it('refuses a frame that would take the output past its pixel budget', async () => {
    const big = { ...LIMITS, maxOutputPixels: 200 * 100 + 100 };
    await assert.rejects(
      transform(source, info, parseParams(new URLSearchParams('pad=50')).params, { format: 'png', progressive: false, palette: false, animated: false }, big, POLICY),
      (e: unknown) => e instanceof EdgeError && e.code === 'EDGE_IMAGE_TOO_LARGE',
    );
  });
});

describe('frame parameters: values and the key', () => {
  const bad = (query: string, param: string) =>
    assert.throws(() => parseParams(new URLSearchParams(query)), (e: unknown) => e instanceof EdgeError && e.code === 'EDGE_BAD_PARAM' && e.details.param === param, query);

  it('refuses what imgix would not draw, naming the parameter', () => {
    bad('mask=https://example.com/m.png', 'mask');
    bad('border=10', 'border');
    bad('border=2000,000', 'border');
    bad('border=10,nothex', 'border');
    bad('mask=corners&corner-radius=1,2', 'corner-radius');
    bad('pad=-1', 'pad');
    bad('pad-top=x', 'pad-top');
  });

  it('keys each frame once; sides and radii given as one or four values share an entry', () => {
    const key = (q: string) => parseParams(new URLSearchParams(q)).canonical;
    assert.equal(key('border=10,f00&border-radius=5'), key('border=10,ff0000&border-radius=5,5,5,5'));
    assert.equal(key('pad=10'), key('pad-top=10&pad-right=10&pad-bottom=10&pad-left=10'));
    assert.equal(key('border=0,000&pad=0&border-radius=4'), key(''), 'nothing drawn, nothing keyed');
    assert.equal(key('mask=ellipse&corner-radius=9'), key('mask=ellipse'), 'corner-radius only shapes mask=corners');
  });
});
