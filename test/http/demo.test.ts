import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { test } from 'node:test';
import sharp from 'sharp';
import { removeDir, spawnEdge, tempDir } from '../helpers/edge.js';
import { DEFAULT_CONFIG_PATH } from '../../src/config/load.js';
import { readFile } from 'node:fs/promises';

// What a new user does after `npm start`: the demo page, then one image twice.
test('the embedded default serves the demo page and a 300 px AVIF/WebP that is a HIT the second time', async () => {
  const cacheDir = await tempDir();
  const defaults = JSON.parse(await readFile(DEFAULT_CONFIG_PATH, 'utf8'));
  delete defaults.cache.dir;
  defaults.sites[0].origin = `file://${new URL('../../../examples/site', import.meta.url).pathname}`;
  const node = await spawnEdge({ ...defaults, server: { host: '127.0.0.1', port: 0 } }, cacheDir, { IMGEDGE_CACHE_DIR: cacheDir });
  try {
    const page = await fetch(`${node.url}/`);
    assert.equal(page.status, 200);
    assert.equal(page.headers.get('x-cache'), 'BYPASS');
    const html = await page.text();
    const srcs = [...html.matchAll(/<img src="([^"]+)"/g)].map((m) => m[1]!.replaceAll('&amp;', '&'));
    assert.ok(srcs.length >= 6);
    for (const src of srcs) {
      const res = await fetch(`${node.url}${src}`, { headers: { accept: 'image/avif,image/webp,*/*' } });
      assert.equal(res.status, 200, src);
      assert.match(res.headers.get('content-type') ?? '', /^image\//, src);
      await sharp(Buffer.from(await res.arrayBuffer())).metadata();
    }

    const url = `${node.url}/images/landscape.jpg?w=300&auto=format`;
    const first = await fetch(url, { headers: { accept: 'image/avif,image/webp,*/*' } });
    const meta = await sharp(Buffer.from(await first.arrayBuffer())).metadata();
    assert.equal(meta.width, 300);
    assert.match(first.headers.get('content-type')!, /^image\/(avif|webp)$/);
    const second = await fetch(url, { headers: { accept: 'image/avif,image/webp,*/*' } });
    assert.equal(second.headers.get('x-cache'), 'HIT');
    await second.arrayBuffer();
    const files = await readdir(cacheDir, { recursive: true });
    assert.ok(files.some((f) => /^[0-9a-f]{2}\/[0-9a-f]{2}\/[0-9a-f]{2}\/[0-9a-f]+\/[0-9a-f]{64}\.entry$/.test(String(f))));
  } finally {
    await node.stop();
    await removeDir(cacheDir);
  }
});
