/**
 * imgix's watermark (mark*) through the edge: the mark is fetched from the site's origin like any
 * source, sized, made translucent, placed or tiled; a bad or missing mark is a 400 naming it; and
 * purging the mark's URL purges the variants drawn with it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { removeDir, startEdge, tempDir, testConfig, type RunningEdge } from '../helpers/edge.js';
import { TestOrigin } from '../helpers/origin.js';

const TOKEN = 'watermark-purge-token-0123456789';
const solid = (width: number, height: number, r: number, g: number, b: number) => sharp({ create: { width, height, channels: 3, background: { r, g, b } } }).png().toBuffer();

describe('watermarks (imgix mark*)', () => {
  let dir: string;
  let origin: TestOrigin;
  let brand: TestOrigin;
  let edge: RunningEdge;

  before(async () => {
    dir = await tempDir('imgedge-mark-');
    origin = await TestOrigin.start();
    origin.set('/photo.png', { body: await solid(400, 300, 0, 0, 255), headers: { 'content-type': 'image/png' } });
    origin.set('/logo.png', { body: await solid(40, 20, 255, 0, 0), headers: { 'content-type': 'image/png' } });
    origin.set('/notes.txt', { body: 'not an image', headers: { 'content-type': 'text/plain' } });
    origin.set('/clean.jpg', { body: await sharp({ create: { width: 300, height: 200, channels: 3, background: { r: 0, g: 0, b: 255 } } }).jpeg({ quality: 60 }).toBuffer(), headers: { 'content-type': 'image/jpeg' } });
    brand = await TestOrigin.start();
    brand.set('/brand.png', { body: await solid(40, 20, 255, 0, 0), headers: { 'content-type': 'image/png' } });
    edge = await startEdge(testConfig(origin.url, dir, { purge: { token: TOKEN }, site: { allowedOrigins: [brand.url] } }));
  });

  after(async () => {
    await edge.close();
    await origin.close();
    await brand.close();
    await removeDir(dir);
  });

  async function render(query: string) {
    const res = await fetch(`${edge.url}/photo.png?${query}&fm=png`);
    const text = res.status === 200 ? '' : await res.text();
    if (res.status !== 200) return { status: res.status, text, cache: res.headers.get('x-cache'), at: () => [] as number[], redIn: () => 0 };
    const { data, info } = await sharp(Buffer.from(await res.arrayBuffer())).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const at = (x: number, y: number) => [...data.subarray((y * info.width + x) * 3, (y * info.width + x) * 3 + 3)];
    /** How many pixels of the rectangle are red. */
    const redIn = (x0: number, y0: number, x1: number, y1: number) => {
      let n = 0;
      for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) if (data[(y * info.width + x) * 3]! > 200 && data[(y * info.width + x) * 3 + 2]! < 60) n++;
      return n;
    };
    return { status: res.status, text, cache: res.headers.get('x-cache'), at, redIn };
  }

  it('draws the mark at the bottom right, mark-pad from the edges, by default', async () => {
    const r = await render('mark=/logo.png');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.at(400 - 5 - 20, 300 - 5 - 10), [255, 0, 0]);
    assert.deepEqual(r.at(400 - 2, 300 - 2), [0, 0, 255], 'the pad is left clear');
    assert.deepEqual(r.at(10, 10), [0, 0, 255]);
    assert.equal(r.redIn(0, 0, 400, 300), 40 * 20);
  });

  it('is drawn at the source\'s own size and format, where a re-encode is not smaller (never the bare original)', async () => {
    const source = await (await fetch(`${origin.url}/clean.jpg`)).arrayBuffer();
    const res = await fetch(`${edge.url}/clean.jpg?mark=/logo.png`);
    assert.equal(res.headers.get('content-type'), 'image/jpeg');
    const body = Buffer.from(await res.arrayBuffer());
    assert.ok(!body.equals(Buffer.from(source)), 'not the original bytes');
    const { data, info } = await sharp(body).raw().toBuffer({ resolveWithObject: true });
    const o = ((200 - 15) * info.width + (300 - 25)) * 3;
    assert.ok(data[o]! > 200 && data[o + 2]! < 80, `the mark is there: ${[...data.subarray(o, o + 3)]}`);
    const sharpened = Buffer.from(await (await fetch(`${edge.url}/clean.jpg?usm=80&txt=x`)).arrayBuffer());
    assert.ok(!sharpened.equals(Buffer.from(source)));
  });

  it('mark-align, mark-x/mark-y place it; mark-tile=grid repeats it', async () => {
    assert.deepEqual((await render('mark=/logo.png&mark-align=top,left&mark-pad=0')).at(0, 0), [255, 0, 0]);
    const middle = await render('mark=/logo.png&mark-align=middle,center');
    assert.equal(middle.redIn(180, 140, 220, 160), 40 * 20);
    const placed = await render('mark=/logo.png&mark-x=100&mark-y=50');
    assert.equal(placed.redIn(100, 50, 140, 70), 40 * 20);
    const tiled = await render('mark=/logo.png&mark-tile=grid&mark-pad=10');
    assert.ok(tiled.redIn(0, 0, 400, 300) > 40 * 20 * 50, 'dozens of copies');
    assert.deepEqual(tiled.at(0, 0), [255, 0, 0]);
    assert.deepEqual(tiled.at(45, 5), [0, 0, 255], 'the gap between copies');
    assert.deepEqual(tiled.at(55, 5), [255, 0, 0], 'the next copy');
  });

  it('mark-w/mark-h in pixels or as a fraction, and mark-scale, size it; mark-alpha blends it', async () => {
    assert.equal((await render('mark=/logo.png&mark-w=80')).redIn(0, 0, 400, 300), 80 * 40);
    assert.equal((await render('mark=/logo.png&mark-w=0.5')).redIn(0, 0, 400, 300), 200 * 100, 'half the image\'s width');
    assert.equal((await render('mark=/logo.png&mark-scale=25')).redIn(0, 0, 400, 300), 100 * 50);
    const faint = await render('mark=/logo.png&mark-alpha=50');
    const [r, g, b] = faint.at(400 - 5 - 20, 300 - 5 - 10);
    assert.ok(Math.abs(r! - 128) < 4 && g === 0 && Math.abs(b! - 127) < 4, `half red over blue: ${[r, g, b]}`);
  });

  it('takes an absolute URL on the site\'s origin and mark64; refuses others and a missing mark with a 400', async () => {
    assert.equal((await render(`mark=${encodeURIComponent(`${origin.url}/logo.png`)}`)).redIn(0, 0, 400, 300), 800);
    assert.equal((await render(`mark64=${Buffer.from('/logo.png').toString('base64url')}`)).redIn(0, 0, 400, 300), 800);
    for (const [query, why] of [
      ['mark=https://elsewhere.example/logo.png', /site's origin/],
      ['mark=/missing.png', /not found/],
      ['mark=/notes.txt', /mark/],
      ['mark=logo.png', /path on the site/],
    ] as const) {
      const r = await render(query);
      assert.equal(r.status, 400, query);
      const body = JSON.parse(r.text) as { error: { code: string; param: string; message: string } };
      assert.equal(body.error.param, 'mark', query);
      assert.match(body.error.message, why, query);
    }
  });

  it('is cached with the variant, and purging the mark\'s URL purges the variants drawn with it', async () => {
    const query = 'mark=/logo.png&mark-align=top,left&mark-pad=0&w=399';
    assert.equal((await render(query)).cache, 'MISS');
    assert.equal((await render(query)).cache, 'HIT');
    origin.set('/logo.png', { body: await solid(40, 20, 0, 255, 0), headers: { 'content-type': 'image/png' } });
    const purge = await fetch(`${edge.url}/_edge/purge`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ urls: ['/logo.png'] }) });
    assert.equal(purge.status, 200);
    const after = await render(query);
    assert.equal(after.cache, 'MISS');
    assert.deepEqual(after.at(0, 0), [0, 255, 0], 'the new mark');
  });

  it('purges the variants drawn with a mark on a site with languages too', async () => {
    const multi = await startEdge(testConfig(origin.url, `${dir}/lang`, { purge: { token: TOKEN }, site: { languages: ['en', 'de'] } }));
    try {
      origin.set('/badge.png', { body: await solid(40, 20, 255, 0, 0), headers: { 'content-type': 'image/png' } });
      const ask = async () => {
        const res = await fetch(`${multi.url}/photo.png?mark=/badge.png&mark-align=top,left&mark-pad=0&fm=png`);
        const { data } = await sharp(Buffer.from(await res.arrayBuffer())).removeAlpha().raw().toBuffer({ resolveWithObject: true });
        return { cache: res.headers.get('x-cache'), first: [...data.subarray(0, 3)] };
      };
      assert.deepEqual((await ask()).first, [255, 0, 0]);
      assert.equal((await ask()).cache, 'HIT');
      origin.set('/badge.png', { body: await solid(40, 20, 0, 255, 0), headers: { 'content-type': 'image/png' } });
      const purge = await fetch(`${multi.url}/_edge/purge`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ urls: ['/badge.png'] }) });
      assert.equal(purge.status, 200);
      const after = await ask();
      assert.equal(after.cache, 'MISS');
      assert.deepEqual(after.first, [0, 255, 0]);
    } finally {
      await multi.close();
    }
  });

  it('takes a mark from one of the site\'s allowedOrigins, purged by its own URL', async () => {
    const query = `mark=${encodeURIComponent(`${brand.url}/brand.png`)}&mark-align=top,left&mark-pad=0&w=398`;
    const first = await render(query);
    assert.equal(first.status, 200, first.text);
    assert.deepEqual(first.at(0, 0), [255, 0, 0]);
    assert.equal((await render(query)).cache, 'HIT');
    brand.set('/brand.png', { body: await solid(40, 20, 255, 255, 0), headers: { 'content-type': 'image/png' } });
    const purge = await fetch(`${edge.url}/_edge/purge`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ urls: [`${brand.url}/brand.png`] }) });
    assert.equal(purge.status, 200, await purge.clone().text());
    const after = await render(query);
    assert.equal(after.cache, 'MISS');
    assert.deepEqual(after.at(0, 0), [255, 255, 0], 'the new mark');
  });
});
