import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { photoJpeg, quadrantPng } from '../helpers/images.js';
import { TestOrigin } from '../helpers/origin.js';
import { removeDir, startEdge, tempDir, testConfig, type RunningEdge } from '../helpers/edge.js';

async function counter(edge: RunningEdge, name: string): Promise<number> {
  const text = await edge.edge.metrics.registry.metrics();
  return [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)$`, 'gm'))].reduce((sum, m) => sum + Number(m[1]), 0);
}

describe('freshness: revalidation, stale serving, negative caching, language variants', () => {
  let origin: TestOrigin;
  const dirs: string[] = [];
  const edges: RunningEdge[] = [];
  const edgeWith = async (site: Record<string, unknown>) => {
    const dir = await tempDir();
    dirs.push(dir);
    const edge = await startEdge(testConfig(origin.url, dir, { site }));
    edges.push(edge);
    return edge;
  };

  before(async () => {
    origin = await TestOrigin.start();
  });
  after(async () => {
    await Promise.all(edges.map((e) => e.close()));
    await origin.close();
    await Promise.all(dirs.map(removeDir));
  });

  test('an expired source is revalidated: the origin 304 renews the variant without a download or a transform', async () => {
    origin.set('/reval.jpg', { body: await photoJpeg({ width: 400, height: 300 }), headers: { 'content-type': 'image/jpeg', etag: '"v1"', 'cache-control': 'max-age=1' } });
    const edge = await edgeWith({ stale: { whileRevalidate: 0, ifError: 0 } });
    const first = await fetch(`${edge.url}/reval.jpg?w=120`);
    assert.equal(first.headers.get('x-cache'), 'MISS');
    const body = Buffer.from(await first.arrayBuffer());
    const transforms = await counter(edge, 'imgedge_transform_seconds_count');
    await sleep(1100);
    const again = await fetch(`${edge.url}/reval.jpg?w=120`);
    assert.equal(again.status, 200);
    assert.equal(again.headers.get('x-cache'), 'HIT');
    assert.deepEqual(Buffer.from(await again.arrayBuffer()), body);
    assert.equal(origin.lastHeaders.get('/reval.jpg')?.['if-none-match'], '"v1"');
    assert.equal(origin.notModified, 1);
    assert.equal(await counter(edge, 'imgedge_origin_not_modified_total'), 1);
    assert.equal(await counter(edge, 'imgedge_variants_renewed_total'), 1);
    assert.equal(await counter(edge, 'imgedge_transform_seconds_count'), transforms);
    // Renewed for a full lifetime: a hit without asking the origin.
    const hit = await fetch(`${edge.url}/reval.jpg?w=120`);
    assert.equal(hit.headers.get('x-cache'), 'HIT');
    await hit.arrayBuffer();
    assert.equal(origin.count('/reval.jpg'), 2);
  });

  test('stale-while-revalidate: an expired entry is served as STALE at once and refreshed in the background', async () => {
    origin.set('/swr.jpg', { body: await photoJpeg({ width: 300, height: 200 }), headers: { 'content-type': 'image/jpeg', 'cache-control': 'max-age=1' } });
    const edge = await edgeWith({ stale: { whileRevalidate: 60, ifError: 0 } });
    await (await fetch(`${edge.url}/swr.jpg?w=100`)).arrayBuffer();
    await sleep(1100);
    origin.set('/swr.jpg', { body: await quadrantPng({ width: 300, height: 200 }), headers: { 'content-type': 'image/png', 'cache-control': 'max-age=60' } });
    const stale = await fetch(`${edge.url}/swr.jpg?w=100`);
    assert.equal(stale.headers.get('x-cache'), 'STALE');
    assert.equal(stale.headers.get('content-type'), 'image/jpeg');
    await stale.arrayBuffer();
    await edge.edge.background.idle();
    const fresh = await fetch(`${edge.url}/swr.jpg?w=100`);
    assert.equal(fresh.headers.get('x-cache'), 'HIT');
    assert.equal(fresh.headers.get('content-type'), 'image/png');
    await fresh.arrayBuffer();
  });

  test('stale-if-error: with the origin down, the expired copy is served as STALE', async () => {
    const flaky = await TestOrigin.start();
    flaky.set('/down.jpg', { body: await photoJpeg({ width: 300, height: 200 }), headers: { 'content-type': 'image/jpeg', 'cache-control': 'max-age=1' } });
    const dir = await tempDir();
    dirs.push(dir);
    const edge = await startEdge(testConfig(flaky.url, dir, { site: { stale: { whileRevalidate: 0, ifError: 3600 } } }));
    edges.push(edge);
    const body = Buffer.from(await (await fetch(`${edge.url}/down.jpg?w=100`)).arrayBuffer());
    await flaky.close();
    await sleep(1100);
    const res = await fetch(`${edge.url}/down.jpg?w=100`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-cache'), 'STALE');
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), body);
    // Without a stale copy, the outage is an error.
    assert.equal((await fetch(`${edge.url}/down.jpg?w=101`)).status, 502);
  });

  test('a file: origin answers 304 only for the very date the copy carries: a file put back with an older date is new', async () => {
    const root = await tempDir();
    dirs.push(root);
    await writeFile(path.join(root, 'x.jpg'), await photoJpeg({ width: 400, height: 300 }));
    const edge = await startEdge(testConfig(`file://${root}`, await tempDir(), { site: { ttl: 1, stale: { whileRevalidate: 0, ifError: 0 } } }));
    edges.push(edge);
    const width = async () => (await sharp(Buffer.from(await (await fetch(`${edge.url}/x.jpg?fm=png`)).arrayBuffer())).metadata()).width;
    assert.equal(await width(), 400);
    await writeFile(path.join(root, 'x.jpg'), await photoJpeg({ width: 200, height: 300 }));
    const old = new Date('2020-01-01T00:00:00Z');
    await utimes(path.join(root, 'x.jpg'), old, old);
    await sleep(1100);
    assert.equal(await width(), 200);
  });

  test('an origin 404 is remembered for negativeTtl seconds', async () => {
    const edge = await edgeWith({ negativeTtl: 1 });
    for (let i = 0; i < 3; i++) assert.equal((await fetch(`${edge.url}/nothing-here.jpg?w=10`)).status, 404);
    assert.equal(origin.count('/nothing-here.jpg'), 1);
    await sleep(1100);
    assert.equal((await fetch(`${edge.url}/nothing-here.jpg?w=10`)).status, 404);
    assert.equal(origin.count('/nothing-here.jpg'), 2);
  });

  test('language variants: the best Accept-Language match goes to the origin, keys the cache and is in Vary', async () => {
    const en = await sharp({ create: { width: 40, height: 20, channels: 3, background: '#d00' } }).png().toBuffer();
    const de = await sharp({ create: { width: 40, height: 20, channels: 3, background: '#00d' } }).png().toBuffer();
    origin.set('/banner.png', { body: en, byLanguage: { en, de }, headers: { 'content-type': 'image/png' } });
    const edge = await edgeWith({ languages: ['en', 'de'] });
    const red = async (res: Response) => (await sharp(Buffer.from(await res.arrayBuffer())).raw().toBuffer())[0]!;
    const german = await fetch(`${edge.url}/banner.png?w=20`, { headers: { 'accept-language': 'de-CH,de;q=0.9,en;q=0.5' } });
    assert.equal(german.headers.get('vary'), 'Accept, Accept-Language');
    assert.ok((await red(german)) < 50, 'German banner is blue');
    assert.equal(origin.lastHeaders.get('/banner.png')?.['accept-language'], 'de');
    const english = await fetch(`${edge.url}/banner.png?w=20`, { headers: { 'accept-language': 'en-US,en;q=0.9' } });
    assert.ok((await red(english)) > 200, 'English banner is red');
    const french = await fetch(`${edge.url}/banner.png?w=20`, { headers: { 'accept-language': 'fr-FR' } });
    assert.equal(french.headers.get('x-cache'), 'HIT', 'no match: the first language, already cached');
    assert.ok((await red(french)) > 200);
    assert.equal(origin.count('/banner.png'), 2);
  });
});
