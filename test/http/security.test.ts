import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import imgixCore from '@imgix/js-core';
import { photoJpeg } from '../helpers/images.js';
import { TestOrigin } from '../helpers/origin.js';
import { removeDir, startEdge, tempDir, testConfig, type RunningEdge } from '../helpers/edge.js';
import { signPath } from '../../src/http/signature.js';

const IMGIX_TOKEN = 'imgix-secure-url-token-123456';
const HMAC_KEY = 'hmac-key-abcdefghijklmnopqrstuvwxyz';
// The package's CommonJS build exports the class itself; its types claim a default export.
const ImgixClient = imgixCore as unknown as new (o: Record<string, unknown>) => { buildURL(path: string, params: Record<string, unknown>): string };

describe('signed URLs and variant bounds through the edge', () => {
  let origin: TestOrigin;
  let edge: RunningEdge;
  let cacheDir: string;

  before(async () => {
    origin = await TestOrigin.start();
    origin.set('/products/shoe%201.jpg', { body: await photoJpeg({ width: 400, height: 300 }), headers: { 'content-type': 'image/jpeg' } });
    origin.set('/page.html', { body: '<p>hi</p>', headers: { 'content-type': 'text/html' } });
    cacheDir = await tempDir();
    edge = await startEdge(
      testConfig(origin.url, cacheDir, {
        site: {
          signing: { keys: [{ key: IMGIX_TOKEN, scheme: 'imgix-md5' }, { key: HMAC_KEY, scheme: 'hmac-sha256' }] },
          bounds: { widths: [100, 200, 400], qualities: [50, 80], maxVariantsPerSource: 3 },
        },
      }),
    );
  });
  after(async () => {
    await edge.close();
    await origin.close();
    await removeDir(cacheDir);
  });

  const pathOf = (url: string) => url.replace(/^https?:\/\/[^/]+/, '');

  test("URLs signed by imgix's own JavaScript client are served; unsigned or tampered ones are 403", async () => {
    const client = new ImgixClient({ domain: 'img.example.com', secureURLToken: IMGIX_TOKEN, includeLibraryParam: false });
    const signed = pathOf(client.buildURL('/products/shoe 1.jpg', { w: 200, auto: 'format' }));
    const ok = await fetch(`${edge.url}${signed}`);
    assert.equal(ok.status, 200);
    await ok.arrayBuffer();
    for (const bad of [signed.replace(/&s=[0-9a-f]+$/, ''), signed.replace('w=200', 'w=400'), `${signed}&w=400`]) {
      const res = await fetch(`${edge.url}${bad}`);
      assert.equal(res.status, 403, bad);
      assert.equal(((await res.json()) as any).error.code, 'EDGE_BAD_SIGNATURE');
    }
    // HMAC-SHA256 keys work side by side (rotation); a page needs no signature.
    const hmac = await fetch(`${edge.url}${signPath('/products/shoe%201.jpg?w=100', { key: HMAC_KEY, scheme: 'hmac-sha256' })}`);
    assert.equal(hmac.status, 200);
    await hmac.arrayBuffer();
    assert.equal((await fetch(`${edge.url}/page.html`)).status, 200);
    // An image asked for without parameters (passed through) needs its signature too.
    assert.equal((await fetch(`${edge.url}/products/shoe%201.jpg`)).status, 403);
  });

  test('widths and qualities outside the allow-lists are 400; a source gets at most 3 new variants', async () => {
    const sign = (q: string) => signPath(`/products/shoe%201.jpg?${q}`, { key: HMAC_KEY, scheme: 'hmac-sha256' });
    const w = await fetch(`${edge.url}${sign('w=150')}`);
    assert.equal(w.status, 400);
    assert.equal(((await w.json()) as any).error.param, 'w');
    assert.equal((await fetch(`${edge.url}${sign('w=200&q=70')}`)).status, 400);
    // The source already has two variants from the previous test (w=200&auto=format, w=100): one more fits.
    assert.equal((await fetch(`${edge.url}${sign('w=200')}`)).status, 200);
    const over = await fetch(`${edge.url}${sign('w=400')}`);
    assert.equal(over.status, 429);
    assert.equal(((await over.json()) as any).error.code, 'EDGE_TOO_MANY_VARIANTS');
    // Variants it already has are still served.
    assert.equal((await fetch(`${edge.url}${sign('w=200')}`)).status, 200);
  });
});
