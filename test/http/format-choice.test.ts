/**
 * auto=format never loses frames the source had, and never answers larger than the same variant
 * in another format the client takes and the edge considers (the negotiated format and the
 * source's family): each answer is checked against those formats asked for by name.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { removeDir, spawnEdge, startEdge, tempDir, testConfig, type RunningEdge } from '../helpers/edge.js';
import { animatedGif, animatedWebp, flatUiPng, photoJpeg, stripesGif } from '../helpers/images.js';
import { TestOrigin } from '../helpers/origin.js';

const ACCEPT = {
  legacy: 'image/png,image/*;q=0.8,*/*;q=0.5',
  webp: 'image/webp,image/*,*/*;q=0.8',
  avif: 'image/avif,image/webp,image/*,*/*;q=0.8',
};
type Client = keyof typeof ACCEPT;
const FM: Record<string, string> = { 'image/avif': 'avif', 'image/webp': 'webp', 'image/gif': 'gif', 'image/png': 'png', 'image/jpeg': 'jpg' };

interface Fetched {
  type: string;
  body: Buffer;
  frames: number;
}

describe('auto=format: animation kept, and never larger than another considered format', () => {
  let dir: string;
  let origin: TestOrigin;
  let edge: RunningEdge;
  const frames: Record<string, number> = {};

  before(async () => {
    dir = await tempDir('imgedge-format-choice-');
    origin = await TestOrigin.start();
    const sources: Record<string, [Buffer, string]> = {
      '/spin.gif': [await animatedGif({ frames: 6, width: 80, height: 80 }), 'image/gif'],
      '/stripes.gif': [await stripesGif(), 'image/gif'],
      '/spin.webp': [await animatedWebp({ frames: 6, width: 80, height: 80 }), 'image/webp'],
      '/ui.png': [await flatUiPng(), 'image/png'],
      '/photo.jpg': [await photoJpeg({ width: 1200, height: 800, quality: 90, noise: 8 }), 'image/jpeg'],
    };
    for (const [path, [body, type]] of Object.entries(sources)) {
      origin.set(path, { body, headers: { 'content-type': type } });
      frames[path] = (await sharp(body).metadata()).pages ?? 1;
    }
    // AVIF made on the request itself (not in the background), so the AVIF client's answer is final.
    edge = await startEdge(testConfig(origin.url, dir, { site: { formats: { avifInBackground: false } } }));
  });

  after(async () => {
    await edge.close();
    await origin.close();
    await removeDir(dir);
  });

  async function get(path: string, accept = '*/*'): Promise<Fetched> {
    const res = await fetch(`${edge.url}${path}`, { headers: { accept } });
    assert.equal(res.status, 200, path);
    const body = Buffer.from(await res.arrayBuffer());
    return { type: res.headers.get('content-type') ?? '', body, frames: (await sharp(body).metadata()).pages ?? 1 };
  }

  /**
   * Asks `auto=format` as `client`, checks the type, the frames, and that each considered format
   * the client takes, asked by name (same variant, fm=), is no smaller.
   */
  async function check(path: string, query: string, client: Client, expected: string, considered: string[]): Promise<Fetched> {
    const answer = await get(`${path}?${query}&auto=format`, ACCEPT[client]);
    assert.equal(answer.type, expected, `${path}?${query} for a ${client} client`);
    if (frames[path]! > 1) assert.equal(answer.frames, frames[path], `${path}: every frame kept`);
    for (const fm of considered) {
      const named = await get(`${path}?${query}&fm=${fm}`);
      assert.ok(answer.body.length <= named.body.length, `${path}?${query} (${client}): ${FM[expected]} ${answer.body.length} B, but ${fm} is ${named.body.length} B`);
    }
    return answer;
  }

  it('an animated WebP stays animated for a client without WebP: an animated GIF', async () => {
    await check('/spin.webp', 'w=100', 'legacy', 'image/gif', []);
    await check('/spin.webp', 'w=100', 'webp', 'image/webp', []);
    // AVIF cannot hold the animation (libvips writes no animated AVIF): WebP it is.
    await check('/spin.webp', 'w=100', 'avif', 'image/webp', []);
  });

  it('an explicit still format still answers the first frame', async () => {
    const still = await get('/spin.webp?w=100&fm=png', ACCEPT.legacy);
    assert.equal(still.type, 'image/png');
    assert.equal(still.frames, 1);
  });

  it('an animated GIF answers GIF when its WebP would be larger, WebP when smaller', async () => {
    const stripes = await check('/stripes.gif', 'w=100', 'webp', 'image/gif', ['webp', 'gif']);
    const stripesWebp = await get('/stripes.gif?w=100&fm=webp');
    assert.ok(stripesWebp.body.length > stripes.body.length * 2, 'the fixture is one where WebP loses');
    await check('/stripes.gif', 'w=100', 'avif', 'image/gif', ['webp', 'gif']);
    // AVIF holds no animation: an AVIF client is weighed between WebP and GIF.
    await check('/spin.gif', 'w=100', 'webp', 'image/webp', ['webp', 'gif']);
    await check('/spin.gif', 'w=100', 'legacy', 'image/gif', []);
  });

  it('a flat graphic answers PNG where WebP and AVIF lose, and the modern format where it wins', async () => {
    await check('/ui.png', 'w=800', 'webp', 'image/png', ['webp', 'png']);
    await check('/ui.png', 'w=800', 'avif', 'image/png', ['avif', 'png']);
    // Scaled down, the edges blur into many colours: lossy wins.
    await check('/ui.png', 'w=300', 'webp', 'image/webp', ['webp', 'png']);
    await check('/ui.png', 'w=300', 'avif', 'image/avif', ['avif', 'png']);
  });

  it('a photograph keeps the negotiated format: one encode at one perceptual target, weighed against JPEG at a fixed q', async () => {
    await check('/photo.jpg', 'w=400&auto=compress', 'webp', 'image/webp', ['webp', 'jpg']);
    await check('/photo.jpg', 'w=400&auto=compress', 'avif', 'image/avif', ['avif', 'jpg']);
    await check('/photo.jpg', 'w=400', 'webp', 'image/webp', ['webp', 'jpg']);
    await check('/photo.jpg', 'w=400', 'legacy', 'image/jpeg', []);
  });
});

