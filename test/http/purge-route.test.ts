import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { photoJpeg } from '../helpers/images.js';
import { TestOrigin } from '../helpers/origin.js';
import { removeDir, startEdge, tempDir, testConfig, type RunningEdge } from '../helpers/edge.js';

const TOKEN = 'test-purge-token-0123456789';

describe('POST /_edge/purge on one node', () => {
  let origin: TestOrigin;
  let edge: RunningEdge;
  let cacheDir: string;
  const purge = (body: unknown, token: string | null = TOKEN) =>
    fetch(`${edge.url}/_edge/purge`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });
  const status = async (path: string) => {
    const res = await fetch(`${edge.url}${path}`);
    await res.arrayBuffer();
    return res.headers.get('x-cache');
  };

  before(async () => {
    origin = await TestOrigin.start();
    const jpeg = await photoJpeg({ width: 200, height: 150 });
    for (const p of ['/a.jpg', '/products/1.jpg', '/products/2.jpg', '/other.jpg']) origin.set(p, { body: jpeg, headers: { 'content-type': 'image/jpeg' } });
    origin.set('/tagged.jpg', { body: jpeg, headers: { 'content-type': 'image/jpeg', 'surrogate-key': 'sku-1 cat-5' } });
    origin.set('/tagged2.jpg', { body: jpeg, headers: { 'content-type': 'image/jpeg', 'cache-tag': 'sku-2,cat-5' } });
    cacheDir = await tempDir();
    edge = await startEdge(testConfig(origin.url, cacheDir, { purge: { token: TOKEN } }));
  });
  after(async () => {
    await edge.close();
    await origin.close();
    await removeDir(cacheDir);
  });

  test('refuses a missing or wrong token with 401', async () => {
    for (const token of [null, 'wrong', `${TOKEN}x`]) {
      const res = await purge({ all: true }, token);
      assert.equal(res.status, 401);
      assert.equal(((await res.json()) as any).error.code, 'EDGE_UNAUTHORIZED');
    }
  });

  test('a source URL purges every variant of it, and nothing else', async () => {
    for (const q of ['w=50', 'w=60', 'w=70&fm=webp']) assert.equal(await status(`/a.jpg?${q}`), 'MISS');
    assert.equal(await status('/other.jpg?w=50'), 'MISS');
    const res = await purge({ urls: ['/a.jpg?w=999'] });
    assert.equal(res.status, 200);
    const json = (await res.json()) as { purged: number; id: string };
    assert.ok(json.purged >= 3, `purged ${json.purged}`);
    assert.match(json.id, /^[0-9a-f-]{36}$/);
    for (const q of ['w=50', 'w=60', 'w=70&fm=webp']) assert.equal(await status(`/a.jpg?${q}`), 'MISS');
    assert.equal(await status('/other.jpg?w=50'), 'HIT');
    // An absolute URL names the site by its host (the test site answers any host).
    const abs = await purge({ urls: ['https://img.example.com/other.jpg'] });
    assert.ok(((await abs.json()) as any).purged >= 1);
    assert.equal(await status('/other.jpg?w=50'), 'MISS');
  });

  test('prefixes and tags (Surrogate-Key, Cache-Tag)', async () => {
    for (const p of ['/products/1.jpg', '/products/2.jpg', '/other.jpg', '/tagged.jpg', '/tagged2.jpg']) await status(`${p}?w=40`);
    await purge({ prefixes: ['/products/'] });
    assert.equal(await status('/products/1.jpg?w=40'), 'MISS');
    assert.equal(await status('/products/2.jpg?w=40'), 'MISS');
    assert.equal(await status('/other.jpg?w=40'), 'HIT');
    await purge({ tags: ['sku-1'] });
    assert.equal(await status('/tagged.jpg?w=40'), 'MISS');
    assert.equal(await status('/tagged2.jpg?w=40'), 'HIT');
    await purge({ tags: ['cat-5'] });
    assert.equal(await status('/tagged.jpg?w=40'), 'MISS');
    assert.equal(await status('/tagged2.jpg?w=40'), 'MISS');
  });

  test('all: true empties the cache', async () => {
    await status('/other.jpg?w=33');
    const json = (await (await purge({ all: true })).json()) as any;
    assert.ok(json.purged >= 1);
    assert.equal(edge.disk.stats().entries, 0);
    assert.equal(await status('/other.jpg?w=33'), 'MISS');
  });

  test('a remembered origin 404 is purgeable', async () => {
    assert.equal((await fetch(`${edge.url}/late.jpg?w=10`)).status, 404);
    origin.set('/late.jpg', { body: await photoJpeg({ width: 50, height: 50 }), headers: { 'content-type': 'image/jpeg' } });
    assert.equal((await fetch(`${edge.url}/late.jpg?w=10`)).status, 404, 'still remembered');
    await purge({ urls: ['/late.jpg'] });
    assert.equal((await fetch(`${edge.url}/late.jpg?w=10`)).status, 200);
  });

  test('a purge that lands while a miss is in flight is not undone by that miss', async () => {
    origin.set('/race.jpg', { body: await photoJpeg({ width: 120, height: 90 }), headers: { 'content-type': 'image/jpeg' }, delayMs: 600 });
    const inflight = fetch(`${edge.url}/race.jpg?w=60`).then((r) => r.arrayBuffer());
    await new Promise((r) => setTimeout(r, 200));
    await purge({ urls: ['/race.jpg'] });
    origin.set('/race.jpg', { body: await photoJpeg({ width: 240, height: 90 }), headers: { 'content-type': 'image/jpeg' } });
    await inflight;
    const after = await fetch(`${edge.url}/race.jpg?w=60`);
    assert.equal(after.headers.get('x-cache'), 'MISS', 'the pre-purge result was not stored');
    await after.arrayBuffer();
  });

  test('on a site with language variants, a URL purge removes every language', async () => {
    const dir = await tempDir();
    const multi = await startEdge(testConfig(origin.url, dir, { purge: { token: TOKEN }, site: { languages: ['en', 'de'] } }));
    try {
      for (const lang of ['en', 'de']) await (await fetch(`${multi.url}/a.jpg?w=40`, { headers: { 'accept-language': lang } })).arrayBuffer();
      const res = await fetch(`${multi.url}/_edge/purge`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ urls: ['/a.jpg'] }) });
      assert.ok(((await res.json()) as any).purged >= 2);
      for (const lang of ['en', 'de']) {
        const again = await fetch(`${multi.url}/a.jpg?w=40`, { headers: { 'accept-language': lang } });
        assert.equal(again.headers.get('x-cache'), 'MISS', lang);
        await again.arrayBuffer();
      }
    } finally {
      await multi.close();
      await removeDir(dir);
    }
  });

  test('a bad body is a 400 naming the field', async () => {
    for (const [body, param] of [[{}, 'body'], [{ urls: 'x' }, 'urls'], [{ all: 'yes' }, 'all'], [{ nope: 1 }, 'body']] as const) {
      const res = await purge(body);
      assert.equal(res.status, 400, JSON.stringify(body));
      const json = (await res.json()) as any;
      assert.equal(json.error.code, 'EDGE_BAD_PARAM');
      assert.equal(json.error.param, param, JSON.stringify(body));
    }
  });
});
