import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, readFile, stat, symlink, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import sharp from 'sharp';
import { photoJpeg } from '../helpers/images.js';
import { TestOrigin } from '../helpers/origin.js';
import { removeDir, spawnEdge, startEdge, tempDir, testConfig } from '../helpers/edge.js';

async function entryFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name.endsWith('.entry')) out.push(path.join(entry.parentPath ?? (entry as any).path, entry.name));
  }
  return out;
}

async function diskBytes(dir: string): Promise<number> {
  let total = 0;
  for (const f of await entryFiles(dir)) total += (await stat(f)).size;
  return total;
}

const errorCode = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code;

describe('cache lifecycle and limits', () => {
  let origin: TestOrigin;
  const dirs: string[] = [];
  const dir = async () => {
    const d = await tempDir();
    dirs.push(d);
    return d;
  };

  before(async () => {
    origin = await TestOrigin.start();
    origin.set('/photo.jpg', { body: await photoJpeg({ width: 800, height: 600 }), headers: { 'content-type': 'image/jpeg' } });
  });
  after(async () => {
    await origin.close();
    await Promise.all(dirs.map(removeDir));
  });

  test('the origin max-age shortens the TTL, and an expired entry is fetched and transformed again', async () => {
    origin.set('/short.jpg', { body: await photoJpeg({ width: 300, height: 200 }), headers: { 'content-type': 'image/jpeg', 'cache-control': 'max-age=1' } });
    // No stale window: expiry alone decides.
    const edge = await startEdge(testConfig(origin.url, await dir(), { site: { stale: { whileRevalidate: 0, ifError: 0 } } }));
    try {
      const first = await fetch(`${edge.url}/short.jpg?w=100`);
      assert.equal(first.headers.get('cache-control'), 'public, max-age=1');
      await first.arrayBuffer();
      const hit = await fetch(`${edge.url}/short.jpg?w=100`);
      assert.equal(hit.headers.get('x-cache'), 'HIT');
      await hit.arrayBuffer();
      await sleep(1200);
      const expired = await fetch(`${edge.url}/short.jpg?w=100`);
      assert.equal(expired.headers.get('x-cache'), 'MISS');
      await expired.arrayBuffer();
      assert.equal(origin.count('/short.jpg'), 2);
    } finally {
      await edge.close();
    }
  });

  test('the site TTL applies when the origin says nothing', async () => {
    const edge = await startEdge(testConfig(origin.url, await dir(), { site: { ttl: 120 } }));
    try {
      const res = await fetch(`${edge.url}/photo.jpg?w=64`);
      assert.equal(res.headers.get('cache-control'), 'public, max-age=120');
      await res.arrayBuffer();
    } finally {
      await edge.close();
    }
  });

  test('a restart keeps the cache: hits with no origin request', async () => {
    const cacheDir = await dir();
    const config = testConfig(origin.url, cacheDir);
    const first = await startEdge(config);
    const body = Buffer.from(await (await fetch(`${first.url}/photo.jpg?w=111`)).arrayBuffer());
    await first.close();
    const count = origin.count('/photo.jpg');
    const second = await startEdge(config);
    try {
      const res = await fetch(`${second.url}/photo.jpg?w=111`);
      assert.equal(res.headers.get('x-cache'), 'HIT');
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), body);
      assert.equal(origin.count('/photo.jpg'), count);
    } finally {
      await second.close();
    }
  });

  test('the byte budget holds: old variants are evicted, the disk stays under cache.maxBytes', async () => {
    const cacheDir = await dir();
    const maxBytes = 60_000;
    const edge = await startEdge(testConfig(origin.url, cacheDir, { cache: { maxBytes, memoryBytes: 0 } }));
    try {
      for (let w = 200; w < 400; w += 10) await (await fetch(`${edge.url}/photo.jpg?w=${w}&q=90`)).arrayBuffer();
      assert.ok((await diskBytes(cacheDir)) <= maxBytes, `disk holds ${await diskBytes(cacheDir)} bytes`);
      assert.ok(edge.disk.stats().bytes <= maxBytes);
      // The newest variant is still there; the oldest is gone.
      assert.equal((await fetch(`${edge.url}/photo.jpg?w=390&q=90`)).headers.get('x-cache'), 'HIT');
      assert.equal((await fetch(`${edge.url}/photo.jpg?w=200&q=90`)).headers.get('x-cache'), 'MISS');
    } finally {
      await edge.close();
    }
  });

  test('origin limits: down → 502, slow → 504, too large while streaming → 413', async () => {
    const slow = await TestOrigin.start();
    slow.set('/slow.jpg', { body: await photoJpeg({ width: 100, height: 100 }), headers: { 'content-type': 'image/jpeg' }, delayMs: 1500 });
    // A real JPEG header, then more bytes than the limit: refused while it streams, by size.
    const hugeBody = Buffer.concat([await photoJpeg({ width: 100, height: 100 }), Buffer.alloc(3 * 1024 * 1024, 7)]);
    slow.set('/huge.jpg', { body: hugeBody, headers: { 'content-type': 'image/jpeg' }, chunked: true });
    const edge = await startEdge(testConfig(slow.url, await dir(), { origin: { headersTimeoutMs: 300, maxSourceBytes: 1024 * 1024 } }));
    const deadOrigin = await TestOrigin.start();
    const deadUrl = deadOrigin.url;
    await deadOrigin.close();
    const edgeDown = await startEdge(testConfig(deadUrl, await dir()));
    try {
      const timedOut = await fetch(`${edge.url}/slow.jpg?w=10`);
      assert.equal(timedOut.status, 504);
      assert.equal(await errorCode(timedOut), 'EDGE_ORIGIN_TIMEOUT');
      const huge = await fetch(`${edge.url}/huge.jpg?w=10`);
      assert.equal(huge.status, 413);
      assert.equal(await errorCode(huge), 'EDGE_ORIGIN_TOO_LARGE');
      const down = await fetch(`${edgeDown.url}/x.jpg?w=10`);
      assert.equal(down.status, 502);
      assert.equal(await errorCode(down), 'EDGE_ORIGIN_UNREACHABLE');
      const downPassthrough = await fetch(`${edgeDown.url}/page.html`);
      assert.equal(downPassthrough.status, 502);
    } finally {
      await edge.close();
      await edgeDown.close();
      await slow.close();
    }
  });

  test('source pixels are checked before decoding; output dimensions are capped', async () => {
    const edge = await startEdge(testConfig(origin.url, await dir(), { limits: { maxSourcePixels: 100_000, maxOutputDimension: 500 } }));
    try {
      const big = await fetch(`${edge.url}/photo.jpg?w=100`);
      assert.equal(big.status, 422);
      assert.equal(await errorCode(big), 'EDGE_IMAGE_TOO_LARGE');
    } finally {
      await edge.close();
    }
    const capped = await startEdge(testConfig(origin.url, await dir(), { limits: { maxOutputDimension: 500 } }));
    try {
      const meta = await sharp(Buffer.from(await (await fetch(`${capped.url}/photo.jpg?w=2000`)).arrayBuffer())).metadata();
      assert.equal(meta.width, 500);
    } finally {
      await capped.close();
    }
  });

  test('onError "original" serves the original bytes of an undecodable source', async () => {
    const broken = (await photoJpeg({ width: 400, height: 300 })).subarray(0, 700);
    origin.set('/broken.jpg', { body: broken, headers: { 'content-type': 'image/jpeg' } });
    const edge = await startEdge(testConfig(origin.url, await dir(), { site: { onError: 'original' } }));
    try {
      const res = await fetch(`${edge.url}/broken.jpg?w=100`);
      assert.equal(res.status, 200);
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), broken);
    } finally {
      await edge.close();
    }
  });

  test('a file: origin serves its folder and nothing outside it, symlinks included', async () => {
    const root = await dir();
    const outside = await dir();
    await mkdir(path.join(root, 'img'));
    await writeFile(path.join(root, 'img/a.jpg'), await photoJpeg({ width: 200, height: 100 }));
    await writeFile(path.join(outside, 'secret.txt'), 'secret');
    await symlink(path.join(outside, 'secret.txt'), path.join(root, 'link.txt'));
    const edge = await startEdge(testConfig(`file://${root}`, await dir()));
    try {
      const img = await fetch(`${edge.url}/img/a.jpg?w=50`);
      assert.equal((await sharp(Buffer.from(await img.arrayBuffer())).metadata()).width, 50);
      const escapes = [`/../${path.basename(outside)}/secret.txt`, `/%2e%2e/${path.basename(outside)}/secret.txt`, `/img/..%2f..%2f${path.basename(outside)}%2fsecret.txt`, '/link.txt'];
      for (const p of escapes) {
        const res = await fetch(`${edge.url}${p}`);
        // 404, or 400 for an encoded slash (refused before any origin sees it).
        assert.ok(res.status === 404 || res.status === 400, `${p}: ${res.status}`);
        assert.doesNotMatch(await res.text(), /secret/);
      }
    } finally {
      await edge.close();
    }
  });

  test('sites are chosen by Host', async () => {
    const other = await TestOrigin.start();
    other.set('/photo.jpg', { body: await photoJpeg({ width: 640, height: 640 }), headers: { 'content-type': 'image/jpeg' } });
    const cfg = testConfig(origin.url, await dir());
    cfg.sites.push({ ...cfg.sites[0]!, name: 'other', hosts: ['img.other.test'], origin: other.url });
    const edge = await startEdge(cfg);
    try {
      const a = await sharp(Buffer.from(await (await fetch(`${edge.url}/photo.jpg?w=100`)).arrayBuffer())).metadata();
      const b = await new Promise<Buffer>((resolve, reject) => {
        // fetch() may not set Host; use node:http for that.
        import('node:http').then(({ get }) =>
          get(`${edge.url}/photo.jpg?w=100`, { headers: { host: 'img.other.test' } }, (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c) => chunks.push(c)).on('end', () => resolve(Buffer.concat(chunks))).on('error', reject);
          }),
        );
      });
      assert.equal(a.height, 75);
      assert.equal((await sharp(b).metadata()).height, 100);
      assert.equal(other.count('/photo.jpg'), 1);
    } finally {
      await edge.close();
      await other.close();
    }
  });

  test('a process killed mid-write leaves nothing half-written that is ever served', async () => {
    const cacheDir = await dir();
    const big = await photoJpeg({ width: 1600, height: 1000, quality: 95 });
    origin.set('/big.jpg', { body: big, headers: { 'content-type': 'image/jpeg' } });
    const config = { server: { host: '127.0.0.1', port: 0 }, cache: { dir: cacheDir }, sites: [{ name: 'test', origin: origin.url }] };
    const node = await spawnEdge(config, cacheDir);
    const urls = Array.from({ length: 3000 }, (_, i) => `/big.jpg?w=${300 + (i % 1200)}&q=${95 - Math.floor(i / 1200)}`);
    // Four clients keep asking for new variants, so the kill lands while some are being written.
    let next = 0;
    let killed = false;
    const client = async () => {
      while (!killed && next < urls.length) {
        const u = urls[next++]!;
        await fetch(`${node.url}${u}`).then((r) => r.arrayBuffer()).catch(() => undefined);
      }
    };
    const clients = Promise.all([client(), client(), client(), client()]);
    await sleep(1500);
    killed = true;
    await node.stop('SIGKILL');
    await clients;
    assert.ok(next < urls.length, 'the kill came before every variant was made');

    // Every entry left on disk is whole: its header's size matches the body it carries.
    for (const file of await entryFiles(cacheDir)) {
      const bytes = await readFile(file);
      assert.equal(bytes.subarray(0, 8).toString(), 'IMGEDGE1', file);
      const headerLength = bytes.readUInt32BE(8);
      const meta = JSON.parse(bytes.subarray(12, 12 + headerLength).toString());
      assert.equal(bytes.length - 12 - headerLength, meta.size, file);
    }
    const restarted = await spawnEdge(config, cacheDir);
    try {
      let hits = 0;
      for (const u of urls.slice(0, next + 4)) {
        const res = await fetch(`${restarted.url}${u}`);
        assert.equal(res.status, 200);
        const body = Buffer.from(await res.arrayBuffer());
        if (res.headers.get('x-cache') === 'HIT') hits++;
        const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 32)}"`;
        assert.equal(res.headers.get('etag'), etag, u);
        const meta = await sharp(body).metadata();
        assert.equal(meta.width, Number(/w=(\d+)/.exec(u)![1]));
        await sharp(body).raw().toBuffer(); // decodes whole: not truncated
      }
      assert.ok(hits > 0, 'some variants were finished before the kill and are served from the cache');
    } finally {
      await restarted.stop();
    }
  });

  test('SIGTERM lets an in-flight request finish, then the process exits 0', async () => {
    const cacheDir = await dir();
    origin.set('/slow-origin.jpg', { body: await photoJpeg({ width: 300, height: 200 }), headers: { 'content-type': 'image/jpeg' }, delayMs: 800 });
    const node = await spawnEdge({ server: { host: '127.0.0.1', port: 0 }, cache: { dir: cacheDir }, sites: [{ name: 'test', origin: origin.url }] }, cacheDir);
    const pending = fetch(`${node.url}/slow-origin.jpg?w=100`);
    await sleep(200);
    const exited = node.stop('SIGTERM');
    const res = await pending;
    assert.equal(res.status, 200);
    assert.equal((await sharp(Buffer.from(await res.arrayBuffer())).metadata()).width, 100);
    assert.equal(await exited, 0);
  });
});