describe('auto=format: the log line says which formats were tried', () => {
  it('names both encodes when a fallback was tried, one when not', async () => {
    const dir = await tempDir('imgedge-format-log-');
    const origin = await TestOrigin.start();
    origin.set('/stripes.gif', { body: await stripesGif(), headers: { 'content-type': 'image/gif' } });
    origin.set('/photo.jpg', { body: await photoJpeg({ width: 800, height: 600, quality: 90, noise: 8 }), headers: { 'content-type': 'image/jpeg' } });
    const config = { server: { host: '127.0.0.1', port: 0 }, cache: { dir }, sites: [{ name: 'test', origin: origin.url }] };
    const running = await spawnEdge(config, dir);
    const lines: Record<string, unknown>[] = [];
    running.child.stdout!.on('data', (d: Buffer) => {
      for (const line of d.toString().split('\n')) if (line.startsWith('{')) lines.push(JSON.parse(line) as Record<string, unknown>);
    });
    try {
      await (await fetch(`${running.url}/stripes.gif?w=90&auto=format`, { headers: { accept: ACCEPT.webp } })).arrayBuffer();
      // A client without modern formats gets the source's family: nothing else to weigh.
      await (await fetch(`${running.url}/photo.jpg?w=300&auto=format`, { headers: { accept: ACCEPT.legacy } })).arrayBuffer();
      const logged = async (path: string) => {
        for (let i = 0; i < 50 && !lines.some((l) => l.path === path); i++) await new Promise((r) => setTimeout(r, 100));
        return lines.find((l) => l.path === path);
      };
      assert.equal((await logged('/stripes.gif'))?.formatsTried, 'webp,gif');
      assert.equal((await logged('/photo.jpg'))?.formatsTried, 'jpeg');
    } finally {
      await running.stop();
      await origin.close();
      await removeDir(dir);
    }
  });
});
