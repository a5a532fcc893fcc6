/**
 * imgix's palette=json|css (the rendered image's dominant colours) and fm=blurhash, served and
 * cached like variants; and URLs built by imgix's own client (@imgix/js-core) with adjustment and
 * stylize parameters, rendered with their effect.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import imgixCore from '@imgix/js-core';
import { decode, isBlurhashValid } from 'blurhash';
import sharp from 'sharp';
import { removeDir, startEdge, tempDir, testConfig, type RunningEdge } from '../helpers/edge.js';
import { photoJpeg, quadrantPng } from '../helpers/images.js';
import { TestOrigin } from '../helpers/origin.js';

const ImgixClient = imgixCore as unknown as typeof imgixCore.default;

describe('palette and blurhash answers', () => {
  let dir: string;
  let origin: TestOrigin;
  let edge: RunningEdge;

  before(async () => {
    dir = await tempDir('imgedge-palette-');
    origin = await TestOrigin.start();
    origin.set('/quad.png', { body: await quadrantPng({ width: 200, height: 200 }), headers: { 'content-type': 'image/png' } });
    origin.set('/photo.jpg', { body: await photoJpeg({ width: 600, height: 400 }), headers: { 'content-type': 'image/jpeg' } });
    edge = await startEdge(testConfig(origin.url, dir));
  });

  after(async () => {
    await edge.close();
    await origin.close();
    await removeDir(dir);
  });

  const get = async (path: string) => {
    const res = await fetch(`${edge.url}${path}`);
    return { status: res.status, type: res.headers.get('content-type') ?? '', cache: res.headers.get('x-cache'), text: await res.text() };
  };

  it('palette=json names the image\'s colours, most frequent first, after crops and adjustments', async () => {
    const r = await get('/quad.png?palette=json&colors=4');
    assert.equal(r.status, 200);
    assert.equal(r.type, 'application/json');
    const body = JSON.parse(r.text) as { colors: { hex: string; red: number }[]; average_luminance: number; dominant_colors: Record<string, { hex: string }> };
    assert.deepEqual(body.colors.map((c) => c.hex).sort(), ['#0000ff', '#00ff00', '#ff0000', '#ffff00'].sort(), JSON.stringify(body.colors));
    assert.ok(body.average_luminance > 0.3 && body.average_luminance < 0.7);
    assert.ok(Object.keys(body.dominant_colors).length > 0);
    // Extraction follows the processing: the top-left quarter alone is red, and grey after sat=-100.
    const cropped = JSON.parse((await get('/quad.png?rect=0,0,100,100&palette=json&colors=1')).text) as { colors: { hex: string }[] };
    assert.deepEqual(cropped.colors.map((c) => c.hex), ['#ff0000']);
    const grey = JSON.parse((await get('/quad.png?rect=0,0,100,100&sat=-100&palette=json&colors=1')).text) as { colors: { red: number; green: number; blue: number }[] };
    const [c] = grey.colors;
    assert.ok(c && Math.abs(c.red - c.green) < 0.02 && Math.abs(c.green - c.blue) < 0.02, JSON.stringify(c));
    assert.equal((await get('/quad.png?palette=json&colors=4')).cache, 'HIT', 'cached like a variant');
  });

  it('palette=css writes a foreground and background class per colour, with the prefix', async () => {
    const r = await get('/quad.png?palette=css&colors=2&prefix=hero');
    assert.equal(r.status, 200);
    assert.match(r.type, /^text\/css/);
    assert.equal((r.text.match(/^\.hero-fg-\d+ \{ color:#[0-9a-f]{6} !important; \}$/gm) ?? []).length, 2);
    assert.equal((r.text.match(/^\.hero-bg-\d+ \{ background-color:#[0-9a-f]{6} !important; \}$/gm) ?? []).length, 2);
    assert.match(r.text, /\.hero-fg-ex-1 \{ color:#000000 !important; \}/);
    assert.match((await get('/quad.png?palette=css')).text, /^\.image-fg-1 /);
  });

  it('refuses a prefix that is not a class name, and colours out of 1–16', async () => {
    const bad = await get('/quad.png?palette=css&prefix=a%7Bcolor:red%7D');
    assert.equal(bad.status, 400);
    assert.equal((JSON.parse(bad.text) as { error: { param: string } }).error.param, 'prefix');
    assert.equal((await get('/quad.png?palette=json&colors=17')).status, 400);
    assert.equal((await get('/quad.png?palette=svg')).status, 400);
  });

  it('fm=blurhash answers a valid BlurHash that decodes to the image\'s colours', async () => {
    const r = await get('/quad.png?fm=blurhash');
    assert.equal(r.status, 200);
    assert.match(r.type, /^text\/plain/);
    assert.ok(isBlurhashValid(r.text).result, r.text);
    // Decoded small, the top-left corner is red and the bottom-right yellow.
    const px = decode(r.text, 8, 8);
    const at = (x: number, y: number) => [...px.subarray((y * 8 + x) * 4, (y * 8 + x) * 4 + 3)];
    const corners = [at(0, 0), at(7, 0), at(0, 7), at(7, 7)] as [number, number, number][];
    const [tl, tr, bl, br] = corners;
    const ok = tl![0] > tl![1] + 50 && tr![1] > tr![0] + 50 && bl![2] > bl![0] + 50 && br![0] > br![2] + 50 && br![1] > br![2] + 50;
    assert.ok(ok, `corners red, green, blue, yellow: ${JSON.stringify(corners)}`);
    const photo = await get('/photo.jpg?w=300&fm=blurhash');
    assert.ok(isBlurhashValid(photo.text).result);
    assert.notEqual(photo.text, (await get('/photo.jpg?w=300&fm=blurhash&invert=1')).text);
    assert.equal((await get('/quad.png?fm=blurhash')).cache, 'HIT');
  });

  it('renders URLs built by imgix\'s own client with adjustment and stylize parameters', async () => {
    const client = new ImgixClient({ domain: 'img.example.com', useHTTPS: false });
    const pathOf = (params: Record<string, string | number>) => {
      const url = new URL(client.buildURL('/quad.png', params));
      assert.ok(url.searchParams.has('ixlib'), 'the library parameter is left in, as sites send it');
      return `${url.pathname}${url.search}`;
    };
    const pixel = async (params: Record<string, string | number>, x: number, y: number) => {
      const res = await fetch(`${edge.url}${pathOf(params)}`);
      assert.equal(res.status, 200, JSON.stringify(params));
      const { data, info } = await sharp(Buffer.from(await res.arrayBuffer())).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      return [...data.subarray((y * info.width + x) * 3, (y * info.width + x) * 3 + 3)];
    };
    const red = await pixel({ w: 100, sat: -100 }, 10, 10);
    assert.ok(Math.max(...red) - Math.min(...red) <= 2, `sat=-100 is grey: ${red}`);
    assert.deepEqual(await pixel({ w: 100, invert: 'true' }, 10, 10), [0, 255, 255]);
    const blue = await pixel({ w: 100, duotone: '000080,ffd700' }, 10, 90);
    assert.ok(blue[2]! > blue[0]! && blue[2]! > 80, `dark blue quarter goes to navy: ${blue}`);
    // Borders, masks and text from the same client.
    assert.deepEqual(await pixel({ w: 100, border: '10,00ff00' }, 2, 2), [0, 255, 0]);
    assert.deepEqual(await pixel({ w: 100, mask: 'ellipse', 'mask-bg': 'ffffff' }, 0, 0), [255, 255, 255]);
    const text = await pixel({ w: 100, txt: '██', 'txt-color': 'ffffff', 'txt-size': 30, 'txt-pad': 0 }, 4, 15);
    assert.deepEqual(text, [255, 255, 255], 'text drawn over the red quarter');
    const palette = await fetch(`${edge.url}${pathOf({ palette: 'json', colors: 4 })}`);
    assert.equal(((await palette.json()) as { colors: unknown[] }).colors.length, 4);
  });
});
