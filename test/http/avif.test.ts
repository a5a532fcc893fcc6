import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { photoJpeg } from '../helpers/images.js';
import { TestOrigin } from '../helpers/origin.js';
import { removeDir, startEdge, tempDir, testConfig, type RunningEdge } from '../helpers/edge.js';

const CHROME = 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8';
const WEBP_ONLY = 'image/webp,*/*';

async function transforms(edge: RunningEdge, format: string): Promise<number> {
  const m = new RegExp(`^imgedge_transform_seconds_count\\{format="${format}"\\} (\\d+)$`, 'm').exec(await edge.edge.metrics.registry.metrics());
  return m ? Number(m[1]) : 0;
}

describe('AVIF without waiting', () => {
  let origin: TestOrigin;
  let edge: RunningEdge;
  let cacheDir: string;

  before(async () => {
    origin = await TestOrigin.start();
    origin.set('/photo.jpg', { body: await photoJpeg({ width: 1600, height: 1000, noise: 8 }), headers: { 'content-type': 'image/jpeg' } });
    cacheDir = await tempDir();
    edge = await startEdge(testConfig(origin.url, cacheDir, { limits: { backgroundQueueLength: 2 } }));
  });
  after(async () => {
    await edge.close();
    await origin.close();
    await removeDir(cacheDir);
  });

  test('the first request gets WebP at once with a short lifetime; the AVIF follows from the background', async () => {
    const first = await fetch(`${edge.url}/photo.jpg?w=500&auto=format`, { headers: { accept: CHROME } });
    assert.equal(first.headers.get('content-type'), 'image/webp');
    assert.equal(first.headers.get('vary'), 'Accept');
    assert.equal(first.headers.get('cache-control'), 'public, max-age=60');
    await first.arrayBuffer();
    // A WebP-only browser shares that WebP: no second encode.
    const webpOnly = await fetch(`${edge.url}/photo.jpg?w=500&auto=format`, { headers: { accept: WEBP_ONLY } });
    assert.equal(webpOnly.headers.get('x-cache'), 'HIT');
    assert.match(webpOnly.headers.get('cache-control') ?? '', /^public, max-age=3[0-9]{3}$/);
    await webpOnly.arrayBuffer();

    await edge.edge.background.idle();
    const later = await fetch(`${edge.url}/photo.jpg?w=500&auto=format`, { headers: { accept: CHROME } });
    assert.equal(later.headers.get('content-type'), 'image/avif');
    assert.equal(later.headers.get('x-cache'), 'HIT');
    await later.arrayBuffer();
    assert.equal(await transforms(edge, 'avif'), 1);
    assert.equal(origin.count('/photo.jpg'), 1);
  });

  test('concurrent requests queue one AVIF encode; a full queue drops work instead of growing', async () => {
    const before = await transforms(edge, 'avif');
    const same = await Promise.all(Array.from({ length: 8 }, () => fetch(`${edge.url}/photo.jpg?w=420&auto=format`, { headers: { accept: CHROME } })));
    assert.ok(same.every((r) => r.headers.get('content-type') === 'image/webp'));
    await Promise.all(same.map((r) => r.arrayBuffer()));
    // Distinct variants beyond the queue's length (2) are dropped, and their requests still get WebP.
    const many = [];
    for (let w = 300; w < 310; w++) many.push(fetch(`${edge.url}/photo.jpg?w=${w}&auto=format`, { headers: { accept: CHROME } }));
    const responses = await Promise.all(many);
    assert.ok(responses.every((r) => r.status === 200 && r.headers.get('content-type') === 'image/webp'));
    await Promise.all(responses.map((r) => r.arrayBuffer()));
    assert.match(await edge.edge.metrics.registry.metrics(), /imgedge_background_dropped_total [1-9]/);
    await edge.edge.background.idle();
    const made = (await transforms(edge, 'avif')) - before;
    assert.ok(made >= 1 && made <= 4, `${made} AVIF encodes`);
    const w420 = await fetch(`${edge.url}/photo.jpg?w=420&auto=format`, { headers: { accept: CHROME } });
    assert.equal(w420.headers.get('content-type'), 'image/avif');
    await w420.arrayBuffer();
    await sleep(10);
  });
});
