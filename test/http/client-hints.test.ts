/**
 * imgix's ch= client hints: Width sets the width when the URL has none (snapped to a step or the
 * allowed widths), DPR multiplies the URL's sizes, Save-Data lowers the quality; Vary names the
 * hints asked for, the key holds them bucketed, and a site with acceptCH asks browsers for them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { removeDir, startEdge, tempDir, testConfig, type RunningEdge } from '../helpers/edge.js';
import { photoJpeg } from '../helpers/images.js';
import { TestOrigin } from '../helpers/origin.js';

describe('client hints (imgix ch=)', () => {
  let dir: string;
  let origin: TestOrigin;
  let edge: RunningEdge;
  let bounded: RunningEdge;
  let defaulted: RunningEdge;

  before(async () => {
    dir = await tempDir('imgedge-ch-');
    origin = await TestOrigin.start();
    origin.set('/photo.jpg', { body: await photoJpeg({ width: 1200, height: 800, quality: 92 }), headers: { 'content-type': 'image/jpeg' } });
    origin.set('/page.html', { body: '<!doctype html><title>page</title>', headers: { 'content-type': 'text/html; charset=utf-8' } });
    origin.set('/site.css', { body: 'body{}', headers: { 'content-type': 'text/css' } });
    edge = await startEdge(testConfig(origin.url, `${dir}/a`, { site: { acceptCH: true } }));
    bounded = await startEdge(testConfig(origin.url, `${dir}/b`, { site: { bounds: { widths: [320, 640, 960] } } }));
    defaulted = await startEdge(testConfig(origin.url, `${dir}/c`, { site: { defaults: 'w=200&ch=dpr' } }));
  });

  after(async () => {
    await edge.close();
    await bounded.close();
    await defaulted.close();
    await origin.close();
    await removeDir(dir);
  });

  async function get(base: string, path: string, headers: Record<string, string> = {}) {
    const res = await fetch(`${base}${path}`, { headers });
    const body = Buffer.from(await res.arrayBuffer());
    const meta = res.status === 200 && (res.headers.get('content-type') ?? '').startsWith('image/') ? await sharp(body).metadata() : undefined;
    return { status: res.status, width: meta?.width, bytes: body.length, vary: res.headers.get('vary'), cache: res.headers.get('x-cache'), headers: res.headers };
  }

  it('Width sets the width when the URL has none, snapped up to the step; hints in one bucket share an entry', async () => {
    const a = await get(edge.url, '/photo.jpg?ch=width', { 'sec-ch-width': '333' });
    assert.equal(a.width, 350);
    assert.equal(a.vary, 'Accept, Sec-CH-Width, Width');
    assert.equal(a.cache, 'MISS');
    const b = await get(edge.url, '/photo.jpg?ch=width', { width: '341' });
    assert.equal(b.width, 350, 'the older Width header counts too');
    assert.equal(b.cache, 'HIT', 'same bucket, same entry');
    assert.equal((await get(edge.url, '/photo.jpg?ch=width', { 'sec-ch-width': '351' })).width, 400);
    assert.equal((await get(edge.url, '/photo.jpg?ch=width&w=100', { 'sec-ch-width': '500' })).width, 100, 'the URL\'s w wins');
    assert.equal((await get(edge.url, '/photo.jpg?ch=width')).width, 1200, 'no hint, no change');
  });

  it('snaps hinted widths to the site\'s allowed widths', async () => {
    assert.equal((await get(bounded.url, '/photo.jpg?ch=width', { 'sec-ch-width': '500' })).width, 640);
    assert.equal((await get(bounded.url, '/photo.jpg?ch=width', { 'sec-ch-width': '5000' })).width, 960);
    assert.equal((await get(bounded.url, '/photo.jpg?w=320&ch=dpr', { 'sec-ch-dpr': '2' })).width, 640);
  });

  it('DPR multiplies the URL\'s sizes, in half steps; the same URL follows each request\'s hint', async () => {
    assert.equal((await get(edge.url, '/photo.jpg?w=200&ch=dpr', { 'sec-ch-dpr': '2' })).width, 400);
    assert.equal((await get(edge.url, '/photo.jpg?w=200&ch=dpr', { dpr: '1.3' })).width, 300);
    assert.equal((await get(edge.url, '/photo.jpg?w=200&ch=dpr')).width, 200);
    assert.equal((await get(edge.url, '/photo.jpg?w=200&ch=dpr', { 'sec-ch-dpr': '2' })).width, 400, 'again, from the cache');
    assert.equal((await get(edge.url, '/photo.jpg?w=200&ch=dpr', { 'sec-ch-dpr': '2' })).vary, 'Accept, Sec-CH-DPR, DPR');
  });

  it('keeps the shape asked for: w and h scale together, snapped widths included; a URL dpr is not doubled', async () => {
    const both = await fetch(`${edge.url}/photo.jpg?w=200&h=100&fit=crop&ch=dpr`, { headers: { 'sec-ch-dpr': '2' } });
    const meta = await sharp(Buffer.from(await both.arrayBuffer())).metadata();
    assert.deepEqual([meta.width, meta.height], [400, 200]);
    const snapped = await fetch(`${bounded.url}/photo.jpg?w=320&h=200&fit=crop&ch=dpr`, { headers: { 'sec-ch-dpr': '1.5' } });
    const s = await sharp(Buffer.from(await snapped.arrayBuffer())).metadata();
    assert.deepEqual([s.width, s.height], [640, 400], '480 snaps up to 640: the height follows the same ratio');
    assert.equal((await get(edge.url, '/photo.jpg?w=200&dpr=2&ch=dpr', { 'sec-ch-dpr': '2' })).width, 400, 'not 800');
  });

  it('follows hints named in a site\'s defaults, on the hit fast path too', async () => {
    assert.equal((await get(defaulted.url, '/photo.jpg', { 'sec-ch-dpr': '2' })).width, 400);
    assert.equal((await get(defaulted.url, '/photo.jpg')).width, 200);
    assert.equal((await get(defaulted.url, '/photo.jpg', { 'sec-ch-dpr': '2' })).width, 400);
    assert.equal((await get(defaulted.url, '/photo.jpg')).width, 200, 'a repeat without hints is not served the hinted variant');
  });

  it('Save-Data: on lowers the quality', async () => {
    const normal = await get(edge.url, '/photo.jpg?w=600&ch=save-data');
    const saving = await get(edge.url, '/photo.jpg?w=600&ch=save-data', { 'save-data': 'on' });
    assert.ok(saving.bytes < normal.bytes * 0.8, `${saving.bytes} < ${normal.bytes}`);
    assert.equal(saving.vary, 'Accept, Save-Data');
  });

  it('leaves hints alone on URLs without ch=', async () => {
    const r = await get(edge.url, '/photo.jpg?w=200', { 'sec-ch-dpr': '3', 'sec-ch-width': '900', 'save-data': 'on' });
    assert.equal(r.width, 200);
    assert.equal(r.vary, 'Accept');
  });

  it('acceptCH asks browsers for the hints on HTML pages only', async () => {
    const page = await get(edge.url, '/page.html');
    assert.equal(page.status, 200);
    assert.match(page.headers.get('accept-ch') ?? '', /Sec-CH-Width.*Sec-CH-DPR/);
    assert.match(page.headers.get('critical-ch') ?? '', /Sec-CH-DPR/);
    assert.equal((await get(edge.url, '/site.css')).headers.get('accept-ch'), null);
    assert.equal((await get(bounded.url, '/page.html')).headers.get('accept-ch'), null, 'not without acceptCH');
  });

  it('lets a page\'s own ?f= or ?width= pass through: imgix\'s aliases alone make only an image path an image request', async () => {
    const page = await get(edge.url, '/page.html?f=rss&width=3');
    assert.equal(page.status, 200);
    assert.equal(page.headers.get('x-cache'), 'BYPASS');
    assert.equal((await get(edge.url, '/photo.jpg?width=300')).width, 300, 'on an image, width is w');
  });

  it('refuses unknown hints, naming ch', async () => {
    const r = await fetch(`${edge.url}/photo.jpg?ch=viewport-width`);
    assert.equal(r.status, 400);
    assert.equal(((await r.json()) as { error: { param: string } }).error.param, 'ch');
  });
});
