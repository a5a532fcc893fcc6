import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { photoJpeg } from '../helpers/images.js';
import { TestOrigin } from '../helpers/origin.js';
import { removeDir, spawnEdge, statusAndCache, tempDir, type EdgeProcess } from '../helpers/edge.js';
import { startSentinels, type TestSentinels } from '../helpers/redis.js';

const TOKEN = 'sentinel-token-abcdefghijklmnop';

/** Two edge processes on a Sentinel setup (master, replica, three sentinels), with load running, while the master dies. */
describe('Redis Sentinel failover with real processes', () => {
  let setup: TestSentinels;
  let origin: TestOrigin;
  const dirs: string[] = [];
  const nodes: EdgeProcess[] = [];

  const start = async (cacheDir: string) => {
    const config = { server: { host: '127.0.0.1', port: 0 }, cache: { dir: cacheDir }, sites: [{ name: 'site', origin: origin.url }] };
    const node = await spawnEdge(config, cacheDir, {
      IMGEDGE_REDIS_SENTINELS: setup.sentinels.join(','),
      IMGEDGE_REDIS_MASTER: setup.masterName,
      IMGEDGE_PURGE_TOKEN: TOKEN,
    });
    nodes.push(node);
    return node;
  };
  const xcache = (node: EdgeProcess, path: string) => statusAndCache(node.url, path);
  const purge = async (node: EdgeProcess, body: unknown) => {
    const res = await fetch(`${node.url}/_edge/purge`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as { id?: string; error?: { code: string } } };
  };

  before(async () => {
    setup = await startSentinels();
    origin = await TestOrigin.start();
    for (const name of ['p', 'q', 'r']) {
      origin.set(`/${name}.jpg`, { body: await photoJpeg({ width: 300, height: 200 }), headers: { 'content-type': 'image/jpeg' } });
    }
  });
  after(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await setup.stop();
    await origin.close();
    await Promise.all(dirs.map(removeDir));
  });

  test('SIGKILL of the master: purges are refused (503) then accepted again within 10 s, none acknowledged is lost, images never fail, a node down meanwhile catches up', async (t) => {
    const dirA = await tempDir();
    const dirB = await tempDir();
    dirs.push(dirA, dirB);
    const a = await start(dirA);
    let b = await start(dirB);
    for (const node of [a, b]) {
      for (const path of ['/p.jpg?w=100', '/q.jpg?w=100']) {
        assert.equal(await xcache(node, path), '200 MISS');
        assert.equal(await xcache(node, path), '200 HIT');
      }
    }
    const first = await purge(a, { urls: ['/r.jpg'] });
    assert.equal(first.status, 200, 'purges work through the sentinels');

    // Load for the whole failover, hits and new variants, on an image the purges below leave alone.
    let loading = true;
    let images = 0;
    const failures: string[] = [];
    const load = async (node: () => EdgeProcess, offset: number) => {
      for (let i = offset; loading; i++) {
        const path = i % 4 === 0 ? `/r.jpg?w=${50 + (i % 300)}` : '/r.jpg?w=100';
        const res = await fetch(`${node().url}${path}`).catch((err: Error) => ({ status: 0, statusText: err.message }) as Response);
        if ('arrayBuffer' in res) await res.arrayBuffer();
        images++;
        if (res.status !== 200) failures.push(`${path}: ${res.status} ${res.statusText}`);
      }
    };
    const loaders = Promise.all([load(() => a, 0), load(() => a, 1)]);

    // B is down through the failover.
    await b.stop();
    const oldMaster = await setup.masterPort();
    assert.equal(oldMaster, setup.servers[0]!.port);
    const killedAt = Date.now();
    await setup.servers[0]!.kill();

    const acknowledged: string[] = [first.body.id!];
    let acceptedAfterMs: number | undefined;
    while (Date.now() - killedAt < 20_000) {
      const r = await purge(a, { urls: ['/p.jpg'] });
      if (r.status === 200) {
        acceptedAfterMs = Date.now() - killedAt;
        acknowledged.push(r.body.id!);
        break;
      }
      assert.equal(r.status, 503);
      assert.equal(r.body.error?.code, 'EDGE_PURGE_UNAVAILABLE');
      await sleep(200);
    }
    t.diagnostic(`purges accepted again ${acceptedAfterMs} ms after the master was killed`);
    assert.ok(acceptedAfterMs !== undefined && acceptedAfterMs <= 10_000, `accepted again after ${acceptedAfterMs} ms`);
    assert.notEqual(await setup.masterPort(), oldMaster, 'the replica was promoted');
    assert.equal(await xcache(a, '/p.jpg?w=100'), '200 MISS', 'A applied the purge');

    // B comes back and reads what it missed before it serves.
    b = await start(dirB);
    assert.equal(await xcache(b, '/p.jpg?w=100'), '200 MISS', 'B caught up from the log');
    assert.equal(await xcache(b, '/q.jpg?w=100'), '200 HIT');
    // The next purge reaches both nodes.
    const next = await purge(b, { urls: ['/q.jpg'] });
    assert.equal(next.status, 200);
    acknowledged.push(next.body.id!);
    await sleep(1000);
    assert.equal(await xcache(a, '/q.jpg?w=100'), '200 MISS', 'A applied the purge published on B');

    loading = false;
    await loaders;
    t.diagnostic(`${images} image requests during the failover`);
    assert.deepEqual(failures, [], 'no image request failed');

    // Every acknowledged purge is in the new master's log.
    const newMaster = await setup.masterPort();
    const log = spawnSync('redis-cli', ['-p', String(newMaster), 'XRANGE', 'imgedge:purges', '-', '+'], { encoding: 'utf8' }).stdout;
    for (const id of acknowledged) assert.ok(log.includes(id), `purge ${id} survived the failover`);
  });
});
