/**
 * The operator dashboard (/_edge/ui/) in Debian's Chromium: its numbers move as requests come
 * in (server-sent events, one a second), a purge shows; no console error; it fits 375 px; never
 * under a site's public host name; behind IMGEDGE_ADMIN_TOKEN when one is set.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { removeDir, startEdge, tempDir, testConfig, type RunningEdge } from '../helpers/edge.js';
import { axeViolations, launchChromium } from '../helpers/browser.js';
import { photoJpeg } from '../helpers/images.js';
import { startRedis } from '../helpers/redis.js';
import { TestOrigin } from '../helpers/origin.js';

const TOKEN = 'admin-token-0123456789';
const PURGE = 'purge-token-0123456789';

describe('operator dashboard in Chromium', () => {
  let dir: string;
  let origin: TestOrigin;
  let edge: RunningEdge;
  let browser: Browser | undefined;

  before(async () => {
    browser = await launchChromium();
    dir = await tempDir('imgedge-dash-');
    origin = await TestOrigin.start();
    origin.set('/photo.jpg', { body: await photoJpeg({ width: 800, height: 600 }), headers: { 'content-type': 'image/jpeg' } });
    edge = await startEdge(testConfig(origin.url, dir, { site: { hosts: ['img.example.com', '*'] }, admin: { token: TOKEN }, purge: { token: PURGE } }));
  });

  after(async () => {
    await browser?.close();
    await edge.close();
    await origin.close();
    await removeDir(dir);
  });

  it('is refused without the token and under a site\'s public host name', async () => {
    assert.equal((await fetch(`${edge.url}/_edge/ui/`)).status, 401);
    assert.equal((await fetch(`${edge.url}/_edge/ui/?token=wrong-token-0123456`)).status, 401);
    // fetch() will not send a Host of its own choosing; http.get does.
    const publicName = await new Promise<number>((resolve, reject) => {
      http.get(`${edge.url}/_edge/ui/?token=${TOKEN}`, { headers: { host: 'img.example.com' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on('error', reject);
    });
    assert.equal(publicName, 404);
    const ok = await fetch(`${edge.url}/_edge/ui/?token=${TOKEN}`);
    assert.equal(ok.status, 200);
    assert.match(ok.headers.get('content-security-policy') ?? '', /script-src 'self'/);
  });

  it('shows the numbers moving after requests, and the purge just made', async (t) => {
    if (!browser) return t.skip('chromium is not installed (apt-get install -y chromium)');
    const page = await browser.newPage({ viewport: { width: 375, height: 900 } });
    const errors: string[] = [];
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    page.on('pageerror', (e) => errors.push(e.message));
    try {
      await page.goto(`${edge.url}/_edge/ui/?token=${TOKEN}`);
      await page.waitForFunction(() => document.getElementById('state')?.textContent?.startsWith('live'));
      const before = Number(await page.locator('#requests').innerText());
      for (let i = 0; i < 12; i++) await (await fetch(`${edge.url}/photo.jpg?w=${100 + (i % 3) * 50}&auto=format`, { headers: { accept: 'image/webp' } })).arrayBuffer();
      const purge = await fetch(`${edge.url}/_edge/purge`, { method: 'POST', headers: { authorization: `Bearer ${PURGE}`, 'content-type': 'application/json' }, body: JSON.stringify({ urls: ['/photo.jpg'] }) });
      assert.equal(purge.status, 200);
      await page.waitForFunction((n) => Number(document.getElementById('requests')?.textContent) >= n + 12, before, { timeout: 10_000 });
      // Ratios and latencies cover whole seconds: they show from the next event on.
      await page.waitForFunction(() => document.getElementById('hit-ratio')?.textContent?.endsWith('%'), undefined, { timeout: 5_000 });
      assert.match(await page.locator('#miss-latency').innerText(), /ms/);
      assert.match(await page.locator('#formats').innerText(), /webp/);
      assert.match(await page.locator('#top-requests').innerText(), /\/photo\.jpg\s+12/);
      await page.waitForFunction(() => document.getElementById('purges')?.textContent?.includes('/photo.jpg'), undefined, { timeout: 5_000 });
      assert.ok(await page.locator('#chart canvas').count() >= 1, 'the chart is drawn');
      assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 375), 'no sideways scrolling at 375 px');
      assert.match(await page.locator('#nodes').innerText(), new RegExp(`:${new URL(edge.url).port}`), 'this node is listed');
      assert.deepEqual(await axeViolations(page), [], 'axe-core finds nothing wrong with the live dashboard');
      assert.deepEqual(errors, []);
    } finally {
      await page.close();
    }
  });

  it('lists every node it can see through Redis', async (t) => {
    if (!browser) return t.skip('chromium is not installed (apt-get install -y chromium)');
    const redis = await startRedis();
    if (!redis) return t.skip('redis-server is not installed');
    const [a, b] = [await startEdge(testConfig(origin.url, `${dir}-a`, { redis: { url: redis.url } })), await startEdge(testConfig(origin.url, `${dir}-b`, { redis: { url: redis.url } }))];
    const page = await browser.newPage();
    try {
      await page.goto(`${a.url}/_edge/ui/`);
      const ports = [a.url, b.url].map((u) => `:${new URL(u).port}`);
      // A node announces itself at start and every 5 s.
      await page.waitForFunction((p) => p.every((port) => document.getElementById('nodes')?.textContent?.includes(port)), ports, { timeout: 15_000 });
    } finally {
      await page.close();
      await a.close();
      await b.close();
      await redis.stop();
      await removeDir(`${dir}-a`);
      await removeDir(`${dir}-b`);
    }
  });
});
