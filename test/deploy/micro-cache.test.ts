import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import sharp from 'sharp';
import { Agent, request } from 'undici';
import { removeDir, spawnEdge, tempDir, type EdgeProcess } from '../helpers/edge.js';
import { photoJpeg } from '../helpers/images.js';
import { makeTestCert, nginxMissing, nginxTest, renderNginx, startNginx, type RunningNginx } from '../helpers/nginx.js';
import { freePort, killWithProcess } from '../helpers/processes.js';
import { TestOrigin } from '../helpers/origin.js';

const TOKEN = 'micro-cache-test-token-abcdefghij';

/** Requests a node has answered, its own /_edge/ routes (these metrics reads) left out. */
async function nodeRequests(node: EdgeProcess): Promise<number> {
  const text = await (await fetch(`${node.url}/_edge/metrics`)).text();
  return [...text.matchAll(/^imgedge_requests_total\{([^}]*)\} (\d+)$/gm)]
    .filter((m) => !m[1]!.includes('cache="NONE"'))
    .reduce((n, m) => n + Number(m[2]), 0);
}

describe('nginx micro-cache in front of a node (nginx/imgedge.conf defaults)', () => {
  const skip = nginxMissing();
  const dirs: string[] = [];
  let origin: TestOrigin;
  let node: EdgeProcess | undefined;
  let nginx: RunningNginx | undefined;
  let unguard = () => {};
  let prefix = '';
  let base = '';
  const agent = new Agent({ connections: 4 });
  const get = async (p: string, headers: Record<string, string> = {}) => {
    const res = await request(`${base}${p}`, { headers, dispatcher: agent });
    return { status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) };
  };
  /**
   * nginx's cache status of each request for `uri`, once the `count` lines asked for are written
   * (nginx writes its access log at least every ACCESS_LOG_FLUSH, 1 s; this waits up to 3 s).
   */
  const cacheStatusOf = async (uri: string, count: number): Promise<string[]> => {
    const statuses = async () =>
      (await readFile(path.join(prefix, 'logs', 'access.log'), 'utf8').catch(() => ''))
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { uri: string; micro_cache: string })
        .filter((l) => l.uri === uri)
        .map((l) => l.micro_cache);
    for (let i = 0; i < 60 && (await statuses()).length < count; i++) await sleep(50);
    return statuses();
  };

  before(async () => {
    if (skip) return;
    prefix = await tempDir('imgedge-micro-');
    const cacheDir = await tempDir('imgedge-micro-node-');
    dirs.push(prefix, cacheDir);
    origin = await TestOrigin.start();
    origin.set('/hot.jpg', { body: await photoJpeg({ width: 300, height: 200 }), headers: { 'content-type': 'image/jpeg' } });
    origin.set('/private.jpg', { body: await photoJpeg({ width: 300, height: 200 }), headers: { 'content-type': 'image/jpeg', 'cache-control': 'private, max-age=600' } });
    origin.set('/page.html', { body: '<p>hello</p>', headers: { 'content-type': 'text/html', 'cache-control': 'public, max-age=600' } });
    const nodePort = await freePort();
    node = await spawnEdge({
      server: { host: '127.0.0.1', port: nodePort },
      cache: { dir: cacheDir, sweepIntervalSeconds: 3600 },
      sites: [{ name: 'site', origin: origin.url }],
    }, cacheDir, { IMGEDGE_PURGE_TOKEN: TOKEN });
    unguard = killWithProcess(() => node?.child.kill('SIGKILL'));
    const [port, tlsPort] = [await freePort(), await freePort()];
    const conf = await renderNginx({
      nodes: [`127.0.0.1:${nodePort}`], listenPort: port, tlsPort, ...(await makeTestCert(path.join(prefix, 'tls')))!,
      allowNets: ['127.0.0.1'], rateLimitExempt: ['127.0.0.1'], prefix,
    });
    const checked = await nginxTest(conf);
    assert.ok(checked?.ok, `nginx -t failed:\n${checked?.output}`);
    nginx = await startNginx(conf);
    base = `http://127.0.0.1:${port}`;
  });

  after(async () => {
    await agent.close();
    await nginx?.stop();
    await node?.stop('SIGKILL');
    unguard();
    await origin?.close();
    await Promise.all(dirs.map(removeDir));
  });

  test('a variant asked for again within a second is answered by nginx, per Accept, and a purge shows within two seconds', { timeout: 30_000 }, async (t) => {
    if (skip) return t.skip(skip);
    const uri = '/hot.jpg?w=120&auto=format';
    const webp = { accept: 'image/webp,*/*' };
    const answers: Awaited<ReturnType<typeof get>>[] = [];
    const atStart = await nodeRequests(node!);
    for (let i = 0; i < 4; i++) answers.push(await get(uri, webp));
    assert.deepEqual(answers.map((a) => a.status), [200, 200, 200, 200]);
    assert.ok(answers.every((a) => a.headers['content-type'] === 'image/webp' && a.body.equals(answers[0]!.body)));
    // Stored once asked for twice (min uses 2); the later ones never reach the node. (Each nginx
    // worker writes its own batch of lines, so the file's order is not the requests' order.)
    assert.deepEqual((await cacheStatusOf(uri, 4)).sort(), ['HIT', 'HIT', 'MISS', 'MISS']);
    const seen = await nodeRequests(node!);
    assert.equal(seen - atStart, 2, 'the first two reached the node, the last two were answered by nginx');

    // Another Accept is another entry: a browser without WebP never gets the cached WebP.
    const jpeg = await get(uri, { accept: 'image/jpeg' });
    assert.equal(jpeg.headers['content-type'], 'image/jpeg');
    assert.equal(await nodeRequests(node!), seen + 1);

    // The source changes and is purged on the node: nginx's copy goes within MICRO_CACHE_VALID
    // (1 s) plus the second nginx rounds to (it counts validity in whole seconds).
    origin.set('/hot.jpg', { body: await photoJpeg({ width: 150, height: 150 }), headers: { 'content-type': 'image/jpeg' } });
    const purge = await fetch(`${node!.url}/_edge/purge`, {
      method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ urls: ['/hot.jpg'] }),
    });
    assert.equal(purge.status, 200);
    await sleep(2100);
    const fresh = await get(uri, webp);
    assert.equal(fresh.status, 200);
    assert.equal((await sharp(fresh.body).metadata()).height, 120, 'the new square source, not the old 3:2 copy (120×80)');
  });

  test('pages, private images and errors are never held by nginx, and /_edge/ bypasses it', { timeout: 30_000 }, async (t) => {
    if (skip) return t.skip(skip);
    for (const [uri, status] of [['/page.html', 200], ['/private.jpg?w=100', 200], ['/missing.jpg?w=100', 404]] as const) {
      const before = await nodeRequests(node!);
      for (let i = 0; i < 3; i++) assert.equal((await get(uri)).status, status, uri);
      assert.equal(await nodeRequests(node!), before + 3, `${uri}: every request reached the node`);
      assert.deepEqual(await cacheStatusOf(uri, 3), ['MISS', 'MISS', 'MISS'], uri);
    }
    // The reserved routes have no cache at all: nginx logs no cache status for them.
    assert.equal((await get('/_edge/health')).status, 200);
    assert.deepEqual(await cacheStatusOf('/_edge/health', 1), ['']);
  });
});
