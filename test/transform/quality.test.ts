import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import {
  QUALITY_TARGETS,
  chooseChroma,
  decodeRaw,
  encodeCandidate,
  needsDeringing,
  searchQuality,
  type EncodeSettings,
} from '../../src/transform/quality.js';
import { ssimLuma, type RawImage } from '../../src/transform/ssim.js';

const JPEG: EncodeSettings = { format: 'jpeg', progressive: false, chroma: '4:2:0', dering: false, avifEffort: 2, alpha: false };

async function fromSvg(width: number, height: number, body: string): Promise<RawImage> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${body}</svg>`;
  const { data, info } = await sharp(Buffer.from(svg)).flatten({ background: '#fff' }).raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

/** Soft, photo-like: gradients and a blurred blob. */
const smooth = () => fromSvg(320, 240, `<defs><linearGradient id="g" x2="1" y2="1"><stop offset="0" stop-color="#3a6ea5"/>
  <stop offset="1" stop-color="#f0c27a"/></linearGradient><filter id="b"><feGaussianBlur stdDeviation="25"/></filter></defs>
  <rect width="320" height="240" fill="url(#g)"/><circle cx="200" cy="110" r="70" fill="#c0583a" filter="url(#b)"/>`);

/** High detail: fractal noise lit like gravel. */
const detailed = () => fromSvg(320, 240, `<filter id="r" x="0" y="0" width="100%" height="100%">
  <feTurbulence type="turbulence" baseFrequency="0.08" numOctaves="4" seed="2"/>
  <feDiffuseLighting lighting-color="#d8ccb8" surfaceScale="4"><feDistantLight azimuth="120" elevation="35"/></feDiffuseLighting></filter>
  <rect width="320" height="240" filter="url(#r)"/>`);

/** A dark product with hard edges on pure white (clipped at both ends: 0 and 255). */
const productOnWhite = () => fromSvg(320, 240, `<rect width="320" height="240" fill="#fff"/>
  <rect x="70" y="50" width="120" height="110" fill="#000" transform="rotate(12 130 105)"/><circle cx="240" cy="160" r="40" fill="#202020"/>`);

const redCard = () => fromSvg(360, 120, `<rect width="360" height="120" fill="#fff"/>
  <text x="12" y="50" font-family="sans-serif" font-size="28" fill="#e00">Red text on white</text>
  <text x="12" y="95" font-family="sans-serif" font-size="18" fill="#e00">washes out at 4:2:0</text>`);

const encodeDecode = async (ref: RawImage, settings: EncodeSettings, q: number) => decodeRaw(await encodeCandidate(ref, settings, q));

/** CIE76 ΔE between two sRGB pixels. */
function deltaE(a: number[], b: number[]): number {
  const lab = ([r, g, b]: number[]) => {
    const lin = (c: number) => ((c /= 255) <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
    const [R, G, B] = [lin(r!), lin(g!), lin(b!)];
    const f = (t: number) => (t > 216 / 24389 ? Math.cbrt(t) : (24389 / 27 * t + 16) / 116);
    const x = f((0.4124 * R + 0.3576 * G + 0.1805 * B) / 0.95047);
    const y = f(0.2126 * R + 0.7152 * G + 0.0722 * B);
    const z = f((0.0193 * R + 0.1192 * G + 0.9505 * B) / 1.08883);
    return [116 * y - 16, 500 * (x - y), 200 * (y - z)];
  };
  const p = lab(a), q = lab(b);
  return Math.hypot(p[0]! - q[0]!, p[1]! - q[1]!, p[2]! - q[2]!);
}

const pixel = (img: RawImage, i: number) => [img.data[i * img.channels]!, img.data[i * img.channels + 1]!, img.data[i * img.channels + 2]!];

describe('ssimLuma', () => {
  it('is 1 for identical images, also when alpha is composited over white', async () => {
    const img = await smooth();
    assert.deepEqual(ssimLuma(img, img), { mean: 1, worst: 1 });
    const rgba = { ...img, data: await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } }).ensureAlpha(0.5).raw().toBuffer(), channels: 4 };
    assert.deepEqual(ssimLuma(rgba, rgba), { mean: 1, worst: 1 });
  });

  it('falls as JPEG compression gets heavier (q 90 > 60 > 30)', async () => {
    const ref = await detailed();
    const [q90, q60, q30] = await Promise.all([90, 60, 30].map(async (q) => ssimLuma(ref, await encodeDecode(ref, JPEG, q))));
    assert.ok(q90!.mean > q60!.mean && q60!.mean > q30!.mean, `${q90!.mean} > ${q60!.mean} > ${q30!.mean}`);
    assert.ok(q90!.worst > q60!.worst && q60!.worst > q30!.worst);
  });

  it('keeps local damage visible in `worst` while the mean stays high', async () => {
    const ref = await smooth();
    const damaged = { ...ref, data: Buffer.from(ref.data) };
    for (let y = 100; y < 124; y++) {
      for (let x = 100; x < 124; x++) damaged.data.fill((x + y) % 2 ? 255 : 0, (y * ref.width + x) * 3, (y * ref.width + x + 1) * 3);
    }
    const s = ssimLuma(ref, damaged);
    assert.ok(s.mean > 0.98, `mean ${s.mean}`);
    assert.ok(s.worst < 0.5, `worst ${s.worst}`);
  });
});

describe('searchQuality', () => {
  it('gives a smooth image a lower quality than a detailed one, both meeting the target when re-measured', async () => {
    const goal = QUALITY_TARGETS.medium;
    const results = [];
    for (const ref of [await smooth(), await detailed()]) {
      const choice = await searchQuality(ref, JPEG, 'medium');
      const again = ssimLuma(ref, await decodeRaw(choice.body));
      assert.ok(again.mean >= goal.mean && again.worst >= goal.worst, `q${choice.quality}: ${again.mean}/${again.worst}`);
      assert.equal(again.mean, choice.mean);
      results.push(choice.quality);
    }
    assert.ok(results[0]! < results[1]!, `smooth q${results[0]} < detailed q${results[1]}`);
  });

  it('stays within 7 encodes, and answers the top of the range when nothing meets the target', async () => {
    // Faint grain on grey (±3 levels): JPEG drops it at every quality, so nothing meets the target.
    const noise: RawImage = { data: Buffer.alloc(96 * 96 * 3), width: 96, height: 96, channels: 3 };
    for (let i = 0, s = 1; i < 96 * 96; i++) {
      s = (s * 1664525 + 1013904223) >>> 0;
      noise.data.fill(125 + ((s >>> 24) % 7), i * 3, i * 3 + 3);
    }
    for (const [ref, format] of [[await smooth(), 'jpeg'], [await detailed(), 'webp'], [noise, 'jpeg']] as const) {
      for (const target of ['high', 'low'] as const) {
        const c = await searchQuality(ref, { ...JPEG, format }, target);
        assert.ok(c.encodes <= 7, `${format} ${target}: ${c.encodes} encodes`);
      }
    }
    const top = await searchQuality(noise, JPEG, 'high');
    assert.equal(top.quality, 95);
    assert.equal(top.encodes, 7);
  });
});

describe('chooseChroma', () => {
  it('keeps full chroma for red text on white, and the JPEG keeps the red closer than 4:2:0 does', async () => {
    const ref = await redCard();
    assert.equal(chooseChroma(ref), '4:4:4');
    const chosen = await searchQuality(ref, { ...JPEG, chroma: '4:4:4' }, 'medium');
    const full = await decodeRaw(chosen.body);
    const sub = await encodeDecode(ref, JPEG, chosen.quality);
    let full444 = 0, sub420 = 0, red = 0;
    for (let i = 0; i < ref.width * ref.height; i++) {
      const [r, g, b] = pixel(ref, i);
      if (r! < 150 || g! > 90 || b! > 90) continue;
      red++;
      full444 += deltaE(pixel(ref, i), pixel(full, i));
      sub420 += deltaE(pixel(ref, i), pixel(sub, i));
    }
    assert.ok(red > 300, `${red} red pixels`);
    assert.ok(full444 / red < 0.6 * (sub420 / red), `mean ΔE 4:4:4 ${full444 / red} vs 4:2:0 ${sub420 / red}`);
  });

  it('subsamples a smooth photo-like image', async () => {
    assert.equal(chooseChroma(await smooth()), '4:2:0');
  });
});

describe('needsDeringing', () => {
  it('is true for a dark object on white and false for a full-bleed photo', async () => {
    assert.equal(needsDeringing(await productOnWhite()), true);
    assert.equal(needsDeringing(await smooth()), false);
    assert.equal(needsDeringing(await detailed()), false);
  });

  it('keeps the white next to the object whiter with overshoot deringing', async () => {
    const ref = await productOnWhite();
    const white = (i: number) => pixel(ref, i).every((c) => c === 255);
    // white pixels within 6 px of the object: where ringing shows
    const band: number[] = [];
    for (let y = 0; y < ref.height; y++) {
      for (let x = 0; x < ref.width; x++) {
        if (!white(y * ref.width + x)) continue;
        let near = false;
        for (let dy = -6; dy <= 6 && !near; dy++) {
          for (let dx = -6; dx <= 6 && !near; dx++) {
            const X = x + dx, Y = y + dy;
            near = X >= 0 && Y >= 0 && X < ref.width && Y < ref.height && !white(Y * ref.width + X);
          }
        }
        if (near) band.push(y * ref.width + x);
      }
    }
    const deviation = async (dering: boolean) => {
      const out = await encodeDecode(ref, { ...JPEG, dering }, 60);
      return band.reduce((s, i) => s + 255 - Math.min(...pixel(out, i)), 0) / band.length;
    };
    const [plain, dering] = [await deviation(false), await deviation(true)];
    assert.ok(dering < 0.5 * plain, `mean deviation from white: dering ${dering} vs plain ${plain}`);
  });
});
