import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { alphaPng, animatedGif, orientedJpeg, photoJpeg } from '../helpers/images.js';
import { TestOrigin } from '../helpers/origin.js';
import { removeDir, startEdge, tempDir, testConfig, type RunningEdge } from '../helpers/edge.js';

/** Accept headers real browsers send for <img> (2025–2026 releases). */
export const BROWSER_ACCEPT = {
  chrome: 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8',
  firefox: 'image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5',
  safari: 'image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5',
  safari15: 'image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5',
  legacy: 'image/png,image/*;q=0.8,*/*;q=0.5',
  curl: '*/*',
};

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await walk(full)));
    else out.push(full);
  }
  return out;
}

async function image(res: Response): Promise<{ body: Buffer; meta: Awaited<ReturnType<ReturnType<typeof sharp>["metadata"]>> }> {
  const body = Buffer.from(await res.arrayBuffer());
  return { body, meta: await sharp(body).metadata() };
}

describe('edge end to end, against a real HTTP origin', () => {
  let origin: TestOrigin;
  let cacheDir: string;
  let edge: RunningEdge;
  const page = '<!doctype html><title>x</title><img src="/a.jpg?w=10">\n';

  before(async () => {
    origin = await TestOrigin.start();
    origin.set('/photo.jpg', { body: await photoJpeg({ width: 1200, height: 800 }), headers: { 'content-type': 'image/jpeg' } });
    origin.set('/logo.png', { body: await alphaPng({ width: 300, height: 300 }), headers: { 'content-type': 'image/png' } });
    origin.set('/spin.gif', { body: await animatedGif({ frames: 4, width: 120, height: 120 }), headers: { 'content-type': 'image/gif' } });
    origin.set('/rotated.jpg', { body: await orientedJpeg(6), headers: { 'content-type': 'image/jpeg' } });
    origin.set('/index.html', { body: page, headers: { 'content-type': 'text/html; charset=utf-8' } });
    origin.set('/style.css', { body: 'body { color: red }\n', headers: { 'content-type': 'text/css' } });
    origin.set('/private.jpg', { body: await photoJpeg({ width: 200, height: 100 }), headers: { 'content-type': 'image/jpeg', 'cache-control': 'private, max-age=600' } });
    origin.set('/nostore.jpg', { body: await photoJpeg({ width: 200, height: 100 }), headers: { 'content-type': 'image/jpeg', 'cache-control': 'no-store' } });
    origin.set('/cookie.jpg', { body: await photoJpeg({ width: 200, height: 100 }), headers: { 'content-type': 'image/jpeg', vary: 'Cookie' } });
    origin.set('/corrupt.jpg', { body: (await photoJpeg({ width: 400, height: 300 })).subarray(0, 600), headers: { 'content-type': 'image/jpeg' } });
    origin.set('/fake.jpg', { body: '<html>not an image</html>', headers: { 'content-type': 'image/jpeg' } });
    cacheDir = await tempDir();
    // AVIF is made in the foreground here: this suite checks the negotiation itself.
    edge = await startEdge(testConfig(origin.url, cacheDir, { site: { formats: { avifInBackground: false } } }));
  });

  after(async () => {
    await edge.close();
    await origin.close();
    await removeDir(cacheDir);
  });

  test('resizes, answers MISS then HIT with one origin request, and stores the variant in the sharded tree', async () => {
    const first = await fetch(`${edge.url}/photo.jpg?w=300`);
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('x-cache'), 'MISS');
    const { body, meta } = await image(first);
    assert.equal(meta.width, 300);
    assert.equal(meta.height, 200);
    assert.equal(meta.format, 'jpeg');
    assert.equal(first.headers.get('content-length'), String(body.length));
    assert.match(first.headers.get('server-timing') ?? '', /fetch;dur=.*transform;dur=/);
    assert.equal(first.headers.get('vary'), 'Accept');

    const second = await fetch(`${edge.url}/photo.jpg?w=300`);
    assert.equal(second.headers.get('x-cache'), 'HIT');
    assert.deepEqual(Buffer.from(await second.arrayBuffer()), body);
    assert.equal(second.headers.get('etag'), first.headers.get('etag'));
    assert.equal(origin.count('/photo.jpg'), 1);

    const entries = (await walk(cacheDir)).filter((f) => f.endsWith('.entry'));
    assert.ok(entries.length >= 1);
    for (const file of entries) assert.match(path.relative(cacheDir, file), /^[0-9a-f]{2}\/[0-9a-f]{2}\/[0-9a-f]{2}\/[0-9a-f]{58}\/[0-9a-f]{64}\.entry$/);
  });

  test('a new variant of a known source needs no second origin fetch (source tier)', async () => {
    const before = origin.count('/photo.jpg');
    const res = await fetch(`${edge.url}/photo.jpg?w=120&h=120&fit=crop`);
    const { meta } = await image(res);
    assert.deepEqual([meta.width, meta.height], [120, 120]);
    assert.equal(origin.count('/photo.jpg'), before);
  });

  test('20 concurrent identical misses make one origin request and one transform', async () => {
    origin.set('/stampede.jpg', { body: await photoJpeg({ width: 1600, height: 1000 }), headers: { 'content-type': 'image/jpeg' }, delayMs: 150 });
    const transformsBefore = await transformCount(edge);
    const responses = await Promise.all(Array.from({ length: 20 }, () => fetch(`${edge.url}/stampede.jpg?w=400`)));
    const bodies = await Promise.all(responses.map(async (r) => Buffer.from(await r.arrayBuffer())));
    assert.ok(responses.every((r) => r.status === 200));
    assert.ok(bodies.every((b) => b.equals(bodies[0]!)));
    assert.equal(origin.count('/stampede.jpg'), 1);
    assert.equal((await transformCount(edge)) - transformsBefore, 1);
  });

  test('auto=format follows the Accept headers real browsers send, and the key keeps only the choice', async () => {
    // With compress, each format meets one perceptual target, where AVIF is the smallest on a
    // photograph (at one fixed q a JPEG can be smaller than its AVIF, and auto=format answers it).
    const formatFor = async (accept: string, q = 'w=200&auto=format,compress') => {
      const res = await fetch(`${edge.url}/photo.jpg?${q}`, { headers: { accept } });
      assert.equal(res.headers.get('vary'), 'Accept');
      return { format: (await image(res)).meta.format, cache: res.headers.get('x-cache'), type: res.headers.get('content-type') };
    };
    const chrome = await formatFor(BROWSER_ACCEPT.chrome);
    assert.equal(chrome.format, 'heif');
    assert.equal(chrome.type, 'image/avif');
    assert.equal(chrome.cache, 'MISS');
    // Firefox's Accept differs as a string but makes the same choice: same cache entry.
    const firefox = await formatFor(BROWSER_ACCEPT.firefox);
    assert.equal(firefox.type, 'image/avif');
    assert.equal(firefox.cache, 'HIT');
    assert.equal((await formatFor(BROWSER_ACCEPT.safari)).type, 'image/avif');
    assert.equal((await formatFor(BROWSER_ACCEPT.safari15)).type, 'image/webp');
    assert.equal((await formatFor(BROWSER_ACCEPT.legacy)).type, 'image/jpeg');
    assert.equal((await formatFor(BROWSER_ACCEPT.curl)).type, 'image/jpeg');
    // Alpha without a modern format falls back to PNG, never JPEG.
    const png = await fetch(`${edge.url}/logo.png?w=100&auto=format`, { headers: { accept: BROWSER_ACCEPT.legacy } });
    assert.equal(png.headers.get('content-type'), 'image/png');
    assert.equal((await image(png)).meta.hasAlpha, true);
    // An animated GIF stays animated: WebP when the browser takes it, GIF otherwise.
    const anim = await fetch(`${edge.url}/spin.gif?w=60&auto=format`, { headers: { accept: BROWSER_ACCEPT.chrome } });
    const animMeta = (await image(anim)).meta;
    assert.equal(anim.headers.get('content-type'), 'image/webp');
    assert.equal(animMeta.pages, 4);
    const gif = await fetch(`${edge.url}/spin.gif?w=60&auto=format`, { headers: { accept: BROWSER_ACCEPT.legacy } });
    assert.equal(gif.headers.get('content-type'), 'image/gif');
    assert.equal((await image(gif)).meta.pages, 4);
  });

  test('EXIF orientation is applied: a stored-landscape orientation-6 JPEG comes out portrait', async () => {
    const res = await fetch(`${edge.url}/rotated.jpg?w=100`);
    const { meta } = await image(res);
    assert.equal(meta.width, 100);
    assert.equal(meta.height, 200);
    assert.ok(meta.orientation === undefined || meta.orientation === 1);
  });

  test('auto=compress reports the savings: X-Original-Bytes and the X-Quality it chose', async () => {
    const res = await fetch(`${edge.url}/photo.jpg?w=400&auto=compress`);
    assert.equal(res.headers.get('x-original-bytes'), String(origin.routes.get('/photo.jpg')!.body.length));
    const q = Number(res.headers.get('x-quality'));
    assert.ok(q >= 30 && q <= 95, `x-quality ${q}`);
    const body = Buffer.from(await res.arrayBuffer());
    assert.ok(body.length < origin.routes.get('/photo.jpg')!.body.length);
    const hit = await fetch(`${edge.url}/photo.jpg?w=400&auto=compress`);
    assert.equal(hit.headers.get('x-quality'), String(q));
    await hit.arrayBuffer();
  });

  test('fm=json answers the source metadata', async () => {
    const res = await fetch(`${edge.url}/photo.jpg?fm=json`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    const json = (await res.json()) as Record<string, unknown>;
    assert.equal(json.PixelWidth, 1200);
    assert.equal(json.PixelHeight, 800);
    assert.equal(json.HasAlpha, false);
  });

  test('ETag and If-None-Match answer 304; HEAD answers headers only', async () => {
    const res = await fetch(`${edge.url}/photo.jpg?w=300`);
    const etag = res.headers.get('etag')!;
    assert.match(etag, /^"[A-Za-z0-9_-]+"$/);
    await res.arrayBuffer();
    const revalidated = await fetch(`${edge.url}/photo.jpg?w=300`, { headers: { 'if-none-match': etag } });
    assert.equal(revalidated.status, 304);
    assert.equal((await revalidated.arrayBuffer()).byteLength, 0);
    const head = await fetch(`${edge.url}/photo.jpg?w=300`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), res.headers.get('content-length'));
    assert.match(head.headers.get('cache-control') ?? '', /^public, max-age=\d+$/);
  });

  test('unknown parameters are ignored and do not make a new variant', async () => {
    await (await fetch(`${edge.url}/photo.jpg?w=250`)).arrayBuffer();
    const res = await fetch(`${edge.url}/photo.jpg?w=250&utm_source=mail&foo=bar`);
    assert.equal(res.headers.get('x-cache'), 'HIT');
    assert.equal((await image(res)).meta.width, 250);
  });

  test('a bad parameter value is a 400 with EDGE_BAD_PARAM naming it', async () => {
    for (const [query, param] of [['w=-5', 'w'], ['fit=banana', 'fit'], ['q=500', 'q'], ['dpr=9', 'dpr'], ['rect=1,2', 'rect']] as const) {
      const res = await fetch(`${edge.url}/photo.jpg?${query}`);
      assert.equal(res.status, 400, query);
      const json = (await res.json()) as { error: { code: string; param: string } };
      assert.equal(json.error.code, 'EDGE_BAD_PARAM');
      assert.equal(json.error.param, param);
    }
  });

  test('HTML and CSS pass through byte for byte with X-Cache: BYPASS', async () => {
    const html = await fetch(`${edge.url}/index.html`);
    assert.equal(html.headers.get('x-cache'), 'BYPASS');
    assert.equal(html.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(await html.text(), page);
    const css = await fetch(`${edge.url}/style.css?v=3`);
    assert.equal(await css.text(), 'body { color: red }\n');
    assert.equal(origin.count('/style.css?v=3'), 1);
    // An image asked for without parameters is not touched either.
    const raw = await fetch(`${edge.url}/logo.png`);
    assert.equal(raw.headers.get('x-cache'), 'BYPASS');
    assert.deepEqual(Buffer.from(await raw.arrayBuffer()), origin.routes.get('/logo.png')!.body);
  });

  test('private, no-store and Vary: Cookie responses are never cached', async () => {
    for (const p of ['/private.jpg', '/nostore.jpg', '/cookie.jpg']) {
      const first = await fetch(`${edge.url}${p}?w=50`);
      assert.equal(first.status, 200);
      assert.equal(first.headers.get('x-cache'), 'MISS');
      assert.doesNotMatch(first.headers.get('cache-control') ?? '', /public/);
      await first.arrayBuffer();
      const second = await fetch(`${edge.url}${p}?w=50`);
      assert.equal(second.headers.get('x-cache'), 'MISS', p);
      await second.arrayBuffer();
      assert.equal(origin.count(`${p}`), 2, p);
    }
  });

  test('origin errors map to stable codes: 404, corrupt → 422, not an image → 415', async () => {
    const missing = await fetch(`${edge.url}/nope.jpg?w=10`);
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as any).error.code, 'EDGE_ORIGIN_STATUS');
    const corrupt = await fetch(`${edge.url}/corrupt.jpg?w=10`);
    assert.equal(corrupt.status, 422);
    assert.equal(((await corrupt.json()) as any).error.code, 'EDGE_BAD_IMAGE');
    const fake = await fetch(`${edge.url}/fake.jpg?w=10`);
    assert.equal(fake.status, 415);
    assert.equal(((await fake.json()) as any).error.code, 'EDGE_NOT_AN_IMAGE');
  });

  test('reserved routes: health, ready and Prometheus metrics', async () => {
    assert.equal((await fetch(`${edge.url}/_edge/health`)).status, 200);
    const ready = await fetch(`${edge.url}/_edge/ready`);
    assert.equal(ready.status, 200);
    const metrics = await (await fetch(`${edge.url}/_edge/metrics`)).text();
    assert.match(metrics, /imgedge_requests_total\{status="200",cache="HIT"\} \d+/);
    assert.match(metrics, /imgedge_transform_seconds_count\{format="jpeg"\} \d+/);
    assert.match(metrics, /imgedge_cache_entries [1-9]/);
    assert.match(metrics, /imgedge_origin_bytes_total [1-9]/);
    assert.equal((await fetch(`${edge.url}/_edge/nothing`)).status, 404);
    assert.equal(origin.count('/_edge/nothing'), 0);
  });

  test('methods other than GET and HEAD are refused', async () => {
    const res = await fetch(`${edge.url}/photo.jpg`, { method: 'POST', body: 'x' });
    assert.equal(res.status, 405);
    assert.equal(((await res.json()) as any).error.code, 'EDGE_METHOD_NOT_ALLOWED');
  });
});

async function transformCount(edge: RunningEdge): Promise<number> {
  const text = await edge.edge.metrics.registry.metrics();
  return [...text.matchAll(/^imgedge_transform_seconds_count\{[^}]*\} (\d+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
}
