import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { claimedPng } from '../helpers/hostile.js';
import { TestOrigin } from '../helpers/origin.js';
import { removeDir, startEdge, tempDir, testConfig, type RunningEdge } from '../helpers/edge.js';

describe('sources refused from their first bytes, before the download ends', () => {
  let origin: TestOrigin;
  let edge: RunningEdge;
  let cacheDir: string;
  const size = 2 * 1024 * 1024;

  before(async () => {
    origin = await TestOrigin.start();
    origin.set('/bomb.png', { body: await claimedPng(30_000, 30_000, size), headers: { 'content-type': 'image/png' }, trickleMs: 20 });
    origin.set('/page.jpg', { body: Buffer.concat([Buffer.from('<!doctype html><html><body>'), Buffer.alloc(size, 32)]), headers: { 'content-type': 'image/jpeg' }, trickleMs: 20 });
    cacheDir = await tempDir();
    edge = await startEdge(testConfig(origin.url, cacheDir));
  });
  after(async () => {
    await edge.close();
    await origin.close();
    await removeDir(cacheDir);
  });

  test('a header that claims too many pixels is a 422 after the first bytes', async () => {
    const res = await fetch(`${edge.url}/bomb.png?w=100`);
    assert.equal(res.status, 422);
    assert.equal(((await res.json()) as any).error.code, 'EDGE_IMAGE_TOO_LARGE');
    assert.ok(origin.bytesSent.get('/bomb.png')! < 256 * 1024, `${origin.bytesSent.get('/bomb.png')} bytes were sent`);
  });

  test('a body that is no image although the origin says so is a 415 after the first bytes', async () => {
    const res = await fetch(`${edge.url}/page.jpg?w=100`);
    assert.equal(res.status, 415);
    assert.equal(((await res.json()) as any).error.code, 'EDGE_NOT_AN_IMAGE');
    assert.ok(origin.bytesSent.get('/page.jpg')! < 256 * 1024, `${origin.bytesSent.get('/page.jpg')} bytes were sent`);
  });
});
