/**
 * The web optimizer in a real browser (Debian's Chromium through playwright-core): two files
 * dropped in, progress, savings, the optimized files downloaded one by one and as one ZIP, all
 * smaller and valid; no console error; every control labelled and reachable by keyboard, nothing
 * axe-core (WCAG 2.1 AA) flags; usable
 * 375 px wide; a strict CSP; results readable only by the browser that made them.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { unzipSync } from 'fflate';
import type { Browser, Page } from 'playwright-core';
import sharp from 'sharp';
import { removeDir, tempDir } from '../helpers/edge.js';
import { apiConfig, startApi, type RunningApi } from '../helpers/api.js';
import { axeViolations, launchChromium } from '../helpers/browser.js';
import { alphaPng, photoJpeg } from '../helpers/images.js';

describe('web optimizer (GET / of the API listener) in Chromium', () => {
  let dir: string;
  let running: RunningApi;
  let browser: Browser | undefined;
  let files: { path: string; bytes: Buffer }[];

  before(async () => {
    browser = await launchChromium();
    dir = await tempDir('imgedge-web-');
    running = await startApi(apiConfig(path.join(dir, 'cache')));
    files = [
      { path: path.join(dir, 'holiday.jpg'), bytes: await photoJpeg({ width: 1200, height: 800, quality: 95 }) },
      { path: path.join(dir, 'logo.png'), bytes: await alphaPng({ width: 400, height: 300 }) },
    ];
    for (const f of files) await writeFile(f.path, f.bytes);
  });

  after(async () => {
    await browser?.close();
    await running.close();
    await removeDir(dir);
  });

  async function open(p: Page, errors: string[]): Promise<void> {
    p.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    p.on('pageerror', (e) => errors.push(e.message));
    const res = await p.goto(`${running.url}/`);
    assert.equal(res?.status(), 200);
    assert.match(res!.headers()['content-security-policy'] ?? '', /script-src 'self'/);
  }

  it('optimizes two dropped files and downloads them, one by one and as a ZIP', async (t) => {
    if (!browser) return t.skip('chromium is not installed (apt-get install -y chromium)');
    const context = await browser.newContext({ acceptDownloads: true });
    const page = await context.newPage();
    const errors: string[] = [];
    try {
      await open(page, errors);
      await page.setInputFiles('#files', files.map((f) => f.path));
      const links = page.locator('#results a[download]');
      await links.nth(1).waitFor({ timeout: 30_000 });
      assert.equal(await page.locator('#results progress').count(), 2, 'a progress bar per file');
      assert.match(await page.locator('#total').innerText(), /2 optimized: .* saved/);
      for (let i = 0; i < 2; i++) {
        const [download] = await Promise.all([page.waitForEvent('download'), links.nth(i).click()]);
        const saved = path.join(dir, `dl-${i}-${download.suggestedFilename()}`);
        await download.saveAs(saved);
        const body = await readFile(saved);
        const original = files.find((f) => path.basename(f.path) === download.suggestedFilename())!;
        assert.ok(original, `a download named after its file: ${download.suggestedFilename()}`);
        assert.ok(body.length < original.bytes.length, `${download.suggestedFilename()}: ${body.length} < ${original.bytes.length}`);
        const meta = await sharp(body).metadata();
        assert.equal(meta.width, (await sharp(original.bytes).metadata()).width);
      }
      const [zip] = await Promise.all([page.waitForEvent('download'), page.click('#zip')]);
      assert.equal(zip.suggestedFilename(), 'optimized.zip');
      const zipped = unzipSync(new Uint8Array(await readFile((await zip.path())!)));
      assert.deepEqual(Object.keys(zipped).sort(), ['holiday.jpg', 'logo.png']);
      for (const [name, bytes] of Object.entries(zipped)) assert.ok((await sharp(Buffer.from(bytes)).metadata()).width, `${name} is an image`);
      // The before/after slider moves the split.
      const slider = page.locator('#results input[type=range]').first();
      await slider.fill('20');
      assert.equal(await page.locator('#results .compare').first().evaluate((el) => (el as HTMLElement).style.getPropertyValue('--split')), '20%');
      assert.deepEqual(await axeViolations(page), [], 'axe-core finds nothing wrong with the results shown');
      assert.deepEqual(errors, [], 'no console errors');
    } finally {
      await context.close();
    }
  });

  it('is labelled, keyboard-reachable and fits 375 px', async (t) => {
    if (!browser) return t.skip('chromium is not installed (apt-get install -y chromium)');
    const page = await browser.newPage({ viewport: { width: 375, height: 800 } });
    const errors: string[] = [];
    try {
      await open(page, errors);
      const unlabelled = await page.evaluate(() =>
        [...document.querySelectorAll('input, select, button')]
          .filter((el) => !((el as HTMLInputElement).labels?.length || el.getAttribute('aria-label') || (el.tagName === 'BUTTON' && el.textContent?.trim())))
          .map((el) => el.outerHTML),
      );
      assert.deepEqual(unlabelled, [], 'every control has a label');
      const reached = new Set<string>();
      for (let i = 0; i < 20; i++) {
        await page.keyboard.press('Tab');
        reached.add(await page.evaluate(() => document.activeElement?.id || document.activeElement?.tagName || ''));
      }
      for (const id of ['quality', 'width', 'format', 'files', 'url']) assert.ok(reached.has(id), `Tab reaches #${id}: ${[...reached].join(' ')}`);
      assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 375), 'no sideways scrolling at 375 px');
      assert.deepEqual(await axeViolations(page), [], 'axe-core finds nothing wrong at 375 px');
      assert.deepEqual(errors, []);
    } finally {
      await page.close();
    }
  });

  it('another browser cannot read this one\'s results, and a cross-site POST is refused', async (t) => {
    if (!browser) return t.skip('chromium is not installed (apt-get install -y chromium)');
    const mine = await browser.newContext();
    const theirs = await browser.newContext();
    try {
      const page = await mine.newPage();
      await open(page, []);
      await page.setInputFiles('#files', [files[0]!.path]);
      const href = await page.locator('#results a[download]').first().getAttribute('href', { timeout: 30_000 });
      assert.equal((await mine.request.get(`${running.url}${href}`)).status(), 200);
      assert.equal((await theirs.request.get(`${running.url}${href}`)).status(), 404);
      const forged = await fetch(`${running.url}/web/optimize`, { method: 'POST', headers: { origin: 'https://evil.example' }, body: new FormData() });
      assert.equal(forged.status, 403);
    } finally {
      await mine.close();
      await theirs.close();
    }
  });
});
