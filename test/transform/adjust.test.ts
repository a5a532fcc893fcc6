/**
 * imgix's adjustment and stylize parameters: each one's effect on pixels, its range checked, and
 * its place in the canonical key (docs/IMGIX.md has the mappings).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { EdgeError } from '../../src/errors.js';
import { identify } from '../../src/transform/identify.js';
import { parseParams } from '../../src/transform/params.js';
import { transform } from '../../src/transform/pipeline.js';
import type { EncodePolicy, TransformLimits } from '../../src/transform/types.js';
import { photoJpeg } from '../helpers/images.js';

const POLICY: EncodePolicy = { qualityTarget: 'high', keepCopyright: false, keepIccProfile: false };
const LIMITS: TransformLimits = { maxOutputDimension: 2048, maxOutputPixels: 4_000_000, maxSourcePixels: 40_000_000, avifEffort: 2, timeoutSeconds: 20, maxFrames: 50 };
type Rgb = [number, number, number];

/** Columns of solid colours, 16 px each: the swatches every test reads back. */
const SWATCHES: Record<string, Rgb> = {
  black: [0, 0, 0], dark: [40, 40, 40], mid: [128, 128, 128], light: [215, 215, 215], white: [255, 255, 255],
  red: [255, 0, 0], muted: [150, 120, 110], vivid: [230, 40, 30], sky: [90, 160, 230],
};
const NAMES = Object.keys(SWATCHES);

async function swatchPng(): Promise<Buffer> {
  const width = NAMES.length * 16;
  const data = Buffer.alloc(width * 16 * 3);
  for (let x = 0; x < width; x++) for (let y = 0; y < 16; y++) data.set(SWATCHES[NAMES[Math.floor(x / 16)]!]!, (y * width + x) * 3);
  return sharp(data, { raw: { width, height: 16, channels: 3 } }).png().toBuffer();
}

const source = await swatchPng();
const info = await identify(source);

/** The swatches after `query`, read at each column's centre. */
async function after(query: string): Promise<Record<string, Rgb>> {
  const r = await transform(source, info, parseParams(new URLSearchParams(query)).params, { format: 'png', progressive: false, palette: false, animated: false }, LIMITS, POLICY);
  const { data, info: raw } = await sharp(r.body).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return Object.fromEntries(NAMES.map((n, i) => {
    const o = (8 * raw.width + i * 16 + 8) * 3;
    return [n, [data[o]!, data[o + 1]!, data[o + 2]!] as Rgb];
  }));
}

const luma = ([r, g, b]: Rgb) => Math.round(0.2126 * r + 0.7152 * g + 0.0722 * b);
const spread = (c: Rgb) => Math.max(...c) - Math.min(...c);
const base = await after('');

