import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { photoJpeg } from '../helpers/images.js';
import { TestOrigin } from '../helpers/origin.js';
import { removeDir, spawnEdge, statusAndCache, tempDir, type EdgeProcess } from '../helpers/edge.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

const TOKEN = 'cluster-token-abcdefghijklmnop';

/** Two edge processes, one Redis, one origin: what a user runs from the README. */
describe('purge across nodes through a real redis-server', () => {
  let redis: TestRedis | undefined;
  let origin: TestOrigin;
  const dirs: string[] = [];
  const nodes: EdgeProcess[] = [];
  let configFor: (cacheDir: string) => Record<string, unknown>;

  const start = async (cacheDir: string) => {
    const node = await spawnEdge(configFor(cacheDir), cacheDir, { IMGEDGE_REDIS_URL: redis!.url, IMGEDGE_PURGE_TOKEN: TOKEN });
    nodes.push(node);
    return node;
  };
  const xcache = (node: EdgeProcess, path: string) => statusAndCache(node.url, path);
  const purge = async (node: EdgeProcess, body: unknown) =>
    fetch(`${node.url}/_edge/purge`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });

  before(async () => {
    redis = await startRedis();
    origin = await TestOrigin.start();
    origin.set('/p.jpg', { body: await photoJpeg({ width: 300, height: 200 }), headers: { 'content-type': 'image/jpeg', etag: '"p-v1"' } });
    origin.set('/q.jpg', { body: await photoJpeg({ width: 300, height: 200 }), headers: { 'content-type': 'image/jpeg' } });
    configFor = (dir) => ({ server: { host: '127.0.0.1', port: 0 }, cache: { dir }, sites: [{ name: 'site', origin: origin.url }] });
  });
  after(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await redis?.stop();
    await origin.close();
    await Promise.all(dirs.map(removeDir));
  });

  test('a purge on A reaches B within a second; B down during a purge never serves the purged variant; Redis down keeps images served', async (t) => {
    if (!redis) return t.skip('redis-server not installed: apt-get install -y redis-server');
    const dirA = await tempDir();
    const dirB = await tempDir();
    dirs.push(dirA, dirB);
    const a = await start(dirA);
    let b = await start(dirB);
    for (const node of [a, b]) {
      assert.equal(await xcache(node, '/p.jpg?w=100'), '200 MISS');
      assert.equal(await xcache(node, '/p.jpg?w=100'), '200 HIT');
    }

    const res = await purge(a, { urls: ['/p.jpg'] });
    assert.equal(res.status, 200);
    assert.ok(((await res.json()) as { purged: number }).purged >= 1);
    await sleep(1000);
    assert.equal(await xcache(b, '/p.jpg?w=100'), '200 MISS', 'B applied the purge within a second');
    assert.equal(await xcache(a, '/p.jpg?w=100'), '200 MISS');

    // B is down while A purges; restarted, it applies the purge before it serves.
    assert.equal(await xcache(b, '/q.jpg?w=100'), '200 MISS');
    assert.equal(await xcache(b, '/q.jpg?w=100'), '200 HIT');
    await b.stop();
    assert.equal((await purge(a, { urls: ['/q.jpg'] })).status, 200);
    b = await start(dirB);
    assert.equal(await xcache(b, '/q.jpg?w=100'), '200 MISS');

    // Redis gone: images are still served; readiness says so; purges are refused with a clear error.
    await redis.kill();
    assert.equal(await xcache(a, '/q.jpg?w=100'), '200 MISS');
    assert.equal(await xcache(b, '/q.jpg?w=100'), '200 HIT');
    assert.equal((await fetch(`${a.url}/_edge/ready`)).status, 503);
    const refused = await purge(a, { urls: ['/q.jpg'] });
    assert.equal(refused.status, 503);
    assert.equal(((await refused.json()) as any).error.code, 'EDGE_PURGE_UNAVAILABLE');
    await redis.restart();
    for (let i = 0; i < 50 && (await fetch(`${a.url}/_edge/ready`)).status !== 200; i++) await sleep(100);
    assert.equal((await fetch(`${a.url}/_edge/ready`)).status, 200);
    assert.equal((await purge(a, { urls: ['/q.jpg'] })).status, 200);
  });

  test('a node starts and serves while Redis is down: what it cached before is revalidated until it has read the purge log', async (t) => {
    if (!redis) return t.skip('redis-server not installed: apt-get install -y redis-server');
    const dir = await tempDir();
    dirs.push(dir);
    let node = await start(dir);
    assert.equal(await xcache(node, '/p.jpg?w=120'), '200 MISS');
    assert.equal(await xcache(node, '/p.jpg?w=120'), '200 HIT');
    await node.stop();

    await redis.kill();
    node = await start(dir);
    const ready = await fetch(`${node.url}/_edge/ready`);
    assert.equal(ready.status, 503);
    assert.equal(((await ready.json()) as { checks: { purgeLog: string } }).checks.purgeLog, 'behind');
    assert.match(await (await fetch(`${node.url}/_edge/metrics`)).text(), /^imgedge_purge_log_in_sync 0$/m);
    const notModified = origin.notModified;
    assert.equal(await xcache(node, '/p.jpg?w=120'), '200 REVALIDATED', 'stored before the start: asked of the origin first');
    assert.equal(origin.notModified, notModified + 1, 'with a conditional request, answered 304');
    assert.equal(await xcache(node, '/p.jpg?w=120'), '200 HIT', 'revalidated once, then trusted');
    assert.equal(await xcache(node, '/p.jpg?w=140'), '200 MISS');
    assert.equal(await xcache(node, '/p.jpg?w=140'), '200 HIT', 'made since the start: trusted');

    await redis.restart();
    const readiness = async () => {
      const res = await fetch(`${node.url}/_edge/ready`);
      return `${res.status} ${((await res.json()) as { checks: { purgeLog: string } }).checks.purgeLog}`;
    };
    for (let i = 0; i < 50 && (await readiness()) !== '200 in-sync'; i++) await sleep(100);
    assert.equal(await readiness(), '200 in-sync', 'the log is read within seconds of Redis coming back');
    assert.match(await (await fetch(`${node.url}/_edge/metrics`)).text(), /^imgedge_purge_log_in_sync 1$/m);
  });
});
