/**
 * The optimization API as Kraken's own Node client drives it (`kraken` on npm, pointed at us):
 * URL and upload (file, Buffer, stream), lossless and lossy, resize strategies and sets,
 * conversions, the stored downloads and their expiry, and the errors in Kraken's shape.
 */
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { removeDir, tempDir } from '../helpers/edge.js';
import { apiConfig, KEY, krakenClient, OTHER_KEY, startApi, type RunningApi } from '../helpers/api.js';
import { claimedJpeg, corruptJpeg } from '../helpers/hostile.js';
import { TransformLimiter } from '../../src/transform/limiter.js';
import { alphaPng, orientedJpeg, photoJpeg } from '../helpers/images.js';
import { TestOrigin } from '../helpers/origin.js';
import { exifIfdOf, uintValue } from '../../src/transform/exif.js';

async function download(url: string): Promise<{ status: number; type: string | null; body: Buffer }> {
  const res = await fetch(url);
  return { status: res.status, type: res.headers.get('content-type'), body: Buffer.from(await res.arrayBuffer()) };
}

async function pixels(img: Buffer): Promise<Buffer> {
  return sharp(img).raw().toBuffer();
}

async function post(base: string, route: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(base + route, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe('optimization API (Kraken client)', () => {
  let dir: string;
  let origin: TestOrigin;
  let running: RunningApi;
  let offset = 0;
  let photo: Buffer;

  before(async () => {
    dir = await tempDir('imgedge-api-');
    origin = await TestOrigin.start();
    photo = await photoJpeg({ width: 1200, height: 800, quality: 95 });
    origin.set('/photo.jpg', { body: photo, headers: { 'content-type': 'image/jpeg' } });
    origin.set('/missing.jpg', { status: 404, body: 'no' });
    running = await startApi(apiConfig(dir, { keys: [{ key: KEY.api_key, secret: KEY.api_secret }, { key: OTHER_KEY.api_key, secret: OTHER_KEY.api_secret, quotaBytes: 1 }] }), () => Date.now() + offset);
  });

  after(async () => {
    await running.close();
    await origin.close();
    await removeDir(dir);
  });

  it('url, lossless: the same pixels in fewer bytes, downloadable from kraked_url', async () => {
    const r = await krakenClient(running.url).url({ url: `${origin.url}/photo.jpg`, wait: true });
    assert.equal(r.success, true, JSON.stringify(r));
    assert.equal(r.file_name, 'photo.jpg');
    assert.equal(r.original_size, photo.length);
    assert.ok((r.kraked_size as number) < photo.length, `${r.kraked_size} < ${photo.length}`);
    assert.equal(r.saved_bytes, photo.length - (r.kraked_size as number));
    assert.equal(r.original_width, 1200);
    assert.equal(r.original_height, 800);
    assert.match(r.kraked_url as string, new RegExp(`^${running.url}/[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{26}/photo\\.jpg$`));
    const got = await download(r.kraked_url as string);
    assert.equal(got.status, 200);
    assert.equal(got.type, 'image/jpeg');
    assert.equal(got.body.length, r.kraked_size);
    assert.ok((await pixels(got.body)).equals(await pixels(photo)), 'lossless keeps every pixel');
  });

  it('upload from a file path, a Buffer and a stream; lossy is smaller than lossless', async () => {
    const file = path.join(dir, 'upload.jpg');
    await writeFile(file, photo);
    const client = krakenClient(running.url);
    const fromPath = await client.upload({ file, wait: true, lossy: true });
    const fromBuffer = await client.upload({ file: { value: photo, filename: 'buffer.jpg' }, wait: true });
    const fromStream = await client.upload({ file: { value: createReadStream(file), filename: 'stream.jpg' }, wait: true, lossy: true, quality: 60 });
    for (const r of [fromPath, fromBuffer, fromStream]) {
      assert.equal(r.success, true, JSON.stringify(r));
      assert.equal(r.original_size, photo.length);
    }
    assert.equal(fromBuffer.file_name, 'buffer.jpg');
    assert.equal(fromStream.file_name, 'stream.jpg');
    assert.ok((fromPath.kraked_size as number) < (fromBuffer.kraked_size as number), 'lossy < lossless');
    const lossy = await download(fromStream.kraked_url as string);
    const meta = await sharp(lossy.body).metadata();
    assert.equal(meta.format, 'jpeg');
    assert.equal(meta.width, 1200);
  });

  it('resize strategies give the sizes Kraken documents', async () => {
    const client = krakenClient(running.url);
    const cases: [Record<string, unknown>, number, number][] = [
      [{ strategy: 'exact', width: 300, height: 300 }, 300, 300],
      [{ strategy: 'portrait', height: 200 }, 300, 200],
      [{ strategy: 'landscape', width: 600 }, 600, 400],
      [{ strategy: 'auto', width: 300, height: 300 }, 300, 200],
      [{ strategy: 'fit', width: 300, height: 300 }, 300, 300],
      [{ strategy: 'crop', width: 100, height: 50 }, 100, 50],
      [{ strategy: 'square', size: 128 }, 128, 128],
      [{ strategy: 'fill', width: 300, height: 300, background: '#ff0000' }, 300, 300],
    ];
    for (const [resize, w, h] of cases) {
      const r = await client.url({ url: `${origin.url}/photo.jpg`, wait: true, lossy: true, resize });
      assert.equal(r.success, true, `${resize.strategy}: ${JSON.stringify(r)}`);
      assert.deepEqual([r.kraked_width, r.kraked_height], [w, h], String(resize.strategy));
      const meta = await sharp((await download(r.kraked_url as string)).body).metadata();
      assert.deepEqual([meta.width, meta.height], [w, h], `${resize.strategy}: the file itself`);
    }
    // fill pads with its background: the band above a 300x200 picture in a 300x300 box is red.
    const filled = await client.url({ url: `${origin.url}/photo.jpg`, wait: true, lossy: true, resize: { strategy: 'fill', width: 300, height: 300, background: '#ff0000' } });
    const { data } = await sharp((await download(filled.kraked_url as string)).body).raw().toBuffer({ resolveWithObject: true });
    assert.ok(data[0]! > 200 && data[1]! < 60 && data[2]! < 60, `top-left is red: ${[...data.subarray(0, 3)]}`);
  });

  it('resize sets answer a results map by id, each its own file', async () => {
    const r = await krakenClient(running.url).url({
      url: `${origin.url}/photo.jpg`, wait: true, lossy: true,
      resize: [{ id: 'thumb', strategy: 'square', size: 64 }, { id: 'half', strategy: 'landscape', width: 600 }],
    });
    assert.equal(r.success, true, JSON.stringify(r));
    const results = r.results as Record<string, Record<string, unknown>>;
    assert.deepEqual(Object.keys(results).sort(), ['half', 'thumb']);
    assert.deepEqual([results.thumb!.kraked_width, results.thumb!.kraked_height], [64, 64]);
    assert.deepEqual([results.half!.kraked_width, results.half!.kraked_height], [600, 400]);
    assert.notEqual(results.thumb!.kraked_url, results.half!.kraked_url);
    for (const one of Object.values(results)) assert.equal((await download(one.kraked_url as string)).status, 200);
  });

  it('convert and webp change the format (and the extension unless kept); transparency survives to PNG', async () => {
    const client = krakenClient(running.url);
    const webp = await client.url({ url: `${origin.url}/photo.jpg`, wait: true, webp: true, lossy: true });
    assert.equal(webp.file_name, 'photo.webp');
    assert.equal((await download(webp.kraked_url as string)).type, 'image/webp');
    const kept = await client.url({ url: `${origin.url}/photo.jpg`, wait: true, lossy: true, convert: { format: 'png', keep_extension: true } });
    assert.equal(kept.file_name, 'photo.jpg');
    const keptDownload = await download(kept.kraked_url as string);
    assert.equal((await sharp(keptDownload.body).metadata()).format, 'png');
    assert.equal(keptDownload.type, 'image/png', 'served as what it is, whatever its name says');
    const png = await alphaPng({ width: 200, height: 100 });
    // convert.background: transparency flattened on the colour asked for (the corners are transparent).
    for (const [background, corner] of [['#0000ff', [0, 0, 255]], ['#ffffff', [255, 255, 255]]] as const) {
      const flat = await client.upload({ file: { value: png, filename: 'alpha.png' }, wait: true, lossy: true, convert: { format: 'jpeg', background } });
      const { data } = await sharp((await download(flat.kraked_url as string)).body).raw().toBuffer({ resolveWithObject: true });
      assert.ok([0, 1, 2].every((c) => Math.abs(data[c]! - corner[c]!) < 12), `corner on ${background}: ${[...data.subarray(0, 3)]}`);
    }
    const fromPng = await client.upload({ file: { value: png, filename: 'alpha.png' }, wait: true, convert: { format: 'webp' } });
    const out = await sharp((await download(fromPng.kraked_url as string)).body).metadata();
    assert.equal(out.format, 'webp');
    assert.equal(out.hasAlpha, true);
  });

  it('an EXIF-rotated JPEG optimized losslessly still shows upright', async () => {
    const rotated = await orientedJpeg(6, { width: 200, height: 100 });
    const r = await krakenClient(running.url).upload({ file: { value: rotated, filename: 'rotated.jpg' }, wait: true });
    const out = (await download(r.kraked_url as string)).body;
    assert.equal((await sharp(out).metadata()).orientation, 6, 'the orientation tag is carried over');
    assert.ok((await sharp(out).rotate().raw().toBuffer()).equals(await sharp(rotated).rotate().raw().toBuffer()));
  });

  it('a damaged JPEG answers 422 in Kraken shape, lossless (jpegtran) or lossy (sharp)', async () => {
    const damaged = corruptJpeg();
    for (const lossy of [false, true]) {
      const r = await krakenClient(running.url).upload({ file: { value: damaged, filename: 'damaged.jpg' }, wait: true, lossy });
      assert.equal(r.success, false, `lossy ${lossy}: ${JSON.stringify(r)}`);
      assert.equal(r.code, 'EDGE_BAD_IMAGE', `lossy ${lossy}: ${r.message}`);
    }
  });

  it('sampling_scheme sets the chroma subsampling; preserve_meta profile keeps the ICC profile', async () => {
    const client = krakenClient(running.url);
    for (const scheme of ['4:4:4', '4:2:0']) {
      const r = await client.url({ url: `${origin.url}/photo.jpg`, wait: true, lossy: true, quality: 80, sampling_scheme: scheme });
      assert.equal((await sharp((await download(r.kraked_url as string)).body).metadata()).chromaSubsampling, scheme);
    }
    const withProfile = await sharp(photo).withIccProfile('p3').jpeg({ quality: 95 }).toBuffer();
    for (const lossy of [false, true]) {
      const kept = await client.upload({ file: { value: withProfile, filename: 'p3.jpg' }, wait: true, lossy, preserve_meta: ['profile'] });
      const dropped = await client.upload({ file: { value: withProfile, filename: 'p3.jpg' }, wait: true, lossy });
      assert.ok((await sharp((await download(kept.kraked_url as string)).body).metadata()).icc, `lossy ${lossy}: the profile is kept`);
      assert.equal((await sharp((await download(dropped.kraked_url as string)).body).metadata()).icc, undefined, `lossy ${lossy}: stripped by default`);
    }
  });

  /** PixelXDimension and PixelYDimension of a JPEG's EXIF (the TIFF structure read by the edge's own IFD reader). */
  const exifPixelSize = (jpeg: Buffer): (number | undefined)[] => {
    const tiff = jpeg.subarray(jpeg.indexOf(Buffer.from('Exif\0\0', 'latin1')) + 6);
    const { le, entries } = exifIfdOf(tiff)!;
    return [uintValue(tiff, le, entries.get(0xa002)), uintValue(tiff, le, entries.get(0xa003))];
  };

  it('preserve_meta keeps the date, copyright and geotag asked for and nothing else, lossless, lossy and converted', async () => {
    const withMeta = await sharp(await photoJpeg({ width: 320, height: 240 }))
      .withExif({
        IFD0: { DateTime: '2020:01:02 03:04:05', Copyright: 'Copyright Test Owner', Artist: 'A. Photographer' },
        IFD2: { DateTimeOriginal: '2019:05:06 07:08:09' },
        IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '51/1 30/1 2640/100', GPSLongitudeRef: 'W', GPSLongitude: '0/1 7/1 3900/100', GPSMapDatum: 'WGS-84', GPSDateStamp: '2018:01:02' },
      })
      .withMetadata({ orientation: 6 })
      .jpeg({ quality: 92 })
      .toBuffer();
    const latitude = (le: boolean) => {
      const b = Buffer.alloc(24);
      [51, 1, 30, 1, 2640, 100].forEach((v, i) => (le ? b.writeUInt32LE(v, 4 * i) : b.writeUInt32BE(v, 4 * i)));
      return b;
    };
    /** What of the source's metadata an output carries, read from its bytes (not by the edge's own EXIF reader). */
    const carried = (body: Buffer) => {
      const text = body.toString('latin1');
      return {
        date: text.includes('2020:01:02 03:04:05') && text.includes('2019:05:06 07:08:09'),
        copyright: text.includes('Copyright Test Owner') && text.includes('A. Photographer'),
        geotag: text.includes('WGS-84') && text.includes('2018:01:02') && (body.includes(latitude(true)) || body.includes(latitude(false))),
      };
    };
    assert.deepEqual(carried(withMeta), { date: true, copyright: true, geotag: true }, 'the fixture carries all three');
    const client = krakenClient(running.url);
    const cases = [{ lossy: false }, { lossy: true }, { lossy: true, convert: { format: 'webp' } }];
    for (const how of cases) {
      for (const keep of [[], ['date'], ['copyright'], ['geotag'], ['date', 'geotag', 'orientation']]) {
        const r = await client.upload({ file: { value: withMeta, filename: 'meta.jpg' }, wait: true, ...how, preserve_meta: keep });
        assert.equal(r.success, true, JSON.stringify(r));
        const body = (await download(r.kraked_url as string)).body;
        assert.deepEqual(carried(body), { date: keep.includes('date'), copyright: keep.includes('copyright'), geotag: keep.includes('geotag') }, `${JSON.stringify(how)} keeping ${keep.join() || 'nothing'}`);
        const meta = await sharp(body).metadata();
        if (meta.format === 'jpeg' && body.includes('Exif\0\0', 0, 'latin1')) assert.deepEqual(exifPixelSize(body), [meta.width, meta.height], `${JSON.stringify(how)}: the EXIF names the image's own size`);
        // Shown upright either way: turned by its tag (lossless keeps the pixels) or turned pixels.
        const shownWidth = (meta.orientation ?? 1) >= 5 ? meta.height : meta.width;
        assert.equal(shownWidth, 240, `${JSON.stringify(how)}: shown upright`);
      }
    }
  });

  it('auto_orient turns the pixels of a lossless JPEG upright where its blocks allow it exactly, else keeps the tag', async () => {
    const client = krakenClient(running.url);
    const turned = async (width: number, height: number, auto_orient: boolean) => {
      const source = await sharp(await photoJpeg({ width, height })).withMetadata({ orientation: 6 }).jpeg({ quality: 92 }).toBuffer();
      const r = await client.upload({ file: { value: source, filename: 'turned.jpg' }, wait: true, auto_orient });
      assert.equal(r.success, true, JSON.stringify(r));
      const body = (await download(r.kraked_url as string)).body;
      return { source, body, meta: await sharp(body).metadata() };
    };
    // 320 x 240 is whole 16 px blocks: turned, the tag gone, the same picture.
    const exact = await turned(320, 240, true);
    assert.deepEqual([exact.meta.width, exact.meta.height, exact.meta.orientation ?? 1], [240, 320, 1]);
    const upright = async (b: Buffer) => (await sharp(b).rotate().raw().toBuffer({ resolveWithObject: true })).data;
    const [a, b] = [await upright(exact.source), await upright(exact.body)];
    let diff = 0;
    for (let i = 0; i < a.length; i++) diff += Math.abs(a[i]! - b[i]!);
    assert.ok(diff / a.length < 2, `the same picture turned (mean difference ${(diff / a.length).toFixed(2)})`);
    // 330 x 250 has part blocks at two edges: not turned, the tag kept, still shown upright.
    const partial = await turned(330, 250, true);
    assert.deepEqual([partial.meta.width, partial.meta.height, partial.meta.orientation], [330, 250, 6]);
    const kept = await turned(320, 240, false);
    assert.deepEqual([kept.meta.width, kept.meta.height, kept.meta.orientation], [320, 240, 6]);
  });

  it('user_status counts the bytes optimized per key', async () => {
    const before = await krakenClient(running.url).userStatus();
    assert.equal(before.success, true);
    await krakenClient(running.url).upload({ file: { value: photo, options: { filename: 'count.jpg' } }, wait: true });
    const afterStatus = await krakenClient(running.url).userStatus();
    assert.equal((afterStatus.quota_used as number) - (before.quota_used as number), photo.length);
  });

  it('errors come in Kraken shape with a 4xx and a stable code', async () => {
    const wrong = await post(running.url, '/v1/url', { auth: { api_key: KEY.api_key, api_secret: 'not-the-secret-at-all' }, url: `${origin.url}/photo.jpg`, wait: true });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.json.success, false);
    assert.equal(wrong.json.code, 'EDGE_UNAUTHORIZED');
    const noMode = await post(running.url, '/v1/url', { auth: KEY, url: `${origin.url}/photo.jpg` });
    assert.equal(noMode.status, 400);
    assert.match(noMode.json.message as string, /wait/);
    const badResize = await post(running.url, '/v1/url', { auth: KEY, url: `${origin.url}/photo.jpg`, wait: true, resize: { strategy: 'exact', width: 10 } });
    assert.equal(badResize.status, 400);
    assert.match(badResize.json.message as string, /height/);
    const missing = await post(running.url, '/v1/url', { auth: KEY, url: `${origin.url}/missing.jpg`, wait: true });
    assert.equal(missing.status, 400);
    assert.match(missing.json.message as string, /404/);
    const notImage = await krakenClient(running.url).upload({ file: { value: Buffer.from('hello, not an image'), options: { filename: 'a.txt' } }, wait: true });
    assert.equal(notImage.success, false);
    assert.equal(notImage.code, 'EDGE_NOT_AN_IMAGE');
    const garbage = await fetch(`${running.url}/v1/url`, { method: 'POST', body: '{not json' });
    assert.equal(garbage.status, 400);
    assert.equal(((await garbage.json()) as { success: boolean }).success, false);
    const quota = await krakenClient(running.url, OTHER_KEY).upload({ file: { value: photo, options: { filename: 'q.jpg' } }, wait: true });
    assert.equal(quota.success, true, 'the first job fits the quota');
    const over = await post(running.url, '/v1/url', { auth: OTHER_KEY, url: `${origin.url}/photo.jpg`, wait: true });
    assert.equal(over.status, 403);
    assert.equal(over.json.code, 'EDGE_QUOTA_EXCEEDED');
  });

  it('downloads expire after the hour, and the sweeper removes them from the sharded tree', async () => {
    const r = await krakenClient(running.url).upload({ file: { value: photo, filename: 'expiring.jpg' }, wait: true });
    assert.equal((await download(r.kraked_url as string)).status, 200);
    const resultDir = path.join(dir, 'api', ...new URL(r.kraked_url as string).pathname.split('/').slice(1, 5));
    assert.ok((await readdir(resultDir)).includes('expiring.jpg'));
    offset = 3600 * 1000 + 1000;
    try {
      assert.equal((await download(r.kraked_url as string)).status, 404, 'expired: refused before any sweep');
      const removed = await running.api.results.sweep();
      assert.ok(removed >= 1, `${removed} swept`);
      await assert.rejects(readdir(resultDir), { code: 'ENOENT' });
    } finally {
      offset = 0;
    }
  });
});

