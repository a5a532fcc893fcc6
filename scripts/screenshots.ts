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
  } finally {
    await browser.close();
    await api.close();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
