/**
 * The webhook queue on Redis Sentinel (the same `redis.sentinels` + `redis.masterName` as the
 * purge log): a callback is delivered, the master is killed, the sentinels promote the replica,
 * and callbacks accepted after the failover are delivered too.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { removeDir, tempDir } from '../helpers/edge.js';
import { apiConfig, krakenClient, Receiver, startApi } from '../helpers/api.js';
import { photoJpeg } from '../helpers/images.js';
import { startSentinels, type TestSentinels } from '../helpers/redis.js';

describe('webhooks on Redis Sentinel', () => {
  let setup: TestSentinels;
  let dir: string;
  let receiver: Receiver;

  before(async () => {
    setup = await startSentinels();
    dir = await tempDir('imgedge-hooks-sentinel-');
    receiver = await Receiver.start();
  });

  after(async () => {
    await receiver.close();
    await setup.stop();
    await removeDir(dir);
  });

  it('delivers before and after a failover', async () => {
    const running = await startApi(apiConfig(dir, { webhooks: { backoffMs: 200 } }, { redis: { sentinels: setup.sentinels, masterName: setup.masterName } }));
    try {
      const photo = await photoJpeg({ width: 200, height: 150 });
      const client = krakenClient(running.url);
      const first = await client.upload({ file: { value: photo, filename: 'before.jpg' }, callback_url: receiver.url, lossy: true });
      await receiver.until(1);
      const oldMaster = await setup.masterPort();
      await setup.servers.find((s) => s.port === oldMaster)!.kill();
      const deadline = Date.now() + 30_000;
      while ((await setup.masterPort()) === oldMaster) {
        assert.ok(Date.now() < deadline, 'the sentinels promoted the replica within 30 s');
        await new Promise((r) => setTimeout(r, 200));
      }
      const second = await client.upload({ file: { value: photo, filename: 'after.jpg' }, callback_url: receiver.url, lossy: true });
      assert.match(String(second.id), /^[0-9a-f]{32}$/, JSON.stringify(second));
      const got = await receiver.until(2, 60_000);
      assert.deepEqual(got.map((g) => JSON.parse(g.body).id), [first.id, second.id]);
    } finally {
      await running.close();
    }
  });
});
