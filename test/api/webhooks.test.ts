/**
 * callback_url: the id at once, the result POSTed later, signed, retried with backoff, logged
 * for the caller; through Redis (BullMQ) with real redis-server, and in-process without it. No
 * delivery is lost when the API process restarts, nor when `npm run worker` is the one delivering.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { signature, WebhookSender } from '../../src/api/webhook-delivery.js';
import { parseNetworks, PublicAddressGuard } from '../../src/origin/public-fetch.js';
import { BullWebhookQueue } from '../../src/api/webhook-queue.js';
import { TransformLimiter } from '../../src/transform/limiter.js';
import { removeDir, tempDir } from '../helpers/edge.js';
import { apiConfig, KEY, krakenClient, OTHER_KEY, Receiver, startApi } from '../helpers/api.js';
import { photoJpeg } from '../helpers/images.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { TestOrigin } from '../helpers/origin.js';
import sharp from 'sharp';

const WORKER_JS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/api/worker-main.js');

async function deliveryLog(base: string, id: string, auth = KEY): Promise<{ status: number; json: Record<string, any> }> {
  const res = await fetch(`${base}/v1/webhooks/${id}`, { headers: { authorization: `Basic ${Buffer.from(`${auth.api_key}:${auth.api_secret}`).toString('base64')}` } });
  return { status: res.status, json: (await res.json()) as Record<string, any> };
}

async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

for (const mode of ['in-process', 'redis'] as const) {
  describe(`webhooks (${mode})`, () => {
    let redis: TestRedis | undefined;
    let dir: string;
    let receiver: Receiver;
    let photo: Buffer;
    const config = () => apiConfig(dir, { webhooks: { backoffMs: 150 } }, redis ? { redis: { url: redis.url } } : {});

    before(async () => {
      if (mode === 'redis') {
        redis = await startRedis();
        if (!redis) return;
      }
      dir = await tempDir('imgedge-hooks-');
      receiver = await Receiver.start();
      photo = await photoJpeg({ width: 400, height: 300, quality: 95 });
    });

    after(async () => {
      await receiver?.close();
      await redis?.stop();
      if (dir) await removeDir(dir);
    });

    it('answers an id at once, then POSTs the result, signed with the key\'s secret', async (t) => {
      if (mode === 'redis' && !redis) return t.skip('redis-server is not installed');
      const running = await startApi(config());
      try {
        const answer = await krakenClient(running.url).upload({ file: { value: photo, filename: 'hook.jpg' }, callback_url: receiver.url, lossy: true });
        assert.match(answer.id as string, /^[0-9a-f]{32}$/);
        assert.equal(Object.keys(answer).join(), 'id', 'nothing but the id');
        const [got] = await receiver.until(1);
        const body = JSON.parse(got!.body) as Record<string, unknown>;
        assert.equal(body.id, answer.id);
        assert.equal(body.success, true);
        assert.equal(body.file_name, 'hook.jpg');
        assert.ok((body.kraked_size as number) < photo.length);
        assert.equal(got!.headers['x-imgedge-signature'], signature(got!.body, KEY.api_secret));
        assert.equal((await fetch(body.kraked_url as string)).status, 200);
        const log = await until('the log to say delivered', async () => {
          const l = await deliveryLog(running.url, answer.id as string);
          return l.json.state === 'delivered' ? l : undefined;
        });
        assert.equal(log.json.attempts.length, 1);
        assert.equal(log.json.attempts[0].status, 200);
        assert.equal((await deliveryLog(running.url, answer.id as string, OTHER_KEY)).status, 404, 'another key cannot read it');
      } finally {
        await running.close();
        receiver.received.length = 0;
      }
    });

    it('takes a URL with resize sets: fetched after the id is answered, the results map POSTed, named after the URL it ended at', async (t) => {
      if (mode === 'redis' && !redis) return t.skip('redis-server is not installed');
      const origin = await TestOrigin.start();
      origin.set('/old/hook-photo.jpg', { status: 301, headers: { location: '/new/final%20name.jpg' }, body: '' });
      origin.set('/new/final%20name.jpg', { body: photo, headers: { 'content-type': 'image/jpeg' } });
      const running = await startApi(config());
      try {
        const answer = await krakenClient(running.url).url({
          url: `${origin.url}/old/hook-photo.jpg`, callback_url: receiver.url, lossy: true,
          resize: [{ id: 'thumb', strategy: 'square', size: 64 }, { id: 'wide', strategy: 'landscape', width: 200 }],
        });
        assert.equal(Object.keys(answer).join(), 'id', JSON.stringify(answer));
        const [got] = await receiver.until(1);
        const body = JSON.parse(got!.body) as Record<string, any>;
        assert.equal(body.id, answer.id);
        assert.equal(body.success, true, got!.body);
        assert.equal(got!.headers['x-imgedge-signature'], signature(got!.body, KEY.api_secret));
        assert.deepEqual(Object.keys(body.results).sort(), ['thumb', 'wide']);
        assert.deepEqual([body.results.thumb.kraked_width, body.results.thumb.kraked_height], [64, 64]);
        assert.deepEqual([body.results.wide.kraked_width, body.results.wide.kraked_height], [200, 150]);
        for (const one of Object.values(body.results) as Record<string, any>[]) {
          assert.equal(one.file_name, 'final-name.jpg', 'the name the redirect ended at, made safe');
          const download = await fetch(one.kraked_url as string);
          assert.equal(download.status, 200);
          assert.equal((await sharp(Buffer.from(await download.arrayBuffer())).metadata()).width, one.kraked_width);
        }
      } finally {
        await running.close();
        await origin.close();
        receiver.received.length = 0;
      }
    });

    it('retries with exponential backoff until the receiver takes it, across a restart of the API', async (t) => {
      if (mode === 'redis' && !redis) return t.skip('redis-server is not installed');
      receiver.failFirst = 2;
      let running = await startApi(config());
      const answer = await krakenClient(running.url).upload({ file: { value: photo, filename: 'retry.jpg' }, callback_url: receiver.url });
      await receiver.until(1);
      await running.close(); // the first attempt failed; the retry is queued
      running = await startApi(config());
      try {
        const got = await receiver.until(3);
        const gaps = [got[1]!.at - got[0]!.at, got[2]!.at - got[1]!.at];
        assert.ok(gaps[1]! >= gaps[0]! * 1.2 || gaps[1]! >= 280, `backoff grows: ${gaps.join(', ')} ms`);
        assert.equal(JSON.parse(got[2]!.body).id, answer.id);
        const log = await until('three attempts logged', async () => {
          const l = await deliveryLog(running.url, answer.id as string);
          return l.json.state === 'delivered' ? l : undefined;
        });
        assert.deepEqual(log.json.attempts.map((a: { status: number }) => a.status), [500, 500, 200]);
      } finally {
        await running.close();
        receiver.received.length = 0;
      }
    });

    it('gives up after the last try and logs it as failed; a failed job is delivered as its error', async (t) => {
      if (mode === 'redis' && !redis) return t.skip('redis-server is not installed');
      receiver.failFirst = 100;
      const running = await startApi(apiConfig(dir, { webhooks: { backoffMs: 20, attempts: 3 } }, redis ? { redis: { url: redis.url } } : {}));
      try {
        const answer = await krakenClient(running.url).upload({ file: { value: Buffer.from('not an image at all'), filename: 'x.jpg' }, callback_url: receiver.url });
        await receiver.until(3);
        const body = JSON.parse(receiver.received[0]!.body);
        assert.deepEqual([body.id, body.success, body.code], [answer.id, false, 'EDGE_NOT_AN_IMAGE']);
        const log = await until('the log to say failed', async () => {
          const l = await deliveryLog(running.url, answer.id as string);
          return l.json.state === 'failed' ? l : undefined;
        });
        assert.equal(log.json.attempts.length, 3);
        await new Promise((r) => setTimeout(r, 300));
        assert.equal(receiver.received.length, 3, 'no fourth try');
      } finally {
        receiver.failFirst = 0;
        await running.close();
        receiver.received.length = 0;
      }
    });

    it('a burst of callback jobs waits for transform turns instead of failing, and every one is delivered', async (t) => {
      if (mode === 'redis' && !redis) return t.skip('redis-server is not installed');
      // One transform at a time and no waiting line: any two at once would refuse one (EDGE_BUSY).
      const running = await startApi(apiConfig(dir, { webhooks: { backoffMs: 150 }, callbackConcurrency: 3 }, redis ? { redis: { url: redis.url } } : {}), undefined, new TransformLimiter(1, 0));
      try {
        const client = krakenClient(running.url);
        const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => client.upload({ file: { value: photo, filename: `burst${i}.jpg` }, callback_url: receiver.url, lossy: true, quality: 70 })));
        const got = await receiver.until(6, 60_000);
        const bodies = got.map((g) => JSON.parse(g.body) as { id: string; success: boolean; code?: string });
        assert.deepEqual(bodies.map((b) => b.id).sort(), answers.map((a) => a.id as string).sort());
        assert.deepEqual(bodies.filter((b) => !b.success), [], 'none failed for want of a turn');
      } finally {
        await running.close();
        receiver.received.length = 0;
      }
    });

    it('runs a job accepted before a crash (its upload kept on disk) when the API starts again', async (t) => {
      if (mode === 'redis' && !redis) return t.skip('redis-server is not installed');
      const id = 'ab'.repeat(16);
      const pendingDir = path.join(dir, 'api-pending');
      await mkdir(pendingDir, { recursive: true });
      await writeFile(path.join(pendingDir, `${id}.src`), photo);
      await writeFile(path.join(pendingDir, `${id}.json`), JSON.stringify({ id, key: KEY.api_key, options: { callback_url: receiver.url, lossy: true }, fileName: 'crashed.jpg', hasUpload: true }));
      const running = await startApi(config());
      try {
        const [got] = await receiver.until(1);
        const body = JSON.parse(got!.body);
        assert.deepEqual([body.id, body.success, body.file_name], [id, true, 'crashed.jpg']);
      } finally {
        await running.close();
        receiver.received.length = 0;
      }
    });
  });
}

describe('npm run worker', () => {
  let redis: TestRedis | undefined;
  let dir: string;
  let receiver: Receiver;

  before(async () => {
    redis = await startRedis();
    dir = await tempDir('imgedge-worker-');
    receiver = await Receiver.start();
  });

  after(async () => {
    await receiver.close();
    await redis?.stop();
    await removeDir(dir);
  });

  it('delivers what is queued in Redis, in a process of its own', async (t) => {
    if (!redis) return t.skip('redis-server is not installed');
    const queue = new BullWebhookQueue({ url: redis.url });
    const id = 'cd'.repeat(16);
    await queue.enqueue({ id, key: KEY.api_key, callbackUrl: receiver.url, body: { id, success: true } });
    await queue.close();
    const configFile = path.join(dir, 'config.json');
    await writeFile(configFile, JSON.stringify({ ...JSON.parse(JSON.stringify(apiConfig(dir))), sites: [{ name: 'test', origin: 'http://127.0.0.1:9' }] }));
    const worker = spawn(process.execPath, [WORKER_JS], { env: { ...process.env, IMGEDGE_CONFIG: configFile, IMGEDGE_REDIS_URL: redis.url, IMGEDGE_LOG_LEVEL: 'silent' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    worker.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    try {
      const [got] = await receiver.until(1);
      assert.equal(JSON.parse(got!.body).id, id);
      assert.equal(got!.headers['x-imgedge-signature'], signature(got!.body, KEY.api_secret));
    } finally {
      const exited = new Promise((r) => worker.once('exit', r));
      worker.kill('SIGTERM');
      await exited;
      assert.equal(stderr, '');
    }
  });
});

describe('a webhook attempt', () => {
  it('is cut off when the receiver has not answered in full within the limit, even while it trickles bytes', async (t) => {
    // A 200 at once, then a byte every 50 ms for 2 s: no single wait is long, the whole is.
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        let left = 40;
        const tick = setInterval(() => (--left > 0 ? res.write('.') : (clearInterval(tick), res.end())), 50);
        res.on('close', () => clearInterval(tick));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const sender = new WebhookSender(new PublicAddressGuard(parseNetworks(['127.0.0.0/8'])), () => 'a-long-random-secret-123', 400);
    t.after(() => sender.close());
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    const attempt = await sender.attempt({ id: 'job-1', key: 'key-0001', callbackUrl: url, body: { success: true } });
    assert.equal(attempt.status, undefined, `a trickled answer must not count as delivered: ${JSON.stringify(attempt)}`);
    assert.match(attempt.error ?? '', /within 400 ms/);
    assert.ok(attempt.ms >= 390 && attempt.ms < 1500, `cut off after ${attempt.ms} ms`);
  });
});
