import assert from 'node:assert/strict';
import { readdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import sharp from 'sharp';
import { photoJpeg } from '../helpers/images.js';
import { TestOrigin } from '../helpers/origin.js';
import { removeDir, startEdge, tempDir, testConfig, type RunningEdge } from '../helpers/edge.js';

const CHROME_ACCEPT = 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8';

const keepAlive = new http.Agent({ keepAlive: true });

/** A raw GET that reports the status, headers and how the response ended. */
function rawGet(url: string, path: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; ended: 'complete' | 'aborted' }> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}${path}`, { agent: keepAlive }, (res) => {
      res.on('data', () => {});
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, ended: 'complete' }));
      res.on('aborted', () => resolve({ status: res.statusCode!, headers: res.headers, ended: 'aborted' }));
      res.on('error', () => resolve({ status: res.statusCode!, headers: res.headers, ended: 'aborted' }));
    });
    req.on('error', reject);
  });
}

describe('robustness: failures around the edge never hang or fail a good response', () => {
  let origin: TestOrigin;
  let edge: RunningEdge;
  const dirs: string[] = [];

  before(async () => {
    origin = await TestOrigin.start();
    origin.set('/photo.jpg', { body: await photoJpeg({ width: 600, height: 400, quality: 60 }), headers: { 'content-type': 'image/jpeg' } });
    // Stored at a high quality and as grainy as a photograph, so WebP wins auto=format (a grainy
    // q60 JPEG can be smaller than its WebP).
    origin.set('/camera.jpg', { body: await photoJpeg({ width: 600, height: 400, quality: 92, noise: 8 }), headers: { 'content-type': 'image/jpeg' } });
    origin.set('/octet.jpg', { body: await photoJpeg({ width: 300, height: 200, quality: 50 }), headers: { 'content-type': 'binary/octet-stream' } });
    origin.set('/page.css', { body: 'a { color: blue }\n', headers: { 'content-type': 'text/css' } });
    origin.set('/dies.css', { body: Buffer.alloc(100_000, 97), headers: { 'content-type': 'text/css' }, resetAfterBytes: 1000 });
    origin.set('/slow.css', { body: 'late', headers: { 'content-type': 'text/css' }, delayMs: 1500 });
    origin.set('/slow.jpg', { body: await photoJpeg({ width: 300, height: 200 }), headers: { 'content-type': 'image/jpeg' }, delayMs: 400 });
    const cacheDir = await tempDir();
    dirs.push(cacheDir);
    edge = await startEdge(testConfig(origin.url, cacheDir, { origin: { headersTimeoutMs: 500 }, site: { defaults: 'auto=format' } }));
  });
  after(async () => {
    keepAlive.destroy();
    await edge.close();
    await origin.close();
    await Promise.all(dirs.map(removeDir));
  });

  test('passthrough keeps the client connection alive', async () => {
    const res = await rawGet(edge.url, '/page.css');
    assert.equal(res.status, 200);
    assert.notEqual(res.headers.connection, 'close');
  });

  test('an origin that dies mid-body ends the client response instead of leaving it hanging', async () => {
    const started = Date.now();
    const res = await rawGet(edge.url, '/dies.css');
    assert.equal(res.ended, 'aborted');
    assert.ok(Date.now() - started < 3000);
  });

  test('a slow origin on passthrough answers 504 EDGE_ORIGIN_TIMEOUT', async () => {
    const res = await fetch(`${edge.url}/slow.css`);
    assert.equal(res.status, 504);
    assert.equal(((await res.json()) as any).error.code, 'EDGE_ORIGIN_TIMEOUT');
    assert.equal(res.headers.get('cache-control'), 'no-store');
  });

  test('a URL that cannot be parsed is a 400, not a 500', async () => {
    const res = await new Promise<http.IncomingMessage>((resolve) => http.get({ host: '127.0.0.1', port: new URL(edge.url).port, path: '//' }, resolve));
    assert.equal(res.statusCode, 400);
  });

  test('site defaults apply to a bare image URL and never override what the URL asks for', async () => {
    // (AVIF is made in the background: the first answer is WebP.)
    const bare = await fetch(`${edge.url}/camera.jpg`, { headers: { accept: CHROME_ACCEPT } });
    assert.equal(bare.headers.get('content-type'), 'image/webp');
    await bare.arrayBuffer();
    const asked = await fetch(`${edge.url}/camera.jpg?fm=png&w=100`, { headers: { accept: CHROME_ACCEPT } });
    assert.equal(asked.headers.get('content-type'), 'image/png');
    await asked.arrayBuffer();
  });

  test('never larger: when re-encoding grows the file, the original is served under its real type', async () => {
    const res = await fetch(`${edge.url}/octet.jpg?q=100`);
    const body = Buffer.from(await res.arrayBuffer());
    assert.deepEqual(body, origin.routes.get('/octet.jpg')!.body);
    assert.equal(res.headers.get('content-type'), 'image/jpeg');
  });

  test('a client that leaves early is counted as 499', async () => {
    await fetch(`${edge.url}/slow.jpg?w=50`, { signal: AbortSignal.timeout(100) }).catch(() => undefined);
    await sleep(600);
    const metrics = await edge.edge.metrics.registry.metrics();
    assert.match(metrics, /imgedge_requests_total\{status="499",cache="MISS"\} 1/);
  });

  test('file: passthrough does not leak file handles', async () => {
    const root = await tempDir();
    dirs.push(root);
    await writeFile(`${root}/a.css`, 'b { x: y }');
    const fileEdge = await startEdge(testConfig(`file://${root}`, await tempDir()));
    try {
      const fds = async () => (await readdir('/proc/self/fd')).length;
      await (await fetch(`${fileEdge.url}/a.css`)).text();
      const before = await fds();
      for (let i = 0; i < 200; i++) await (await fetch(`${fileEdge.url}/a.css`)).text();
      await sleep(50);
      assert.ok((await fds()) - before < 20, `${(await fds()) - before} more open files after 200 requests`);
    } finally {
      await fileEdge.close();
    }
  });

  test('a full transform queue answers 503 with Retry-After instead of growing', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const busy = await startEdge(testConfig(origin.url, dir, { limits: { transformConcurrency: 1, transformQueueLength: 1 } }));
    try {
      const responses = await Promise.all(Array.from({ length: 6 }, (_, i) => fetch(`${busy.url}/slow.jpg?w=${40 + i}`)));
      const refused = responses.filter((r) => r.status === 503);
      assert.ok(refused.length >= 3, `${refused.length} of 6 refused`);
      assert.equal(refused[0]!.headers.get('retry-after'), '1');
      assert.equal(((await refused[0]!.json()) as any).error.code, 'EDGE_BUSY');
      assert.ok(responses.some((r) => r.status === 200));
      await Promise.all(responses.map((r) => r.arrayBuffer().catch(() => undefined)));
    } finally {
      await busy.close();
    }
  });

  test('a failed cache write is logged and counted; the image is still served', async () => {
    const cacheDir = await tempDir();
    dirs.push(cacheDir);
    const broken = await startEdge(testConfig(origin.url, cacheDir));
    try {
      // The cache folder turns into a plain file: every write now fails.
      await rm(cacheDir, { recursive: true, force: true });
      await writeFile(cacheDir, 'not a folder');
      const res = await fetch(`${broken.url}/photo.jpg?w=120`);
      assert.equal(res.status, 200);
      assert.equal((await sharp(Buffer.from(await res.arrayBuffer())).metadata()).width, 120);
      assert.match(await broken.edge.metrics.registry.metrics(), /imgedge_cache_write_errors_total [1-9]/);
      assert.equal((await fetch(`${broken.url}/_edge/ready`)).status, 503);
    } finally {
      await broken.close();
      await rm(cacheDir, { force: true });
    }
  });
});
