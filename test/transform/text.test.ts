/**
 * imgix's text parameters: where the text lands and how big, wrapping and fitting, fonts from
 * the configured list, outline and shadow, and markup from a URL drawn as plain characters.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { EdgeError } from '../../src/errors.js';
import { identify } from '../../src/transform/identify.js';
import { parseParams } from '../../src/transform/params.js';
import { transform } from '../../src/transform/pipeline.js';
import { fontTable } from '../../src/transform/text.js';
import type { EncodePolicy, TransformLimits } from '../../src/transform/types.js';

const POLICY: EncodePolicy = { qualityTarget: 'high', keepCopyright: false, keepIccProfile: false };
const LIMITS: TransformLimits = { maxOutputDimension: 2048, maxOutputPixels: 4_000_000, maxSourcePixels: 40_000_000, avifEffort: 2, timeoutSeconds: 20, maxFrames: 50 };
const source = await sharp({ create: { width: 400, height: 200, channels: 3, background: { r: 64, g: 128, b: 192 } } }).png().toBuffer();
const info = await identify(source);

interface Box {
  left: number;
  top: number;
  right: number;
  bottom: number;
  count: number;
}

/** The bounding box of the pixels near `rgb` after `query`. */
async function boxOf(query: string, rgb: [number, number, number], tolerance = 60, fonts?: Record<string, string>): Promise<Box> {
  const params = parseParams(new URLSearchParams(query), fontTable(fonts)).params;
  const r = await transform(source, info, params, { format: 'png', progressive: false, palette: false, animated: false }, LIMITS, POLICY);
  const { data, info: raw } = await sharp(r.body).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const box: Box = { left: Infinity, top: Infinity, right: -1, bottom: -1, count: 0 };
  for (let y = 0; y < raw.height; y++) {
    for (let x = 0; x < raw.width; x++) {
      const o = (y * raw.width + x) * 3;
      if (Math.abs(data[o]! - rgb[0]) + Math.abs(data[o + 1]! - rgb[1]) + Math.abs(data[o + 2]! - rgb[2]) > tolerance) continue;
      box.left = Math.min(box.left, x);
      box.top = Math.min(box.top, y);
      box.right = Math.max(box.right, x);
      box.bottom = Math.max(box.bottom, y);
      box.count++;
    }
  }
  return box;
}

const RED: [number, number, number] = [255, 0, 0];