describe('adjustments (imgix Rendering API)', () => {
  it('bri and exp brighten or darken everything but the clipped ends', async () => {
    const up = await after('bri=40');
    const down = await after('bri=-40');
    for (const n of ['dark', 'mid', 'light']) assert.ok(luma(up[n]!) > luma(base[n]!) + 30 && luma(down[n]!) < luma(base[n]!) - 30, n);
    const exp = await after('exp=50');
    assert.ok(luma(exp.mid!) > 220 && luma(exp.dark!) > 70, `exp=50 doubles: ${exp.mid} ${exp.dark}`);
    assert.ok(luma((await after('exp=-50')).mid!) < 70);
  });

  it('con spreads or flattens the tones about mid-grey', async () => {
    const more = await after('con=50');
    assert.ok(luma(more.dark!) < luma(base.dark!) - 10 && luma(more.light!) > luma(base.light!) + 10);
    const flat = await after('con=-100');
    for (const n of ['black', 'white', 'dark']) assert.ok(Math.abs(luma(flat[n]!) - 128) <= 2, `${n} at mid-grey: ${flat[n]}`);
  });

  it('gam lifts or sinks the mid-tones and leaves black and white', async () => {
    const g = await after('gam=60');
    assert.ok(luma(g.mid!) > luma(base.mid!) + 20);
    assert.deepEqual([g.black, g.white], [base.black, base.white]);
    assert.ok(luma((await after('gam=-60')).mid!) < luma(base.mid!) - 20);
  });

  it('high pulls highlights down, shad lifts shadows, each leaving the other end', async () => {
    const high = await after('high=-100');
    assert.ok(luma(high.white!) < 215 && luma(high.black!) === 0, `${high.white} ${high.black}`);
    const shad = await after('shad=100');
    assert.ok(luma(shad.black!) > 40 && luma(shad.white!) === 255, `${shad.black} ${shad.white}`);
  });

  it('hue rotates colours about the grey axis: red turns green at 120°, greys stay', async () => {
    const h = await after('hue=120');
    const [r, g, b] = h.red!;
    assert.ok(g > r && g > b, `red at 120°: ${h.red}`);
    assert.deepEqual(h.mid, base.mid);
  });

  it('sat removes or adds colour; vib adds it where colour is weakest', async () => {
    const grey = await after('sat=-100');
    for (const n of NAMES) assert.ok(spread(grey[n]!) <= 1, `${n} grey: ${grey[n]}`);
    const sat = await after('sat=60');
    assert.ok(spread(sat.muted!) > spread(base.muted!) * 1.4);
    const vib = await after('vib=100');
    const mutedGain = spread(vib.muted!) / spread(base.muted!);
    const vividGain = spread(vib.vivid!) / spread(base.vivid!);
    assert.ok(mutedGain > vividGain + 0.3, `muted ×${mutedGain.toFixed(2)}, vivid ×${vividGain.toFixed(2)}`);
  });

  it('invert takes each channel from 255', async () => {
    const inv = await after('invert=1');
    for (const n of NAMES) assert.deepEqual(inv[n], base[n]!.map((v) => 255 - v), n);
    assert.deepEqual(await after('invert=0'), base);
  });

  it('usm sharpens an edge, a negative usm softens it; usmrad widens it', async () => {
    const photo = await photoJpeg({ width: 300, height: 200 });
    const contrast = async (q: string) => {
      const r = await transform(photo, await identify(photo), parseParams(new URLSearchParams(q)).params, { format: 'png', progressive: false, palette: false, animated: false }, LIMITS, POLICY);
      // Local contrast: root mean square of neighbouring pixels' differences.
      const { data, info: raw } = await sharp(r.body).greyscale().raw().toBuffer({ resolveWithObject: true });
      let sum = 0;
      for (let y = 0; y < raw.height; y++) for (let x = 1; x < raw.width; x++) sum += (data[y * raw.width + x]! - data[y * raw.width + x - 1]!) ** 2;
      return Math.sqrt(sum / (raw.height * (raw.width - 1)));
    };
    const plain = await contrast('w=300');
    const sharper = await contrast('w=300&usm=80');
    const softer = await contrast('w=300&usm=-80');
    assert.ok(sharper > plain * 1.2 && softer < plain * 0.8, `edge contrast ${plain.toFixed(1)}: usm=80 ${sharper.toFixed(1)}, usm=-80 ${softer.toFixed(1)}`);
    // A wider radius sharpens coarser detail: the finest (neighbour to neighbour) contrast gains less.
    assert.ok((await contrast('w=300&usm=80&usmrad=20')) < sharper, 'usmrad widens the mask');
  });
});

