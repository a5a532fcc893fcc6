import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import sharp from 'sharp';
import { CORPUS_TEST_SUBSET, ensurePhotoCorpus } from '../../scripts/photo-corpus.js';
import { WHOLE_MAX_PIXELS, measurementView } from '../../src/transform/measure-view.js';
import {
  QUALITY_RANGES,
  QUALITY_TARGETS,
  chooseChroma,
  decodeRaw,
  encodeCandidate,
  meterFor,
  searchQuality,
  simulate420,
  type EncodeSettings,
} from '../../src/transform/quality.js';
import type { QualityTarget, RawImage } from '../../src/transform/types.js';

const JPEG: EncodeSettings = { format: 'jpeg', progressive: false, chroma: '4:2:0', avifEffort: 2, alpha: false };

async function fromSvg(width: number, height: number, body: string): Promise<RawImage> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${body}</svg>`;
  const { data, info } = await sharp(Buffer.from(svg)).flatten({ background: '#fff' }).raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

/** Soft, photo-like: gradients and a blurred blob. */
const smooth = () => fromSvg(320, 240, `<defs><linearGradient id="g" x2="1" y2="1"><stop offset="0" stop-color="#3a6ea5"/>
  <stop offset="1" stop-color="#f0c27a"/></linearGradient><filter id="b"><feGaussianBlur stdDeviation="25"/></filter></defs>
  <rect width="320" height="240" fill="url(#g)"/><circle cx="200" cy="110" r="70" fill="#c0583a" filter="url(#b)"/>`);

const redCard = () => fromSvg(360, 120, `<rect width="360" height="120" fill="#fff"/>
  <text x="12" y="50" font-family="sans-serif" font-size="28" fill="#e00">Red text on white</text>
  <text x="12" y="95" font-family="sans-serif" font-size="18" fill="#e00">washes out at 4:2:0</text>`);

/** Loud colour noise: no lossy quality in range keeps it at the `high` target. */
function colourNoise(side: number): RawImage {
  const data = Buffer.alloc(side * side * 3);
  for (let i = 0, s = 7; i < data.length; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    data[i] = s >>> 24;
  }
  return { data, width: side, height: side, channels: 3 };
}

/** CIE76 ΔE between two sRGB pixels. */
function deltaE(a: number[], b: number[]): number {
  const lab = ([r, g, bl]: number[]) => {
    const lin = (c: number) => ((c /= 255) <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
    const [R, G, B] = [lin(r!), lin(g!), lin(bl!)];
    const f = (t: number) => (t > 216 / 24389 ? Math.cbrt(t) : ((24389 / 27) * t + 16) / 116);
    const x = f((0.4124 * R + 0.3576 * G + 0.1805 * B) / 0.95047);
    const y = f(0.2126 * R + 0.7152 * G + 0.0722 * B);
    const z = f((0.0193 * R + 0.1192 * G + 0.9505 * B) / 1.08883);
    return [116 * y - 16, 500 * (x - y), 200 * (y - z)];
  };
  const p = lab(a), q = lab(b);
  return Math.hypot(p[0]! - q[0]!, p[1]! - q[1]!, p[2]! - q[2]!);
}

const pixel = (img: RawImage, i: number) => [img.data[i * img.channels]!, img.data[i * img.channels + 1]!, img.data[i * img.channels + 2]!];

/** The served image's score, measured on the whole image (not the search's view). */
const scoreOf = async (ref: RawImage, body: Buffer, settings: EncodeSettings) => meterFor(ref, settings).compare(await decodeRaw(body));

describe('searchQuality on real photographs', () => {
  let photos: { name: string; ref: RawImage; large: RawImage }[] = [];
  before(async () => {
    const corpus = await ensurePhotoCorpus({ only: CORPUS_TEST_SUBSET });
    photos = await Promise.all(corpus.map(async (p) => {
      const load = async (width: number) => {
        const { data, info } = await sharp(p.file).rotate().resize({ width, withoutEnlargement: true }).toColourspace('srgb').removeAlpha().raw().toBuffer({ resolveWithObject: true });
        return { data, width: info.width, height: info.height, channels: 3 };
      };
      return { name: p.name, ref: await load(640), large: await load(1600) };
    }));
  });

  for (const target of ['high', 'low'] as QualityTarget[]) {
    it(`lands every photograph at the ${target} target, in few encodes (JPEG and WebP)`, async () => {
      const goal = QUALITY_TARGETS[target];
      const encodes: number[] = [];
      let misses = 0;
      for (const format of ['jpeg', 'webp'] as const) {
        for (const p of photos) {
          const settings = { ...JPEG, format };
          const c = await searchQuality(p.ref, settings, target);
          const score = await scoreOf(p.ref, c.body, settings);
          assert.equal(score, c.score, `${p.name}: the search measured what it serves`);
          const { min, max } = QUALITY_RANGES[format];
          if (score < goal) {
            // Only where even the top of the range misses, at full chroma too.
            assert.equal(c.quality, max, `${format} ${p.name}: q${c.quality} scores ${score.toFixed(2)} < ${goal}`);
          } else if (c.quality > min && score - goal > 2) {
            // Not wastefully above the target: one quality step less would miss it.
            const below = await scoreOf(p.ref, await encodeCandidate(p.ref, { ...settings, chroma: c.chroma }, c.quality - 1), settings);
            assert.ok(below < goal, `${format} ${p.name}: q${c.quality} scores ${score.toFixed(2)} and q${c.quality - 1} ${below.toFixed(2)}`);
          }
          misses += score < goal ? 1 : 0;
          encodes.push(c.encodes);
        }
      }
      encodes.sort((a, b) => a - b);
      assert.ok(encodes[encodes.length >> 1]! <= 3, `median encodes ${encodes.join(',')}`);
      assert.ok(encodes.every((n) => n <= 7), `encodes ${encodes.join(',')}`);
      assert.equal(misses, 0, `${misses} photographs miss the target at the top of the range`);
    });
  }

  it('searches large photographs on full-resolution tiles and still lands the whole image near the target', async () => {
    const goal = QUALITY_TARGETS.high;
    for (const p of photos.filter((x) => x.large.width * x.large.height > WHOLE_MAX_PIXELS)) {
      const view = measurementView(p.large);
      assert.equal(view.whole, false);
      assert.ok(view.image.width * view.image.height < 0.5 * p.large.width * p.large.height);
      const c = await searchQuality(p.large, JPEG, 'high', view);
      const whole = await scoreOf(p.large, c.body, JPEG);
      // The mosaic estimates the whole: no photograph lands more than 10 % of the target's distance below it.
      assert.ok(100 - whole <= 1.1 * (100 - goal), `${p.name}: whole image ${whole.toFixed(2)} at q${c.quality} (tiles ${c.score.toFixed(2)})`);
      assert.equal((await sharp(c.body).metadata()).width, p.large.width);
    }
  });
});

describe('searchQuality', () => {
  it('answers the top of the range when nothing meets the target, even at full chroma (WebP on colour noise), within seven encodes', async () => {
    const c = await searchQuality(colourNoise(96), { ...JPEG, format: 'webp' }, 'high');
    assert.equal(c.quality, 95);
    assert.ok(c.encodes <= 7, `${c.encodes} encodes`);
    assert.ok(c.score < QUALITY_TARGETS.high);
  });

  it('turns to 4:4:4 when 4:2:0 misses the target even at the top of the range (JPEG)', async () => {
    const c = await searchQuality(colourNoise(96), JPEG, 'high');
    assert.equal(c.chroma, '4:4:4');
    assert.ok(c.score >= QUALITY_TARGETS.high, `q${c.quality}: ${c.score}`);
    assert.ok(c.encodes <= 7, `${c.encodes} encodes`);
  });

  it('keeps the targets ordered: high costs more bytes than medium, medium than low', async () => {
    const ref = await smooth();
    const sizes = [];
    for (const target of ['high', 'medium', 'low'] as const) sizes.push((await searchQuality(ref, JPEG, target)).body.length);
    assert.ok(sizes[0]! > sizes[1]! && sizes[1]! > sizes[2]!, `${sizes}`);
  });
});

describe('chooseChroma', () => {
  it('keeps full chroma for red text on white, and the JPEG keeps the red closer than 4:2:0 does', async () => {
    const ref = await redCard();
    assert.equal(chooseChroma(ref, 'medium'), '4:4:4');
    const chosen = await searchQuality(ref, { ...JPEG, chroma: '4:4:4' }, 'medium');
    const full = await decodeRaw(chosen.body);
    const sub = await decodeRaw(await encodeCandidate(ref, JPEG, chosen.quality));
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
    assert.equal(chooseChroma(await smooth(), 'high'), '4:2:0');
  });

  it('simulates 4:2:0 as averaged chroma over 2×2 blocks, luma kept', () => {
    // A red pixel among three white ones: the block's chroma is averaged, each pixel keeps its luma
    // (BT.601: red's Y is 76, so it darkens to a dull red; the whites take a pink cast).
    const img: RawImage = { data: Buffer.from([255, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255, 255]), width: 2, height: 2, channels: 3 };
    const { image, edgeShare, medianShift } = simulate420(img);
    const near = (got: number[], want: number[]) => got.every((v, c) => Math.abs(v - want[c]!) <= 2);
    assert.ok(image && near(pixel(image, 0), [121, 57, 57]), `red pixel became ${image && pixel(image, 0)}`);
    for (const i of [1, 2, 3]) assert.ok(near(pixel(image, i), [255, 236, 236]), `white pixel became ${pixel(image, i)}`);
    assert.equal(edgeShare, 0.25); // the red pixel: saturated, and moved
    assert.ok(medianShift > 50, `${medianShift}`);
  });
});
