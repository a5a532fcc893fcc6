import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { photoJpeg } from '../helpers/images.js';
import { TestOrigin } from '../helpers/origin.js';
import { removeDir, startEdge, tempDir, testConfig, type RunningEdge } from '../helpers/edge.js';

const TOKEN = 'fast-path-token';

async function sample(edge: RunningEdge, series: string): Promise<number> {
  const text = await edge.edge.metrics.registry.metrics();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

describe('repeat requests (the hit fast path)', () => {
  let origin: TestOrigin;
  let edge: RunningEdge;
  let cacheDir: string;
  const get = async (path: string, accept: string) => {
    const res = await fetch(`${edge.url}${path}`, { headers: { accept } });
    return { status: res.status, cache: res.headers.get('x-cache'), type: res.headers.get('content-type'), body: Buffer.from(await res.arrayBuffer()) };
  };

  before(async () => {
    origin = await TestOrigin.start();
    origin.set('/fast.jpg', { body: await photoJpeg({ width: 300, height: 200 }), headers: { 'content-type': 'image/jpeg' } });
    cacheDir = await tempDir();
    edge = await startEdge(testConfig(origin.url, cacheDir, { purge: { token: TOKEN } }));
  });
  after(async () => {
    await edge.close();
    await origin.close();
    await removeDir(cacheDir);
  });

  test('answers a repeat from memory with the same bytes, keeps Accept apart, and sees a purge', async () => {
    const path = '/fast.jpg?w=120&auto=format';
    const first = await get(path, 'image/webp,*/*');
    assert.equal(first.cache, 'MISS');
    assert.equal(first.type, 'image/webp');
    const memoryHits = await sample(edge, 'imgedge_cache_hits_total{tier="memory"}');
    const repeat = await get(path, 'image/webp,*/*');
    assert.equal(repeat.cache, 'HIT');
    assert.deepEqual(repeat.body, first.body);
    assert.equal(await sample(edge, 'imgedge_cache_hits_total{tier="memory"}'), memoryHits + 1);

    // Same URL, a browser without WebP: its own variant, not the remembered one.
    const legacy = await get(path, 'image/jpeg');
    assert.equal(legacy.cache, 'MISS');
    assert.equal(legacy.type, 'image/jpeg');

    const purged = await fetch(`${edge.url}/_edge/purge`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ urls: ['/fast.jpg'] }),
    });
    assert.equal(purged.status, 200);
    const afterPurge = await get(path, 'image/webp,*/*');
    assert.equal(afterPurge.cache, 'MISS');
    assert.equal(origin.count('/fast.jpg'), 2);
  });

  test('a request that failed is not remembered: the same bad URL fails again', async () => {
    const bad = await get('/fast.jpg?w=-5', 'image/webp');
    assert.equal(bad.status, 400);
    const again = await get('/fast.jpg?w=-5', 'image/webp');
    assert.equal(again.status, 400);
  });
});