describe('optimization API limits', () => {
  let dir: string;
  let running: RunningApi;

  before(async () => {
    dir = await tempDir('imgedge-api-limits-');
    running = await startApi(apiConfig(dir, { allowNetworks: [], maxUploadBytes: 50_000, requestsPerMinute: 5 }));
  });

  after(async () => {
    await running.close();
    await removeDir(dir);
  });

  it('refuses URLs and callbacks on private addresses unless the operator allows the network', async () => {
    const loop = await post(running.url, '/v1/url', { auth: KEY, url: 'http://127.0.0.1:9/x.jpg', wait: true });
    assert.equal(loop.status, 403);
    assert.equal(loop.json.code, 'EDGE_FORBIDDEN_SOURCE');
    const named = await post(running.url, '/v1/url', { auth: KEY, url: 'http://localhost:9/x.jpg', wait: true });
    assert.equal(named.status, 403, 'a name resolving to loopback is refused at connect time');
    const hook = await krakenClient(running.url).upload({ file: { value: await photoJpeg({ width: 64, height: 64 }), options: { filename: 'a.jpg' } }, callback_url: 'http://10.1.2.3/hook' });
    assert.equal(hook.success, false);
    assert.match(hook.message as string, /callback_url/);
  });

  it('an upload over the cap answers 413; a key past its rate answers 429 with Retry-After', async () => {
    const big = await photoJpeg({ width: 1200, height: 800, quality: 98 });
    assert.ok(big.length > 50_000);
    const tooBig = await krakenClient(running.url).upload({ file: { value: big, options: { filename: 'big.jpg' } }, wait: true });
    assert.equal(tooBig.success, false);
    assert.equal(tooBig.code, 'EDGE_ORIGIN_TOO_LARGE');
    assert.match(tooBig.message as string, /50000 bytes/);
    const raw = new FormData();
    raw.append('data', JSON.stringify({ auth: KEY, wait: true }));
    raw.append('file', new Blob([new Uint8Array(big)]), 'big.jpg');
    assert.equal((await fetch(`${running.url}/v1/upload`, { method: 'POST', body: raw })).status, 413);
    let last: Response | undefined;
    for (let i = 0; i < 7; i++) last = await fetch(`${running.url}/user_status`, { method: 'POST', body: JSON.stringify({ auth: OTHER_KEY }) });
    for (let i = 0; i < 6; i++) last = await fetch(`${running.url}/v1/url`, { method: 'POST', body: JSON.stringify({ auth: KEY, url: 'http://127.0.0.1:9/x.jpg', wait: true }) });
    assert.equal(last!.status, 429);
    assert.ok(Number(last!.headers.get('retry-after')) > 0);
  });
});

