/**
 * Quotas and rate limits hold across API processes when they share Redis (nginx spreads a key's
 * requests over every process of every machine), and the API stays open while Redis is away.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { RedisUsage } from '../../src/api/usage.js';
import { EdgeError } from '../../src/errors.js';
import { ioredisFor } from '../../src/api/webhook-queue.js';
import { removeDir, tempDir } from '../helpers/edge.js';
import { apiConfig, KEY, krakenClient, OTHER_KEY, startApi, type RunningApi } from '../helpers/api.js';
import { photoJpeg } from '../helpers/images.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

describe('API usage shared through Redis', () => {
  let redis: TestRedis | undefined;
  const dirs: string[] = [];
  const running: RunningApi[] = [];
  let photo: Buffer;
  const midMinute = Math.floor(Date.now() / 60_000) * 60_000 + 30_000;

  /** Two API processes' worth (each its own cache folder) on one Redis; OTHER_KEY may optimize 1.5 photos' bytes. */
  async function twoApis(requestsPerMinute: number): Promise<[RunningApi, RunningApi]> {
    const pair: RunningApi[] = [];
    for (let i = 0; i < 2; i++) {
      const dir = await tempDir('imgedge-usage-');
      dirs.push(dir);
      const keys = [{ key: KEY.api_key, secret: KEY.api_secret }, { key: OTHER_KEY.api_key, secret: OTHER_KEY.api_secret, quotaBytes: Math.round(photo.length * 1.5) }];
      // Both in the middle of one minute, so that a test's requests never straddle two.
      const api = await startApi(apiConfig(dir, { keys, requestsPerMinute }, { redis: { url: redis!.url } }), () => midMinute);
      running.push(api);
      pair.push(api);
    }
    return pair as [RunningApi, RunningApi];
  }

  before(async () => {
    redis = await startRedis();
    photo = await photoJpeg({ width: 200, height: 150 });
  });

  after(async () => {
    for (const api of running) await api.close();
    await redis?.stop();
    for (const dir of dirs) await removeDir(dir);
  });

  it('a key\'s quota is one for all processes: bytes used on one count on the other', async (t) => {
    if (!redis) return t.skip('redis-server is not installed');
    const [a, b] = await twoApis(600);
    const first = await krakenClient(a.url, OTHER_KEY).upload({ file: { value: photo, filename: 'q1.jpg' }, wait: true });
    assert.equal(first.success, true, JSON.stringify(first));
    const status = await krakenClient(b.url, OTHER_KEY).userStatus();
    assert.equal(status.quota_used, photo.length, 'the other process sees the bytes');
    const second = await krakenClient(b.url, OTHER_KEY).upload({ file: { value: photo, filename: 'q2.jpg' }, wait: true });
    assert.equal(second.success, true, 'within the quota');
    const third = await krakenClient(a.url, OTHER_KEY).upload({ file: { value: photo, filename: 'q3.jpg' }, wait: true });
    assert.equal(third.success, false);
    assert.equal(third.code, 'EDGE_QUOTA_EXCEEDED');
  });

  it('a key\'s requests a minute are counted across processes', async (t) => {
    if (!redis) return t.skip('redis-server is not installed');
    const [a, b] = await twoApis(4);
    const statuses: number[] = [];
    for (const api of [a, b, a, b, a]) {
      statuses.push((await fetch(`${api.url}/user_status`, { method: 'POST', body: JSON.stringify({ auth: KEY }) })).status);
    }
    // user_status is not rate-limited; optimizations are.
    assert.deepEqual(statuses, [200, 200, 200, 200, 200]);
    const tries: Response[] = [];
    for (const api of [a, b, a, b, a]) tries.push(await fetch(`${api.url}/v1/url`, { method: 'POST', body: JSON.stringify({ auth: KEY, url: 'http://127.0.0.1:9/x.jpg', wait: true }) }));
    assert.deepEqual(tries.map((r) => r.status === 429), [false, false, false, false, true], `statuses ${tries.map((r) => r.status)}`);
    assert.ok(Number(tries[4]!.headers.get('retry-after')) > 0);
  });

  it('counts nothing and refuses nothing while Redis cannot be reached, at once and saying so', async () => {
    // A real connection to a port nothing listens on: every command fails.
    const probe = net.createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const port = (probe.address() as AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    const errors: Error[] = [];
    const usage = new RedisUsage(ioredisFor({ url: `redis://127.0.0.1:${port}` }, { failFast: true }), 1, (err) => errors.push(err));
    try {
      const started = Date.now();
      for (let i = 0; i < 3; i++) await usage.admit({ key: 'key-with-quota', quotaBytes: 1 });
      await usage.add('key-with-quota', 1000);
      await assert.rejects(usage.used('key-with-quota'), (err: unknown) => err instanceof EdgeError && err.code === 'EDGE_USAGE_UNAVAILABLE', 'user_status says it cannot know, rather than nothing used');
      assert.ok(Date.now() - started < 3_000, `without waiting on Redis (${Date.now() - started} ms)`);
      assert.ok(errors.length > 0, 'the outage is reported');
    } finally {
      await usage.close();
    }
  });
});
