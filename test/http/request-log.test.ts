/**
 * The request log of a running edge (its stdout): a line per request, and none for fresh hits when
 * IMGEDGE_LOG_HITS=0, which still counts them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { removeDir, spawnEdge, tempDir } from '../helpers/edge.js';
import { photoJpeg } from '../helpers/images.js';
import { TestOrigin } from '../helpers/origin.js';

type Line = Record<string, unknown>;

/**
 * Runs one edge (with `env`) through a miss, a hit, a conditional hit (304), a bad parameter, an
 * expired variant renewed at the origin (answered as a HIT), a page passed through and a source
 * the origin lacks; resolves with the request lines of those paths and the hits the edge counted.
 * The lines come out in order, so once the last request's line is there, every earlier line that
 * will ever be written is too.
 */
async function requestsLogged(env: Record<string, string>): Promise<{ lines: Line[]; hitsCounted: number }> {
  const dir = await tempDir('imgedge-request-log-');
  const origin = await TestOrigin.start();
  origin.set('/photo.jpg', { body: await photoJpeg({ width: 400, height: 300 }), headers: { 'content-type': 'image/jpeg' } });
  origin.set('/renewed.jpg', { body: await photoJpeg({ width: 400, height: 300 }), headers: { 'content-type': 'image/jpeg', etag: '"v1"', 'cache-control': 'max-age=1' } });
  origin.set('/page.html', { body: Buffer.from('<p>hi</p>'), headers: { 'content-type': 'text/html' } });
  // Not served stale once expired: renewed at the origin before the answer.
  const site = { name: 'test', origin: origin.url, stale: { whileRevalidate: 0, ifError: 0 } };
  const running = await spawnEdge({ server: { host: '127.0.0.1', port: 0 }, cache: { dir }, sites: [site] }, dir, env);
  const lines: Line[] = [];
  let pending = '';
  running.child.stdout!.on('data', (d: Buffer) => {
    pending += d.toString();
    const whole = pending.split('\n');
    pending = whole.pop()!;
    for (const line of whole) {
      try {
        lines.push(JSON.parse(line) as Line);
      } catch {
        lines.push({ notJson: line });
      }
    }
  });
  try {
    const get = (path: string, headers: Record<string, string> = {}) => fetch(`${running.url}${path}`, { headers }).then(async (r) => ({ status: r.status, cache: r.headers.get('x-cache'), etag: r.headers.get('etag'), body: await r.arrayBuffer() }));
    const miss = await get('/photo.jpg?w=120');
    assert.deepEqual([miss.status, miss.cache], [200, 'MISS']);
    const hit = await get('/photo.jpg?w=120');
    assert.deepEqual([hit.status, hit.cache], [200, 'HIT']);
    const notModified = await get('/photo.jpg?w=120', { 'if-none-match': miss.etag! });
    assert.deepEqual([notModified.status, notModified.cache], [304, 'HIT']);
    assert.equal((await get('/photo.jpg?w=abc')).status, 400);
    assert.equal((await get('/renewed.jpg?w=80')).cache, 'MISS');
    await new Promise((r) => setTimeout(r, 1100));
    const renewed = await get('/renewed.jpg?w=80');
    assert.deepEqual([renewed.status, renewed.cache], [200, 'HIT']);
    assert.equal((await get('/page.html')).cache, 'BYPASS');
    assert.equal((await get('/gone.jpg?w=120')).status, 404);
    for (let i = 0; i < 50 && !lines.some((l) => l.path === '/gone.jpg'); i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(lines.some((l) => l.path === '/gone.jpg'), 'the last request was logged');
    const metrics = await (await fetch(`${running.url}/_edge/metrics`)).text();
    const hitsCounted = [...metrics.matchAll(/^imgedge_requests_total\{status="(?:200|304)",cache="HIT"\} (\d+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
    assert.deepEqual(lines.filter((l) => 'notJson' in l), [], 'every line is JSON');
    const paths = new Set(['/photo.jpg', '/renewed.jpg', '/page.html', '/gone.jpg']);
    return { lines: lines.filter((l) => l.msg === 'request' && paths.has(l.path as string)), hitsCounted };
  } finally {
    await running.stop();
    await origin.close();
    await removeDir(dir);
  }
}

const summary = (lines: Line[]) => lines.map((l) => `${l.path} ${l.status} ${l.cache ?? '-'}${l.error ? ` ${l.error}` : ''}`);

describe('the request log', () => {
  it('has a line for every request by default, hits included', async () => {
    const { lines, hitsCounted } = await requestsLogged({});
    assert.deepEqual(summary(lines), ['/photo.jpg 200 MISS', '/photo.jpg 200 HIT', '/photo.jpg 304 HIT', '/photo.jpg 400 - EDGE_BAD_PARAM', '/renewed.jpg 200 MISS', '/renewed.jpg 200 HIT', '/page.html 200 BYPASS', '/gone.jpg 404 MISS EDGE_ORIGIN_STATUS']);
    assert.equal(hitsCounted, 3);
  });

  it('with IMGEDGE_LOG_HITS=0, leaves out the lines of hits answered from the cache alone, and still counts them', async () => {
    const { lines, hitsCounted } = await requestsLogged({ IMGEDGE_LOG_HITS: '0' });
    // The renewal is answered as a HIT, but it asked the origin: its line stays, with its fetch time.
    assert.deepEqual(summary(lines), ['/photo.jpg 200 MISS', '/photo.jpg 400 - EDGE_BAD_PARAM', '/renewed.jpg 200 MISS', '/renewed.jpg 200 HIT', '/page.html 200 BYPASS', '/gone.jpg 404 MISS EDGE_ORIGIN_STATUS']);
    assert.equal(typeof lines.find((l) => l.path === '/renewed.jpg' && l.cache === 'HIT')?.fetchMs, 'number');
    assert.equal(hitsCounted, 3, 'the metrics count the hits the log leaves out');
  });
});
