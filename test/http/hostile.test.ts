/**
 * Hostile input through a real edge and a real HTTP origin: sources that lie about their size,
 * truncated and corrupt files, polyglots, frame bombs, SVGs that reach for script, files and the
 * network, hostile parameter values and paths. Each case names the exact status and error code;
 * at the end the process must still be up and still transform a normal image.
 *
 * Small limits keep it fast and the outcomes deterministic: maxSourcePixels 20 MP, maxFrames 100,
 * maxOutputPixels 4 MP, a 2 s transform timeout. The site's origin has a base path (`/site`), so
 * every path the origin sees must stay under it. docs/SECURITY.md maps each case to its defence.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import vm from 'node:vm';
import sharp from 'sharp';
import { removeDir, startEdge, tempDir, testConfig, type RunningEdge } from '../helpers/edge.js';
import {
  claimedJpeg,
  claimedPng,
  claimedWebp,
  corruptJpeg,
  detailedPng,
  garbledIdatPng,
  gifBytes,
  jpegWithHtml,
  jpegWithHtmlComment,
  manyFramesGif,
  POLYGLOT_JS,
  polyglotGif,
  smallJpeg,
  SVG,
  truncated,
} from '../helpers/hostile.js';
import { photoJpeg } from '../helpers/images.js';
import { TestOrigin } from '../helpers/origin.js';

const MAX_SOURCE_PIXELS = 20_000_000;
const MAX_FRAMES = 100;
const MAX_OUTPUT_PIXELS = 4_000_000;
const TIMEOUT_SECONDS = 2;
const BASE = '/site';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** A GET with the request target sent exactly as written (fetch would normalize `..`, `\` and `%2e`). */
function get(edgeUrl: string, target: string): Promise<Answer> {
  const { hostname, port } = new URL(edgeUrl);
  return new Promise((resolve, reject) => {
    const req = http.get({ hostname, port, path: target, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

function errorOf(a: Answer): { code?: string; param?: string } {
  try {
    return (JSON.parse(a.body.toString('utf8')) as { error?: { code?: string; param?: string } }).error ?? {};
  } catch {
    return {};
  }
}

const describeAnswer = (a: Answer) =>
  `${a.status} ${a.headers['content-type'] ?? ''} ${(a.headers['content-type'] ?? '').includes('json') ? a.body.toString('utf8').slice(0, 300) : `(${a.body.length} bytes)`}`;

/** Asserts status, and for errors the code (and the parameter a 400 names). */
function expectAnswer(a: Answer, want: { status: number; code?: string; param?: string }, what: string): void {
  const got = errorOf(a);
  assert.equal(a.status, want.status, `${what}: expected ${want.status} ${want.code ?? ''}, got ${describeAnswer(a)}`);
  if (want.code) assert.equal(got.code, want.code, `${what}: expected code ${want.code}, got ${describeAnswer(a)}`);
  if (want.param) assert.equal(got.param, want.param, `${what}: expected param ${want.param}, got ${describeAnswer(a)}`);
  if (want.status >= 400) assert.equal(a.headers['x-content-type-options'], 'nosniff', `${what}: error bodies carry nosniff`);
}

/** Decoded RGBA pixels of a raster response (to compare renders, not encodings). */
async function pixels(body: Buffer): Promise<Buffer> {
  return sharp(body).ensureAlpha().raw().toBuffer();
}

describe('hostile input: each case gets its own status and code, and the edge stays up', () => {
  let origin: TestOrigin;
  /** a second server that SVG renders must never reach */
  let probe: TestOrigin;
  let edge: RunningEdge;
  const dirs: string[] = [];
  let secretPng = '';

  /** Registers a source on the origin under the site's base path; the edge URL is `/${name}`. */
  const serve = (name: string, body: Buffer | string, contentType: string) =>
    origin.set(`${BASE}/${name}`, { body, headers: { 'content-type': contentType } });

  before(async () => {
    origin = await TestOrigin.start();
    probe = await TestOrigin.start();
    const files = await tempDir('imgedge-hostile-files-');
    dirs.push(files);
    // A bright red file on this machine: an SVG that manages to draw it shows red.
    secretPng = path.join(files, 'secret.png');
    await writeFile(secretPng, await sharp({ create: { width: 100, height: 100, channels: 3, background: '#ff0000' } }).png().toBuffer());

    const jpeg = await smallJpeg();
    const png = await detailedPng();
    serve('photo.jpg', await photoJpeg({ width: 400, height: 300 }), 'image/jpeg');
    serve('huge-ihdr.png', await claimedPng(100_000, 100_000), 'image/png');
    serve('huge-sof.jpg', await claimedJpeg(65_000, 65_000), 'image/jpeg');
    serve('huge-canvas.webp', await claimedWebp(16_383, 16_383), 'image/webp');
    serve('huge-screen.gif', gifBytes({ screen: { width: 65_535, height: 65_535 }, frames: [{ width: 16, height: 16, index: 1 }] }), 'image/gif');
    serve('far-frame.gif', gifBytes({ screen: { width: 65_535, height: 65_535 }, frames: [{ left: 60_000, top: 60_000, width: 2, height: 2 }] }), 'image/gif');
    serve('half.jpg', truncated(jpeg), 'image/jpeg');
    serve('half.png', truncated(png), 'image/png');
    serve('noise.jpg', corruptJpeg(), 'image/jpeg');
    serve('garbled.png', await garbledIdatPng(), 'image/png');
    serve('empty.jpg', Buffer.alloc(0), 'image/jpeg');
    serve('frames-2000.gif', manyFramesGif(2000, 16), 'image/gif');
    serve('frames-2000-big-screen.gif', manyFramesGif(2000, 16, 500), 'image/gif');
    serve('two-types.jpg', jpeg, 'image/jpeg, text/html');
    serve('polyglot.gif', polyglotGif(1), 'image/gif');
    serve('html-after-eoi.jpg', await jpegWithHtml(), 'image/jpeg');
    serve('html-in-comment.jpg', await jpegWithHtmlComment(), 'image/jpeg');
    serve('plain.svg', SVG.plain, 'image/svg+xml');
    serve('script.svg', SVG.script, 'image/svg+xml');
    serve('onload.svg', SVG.onload, 'image/svg+xml');
    serve('external.svg', SVG.externalImage(`${probe.url}/probe.png`), 'image/svg+xml');
    serve('file-image.svg', SVG.fileImage(secretPng), 'image/svg+xml');
    serve('file-passwd.svg', SVG.fileImage('/etc/passwd'), 'image/svg+xml');
    serve('xinclude.svg', SVG.xinclude, 'image/svg+xml');
    serve('xinclude-plain.svg', SVG.xincludePlain, 'image/svg+xml');
    serve('inline-text.svg', SVG.inlineText, 'image/svg+xml');
    serve('huge-canvas.svg', SVG.hugeCanvas, 'image/svg+xml');
    serve('billion-laughs.svg', SVG.billionLaughs, 'image/svg+xml');
    serve('logo', SVG.script, 'image/svg+xml');
    serve('logo.png', SVG.script, 'image/svg+xml');
    serve('png-as-html', await sharp({ create: { width: 64, height: 32, channels: 3, background: '#336699' } }).png().toBuffer(), 'text/html');
    probe.set('/probe.png', { body: await sharp({ create: { width: 8, height: 8, channels: 3, background: '#00ff00' } }).png().toBuffer(), headers: { 'content-type': 'image/png' } });

    const cacheDir = await tempDir();
    dirs.push(cacheDir);
    edge = await startEdge(testConfig(`${origin.url}${BASE}`, cacheDir, {
      limits: { maxSourcePixels: MAX_SOURCE_PIXELS, maxFrames: MAX_FRAMES, maxOutputPixels: MAX_OUTPUT_PIXELS, transformTimeoutSeconds: TIMEOUT_SECONDS },
    }));
  });
  after(async () => {
    await edge.close();
    await origin.close();
    await probe.close();
    await Promise.all(dirs.map(removeDir));
  });

  // ---------------------------------------------------------------------------------------------
  // Sources: the origin answers 200 with a hostile body.
  const sources: { name: string; target: string; status: number; code?: string; why: string }[] = [
    { name: 'PNG IHDR claims 100000x100000', target: '/huge-ihdr.png?w=100', status: 422, code: 'EDGE_IMAGE_TOO_LARGE', why: 'header pixel check while streaming' },
    { name: 'JPEG SOF claims 65000x65000', target: '/huge-sof.jpg?w=100', status: 422, code: 'EDGE_IMAGE_TOO_LARGE', why: 'header pixel check while streaming' },
    { name: 'WebP VP8X canvas 16383x16383', target: '/huge-canvas.webp?w=100', status: 422, code: 'EDGE_IMAGE_TOO_LARGE', why: 'header pixel check while streaming' },
    // libnsgif (sharp's GIF decoder) takes a screen over 2048 as 1x1 and grows it to the first
    // frame; header-gif.ts does the same, so the claim alone costs nothing: a 16x16 image.
    { name: 'GIF screen 65535x65535, one 16x16 frame', target: '/huge-screen.gif?w=100', status: 200, why: 'sized as libnsgif sizes it: 16x16' },
    // ...but a frame placed far out grows the canvas for real (60002x60002): refused.
    { name: 'GIF frame at 60000,60000 on a 65535 screen', target: '/far-frame.gif?w=100', status: 422, code: 'EDGE_IMAGE_TOO_LARGE', why: 'the first frame grows the canvas' },
    { name: 'JPEG cut in half', target: '/half.jpg?w=100', status: 422, code: 'EDGE_BAD_IMAGE', why: "failOn: 'error' refuses truncation" },
    { name: 'PNG cut in half', target: '/half.png?w=100', status: 422, code: 'EDGE_BAD_IMAGE', why: "failOn: 'error' refuses truncation" },
    { name: 'JPEG SOI + APP0 + noise', target: '/noise.jpg?w=100', status: 422, code: 'EDGE_BAD_IMAGE', why: 'header walk finds no marker' },
    { name: 'PNG with a garbled IDAT', target: '/garbled.png?w=100', status: 422, code: 'EDGE_BAD_IMAGE', why: 'decoder error' },
    { name: 'zero bytes, Content-Type image/jpeg', target: '/empty.jpg?w=100', status: 415, code: 'EDGE_NOT_AN_IMAGE', why: 'no magic bytes (identify.ts), claimed image/ so not passed through (variant.ts)' },
    // 500x500 x min(frames, 100) = 25 MP > 20 MP: counted from the frames seen in the first 64 KiB.
    { name: '2000 frames on a 500x500 screen', target: '/frames-2000-big-screen.gif?w=100', status: 422, code: 'EDGE_IMAGE_TOO_LARGE', why: 'width x height x frames (capped at maxFrames)' },
    { name: 'SVG root tag claims 100000x100000', target: '/huge-canvas.svg?w=100', status: 422, code: 'EDGE_IMAGE_TOO_LARGE', why: 'header-svg.ts sizes the root tag' },
    { name: 'SVG billion laughs (10^9 entity expansions)', target: '/billion-laughs.svg?w=100', status: 422, code: 'EDGE_BAD_IMAGE', why: "libxml2's entity amplification limit inside librsvg" },
    { name: 'Content-Type "image/jpeg, text/html" on a JPEG', target: '/two-types.jpg?w=100', status: 415, code: 'EDGE_NOT_AN_IMAGE', why: 'a malformed multi-value Content-Type is refused' },
  ];
  for (const c of sources) {
    test(`source: ${c.name} → ${c.status} ${c.code ?? ''}`, async () => {
      const a = await get(edge.url, c.target);
      expectAnswer(a, c, `${c.name} (${c.why})`);
      if (a.status === 200) assert.match(String(a.headers['content-type']), /^image\//);
    });
  }

  test(`source: 2000 frames of 16x16 → 200, animated, at most ${MAX_FRAMES} frames`, async () => {
    // 16x16 x min(2000, 100) frames is far under 20 MP, so it is served, cut at maxFrames.
    const a = await get(edge.url, '/frames-2000.gif?w=16');
    expectAnswer(a, { status: 200 }, '2000-frame GIF');
    assert.equal(a.headers['content-type'], 'image/gif');
    const meta = await sharp(a.body).metadata();
    assert.equal(meta.pages, MAX_FRAMES, `the output has ${meta.pages} frames`);
  });

  test(`source: 2000 frames of 16x16 asked at w=2000 → the output over all frames stays under maxOutputPixels`, async () => {
    // A 70 KB source asking for 100 frames of 2000x2000 (400 MP): maxOutputPixels must bound the
    // frames together (or refuse with 422 EDGE_IMAGE_TOO_LARGE), not burn the transform timeout.
    const started = Date.now();
    const a = await get(edge.url, '/frames-2000.gif?w=2000');
    const seconds = (Date.now() - started) / 1000;
    if (a.status === 200) {
      const meta = await sharp(a.body).metadata();
      const total = meta.width! * (meta.pageHeight ?? meta.height!) * (meta.pages ?? 1);
      assert.ok(total <= MAX_OUTPUT_PIXELS, `the output has ${meta.pages} frames of ${meta.width}x${meta.pageHeight}: ${total} pixels > ${MAX_OUTPUT_PIXELS}`);
    } else {
      expectAnswer(a, { status: 422, code: 'EDGE_IMAGE_TOO_LARGE' }, `frame amplification (answered after ${seconds} s)`);
    }
    assert.ok(seconds < TIMEOUT_SECONDS, `answered after ${seconds} s: the transform ran into its ${TIMEOUT_SECONDS} s timeout`);
  });

  // ---------------------------------------------------------------------------------------------
  // Polyglots: served only as re-encoded images, never as the bytes that also mean something else.
  test('polyglot: the GIF that is also JavaScript is re-encoded; the script is gone', async () => {
    const source = polyglotGif(1);
    assert.doesNotThrow(() => new vm.Script(source.toString('latin1')), 'the fixture is valid JavaScript');
    assert.equal((await sharp(source).metadata()).format, 'gif', 'the fixture is a valid GIF');
    for (const target of ['/polyglot.gif?w=32', '/polyglot.gif?fm=gif']) {
      const a = await get(edge.url, target);
      expectAnswer(a, { status: 200 }, target);
      assert.match(String(a.headers['content-type']), /^image\//, target);
      assert.equal(a.headers['x-content-type-options'], 'nosniff', target);
      assert.ok(!a.body.includes(POLYGLOT_JS), `${target}: the script bytes are in the response (the source was served as it came, not re-encoded)`);
      assert.throws(() => new vm.Script(a.body.toString('latin1')), `${target}: the response still parses as JavaScript`);
    }
  });

  test('polyglot: a JPEG carrying HTML (after EOI, or in a comment segment) is re-encoded; the HTML is gone', async () => {
    // w=100 resizes; q=100 without resizing is where "never larger" could hand back the source bytes.
    for (const name of ['html-after-eoi.jpg', 'html-in-comment.jpg']) {
      for (const target of [`/${name}?w=100`, `/${name}?q=100`]) {
        const a = await get(edge.url, target);
        expectAnswer(a, { status: 200 }, target);
        assert.match(String(a.headers['content-type']), /^image\//, target);
        assert.equal(a.headers['x-content-type-options'], 'nosniff', target);
        assert.ok(!a.body.includes('<script'), `${target}: the HTML payload is in the response (${a.body.length} bytes: the source's own bytes were served)`);
      }
    }
  });

  // ---------------------------------------------------------------------------------------------
  // SVG: always rasterized; no script, no file, no network.
  const svgs = ['script.svg', 'onload.svg', 'external.svg', 'file-image.svg', 'file-passwd.svg', 'xinclude.svg', 'xinclude-plain.svg'];
  for (const name of svgs) {
    test(`svg: ${name}?w=100 → 200 raster, never image/svg+xml`, async () => {
      const a = await get(edge.url, `/${name}?w=100`);
      expectAnswer(a, { status: 200 }, name);
      assert.match(String(a.headers['content-type']), /^image\/(png|webp|avif|jpeg|gif)$/, `${name}: got ${a.headers['content-type']}`);
      assert.ok(!a.body.includes('<script') && !a.body.includes('onload'), name);
    });
  }

  test('svg: nothing outside the document is drawn (file image, xi:include) and nothing is fetched', async () => {
    const render = async (name: string) => pixels((await get(edge.url, `/${name}?w=100`)).body);
    const plain = await render('plain.svg');
    // Control: text does draw on this machine, so an included file would show.
    assert.ok(!(await render('inline-text.svg')).equals(plain), 'control: inline text changes the render');
    for (const name of ['external.svg', 'file-image.svg', 'file-passwd.svg', 'xinclude.svg', 'xinclude-plain.svg']) {
      assert.ok((await render(name)).equals(plain), `${name} renders differently from the same SVG without its external reference`);
    }
    assert.equal(probe.total, 0, `the SVG renderer requested ${[...probe.hits.keys()].join(', ')} from the probe server`);
  });

  test('svg: asked for without parameters, an SVG is not served as an SVG document', async () => {
    const a = await get(edge.url, '/script.svg');
    assert.ok(
      !String(a.headers['content-type'] ?? '').startsWith('image/svg'),
      `expected the edge to rasterize SVG by default (image/png through the pipeline), got ${describeAnswer(a)} ` +
        `with content-security-policy=${a.headers['content-security-policy'] ?? 'none'}: the origin's SVG document, script included, is served as it came`,
    );
    expectAnswer(a, { status: 200 }, 'bare SVG');
    assert.ok(!a.body.includes('<script'), 'the script is in the response');
  });

  test('svg: an SVG under another name passes through only inside a sandbox; with parameters it is rasterized', async () => {
    for (const target of ['/logo', '/logo.png']) {
      const a = await get(edge.url, target);
      expectAnswer(a, { status: 200 }, target);
      if (String(a.headers['content-type']).startsWith('image/svg')) {
        const csp = String(a.headers['content-security-policy'] ?? '');
        assert.match(csp, /default-src 'none'/, `${target}: an SVG document passed through without a strict CSP (got "${csp}")`);
        assert.match(csp, /\bsandbox\b/, `${target}: an SVG document passed through without CSP sandbox (got "${csp}")`);
        assert.equal(a.headers['x-content-type-options'], 'nosniff', target);
      }
    }
    // The magic bytes decide, not the name or the Content-Type.
    const svg = await get(edge.url, '/logo.png?w=50');
    expectAnswer(svg, { status: 200 }, 'SVG named .png');
    assert.equal(svg.headers['content-type'], 'image/png');
    const png = await get(edge.url, '/png-as-html?w=32');
    expectAnswer(png, { status: 200 }, 'PNG sent as text/html');
    assert.equal(png.headers['content-type'], 'image/png');
  });

  // ---------------------------------------------------------------------------------------------
  // Parameters: every bad value is a 400 naming its parameter; over-long URLs are refused whole.
  const params: { query: string; status: number; code: string; param?: string; label?: string }[] = [
    { query: 'w=1e309', status: 400, code: 'EDGE_BAD_PARAM', param: 'w' },
    { query: 'w=NaN', status: 400, code: 'EDGE_BAD_PARAM', param: 'w' },
    { query: 'w=-0', status: 400, code: 'EDGE_BAD_PARAM', param: 'w' },
    { query: 'h=99999999999999999999', status: 400, code: 'EDGE_BAD_PARAM', param: 'h' },
    { query: 'dpr=0', status: 400, code: 'EDGE_BAD_PARAM', param: 'dpr' },
    { query: 'q=1.5e2', status: 400, code: 'EDGE_BAD_PARAM', param: 'q' },
    { query: 'rect=0,0,0,0', status: 400, code: 'EDGE_BAD_PARAM', param: 'rect' },
    { query: 'rect=-1,0,10,10', status: 400, code: 'EDGE_BAD_PARAM', param: 'rect' },
    { query: 'ar=0:1&fit=crop&w=10', status: 400, code: 'EDGE_BAD_PARAM', param: 'ar' },
    { query: 'ar=1:0&fit=crop&w=10', status: 400, code: 'EDGE_BAD_PARAM', param: 'ar' },
    { query: 'blur=2001', status: 400, code: 'EDGE_BAD_PARAM', param: 'blur' },
    { query: 'rot=360', status: 400, code: 'EDGE_BAD_PARAM', param: 'rot' },
    { query: 'fp-x=2', status: 400, code: 'EDGE_BAD_PARAM', param: 'fp-x' },
    { query: 'bg=ggg', status: 400, code: 'EDGE_BAD_PARAM', param: 'bg' },
    { query: 'fill-color=%00', status: 400, code: 'EDGE_BAD_PARAM', param: 'fill-color' },
    { query: 'fm=exe', status: 400, code: 'EDGE_BAD_PARAM', param: 'fm' },
    { query: 'crop=../../etc', status: 400, code: 'EDGE_BAD_PARAM', param: 'crop' },
    // Over limits.maxUrlLength (8192): refused before any parsing.
    { query: `w=${'9'.repeat(10_000)}`, status: 414, code: 'EDGE_BAD_PATH', label: 'a 10 000-character value' },
    { query: 'w=10&'.repeat(2000), status: 414, code: 'EDGE_BAD_PATH', label: '2 000 repeated w= parameters' },
  ];
  for (const c of params) {
    test(`param: ${c.label ?? c.query} → ${c.status} ${c.code} ${c.param ?? ''}`, async () => {
      expectAnswer(await get(edge.url, `/photo.jpg?${c.query}`), c, c.label ?? c.query);
    });
  }

  test('param: a 20 000-character value is refused before the edge parses it (431 from Node, or 414)', async () => {
    // Node's HTTP parser stops at 16 KiB of request line and headers and answers 431 itself.
    const a = await get(edge.url, `/photo.jpg?w=${'9'.repeat(20_000)}`);
    assert.ok(a.status === 431 || a.status === 414, `got ${describeAnswer(a)}`);
    if (a.status === 414) assert.equal(errorOf(a).code, 'EDGE_BAD_PATH');
  });

  // ---------------------------------------------------------------------------------------------
  // Paths: sent raw (a client's URL parser would normalize them first).
  // WHATWG parsing resolves `..`, `%2e%2e` and backslashes before anything else sees the path
  // (those reach the origin as a plain path under the base and get its 404); an encoded NUL,
  // slash or backslash cannot be resolved that way and is refused.
  const paths: { target: string; status: number; code?: string }[] = [
    { target: '/%00.jpg?w=10', status: 400, code: 'EDGE_BAD_PATH' },
    { target: '/..%2f..%2fetc%2fpasswd?w=10', status: 400, code: 'EDGE_BAD_PATH' },
    { target: '/..%5c..%5cetc%5cpasswd?w=10', status: 400, code: 'EDGE_BAD_PATH' },
    { target: '/%2e%2e/%2e%2e/etc/passwd?w=10', status: 404, code: 'EDGE_ORIGIN_STATUS' },
    { target: '/a\\..\\b.jpg?w=10', status: 404, code: 'EDGE_ORIGIN_STATUS' },
    { target: '/images/../../etc/passwd?w=10', status: 404, code: 'EDGE_ORIGIN_STATUS' },
    // passthrough (no parameters): the same paths, answered by the origin's own 404
    { target: '/..%2f..%2fetc%2fpasswd', status: 400, code: 'EDGE_BAD_PATH' },
    { target: '/%2e%2e/%2e%2e/etc/passwd', status: 404 },
  ];
  for (const c of paths) {
    test(`path: ${c.target} → ${c.status} ${c.code ?? ''}`, async () => {
      const a = await get(edge.url, c.target);
      assert.equal(a.status, c.status, `${c.target}: expected ${c.status} ${c.code ?? ''}, got ${describeAnswer(a)}`);
      if (c.code) assert.equal(errorOf(a).code, c.code, `${c.target}: got ${describeAnswer(a)}`);
    });
  }

  test('path: the origin only ever saw paths under the base path, without dot segments', () => {
    for (const seen of origin.hits.keys()) {
      const pathname = seen.split('?')[0]!;
      assert.ok(pathname.startsWith(`${BASE}/`), `the origin was asked for ${seen}, outside ${BASE}/`);
      assert.ok(!pathname.split('/').some((s) => s === '..' || s === '.'), `the origin was asked for ${seen}`);
      assert.ok(!pathname.includes('\\') && !pathname.includes('\0'), `the origin was asked for ${seen}`);
    }
  });

  test('path: encoded slashes and dots do not smuggle a dot segment to the origin', () => {
    // An origin that decodes %2F before resolving dot segments would read `..%2f` as `../` and
    // leave the site's base path. Expected: the edge refuses such paths (400 EDGE_BAD_PATH) or
    // the origin never sees them.
    for (const seen of origin.hits.keys()) {
      let decoded: string;
      try {
        decoded = decodeURIComponent(seen.split('?')[0]!);
      } catch {
        continue;
      }
      assert.ok(
        !decoded.split(/[/\\]/).some((s) => s === '..'),
        `the origin was asked for ${seen}, which decodes to ${decoded}: a dot segment outside the base path on an origin that decodes %2F`,
      );
    }
  });

  // ---------------------------------------------------------------------------------------------
  test('after all of it: the process is up and still transforms a normal image', async () => {
    const health = await get(edge.url, '/_edge/health');
    assert.equal(health.status, 200);
    const a = await get(edge.url, '/photo.jpg?w=120');
    expectAnswer(a, { status: 200 }, 'normal image');
    assert.equal(a.headers['content-type'], 'image/jpeg');
    assert.equal((await sharp(a.body).metadata()).width, 120);
    assert.equal(probe.total, 0, 'nothing ever reached the probe server');
  });
});
