/**
 * The URL playground (/_edge/ui/playground) in Debian's Chromium: changing a control changes the
 * result image and its URL (signed, since the site signs), the answer's headers show, a click on
 * the original sets a focal point, and the copyable markup follows; no console error; 375 px.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { verifySignature } from '../../src/http/signature.js';
import { removeDir, startEdge, tempDir, testConfig, type RunningEdge } from '../helpers/edge.js';
import { axeViolations, launchChromium } from '../helpers/browser.js';
import { photoJpeg } from '../helpers/images.js';
import { TestOrigin } from '../helpers/origin.js';

const KEY = { key: 'playground-signing-key-0123', scheme: 'hmac-sha256' as const };

describe('URL playground in Chromium', () => {
  let dir: string;
  let origin: TestOrigin;
  let edge: RunningEdge;
  let browser: Browser | undefined;

  before(async () => {
    browser = await launchChromium();
    dir = await tempDir('imgedge-playground-');
    origin = await TestOrigin.start();
    origin.set('/photo.jpg', { body: await photoJpeg({ width: 900, height: 600 }), headers: { 'content-type': 'image/jpeg' } });
    edge = await startEdge(testConfig(origin.url, dir, { site: { hosts: ['img.example.com'], signing: { keys: [KEY] } } }));
  });

  after(async () => {
    await browser?.close();
    await edge.close();
    await origin.close();
    await removeDir(dir);
  });

  it('follows the controls: image, headers, signed URL, focal point and markup', async (t) => {
    if (!browser) return t.skip('chromium is not installed (apt-get install -y chromium)');
    const page = await browser.newPage({ viewport: { width: 375, height: 1400 } });
    const errors: string[] = [];
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    page.on('pageerror', (e) => errors.push(e.message));
    try {
      await page.goto(`${edge.url}/_edge/ui/playground`);
      await page.fill('#path', '/photo.jpg');
      await page.press('#path', 'Enter');
      await page.fill('#w', '300');
      await page.waitForFunction(() => document.getElementById('url')?.textContent?.includes('w=300'));
      await page.waitForFunction(() => (document.getElementById('result') as HTMLImageElement).naturalWidth === 300);
      const url = await page.locator('#url').innerText();
      assert.ok(url.startsWith('https://img.example.com/photo.jpg?w=300'), url);
      assert.doesNotThrow(() => verifySignature(url.slice('https://img.example.com'.length), [KEY]), 'the URL is signed with the site\'s key');
      assert.match(await page.locator('#headers').innerText(), /x-cache\s+(MISS|HIT)/);

      await page.selectOption('#fm', 'webp');
      await page.waitForFunction(() => document.getElementById('url')?.textContent?.includes('fm=webp'));
      await page.waitForFunction(() => document.getElementById('headers')?.textContent?.includes('image/webp'));

      await page.fill('#h', '300');
      await page.locator('#original').click({ position: { x: 5, y: 5 } });
      await page.waitForFunction(() => document.getElementById('url')?.textContent?.includes('crop=focalpoint'));
      assert.match(await page.locator('#url').innerText(), /fit=crop.*fp-x=0\.0\d*.*fp-y=0\.0/);
      await page.waitForFunction(() => (document.getElementById('result') as HTMLImageElement).naturalHeight === 300);

      assert.match(await page.locator('#srcset').inputValue(), /srcset=".*w=320.* 320w/s);
      assert.match(await page.locator('#picture').inputValue(), /type="image\/avif"/);
      assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 375), 'no sideways scrolling at 375 px');
      const unlabelled = await page.evaluate(() => [...document.querySelectorAll('input, select, textarea')].filter((el) => !(el as HTMLInputElement).labels?.length).map((el) => el.id));
      assert.deepEqual(unlabelled, []);
      assert.deepEqual(await axeViolations(page), [], 'axe-core finds nothing wrong with the page and its result');
      assert.deepEqual(errors, []);
    } finally {
      await page.close();
    }
  });

  it('is worked from the keyboard alone, in reading order', async (t) => {
    if (!browser) return t.skip('chromium is not installed (apt-get install -y chromium)');
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    try {
      await page.goto(`${edge.url}/_edge/ui/playground`);
      const order: string[] = [];
      for (let i = 0; i < 40; i++) {
        await page.keyboard.press('Tab');
        const id = await page.evaluate(() => document.activeElement?.id ?? '');
        if (id && !order.includes(id)) order.push(id);
      }
      const expected = ['path', 'w', 'h', 'fm'];
      for (const id of expected) assert.ok(order.includes(id), `Tab reaches #${id}: ${order.join(' ')}`);
      const positions = expected.map((id) => order.indexOf(id));
      assert.deepEqual(positions, [...positions].sort((a, b) => a - b), `focus follows the form's order: ${order.join(' ')}`);
      // Typed and entered without a mouse, the image loads.
      await page.focus('#path');
      await page.keyboard.type('/photo.jpg');
      await page.keyboard.press('Enter');
      await page.keyboard.press('Tab');
      await page.keyboard.type('200');
      await page.waitForFunction(() => (document.getElementById('result') as HTMLImageElement).naturalWidth === 200);
    } finally {
      await page.close();
    }
  });
});