describe('stylize (imgix Rendering API)', () => {
  it('monochrome tints by luminance: black and white stay, mid-grey takes the colour', async () => {
    const m = await after('monochrome=ff0000');
    assert.deepEqual([m.black, m.white], [[0, 0, 0], [255, 255, 255]]);
    const [r, g, b] = m.mid!;
    assert.ok(r > 200 && g < 20 && b < 20, `mid-grey → red: ${m.mid}`);
    // An alpha in the colour (ARGB) blends the tint with the image.
    const half = await after('monochrome=80ff0000');
    assert.ok(half.mid![0] > 150 && half.mid![1] > 50, `half strength: ${half.mid}`);
  });

  it('duotone maps shadows to the first colour and highlights to the second; duotone-alpha blends', async () => {
    const d = await after('duotone=000080,ffd700');
    assert.deepEqual(d.black, [0, 0, 128]);
    assert.deepEqual(d.white, [255, 215, 0]);
    const half = await after('duotone=000080,ffd700&duotone-alpha=50');
    assert.ok(Math.abs(half.white![2] - 128) <= 2, `half-way to gold: ${half.white}`);
    assert.deepEqual(await after('duotone=000080,ffd700&duotone-alpha=0'), base);
  });

  it('sepia browns the greys, in proportion', async () => {
    const s = await after('sepia=100');
    const [r, g, b] = s.mid!;
    assert.ok(r > g && g > b, `sepia mid-grey: ${s.mid}`);
    assert.ok(spread((await after('sepia=30')).mid!) < spread(s.mid!));
  });

  it('px turns the image into blocks of one colour', async () => {
    const photo = await photoJpeg({ width: 200, height: 100 });
    const r = await transform(photo, await identify(photo), parseParams(new URLSearchParams('px=10')).params, { format: 'png', progressive: false, palette: false, animated: false }, LIMITS, POLICY);
    const { data, info: raw } = await sharp(r.body).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    for (const [bx, by] of [[0, 0], [50, 30], [190, 90]] as const) {
      const first = data.subarray((by * raw.width + bx) * 3, (by * raw.width + bx) * 3 + 3);
      for (let y = by; y < by + 10; y++) for (let x = bx; x < bx + 10; x++) assert.deepEqual(data.subarray((y * raw.width + x) * 3, (y * raw.width + x) * 3 + 3), first, `block at ${bx},${by}`);
    }
  });

  it('htn screens a flat tone into dots on white', async () => {
    const h = await transform(source, info, parseParams(new URLSearchParams('htn=60')).params, { format: 'png', progressive: false, palette: false, animated: false }, LIMITS, POLICY);
    const { data } = await sharp(h.body).extract({ left: 32, top: 0, width: 16, height: 16 }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const whites = [...Array(256).keys()].filter((i) => data[i * 3] === 255 && data[i * 3 + 1] === 255).length;
    assert.ok(whites > 0 && whites < 256, `the mid-grey column is dots and white: ${whites} of 256 white`);
  });

  it('an animation keeps its frames, their delays and its loop count through the pixel pass', async () => {
    const frames = await Promise.all(['#c00', '#0c0', '#00c'].map((c) => sharp({ create: { width: 30, height: 20, channels: 3, background: c } }).png().toBuffer()));
    const gif = await sharp(frames, { join: { animated: true } }).gif({ delay: [70, 250, 500], loop: 3 }).toBuffer();
    for (const format of ['gif', 'webp'] as const) {
      const r = await transform(gif, await identify(gif), parseParams(new URLSearchParams('sat=-100')).params, { format, progressive: false, palette: false, animated: true }, LIMITS, POLICY);
      const meta = await sharp(r.body).metadata();
      assert.deepEqual([meta.pages, meta.delay, meta.loop], [3, [70, 250, 500], 3], format);
      const { data } = await sharp(r.body, { pages: -1 }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      for (let i = 0; i < data.length; i += 3 * 97) assert.ok(Math.abs(data[i]! - data[i + 1]!) <= 2 && Math.abs(data[i + 1]! - data[i + 2]!) <= 2, `${format}: every frame grey`);
    }
  });
});

describe('adjustment parameters: ranges and the cache key', () => {
  const badParam = (query: string, param: string) =>
    assert.throws(() => parseParams(new URLSearchParams(query)), (e: unknown) => e instanceof EdgeError && e.code === 'EDGE_BAD_PARAM' && e.details.param === param, query);

  it('refuses values outside imgix\'s ranges, naming the parameter', () => {
    badParam('bri=101', 'bri');
    badParam('con=-101', 'con');
    badParam('high=10', 'high');
    badParam('shad=-1', 'shad');
    badParam('hue=361', 'hue');
    badParam('sat=abc', 'sat');
    badParam('invert=yes', 'invert');
    badParam('monochrome=red', 'monochrome');
    badParam('duotone=000000', 'duotone');
    badParam('px=101', 'px');
    badParam('usm=50&usmrad=-1', 'usmrad');
  });

  it('puts each effect in the key once, and leaves no-ops out', () => {
    const key = (q: string) => parseParams(new URLSearchParams(q)).canonical;
    assert.equal(key('w=100&sat=-99'), key('sat=-99.2&w=100'));
    assert.notEqual(key('w=100&sat=-100'), key('w=100'));
    assert.equal(key('w=100&bri=0&hue=0&invert=0&usmrad=9'), key('w=100'));
    assert.match(key('duotone=000,fff&duotone-alpha=40'), /duotone=ff000000,ffffffff&duotone-alpha=40/);
    assert.equal(parseParams(new URLSearchParams('exp=5')).hasTransform, true);
  });
});
