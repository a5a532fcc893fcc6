import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { removeDir, spawnEdge, tempDir } from '../helpers/edge.js';
import { TestOrigin } from '../helpers/origin.js';

const FILL_JS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/cache-fill.js');
const TOKEN = 'fill-test-token';

/** The value of one metric line of /_edge/metrics. */
async function metric(url: string, line: string): Promise<number | undefined> {
  const text = await (await fetch(`${url}/_edge/metrics`)).text();
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return found === undefined ? undefined : Number(found.slice(line.length + 1));
}

async function purge(url: string, body: object): Promise<number> {
  const res = await fetch(`${url}/_edge/purge`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(res.status, 200);
  return ((await res.json()) as { purged: number }).purged;
}

describe('npm run cache:fill', () => {
  let origin: TestOrigin;
  let dir: string;
  let config: Record<string, unknown>;

  before(async () => {
    // The origin has no /synthetic/ images: only a cache hit can answer 200.
    origin = await TestOrigin.start();
    dir = await tempDir();
    config = {
      server: { host: '127.0.0.1', port: 0 },
      cache: { dir: path.join(dir, 'cache') },
      purge: { token: TOKEN },
      sites: [{ name: 'first', origin: origin.url }],
    };
    const configFile = path.join(dir, 'fill-config.json');
    await writeFile(configFile, JSON.stringify(config));
    const { stdout } = await promisify(execFile)(process.execPath, [FILL_JS, '--dir', path.join(dir, 'cache'), '--entries', '30', '--tags', '3'], {
      env: { ...process.env, IMGEDGE_CONFIG: configFile },
    });
    assert.match(stdout, /^30 entries written/);
  });
  after(async () => {
    await origin.close();
    await removeDir(dir);
  });

  test('writes entries the edge answers as HITs, and purges by tag and prefix find them', async () => {
    const edge = await spawnEdge(config, dir);
    try {
      const res = await fetch(`${edge.url}/synthetic/7.jpg?w=100`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('x-cache'), 'HIT');
      assert.equal(res.headers.get('content-type'), 'image/jpeg');
      assert.equal((await sharp(Buffer.from(await res.arrayBuffer())).metadata()).width, 100);
      assert.equal(origin.hits.size, 0);

      // Entry i carries the tag synthetic-<i mod 3>: 1, 4, … 28.
      assert.equal(await purge(edge.url, { tags: ['synthetic-1'] }), 10);
      assert.equal((await fetch(`${edge.url}/synthetic/7.jpg?w=100`)).status, 404, 'purged: the origin is asked and has nothing');
      // /synthetic/2 covers 2 and 20–29, less 22, 25 and 28 that the tag purge took.
      assert.equal(await purge(edge.url, { prefixes: ['/synthetic/2'] }), 8);
      assert.equal((await fetch(`${edge.url}/synthetic/3.jpg?w=100`)).headers.get('x-cache'), 'HIT');
      assert.equal(await metric(edge.url, 'imgedge_cache_entries'), 30 - 10 - 8 + 1, 'plus the origin’s 404, remembered');
    } finally {
      await edge.stop();
    }
  });

  test('after a SIGKILL, the edge answers a HIT at once while it reconciles in the background, and reports it', async () => {
    let edge = await spawnEdge(config, dir);
    assert.equal(await metric(edge.url, 'imgedge_cache_index_complete'), 1);
    await edge.stop('SIGKILL');
    // Two reads a second: the walk over the 13 source directories outlasts this test.
    const slow = { ...config, cache: { ...(config.cache as object), reconcileReadsPerSecond: 2 } };
    edge = await spawnEdge(slow, dir);
    try {
      const res = await fetch(`${edge.url}/synthetic/9.jpg?w=100`);
      assert.equal(res.headers.get('x-cache'), 'HIT');
      assert.equal(await metric(edge.url, 'imgedge_cache_index_complete'), 0, 'the unclean stop is noticed');
      assert.ok((await metric(edge.url, 'imgedge_cache_reconcile_progress_ratio'))! < 1);
      assert.equal(await metric(edge.url, 'imgedge_cache_entries'), 13, 'what the index held before the kill');
    } finally {
      await edge.stop();
    }
  });
});