describe('optimization API guards', () => {
  let dir: string;
  let origin: TestOrigin;

  before(async () => {
    dir = await tempDir('imgedge-api-guards-');
    origin = await TestOrigin.start();
  });

  after(async () => {
    await origin.close();
    await removeDir(dir);
  });

  it('a redirect to an address outside the allowed networks is refused before it is followed', async () => {
    const running = await startApi(apiConfig(dir, { allowNetworks: ['127.0.0.1/32'] }));
    try {
      const port = new URL(origin.url).port;
      origin.set('/hop.jpg', { status: 302, headers: { location: `http://127.0.0.2:${port}/photo.jpg` }, body: '' });
      origin.set('/photo.jpg', { body: await photoJpeg({ width: 64, height: 64 }), headers: { 'content-type': 'image/jpeg' } });
      const direct = await post(running.url, '/v1/url', { auth: KEY, url: `${origin.url}/photo.jpg`, wait: true });
      assert.equal(direct.status, 200, JSON.stringify(direct.json));
      const hop = await post(running.url, '/v1/url', { auth: KEY, url: `${origin.url}/hop.jpg`, wait: true });
      assert.equal(hop.status, 403, JSON.stringify(hop.json));
      assert.equal(hop.json.code, 'EDGE_FORBIDDEN_SOURCE');
    } finally {
      await running.close();
    }
  });

  it('a source claiming more pixels than allowed is refused from its header (422)', async () => {
    const running = await startApi(apiConfig(dir));
    try {
      const r = await krakenClient(running.url).upload({ file: { value: await claimedJpeg(30_000, 30_000), filename: 'huge.jpg' }, wait: true });
      assert.equal(r.success, false);
      assert.equal(r.code, 'EDGE_IMAGE_TOO_LARGE');
    } finally {
      await running.close();
    }
  });

  it('when the transform queue shared with the edge is full, it answers 503 with Retry-After', async () => {
    // One turn and no waiting line: a second optimization at once is refused.
    const running = await startApi(apiConfig(dir), undefined, new TransformLimiter(1, 0));
    try {
      const photo = await photoJpeg({ width: 1600, height: 1200, quality: 95 });
      const send = () => {
        const form = new FormData();
        form.append('data', JSON.stringify({ auth: KEY, wait: true, lossy: true, quality: 70 }));
        form.append('file', new Blob([new Uint8Array(photo)]), 'busy.jpg');
        return fetch(`${running.url}/v1/upload`, { method: 'POST', body: form });
      };
      const answers = await Promise.all([send(), send(), send()]);
      const busy = answers.filter((a) => a.status === 503);
      assert.ok(busy.length >= 1, `statuses ${answers.map((a) => a.status).join(', ')}`);
      assert.ok(Number(busy[0]!.headers.get('retry-after')) >= 1);
      assert.equal(((await busy[0]!.json()) as { code: string }).code, 'EDGE_BUSY');
      assert.ok(answers.some((a) => a.status === 200), 'the one with the turn is answered');
    } finally {
      await running.close();
    }
  });
});

describe('optimization API restarts', () => {
  it('keeps serving a stored result after the process restarts, until its hour is up', async () => {
    const dir = await tempDir('imgedge-api-restart-');
    try {
      const first = await startApi(apiConfig(dir));
      const r = await krakenClient(first.url).upload({ file: { value: await photoJpeg({ width: 200, height: 100 }), filename: 'kept.jpg' }, wait: true });
      await first.close();
      let offset = 0;
      const second = await startApi(apiConfig(dir), () => Date.now() + offset);
      try {
        const again = r.kraked_url!.toString().replace(first.url, second.url);
        assert.equal((await download(again)).status, 200);
        offset = 3601 * 1000;
        assert.equal((await download(again)).status, 404);
      } finally {
        await second.close();
      }
    } finally {
      await removeDir(dir);
    }
  });
});
