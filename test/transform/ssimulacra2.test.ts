import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { Ssimulacra2Reference, ssimulacra2 } from '../../src/transform/ssimulacra2.js';
import type { RawImage } from '../../src/transform/types.js';

const fixtures = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/ssimulacra2');

async function load(name: string): Promise<RawImage> {
  const { data, info } = await sharp(path.join(fixtures, name)).raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

interface Pair { original: string; distorted: string; score: number }

describe('SSIMULACRA 2', () => {
  it('agrees with the reference implementation on every fixture pair (within its own float32 spread)', async () => {
    const { pairs } = JSON.parse(await readFile(path.join(fixtures, 'reference-scores.json'), 'utf8')) as { pairs: Pair[] };
    assert.ok(pairs.length >= 6);
    for (const p of pairs) {
      const score = ssimulacra2(await load(p.original), await load(p.distorted));
      assert.ok(Math.abs(score - p.score) <= 0.1, `${p.distorted}: ${score} vs reference ${p.score}`);
    }
  });

  it('prepares the original once: repeated comparisons give the one-off score', async () => {
    const original = await load('landscape.png');
    const meter = new Ssimulacra2Reference(original);
    for (const name of ['landscape-q30.png', 'landscape-q70.png', 'landscape-q30.png']) {
      assert.equal(meter.compare(await load(name)), ssimulacra2(original, await load(name)));
    }
  });

  it('reads grey and grey + alpha pixels as the same RGB(A) pixels', async () => {
    /** The image's red channel as grey, as 1, 2, 3 or 4 channels; alpha runs through every level. */
    const as = (img: RawImage, channels: 1 | 2 | 3 | 4): RawImage => {
      const n = img.width * img.height;
      const data = Buffer.alloc(n * channels);
      for (let i = 0; i < n; i++) {
        const v = img.data[i * img.channels]!;
        const grey = channels < 3 ? 1 : 3;
        data.fill(v, i * channels, i * channels + grey);
        if (channels === 2 || channels === 4) data[i * channels + channels - 1] = (i * 37) % 256;
      }
      return { ...img, data, channels };
    };
    const [ref, dist] = [await load('landscape.png'), await load('landscape-q30.png')];
    assert.equal(ssimulacra2(as(ref, 1), as(dist, 1)), ssimulacra2(as(ref, 3), as(dist, 3)));
    assert.equal(ssimulacra2(as(ref, 2), as(dist, 2)), ssimulacra2(as(ref, 4), as(dist, 4)));
    assert.notEqual(ssimulacra2(as(ref, 2), as(dist, 2)), ssimulacra2(as(ref, 1), as(dist, 1)), 'alpha is not ignored');
  });

  it('ranks heavier compression lower and refuses images of another size', async () => {
    const meter = new Ssimulacra2Reference(await load('landscape.png'));
    assert.ok(meter.compare(await load('landscape-q70.png')) > meter.compare(await load('landscape-q30.png')));
    await assert.rejects(async () => meter.compare(await load('small.png')), /sizes differ/);
  });
});

describe('the WebAssembly kernels', () => {
  it('were built from the C source in the repository (npm run build:wasm after editing native/ssimulacra2.c)', async () => {
    const { createHash } = await import('node:crypto');
    const root = path.resolve(fixtures, '../../..');
    const source = await readFile(path.join(root, 'native/ssimulacra2.c'));
    const recorded = (await readFile(path.join(root, 'native/ssimulacra2.wasm.source-sha256'), 'utf8')).trim();
    assert.equal(createHash('sha256').update(source).digest('hex'), recorded);
  });
});
