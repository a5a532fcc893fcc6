/**
 * `npm run screenshots`: the pages in Debian's Chromium, written to docs/screenshots/ for the
 * README. The web optimizer is shown with the demo site's images optimized (desktop and 375 px).
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { createApiServer } from '../src/api/server.js';
import { DiskStore } from '../src/cache/disk-store.js';
import { MemoryStore } from '../src/cache/memory-store.js';
import { TieredStore } from '../src/cache/tiered-store.js';
import { createEdgeServer } from '../src/http/server.js';
import { LocalPurgeBus } from '../src/purge/local-bus.js';
import { purgeApplier } from '../src/purge/apply.js';
import { PurgeEpoch } from '../src/purge/epoch.js';
import { parseConfig } from '../src/config/load.js';
import { createLogger } from '../src/observe/logger.js';
import { TransformLimiter } from '../src/transform/limiter.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const OUT = path.join(ROOT, 'docs', 'screenshots');
const IMAGES = ['landscape.jpg', 'logo.png', 'portrait.jpg'].map((f) => path.join(ROOT, 'examples', 'site', 'images', f));

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'imgedge-shots-'));
  const config = parseConfig({ cache: { dir }, log: { level: 'warn' }, api: { port: 0 }, sites: [{ name: 'demo', origin: 'http://127.0.0.1:9' }] });
  const api = await createApiServer(config, createLogger('warn'), { limiter: new TransformLimiter(4, 16) });
  const { port } = await api.listen();
  const browser = await chromium.launch({ executablePath: process.env.IMGEDGE_CHROMIUM ?? '/usr/bin/chromium', args: process.getuid?.() === 0 ? ['--no-sandbox'] : [] });
  try {
    await mkdir(OUT, { recursive: true });
    for (const [name, viewport] of [['web-optimizer.png', { width: 1100, height: 1300 }], ['web-optimizer-375.png', { width: 375, height: 1300 }]] as const) {
      const page = await browser.newPage({ viewport });
      await page.goto(`http://127.0.0.1:${port}/`);
      await page.setInputFiles('#files', IMAGES);
      await page.locator('#results a[download]').nth(IMAGES.length - 1).waitFor({ timeout: 60_000 });
      await page.waitForFunction(() => [...document.querySelectorAll('#results img')].every((i) => (i as HTMLImageElement).complete));
      await page.screenshot({ path: path.join(OUT, name), fullPage: false });
      await page.close();
      console.error(`wrote docs/screenshots/${name}`);
    }
    await dashboard(browser, dir);
  } finally {
    await browser.close();
    await api.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** The dashboard of an edge on the demo site after some traffic. */
async function dashboard(browser: import('playwright-core').Browser, dir: string): Promise<void> {
  const config = parseConfig({ cache: { dir: path.join(dir, 'edge') }, log: { level: 'warn' }, sites: [{ name: 'demo', origin: `file:${path.join(ROOT, 'examples', 'site')}` }] });
  const disk = await DiskStore.open({ dir: config.cache.dir, maxBytes: config.cache.maxBytes, sweepIntervalMs: 3_600_000, staleRetentionMs: 0, reconcileReadsPerSecond: 5000 });
  const cache = new TieredStore(new MemoryStore({ maxBytes: config.cache.memoryBytes }), disk);
  const epoch = new PurgeEpoch();
  const edge = createEdgeServer(config, cache, createLogger('warn'), new LocalPurgeBus(epoch.counting(purgeApplier(cache))), epoch);
  const { port } = await edge.listen(0, '127.0.0.1');
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 1100 } });
    await page.goto(`http://127.0.0.1:${port}/_edge/ui/`);
    const images = ['landscape.jpg', 'portrait.jpg', 'logo.png', 'rotated.jpg'];
    for (let i = 0; i < 120; i++) {
      const accept = i % 3 === 0 ? 'image/avif,image/webp' : i % 3 === 1 ? 'image/webp' : 'image/jpeg';
      await (await fetch(`http://127.0.0.1:${port}/images/${images[i % 4]}?w=${200 + (i % 7) * 40}&auto=format`, { headers: { accept } })).arrayBuffer();
      if (i % 20 === 0) await page.waitForTimeout(300);
    }
    await page.waitForTimeout(1500);
    await page.screenshot({ path: path.join(OUT, 'dashboard.png'), fullPage: true });
    console.error('wrote docs/screenshots/dashboard.png');
    await page.close();
    const playground = await browser.newPage({ viewport: { width: 1100, height: 1250 } });
    await playground.goto(`http://127.0.0.1:${port}/_edge/ui/playground`);
    await playground.fill('#path', '/images/landscape.jpg');
    await playground.press('#path', 'Enter');
    await playground.fill('#w', '400');
    await playground.selectOption('#fm', 'webp');
    await playground.waitForFunction(() => (document.getElementById('result') as HTMLImageElement).naturalWidth === 400);
    // The original beside it loads by its own preview request: the picture waits for both.
    await playground.waitForFunction(() => (document.getElementById('original') as HTMLImageElement).naturalWidth > 0);
    await playground.screenshot({ path: path.join(OUT, 'playground.png') });
    console.error('wrote docs/screenshots/playground.png');
    await playground.close();
  } finally {
    await edge.close();
    await cache.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