describe('text (imgix txt*)', () => {
  it('draws txt in txt-color at txt-size, txt-pad from the top-left by default', async () => {
    const b = await boxOf('txt=Hello&txt-color=ff0000&txt-size=40', RED);
    assert.ok(b.count > 100, `red glyphs: ${b.count}`);
    assert.ok(b.left >= 10 && b.left < 20 && b.top >= 10 && b.top < 30, `near the top-left pad: ${JSON.stringify(b)}`);
    assert.ok(b.bottom - b.top > 20 && b.bottom - b.top < 50, `about 40 px tall: ${JSON.stringify(b)}`);
    const png = await transform(source, info, parseParams(new URLSearchParams('txt=Hello')).params, { format: 'png', progressive: false, palette: false, animated: false }, LIMITS, POLICY);
    assert.equal((await sharp(png.body).metadata()).channels, 3, 'an opaque image stays without alpha');
    const small = await boxOf('txt=Hello&txt-color=ff0000&txt-size=20', RED);
    assert.ok(small.right - small.left < (b.right - b.left) * 0.7, 'txt-size scales it');
  });

  it('txt-align and txt-pad place the block', async () => {
    const b = await boxOf('txt=Hi&txt-color=ff0000&txt-size=40&txt-align=bottom,right&txt-pad=30', RED);
    assert.ok(b.right <= 370 && b.right > 340 && b.bottom <= 170 && b.bottom > 140, JSON.stringify(b));
    const c = await boxOf('txt=Hi&txt-color=ff0000&txt-size=40&txt-align=middle,center', RED);
    assert.ok(Math.abs((c.left + c.right) / 2 - 200) < 6 && Math.abs((c.top + c.bottom) / 2 - 100) < 10, JSON.stringify(c));
  });

  it('txt-width wraps the text; txt-fit=max shrinks it into the image', async () => {
    const text = 'txt=one%20two%20three%20four&txt-color=ff0000&txt-size=30';
    const line = await boxOf(text, RED);
    const wrapped = await boxOf(`${text}&txt-width=120`, RED);
    assert.ok(wrapped.right - wrapped.left <= 125 && wrapped.bottom - wrapped.top > (line.bottom - line.top) * 2, `${JSON.stringify(line)} → ${JSON.stringify(wrapped)}`);
    const huge = 'txt=WWWWWWWWWW&txt-color=ff0000&txt-size=200&txt-align=middle,center';
    const clipped = await boxOf(huge, RED);
    assert.ok(clipped.right === 399 || clipped.bottom === 199, `without txt-fit the text runs off the image: ${JSON.stringify(clipped)}`);
    const fitted = await boxOf(`${huge}&txt-fit=max`, RED);
    assert.ok(fitted.right <= 390 && fitted.left >= 10 && fitted.top >= 10 && fitted.bottom <= 190, `fitted inside the pads: ${JSON.stringify(fitted)}`);
  });

  it('markup and entities in txt are drawn as the characters they are', async () => {
    const plain = await boxOf('txt=X&txt-color=ff0000&txt-size=40', RED);
    const markup = await boxOf(`txt=${encodeURIComponent('<span foreground="blue">X</span>')}&txt-color=ff0000&txt-size=40`, RED);
    assert.ok(markup.right - markup.left > (plain.right - plain.left) * 5, 'the tags are drawn, in red, not obeyed');
    const blue = await boxOf(`txt=${encodeURIComponent('<span foreground="#00f">XXXX</span>')}&txt-color=ff0000&txt-size=40`, [0, 0, 255], 30);
    assert.equal(blue.count, 0, 'no blue from the URL');
    const entity = await boxOf(`txt=${encodeURIComponent('&amp;&#x41;')}&txt-color=ff0000&txt-size=40`, RED);
    assert.ok(entity.right - entity.left > (plain.right - plain.left) * 4, 'entities stay literal');
  });

  it('txt-line outlines the glyphs in txt-line-color; txt-shad casts a shadow', async () => {
    const outlined = await boxOf('txt=O&txt-color=ff0000&txt-size=80&txt-line=4&txt-line-color=ffff00', [255, 255, 0]);
    assert.ok(outlined.count > 100, `yellow outline: ${outlined.count}`);
    const plain = await boxOf('txt=O&txt-color=ff0000&txt-size=80', [255, 255, 0]);
    assert.equal(plain.count, 0);
    // The background darkened by a quarter: only a shadow makes such pixels.
    const shadow = await boxOf('txt=O&txt-color=ff0000&txt-size=80&txt-shad=6', [48, 96, 144], 40);
    assert.ok(shadow.count > 50, `dark shadow: ${shadow.count}`);
    assert.equal((await boxOf('txt=O&txt-color=ff0000&txt-size=80', [48, 96, 144], 40)).count, 0);
  });

  it('txt-font picks a configured font; an unknown one is refused', async () => {
    const sans = await boxOf('txt=Wide%20text&txt-color=ff0000&txt-size=40', RED);
    const mono = await boxOf('txt=Wide%20text&txt-color=ff0000&txt-size=40&txt-font=monospace', RED);
    assert.notEqual(sans.right - sans.left, mono.right - mono.left, 'a different font, a different width');
    assert.throws(() => parseParams(new URLSearchParams('txt=a&txt-font=Comic%20Sans')), (e: unknown) => e instanceof EdgeError && e.details.param === 'txt-font');
    const custom = await boxOf('txt=Wide%20text&txt-color=ff0000&txt-size=40&txt-font=House%20Style', RED, 60, { 'House Style': 'DejaVu Sans Mono' });
    assert.equal(custom.right - custom.left, mono.right - mono.left, 'a configured name stands for its family');
  });

  it('bounds the text by the image: a size past the image is drawn no taller than the image', async () => {
    // At the 1000 px asked, one W would cover all of this 400x200 image; held to the image's
    // height it is a letter with background around it.
    const b = await boxOf('txt=W&txt-color=ff0000&txt-size=1000&txt-align=middle,center&txt-pad=0', RED);
    assert.ok(b.count > 1000, 'the letter is drawn');
    assert.ok(b.count < 400 * 200 * 0.5 && b.left > 0 && b.right < 399, `no larger than the image: ${JSON.stringify(b)}`);
    const many = await boxOf(`txt=${'W'.repeat(500)}&txt-color=ff0000&txt-size=1000&txt-width=8192&txt-line=50&txt-shad=10`, RED);
    assert.ok(many.count > 0, 'the longest text at the largest size is drawn');
  });

  it('draws on every frame of an animation, never across frames', async () => {
    const frames = await Promise.all(['#204060', '#206040'].map((c) => sharp({ create: { width: 120, height: 60, channels: 3, background: c } }).png().toBuffer()));
    const gif = await sharp(frames, { join: { animated: true } }).gif().toBuffer();
    // Two lines of 40 px bottom-aligned in a 60 px frame: the block reaches above each frame.
    const params = parseParams(new URLSearchParams('txt=Hi%20there&txt-width=60&txt-color=ff0000&txt-size=40&txt-align=bottom,left&txt-pad=0')).params;
    const reds = (data: Buffer, from: number, to: number, width: number) => {
      let n = 0;
      for (let y = from; y < to; y++) for (let x = 0; x < width; x++) if (data[(y * width + x) * 3]! > 180 && data[(y * width + x) * 3 + 1]! < 90) n++;
      return n;
    };
    const still = await transform(gif, await identify(gif), params, { format: 'png', progressive: false, palette: false, animated: false }, LIMITS, POLICY);
    const one = await sharp(still.body).removeAlpha().raw().toBuffer();
    const animated = await transform(gif, await identify(gif), params, { format: 'gif', progressive: false, palette: false, animated: true }, LIMITS, POLICY);
    const both = await sharp(animated.body, { pages: -1 }).removeAlpha().raw().toBuffer();
    const alone = reds(one, 0, 60, 120);
    assert.ok(alone > 50, `text on the first frame: ${alone}`);
    // With text bleeding from the second frame into the first, the first would hold more red.
    assert.ok(Math.abs(reds(both, 0, 60, 120) - alone) < alone * 0.1, `first frame as drawn alone: ${reds(both, 0, 60, 120)} vs ${alone}`);
    assert.ok(Math.abs(reds(both, 60, 120, 120) - alone) < alone * 0.1, 'the second frame has the same text');
  });

  it('txt64 is txt in URL-safe base64; the key holds the text once, in one form', () => {
    const key = (q: string) => parseParams(new URLSearchParams(q)).canonical;
    assert.equal(key(`txt64=${Buffer.from('Hello, World!').toString('base64url')}`), key('txt=Hello%2C%20World!'));
    assert.notEqual(key('txt=a'), key('txt=b'));
    assert.equal(key('txt-size=40'), key(''), 'text parameters alone draw nothing');
    assert.equal(parseParams(new URLSearchParams('txt-size=40&colors=3&prefix=x')).hasTransform, false, 'nor make a request an image transform');
  });

  it('refuses text too long, control characters and bad values, naming the parameter', () => {
    const bad = (q: string, param: string) => assert.throws(() => parseParams(new URLSearchParams(q)), (e: unknown) => e instanceof EdgeError && e.code === 'EDGE_BAD_PARAM' && e.details.param === param, q);
    bad(`txt=${'a'.repeat(501)}`, 'txt');
    bad('txt=a%00b', 'txt');
    bad('txt=a&txt-align=diagonal', 'txt-align');
    bad('txt=a&txt-shad=11', 'txt-shad');
    bad('txt=a&txt-fit=min', 'txt-fit');
    bad('txt=a&txt-color=blue', 'txt-color');
    bad('txt64=!!', 'txt64');
  });
});
