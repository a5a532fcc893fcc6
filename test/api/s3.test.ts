/**
 * s3_store against a real S3-compatible server (s3rver, started here on loopback): the optimized
 * file lands in the caller's bucket under its path (each resize set under its storage_path),
 * with the headers asked for, and kraked_url names the object.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { AddressInfo } from 'node:net';
import S3rver from 's3rver';
import sharp from 'sharp';
import { removeDir, tempDir } from '../helpers/edge.js';
import { apiConfig, krakenClient, startApi, type RunningApi } from '../helpers/api.js';
import { photoJpeg } from '../helpers/images.js';

// s3rver checks signatures against its one built-in account.
const S3_AUTH = { key: 'S3RVER', secret: 'S3RVER', bucket: 'kraked', region: 'us-east-1' };

describe('s3_store (S3-compatible server)', () => {
  let dir: string;
  let s3: S3rver;
  let endpoint: string;
  let running: RunningApi;
  let photo: Buffer;

  before(async () => {
    dir = await tempDir('imgedge-s3-');
    s3 = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: `${dir}/s3`, configureBuckets: [{ name: S3_AUTH.bucket, configs: [] }] });
    const address = (await s3.run()) as AddressInfo;
    endpoint = `http://127.0.0.1:${address.port}`;
    running = await startApi(apiConfig(dir, { s3: { endpoint } }));
    photo = await photoJpeg({ width: 800, height: 600, quality: 95 });
  });

  after(async () => {
    await running.close();
    await s3.close();
    await removeDir(dir);
  });

  it('stores the result in the bucket at its path; kraked_url is the object', async () => {
    const r = await krakenClient(running.url).upload({
      file: { value: photo, filename: 'pic.jpg' }, wait: true, lossy: true,
      s3_store: { ...S3_AUTH, path: 'images/2026/pic.jpg', headers: { 'Cache-Control': 'max-age=31536000', 'X-Amz-Meta-Owner': 'site-one' } },
    });
    assert.equal(r.success, true, JSON.stringify(r));
    assert.equal(r.kraked_url, `${endpoint}/${S3_AUTH.bucket}/images/2026/pic.jpg`);
    const res = await fetch(r.kraked_url as string);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'image/jpeg');
    assert.equal(res.headers.get('cache-control'), 'max-age=31536000');
    assert.equal(res.headers.get('x-amz-meta-owner'), 'site-one', 'other headers are stored as the object\'s metadata');
    const body = Buffer.from(await res.arrayBuffer());
    assert.equal(body.length, r.kraked_size);
    assert.equal((await sharp(body).metadata()).width, 800);
  });

  it('puts each resize set at its storage_path', async () => {
    const r = await krakenClient(running.url).upload({
      file: { value: photo, filename: 'sets.jpg' }, wait: true, lossy: true, s3_store: S3_AUTH,
      resize: [{ id: 'sm', strategy: 'square', size: 100, storage_path: 'sets/sm.jpg' }, { id: 'md', strategy: 'landscape', width: 400, storage_path: 'sets/md.jpg' }],
    });
    assert.equal(r.success, true, JSON.stringify(r));
    const results = r.results as Record<string, { kraked_url: string; kraked_width: number }>;
    for (const [id, width] of [['sm', 100], ['md', 400]] as const) {
      assert.equal(results[id]!.kraked_url, `${endpoint}/${S3_AUTH.bucket}/sets/${id}.jpg`);
      const body = Buffer.from(await (await fetch(results[id]!.kraked_url)).arrayBuffer());
      assert.equal((await sharp(body).metadata()).width, width);
    }
  });

  it('a store that refuses (unknown key, no such bucket) answers a 400 that says so', async () => {
    for (const store of [{ ...S3_AUTH, key: 'NOBODY' }, { ...S3_AUTH, bucket: 'no-such-bucket' }]) {
      const r = await krakenClient(running.url).upload({ file: { value: photo, filename: 'x.jpg' }, wait: true, s3_store: store });
      assert.equal(r.success, false, JSON.stringify(store));
      assert.match(r.message as string, /s3_store: the bucket refused/);
    }
  });
});
