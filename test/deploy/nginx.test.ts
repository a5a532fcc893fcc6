import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { removeDir, spawnEdge, tempDir, type EdgeProcess } from '../helpers/edge.js';
import { photoJpeg } from '../helpers/images.js';
import { loadRenderer, makeTestCert, nginxMissing, nginxTest, renderNginx, startNginx, type RunningNginx } from '../helpers/nginx.js';
import { freePort, killWithProcess } from '../helpers/processes.js';
import { TestOrigin } from '../helpers/origin.js';

const TOKEN = 'nginx-test-token-abcdefghijklmnop';
const SOURCES = 30; // /s0.jpg ... /s29.jpg
const ALLOWED = '127.0.0.1'; // /_edge/ allowed, rate limit exempt
const OTHER = '127.0.0.2'; // neither
const LIMITED = '127.0.0.3'; // used only by the rate-limit test
const TEST_RATE = '5r/s';
const TEST_BURST = 5;

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  tlsProtocol?: string | null;
}

interface SendOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  localAddress?: string;
  tls?: boolean;
  timeoutMs?: number;
}

/** One request on a fresh connection; `path` is sent exactly as given (no URL parsing). */
function send(port: number, requestPath: string, opts: SendOptions = {}): Promise<Reply> {
  const { method = 'GET', headers = {}, body, localAddress, tls = false, timeoutMs = 10_000 } = opts;
  return new Promise((resolve, reject) => {
    const options = { host: '127.0.0.1', port, path: requestPath, method, headers, agent: false as const, ...(localAddress ? { localAddress } : {}) };
    const req = tls ? https.request({ ...options, rejectUnauthorized: false, servername: 'localhost' }) : http.request(options);
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${requestPath}: no answer within ${timeoutMs} ms`)));
    req.once('error', reject);
    req.once('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('error', reject);
      res.once('end', () => {
        const tlsProtocol = tls ? (res.socket as TLSSocket).getProtocol?.() : undefined;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), tlsProtocol });
      });
    });
    req.end(body);
  });
}

/** Image requests a node has answered (HIT, MISS, STALE), from its own /_edge/metrics. */
async function imagesServed(node: EdgeProcess): Promise<number> {
  const text = await (await fetch(`${node.url}/_edge/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    const m = /^imgedge_requests_total\{([^}]*)\} (\d+)/.exec(line);
    if (m && /cache="(HIT|MISS|STALE)"/.test(m[1]!)) total += Number(m[2]);
  }
  return total;
}

interface LogLine {
  uri: string;
  status: number;
  remote: string;
  upstream: string;
  upstream_status: string;
  upstream_connect_time: string;
  upstream_header_time: string;
  upstream_response_time: string;
  request_time: number;
  x_cache: string;
  ua: string;
}

describe('nginx in front of two edge nodes (nginx/imgedge.conf)', () => {
  const skip = nginxMissing();
  const dirs: string[] = [];
  const edges: EdgeProcess[] = [];
  const unguards: (() => void)[] = [];
  let origin: TestOrigin | undefined;
  let nginx: RunningNginx | undefined;
  let conf = '';
  let prefix = '';
  let cert: { certFile: string; keyFile: string };
  let port = 0;
  let tlsPort = 0;
  let nodePorts: number[] = [];
  let cacheDirs: string[] = [];
  let a: EdgeProcess;
  let b: EdgeProcess;
  let image: { body: Buffer; headers: Record<string, string> };
  /** "127.0.0.1:port" of the node serving /s<i>.jpg, learnt from the access log */
  const owner = new Map<number, string>();

  const edgeConfig = (cacheDir: string, nodePort: number) => ({
    server: { host: '127.0.0.1', port: nodePort, shutdownTimeoutMs: 5000 },
    cache: { dir: cacheDir, sweepIntervalSeconds: 3600 },
    sites: [{ name: 'site', origin: origin!.url, languages: ['en', 'de'] }],
  });
  const startNode = async (i: number) => {
    const node = await spawnEdge(edgeConfig(cacheDirs[i]!, nodePorts[i]!), cacheDirs[i]!, { IMGEDGE_PURGE_TOKEN: TOKEN });
    edges.push(node);
    unguards.push(killWithProcess(() => node.child.exitCode === null && node.child.signalCode === null && node.child.kill('SIGKILL')));
    return node;
  };
  const accessLog = async (): Promise<LogLine[]> =>
    (await readFile(path.join(prefix, 'logs', 'access.log'), 'utf8').catch(() => ''))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as LogLine);
  /**
   * The access log's lines that `keep` selects, once at least `count` of them are written (nginx
   * writes its log at least every ACCESS_LOG_FLUSH, 1 s; this waits up to 3 s).
   */
  const logLinesWhere = async (keep: (line: LogLine) => boolean, count: number) => {
    for (let i = 0; i < 60; i++) {
      const lines = (await accessLog()).filter(keep);
      if (lines.length >= count) return lines;
      await sleep(50);
    }
    return (await accessLog()).filter(keep);
  };
  const logLinesFor = (marker: string, count: number) => logLinesWhere((l) => l.uri.includes(marker), count);

  before(async () => {
    if (skip) return;
    prefix = await tempDir('imgedge-nginx-');
    dirs.push(prefix);
    cacheDirs = [await tempDir('imgedge-node-a-'), await tempDir('imgedge-node-b-')];
    dirs.push(...cacheDirs);
    cert = (await makeTestCert(path.join(prefix, 'tls')))!;

    origin = await TestOrigin.start();
    const jpeg = await photoJpeg({ width: 300, height: 200 });
    image = { body: jpeg, headers: { 'content-type': 'image/jpeg' } };
    origin.set('/a.jpg', image);
    origin.set('/lang.jpg', image);
    for (let i = 0; i < SOURCES; i++) origin.set(`/s${i}.jpg`, image);
    origin.set('/page.html', { body: '<p>hello</p>', headers: { 'content-type': 'text/html' } });

    [port, tlsPort] = [await freePort(), await freePort()];
    nodePorts = [await freePort(), await freePort()];
    a = await startNode(0);
    b = await startNode(1);

    conf = await renderNginx({
      nodes: nodePorts.map((p) => `127.0.0.1:${p}`),
      listenPort: port,
      tlsPort,
      ...cert,
      allowNets: [ALLOWED],
      rateLimitExempt: [ALLOWED],
      rate: TEST_RATE,
      burst: TEST_BURST,
      maxFails: 2,
      failTimeout: '2s',
      prefix,
    });
    const checked = await nginxTest(conf);
    assert.ok(checked?.ok, `nginx -t failed:\n${checked?.output}`);
    nginx = await startNginx(conf);
  });

  after(async () => {
    await nginx?.stop();
    await Promise.all(edges.map((e) => e.stop('SIGKILL')));
    for (const unguard of unguards) unguard();
    await origin?.close();
    await Promise.all(dirs.map(removeDir));
  });

  test('the rendered configs pass nginx -t: the test values, and the production defaults', { timeout: 30_000 }, async (t) => {
    if (skip) return t.skip(skip);
    const tested = await nginxTest(conf);
    assert.ok(tested!.ok, tested!.output);
    assert.match(tested!.output, /syntax is ok/);
    assert.match(tested!.output, /test is successful/);

    // Production defaults (ports 80/443, 50r/s, burst 200, max_fails 3, fail_timeout 10s).
    const { renderImgedgeConf } = await loadRenderer();
    const productionValues = {
      NODES: ['10.0.0.11:8080', '10.0.0.12:8080'],
      SERVER_NAMES: ['img.example.com', 'img2.example.com'],
      TLS_CERT: cert.certFile,
      TLS_KEY: cert.keyFile,
      ADMIN_NETS: ['127.0.0.1', '10.0.0.0/8'],
    };
    const production = renderImgedgeConf(productionValues);
    assert.match(production, /^\s*listen 80;$/m);
    assert.match(production, /^\s*listen 443 ssl http2;$/m);
    assert.match(production, /^\s*hash \$host\$uri consistent;$/m);
    assert.match(production, /^\s*server 10\.0\.0\.12:8080 max_fails=3 fail_timeout=10s;$/m);
    assert.match(production, /rate=50r\/s;/);
    assert.match(production, /^\s*proxy_pass http:\/\/imgedge;$/m);
    assert.match(production, /^\s*proxy_cache imgedge_micro;$/m);
    assert.match(production, /^\s*proxy_cache_valid 200 1s;$/m);
    assert.doesNotMatch(production, /\{\{/);
    // `nginx -t` binds the listen addresses and creates the micro-cache folder, so those (and the
    // log path) are the test's own here.
    const productionDir = path.join(prefix, 'production');
    const listen = { HTTP_LISTEN: [`127.0.0.1:${await freePort()}`], HTTPS_LISTEN: [`127.0.0.1:${await freePort()}`] };
    const imgedgeConf = renderImgedgeConf({
      ...productionValues, ...listen, ACCESS_LOG: path.join(productionDir, 'logs', 'access.log'), MICRO_CACHE_PATH: path.join(prefix, 'micro-production'),
    });
    const productionConf = await renderNginx({ nodes: [], listenPort: 0, tlsPort: 0, ...cert, allowNets: [], prefix: productionDir, imgedgeConf });
    const productionTested = await nginxTest(productionConf);
    assert.ok(productionTested!.ok, productionTested!.output);

    // The renderer refuses a missing value and a value that would inject a directive.
    assert.throws(() => renderImgedgeConf({ NODES: [], SERVER_NAMES: ['a;b'], TLS_CERT: 'x', TLS_KEY: 'y', ADMIN_NETS: ['10.0.0.0/8'] }), (err: Error) => {
      assert.match(err.message, /NODES: needs at least one value/);
      assert.match(err.message, /SERVER_NAMES: "a;b" is not a single nginx word/);
      return true;
    });
  });

  test('every variant of one source is served by one node; many sources spread over both', { timeout: 60_000 }, async (t) => {
    if (skip) return t.skip(skip);
    const before = [await imagesServed(a), await imagesServed(b)];
    const variants: { path: string; accept?: string }[] = [];
    for (const w of [40, 60, 80, 100]) for (const fm of ['jpg', 'webp', 'png']) variants.push({ path: `/a.jpg?w=${w}&fm=${fm}` });
    variants.push({ path: '/a.jpg?w=50&auto=format', accept: 'image/avif,image/webp,*/*' });
    variants.push({ path: '/a.jpg?w=50&auto=format', accept: 'image/webp,*/*' });
    variants.push({ path: '/a.jpg?w=50&auto=format', accept: '*/*' });
    variants.push({ path: '/a.jpg?w=50&dpr=2' });
    for (const v of variants) {
      const res = await send(port, v.path, { headers: v.accept ? { accept: v.accept } : {} });
      assert.equal(res.status, 200, `${v.path}: ${res.body.toString().slice(0, 200)}`);
      assert.match(String(res.headers['content-type']), /^image\//);
    }
    const deltas = [(await imagesServed(a)) - before[0]!, (await imagesServed(b)) - before[1]!];
    assert.deepEqual([...deltas].sort((x, y) => x - y), [0, variants.length], `one node served all ${variants.length} variants of /a.jpg: ${deltas}`);

    const spreadBefore = [await imagesServed(a), await imagesServed(b)];
    for (let i = 0; i < SOURCES; i++) assert.equal((await send(port, `/s${i}.jpg?w=32`)).status, 200);
    const spread = [(await imagesServed(a)) - spreadBefore[0]!, (await imagesServed(b)) - spreadBefore[1]!];
    assert.equal(spread[0]! + spread[1]!, SOURCES);
    assert.ok(spread[0]! > 0 && spread[1]! > 0, `both nodes got some of ${SOURCES} sources: ${spread}`);
    t.diagnostic(`${SOURCES} sources split ${spread[0]} / ${spread[1]} between the nodes`);

    // Remember who owns which source (for the failover tests), from nginx's own log.
    const lines = await logLinesFor('?w=32', SOURCES);
    for (const line of lines) {
      const m = /^\/s(\d+)\.jpg\?w=32$/.exec(line.uri);
      if (m) owner.set(Number(m[1]), line.upstream);
    }
    assert.equal(owner.size, SOURCES);
  });

  test('Host, Accept, Accept-Language and X-Forwarded-* reach the edge and the origin; client X-Forwarded-For is replaced', { timeout: 30_000 }, async (t) => {
    if (skip) return t.skip(skip);
    const webp = await send(port, '/a.jpg?w=70&auto=format', { headers: { accept: 'image/webp,*/*' } });
    assert.equal(webp.status, 200);
    assert.equal(webp.headers['content-type'], 'image/webp', 'Accept reached the edge');
    assert.match(String(webp.headers.vary), /Accept/);
    assert.equal(webp.headers.server, 'nginx', 'no version in Server');

    const de = await send(port, '/lang.jpg?w=70', { headers: { 'accept-language': 'de-DE,de;q=0.9' } });
    assert.equal(de.status, 200);
    assert.equal(origin!.lastHeaders.get('/lang.jpg')?.['accept-language'], 'de', 'Accept-Language reached the edge');

    // A passthrough page: the edge's proxy appends its own hop to what nginx set.
    const page = await send(port, '/page.html', { localAddress: OTHER, headers: { host: 'img.test', 'x-forwarded-for': '6.6.6.6' } });
    assert.equal(page.status, 200);
    const seen = origin!.lastHeaders.get('/page.html')!;
    assert.match(String(seen['x-forwarded-for']), /^127\.0\.0\.2\b/, `client address first, spoofed value gone: ${seen['x-forwarded-for']}`);
    assert.doesNotMatch(String(seen['x-forwarded-for']), /6\.6\.6\.6/);
    assert.match(String(seen['x-forwarded-proto']), /^http\b/);
    assert.equal(seen['x-forwarded-host'], 'img.test', 'Host reached the edge as nginx got it');

    const overTls = await send(tlsPort, '/page.html', { tls: true, headers: { host: 'img.test' } });
    assert.equal(overTls.status, 200);
    assert.match(String(origin!.lastHeaders.get('/page.html')!['x-forwarded-proto']), /^https\b/);
  });

  test('/_edge/purge and /_edge/metrics: allowed from 127.0.0.1, 403 from 127.0.0.2 (no path tricks); images from 127.0.0.2 work', { timeout: 30_000 }, async (t) => {
    if (skip) return t.skip(skip);
    const purgeBody = JSON.stringify({ urls: ['/a.jpg'] });
    const purgeHeaders = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };

    const purged = await send(port, '/_edge/purge', { method: 'POST', headers: purgeHeaders, body: purgeBody, localAddress: ALLOWED });
    assert.equal(purged.status, 200, purged.body.toString());
    const answer = JSON.parse(purged.body.toString()) as { purged: number; id: string };
    assert.equal(typeof answer.purged, 'number');
    assert.equal(typeof answer.id, 'string');
    const noToken = await send(port, '/_edge/purge', { method: 'POST', headers: { 'content-type': 'application/json' }, body: purgeBody, localAddress: ALLOWED });
    assert.equal(noToken.status, 401, 'the edge still checks the token');

    const metrics = await send(port, '/_edge/metrics', { localAddress: ALLOWED });
    assert.equal(metrics.status, 200);
    assert.match(metrics.body.toString(), /imgedge_requests_total/);

    const refused = await send(port, '/_edge/purge', { method: 'POST', headers: purgeHeaders, body: purgeBody, localAddress: OTHER });
    assert.equal(refused.status, 403);
    assert.match(String(refused.headers['content-type']), /text\/html/, 'refused by nginx, not by the edge');
    assert.equal((await send(port, '/_edge/metrics', { localAddress: OTHER })).status, 403);
    assert.equal((await send(port, '/_edge/ready', { localAddress: OTHER })).status, 403);

    // Spellings the edge's URL parser would turn into /_edge/metrics must not get past nginx.
    for (const trick of ['/x/..\\_edge/metrics', '/_edge\\metrics', '/x/%2e%2e/_edge/metrics', '/%5Fedge/metrics', '//_edge/metrics', '/_edge/./metrics']) {
      const res = await send(port, trick, { localAddress: OTHER });
      assert.ok(res.status === 400 || res.status === 403 || res.status === 404, `${trick}: ${res.status} ${res.body.toString().slice(0, 120)}`);
      assert.doesNotMatch(res.body.toString(), /imgedge_requests_total/, `${trick} leaked the metrics`);
    }

    const image = await send(port, '/a.jpg?w=40', { localAddress: OTHER });
    assert.equal(image.status, 200);
    assert.match(String(image.headers['content-type']), /^image\//);
  });

  test('the access log line has upstream address, status and timings, and X-Cache', { timeout: 30_000 }, async (t) => {
    if (skip) return t.skip(skip);
    const marker = `logcheck=${Date.now()}`;
    const first = await send(port, `/a.jpg?w=48&${marker}`);
    const second = await send(port, `/a.jpg?w=48&${marker}`);
    assert.equal(first.headers['x-cache'], 'MISS');
    assert.equal(second.headers['x-cache'], 'HIT');
    const lines = await logLinesFor(marker, 2);
    assert.equal(lines.length, 2, 'two JSON log lines');
    // Each nginx worker writes its own batch of lines: the file's order is not the requests'.
    assert.deepEqual(lines.map((l) => l.x_cache).sort(), ['HIT', 'MISS']);
    const nodes = nodePorts.map((p) => `127.0.0.1:${p}`);
    for (const line of lines) {
      assert.equal(line.status, 200);
      assert.ok(nodes.includes(line.upstream), `upstream ${line.upstream}`);
      assert.equal(line.upstream_status, '200');
      for (const field of ['upstream_connect_time', 'upstream_header_time', 'upstream_response_time'] as const) {
        assert.match(line[field], /^\d+\.\d{3}$/, `${field}: ${line[field]}`);
      }
      assert.equal(typeof line.request_time, 'number');
    }
    t.diagnostic(JSON.stringify(lines[0]));
  });

  test('TLS: an HTTPS request gets an image over TLS 1.2+, with HSTS', { timeout: 30_000 }, async (t) => {
    if (skip) return t.skip(skip);
    const res = await send(tlsPort, '/a.jpg?w=40', { tls: true });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'image/jpeg');
    assert.equal(Number(res.headers['content-length']), res.body.length);
    assert.ok(res.tlsProtocol === 'TLSv1.3' || res.tlsProtocol === 'TLSv1.2', String(res.tlsProtocol));
    assert.match(String(res.headers['strict-transport-security']), /max-age=\d+/);
    assert.equal((await send(port, '/a.jpg?w=40')).headers['strict-transport-security'], undefined, 'no HSTS over plain HTTP');
  });

  test(`rate limit (${TEST_RATE}, burst ${TEST_BURST} in this test): a burst gets 429 from nginx; exempt networks are not limited`, { timeout: 30_000 }, async (t) => {
    if (skip) return t.skip(skip);
    assert.equal((await send(port, '/a.jpg?w=40')).status, 200); // cached
    const burst = await Promise.all(Array.from({ length: 30 }, () => send(port, '/a.jpg?w=40', { localAddress: LIMITED })));
    const counts = burst.reduce<Record<number, number>>((acc, r) => ({ ...acc, [r.status]: (acc[r.status] ?? 0) + 1 }), {});
    assert.deepEqual(Object.keys(counts).sort(), ['200', '429'], JSON.stringify(counts));
    assert.ok(counts[200]! >= 1 && counts[200]! <= TEST_BURST + 2, `about 1 + burst accepted: ${JSON.stringify(counts)}`);
    assert.ok(counts[429]! >= 30 - TEST_BURST - 2, JSON.stringify(counts));

    const exempt = await Promise.all(Array.from({ length: 30 }, () => send(port, '/a.jpg?w=40', { localAddress: ALLOWED })));
    assert.deepEqual([...new Set(exempt.map((r) => r.status))], [200], 'the exempt network is not limited');
  });

  let streams = 0;
  /**
   * Sends `count` requests `everyMs` apart (not waiting for answers), calls `midway` at the half;
   * their User-Agent (`agent`) marks their access log lines.
   */
  const steadyStream = async (count: number, everyMs: number, pathFor: (i: number) => string, midway: () => Promise<unknown>) => {
    const agent = `steady-stream-${++streams}`;
    const replies: Promise<Reply | Error>[] = [];
    let during: Promise<unknown> | undefined;
    const started = Date.now();
    for (let i = 0; i < count; i++) {
      replies.push(send(port, pathFor(i), { timeoutMs: 20_000, headers: { 'user-agent': agent } }).catch((err: Error) => err));
      if (i === Math.floor(count / 2)) {
        during = midway();
        during.catch(() => {}); // awaited below; not an unhandled rejection meanwhile
      }
      await sleep(everyMs);
    }
    await during;
    const results = await Promise.all(replies);
    const failures = results
      .map((r, i) => ({ i, path: pathFor(i), r }))
      .filter(({ r }) => r instanceof Error || r.status !== 200 || Number(r.headers['content-length']) !== r.body.length)
      .map(({ i, path: p, r }) => `#${i} ${p}: ${r instanceof Error ? r.message : `${r.status} ${r.body.length}/${r.headers['content-length']} bytes`}`);
    return { failures, ms: Date.now() - started, agent };
  };
  /** The stream's source for request i: all of them in turn, except the slow one (kept out so it stays uncached). */
  const streamSource = (i: number, slowK: number) => (i % SOURCES === slowK ? (slowK + 1) % SOURCES : i % SOURCES);
  const nodeAddr = (node: EdgeProcess) => node.url.replace('http://', '');
  const ownedBy = (node: EdgeProcess) => [...owner].filter(([, addr]) => addr === nodeAddr(node)).map(([i]) => i);
  /**
   * Makes source /s<k>.jpg slow on `node`: purged there (variants and its copy of the original),
   * and the origin now answers it after 1.5 s. Returns a function that sends a new variant of it
   * through nginx and resolves once `node` is waiting on the origin: that request is in flight.
   */
  const slowSource = async (node: EdgeProcess, k: number) => {
    const res = await fetch(`${node.url}/_edge/purge`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ urls: [`/s${k}.jpg`] }),
    });
    assert.equal(res.status, 200);
    origin!.set(`/s${k}.jpg`, { ...image, delayMs: 1500 });
    return async (variant: string) => {
      const fetched = origin!.count(`/s${k}.jpg`);
      const reply = send(port, `/s${k}.jpg?${variant}`, { timeoutMs: 20_000 });
      for (let i = 0; i < 100 && origin!.count(`/s${k}.jpg`) === fetched; i++) await sleep(20);
      assert.ok(origin!.count(`/s${k}.jpg`) > fetched, 'the node is fetching the slow source');
      return { reply }; // wrapped: an async function would wait for a returned promise
    };
  };

  test('SIGTERM of one node under a steady stream of requests loses none (its in-flight requests finish; nginx sends the rest to the other)', { timeout: 60_000 }, async (t) => {
    if (skip) return t.skip(skip);
    assert.equal(owner.size, SOURCES, 'needs the ownership map of the spread test');
    const slowK = ownedBy(b)[0]!;
    assert.ok(slowK !== undefined, 'B owns some sources');
    const inFlight = await slowSource(b, slowK);
    // Even i: a variant cached on its node (the spread test made it); odd i: a new one.
    const pathFor = (i: number) => (i % 2 === 0 ? `/s${streamSource(i, slowK)}.jpg?w=32` : `/s${streamSource(i, slowK)}.jpg?w=${40 + i}`);
    let slow: Promise<Reply> | undefined;
    const { failures, ms, agent } = await steadyStream(200, 50, pathFor, async () => {
      slow = (await inFlight('w=77')).reply;
      await b.stop('SIGTERM');
    });
    assert.deepEqual(failures, [], 'every request answered 200 with its whole body');
    const slowReply = await slow!;
    assert.equal(slowReply.status, 200);
    assert.equal(Number(slowReply.headers['content-length']), slowReply.body.length);

    const lines = await logLinesWhere((l) => l.ua === agent, 200);
    assert.equal(lines.length, 200, 'a line for every request of the stream');
    const slowLine = (await logLinesFor(`/s${slowK}.jpg?w=77`, 1))[0]!;
    assert.equal(slowLine.upstream, nodeAddr(b), 'the request in flight at SIGTERM was finished by B itself');
    // B's sources after the stop were served by A; some requests were retried (two upstreams listed).
    const retried = lines.filter((l) => l.upstream.includes(','));
    const bSources = new Set(ownedBy(b));
    const movedToA = lines.filter((l) => bSources.has(Number(/^\/s(\d+)/.exec(l.uri)![1])) && l.upstream.endsWith(nodeAddr(a)));
    assert.ok(movedToA.length > 0, "requests for B's sources reached A");
    t.diagnostic(`200 requests in ${ms} ms; ${movedToA.length} of B's went to A; ${retried.length} retried after an error on B (statuses ${retried.map((l) => l.upstream_status).join(' | ')})`);
  });

  test('SIGKILL of one node under a steady stream loses none either (a request in flight on it is retried on the other)', { timeout: 60_000 }, async (t) => {
    if (skip) return t.skip(skip);
    // B back on its port; nginx tries it again after fail_timeout (2 s here), or at once after a reload.
    b = await startNode(1);
    await nginx!.reload();
    const deadline = Date.now() + 10_000;
    const bServed = await imagesServed(b);
    for (let i = 0; (await imagesServed(b)) === bServed; i++) {
      assert.ok(Date.now() < deadline, 'nginx sends to the restarted node B again');
      await send(port, `/s${ownedBy(b)[0]}.jpg?w=${120 + i}`);
      await sleep(100);
    }

    const slowK = ownedBy(a).find((k) => k !== ownedBy(b)[0])!;
    const inFlight = await slowSource(a, slowK);
    const pathFor = (i: number) => (i % 2 === 0 ? `/s${streamSource(i, slowK)}.jpg?w=32` : `/s${streamSource(i, slowK)}.jpg?h=${20 + i}`);
    let slow: Promise<Reply> | undefined;
    const { failures, ms } = await steadyStream(120, 40, pathFor, async () => {
      slow = (await inFlight('w=78')).reply;
      await a.stop('SIGKILL');
    });
    assert.deepEqual(failures, [], 'every request answered 200 with its whole body');
    const slowReply = await slow!;
    assert.equal(slowReply.status, 200);
    assert.equal(Number(slowReply.headers['content-length']), slowReply.body.length);
    const slowLine = (await logLinesFor(`/s${slowK}.jpg?w=78`, 1))[0]!;
    assert.equal(slowLine.upstream, `${nodeAddr(a)}, ${nodeAddr(b)}`, 'killed on A while in flight, answered by B');
    assert.equal(slowLine.upstream_status, '502, 200');
    t.diagnostic(`120 requests in ${ms} ms; the in-flight request: ${JSON.stringify(slowLine)}`);
  });
});

describe('nginx/render.mjs: one upstream per edge process', () => {
  const required = { SERVER_NAMES: 'img.example.com', TLS_CERT: '/etc/ssl/img.pem', TLS_KEY: '/etc/ssl/img.key', ADMIN_NETS: '10.0.0.0/8' };
  const upstreams = (conf: string) => [...conf.matchAll(/^\s*server (\S+) max_fails/gm)].map((m) => m[1]);

  test('a port range in NODES is one upstream server per port, in the order given', async () => {
    const { renderImgedgeConf } = await loadRenderer();
    const conf = renderImgedgeConf({ ...required, NODES: '10.0.0.11:8081-8082,10.0.0.12:8081-8082' });
    assert.deepEqual(upstreams(conf), ['10.0.0.11:8081', '10.0.0.11:8082', '10.0.0.12:8081', '10.0.0.12:8082']);
    assert.deepEqual(upstreams(renderImgedgeConf({ ...required, NODES: ['10.0.0.11:8080'] })), ['10.0.0.11:8080'], 'a single port stays as it is');
  });

  test('a range that runs backwards is refused with the item named', async () => {
    const { renderImgedgeConf } = await loadRenderer();
    assert.throws(() => renderImgedgeConf({ ...required, NODES: '10.0.0.11:8082-8081' }), /NODES: "10.0.0.11:8082-8081" is not a range/);
  });
});

describe('nginx/imgedge.conf: the access log is written in batches and loses nothing', () => {
  const skip = nginxMissing();
  const dirs: string[] = [];
  after(async () => {
    for (const dir of dirs) await removeDir(dir);
  });

  /** nginx rendered with `extra` in front of a port no node listens on: every request is answered 502 by nginx itself, and logged like any other. */
  const startLogging = async (extra: Record<string, string> = {}) => {
    const prefix = await tempDir('imgedge-nginx-log-');
    dirs.push(prefix);
    const [port, tlsPort, deadNode] = [await freePort(), await freePort(), await freePort()];
    const cert = await makeTestCert(path.join(prefix, 'tls'));
    assert.ok(cert, 'openssl made a test certificate');
    const nginx = await startNginx(await renderNginx({
      nodes: [`127.0.0.1:${deadNode}`], listenPort: port, tlsPort, ...cert, allowNets: ['127.0.0.1'], rateLimitExempt: ['127.0.0.1'], prefix, extra,
    }));
    assert.ok(nginx, 'nginx started');
    const logged = async (start: string) =>
      (await readFile(path.join(prefix, 'logs', 'access.log'), 'utf8').catch(() => ''))
        .split('\n')
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as LogLine).uri)
        .filter((u) => u.startsWith(start))
        .sort();
    return { nginx, port, logged };
  };
  const five = (start: string) => [0, 1, 2, 3, 4].map((i) => `${start}${i}.jpg`);

  test('lines reach the file within ACCESS_LOG_FLUSH (1 s) with no further request', { timeout: 30_000 }, async (t) => {
    if (skip) return t.skip(skip);
    const { nginx, port, logged } = await startLogging();
    try {
      for (const uri of five('/quiet-')) await send(port, uri);
      await sleep(1_500);
      assert.deepEqual(await logged('/quiet-'), five('/quiet-'));
    } finally {
      await nginx.stop();
    }
  });

  test("a log reopen (logrotate's), a reload and a stop each write the lines still gathered", { timeout: 30_000 }, async (t) => {
    if (skip) return t.skip(skip);
    // A minute's flush, so the lines are certainly still gathered when each signal comes.
    const { nginx, port, logged } = await startLogging({ ACCESS_LOG_FLUSH: '1m' });
    const writtenBy = async (start: string, what: string, signal: () => Promise<void>) => {
      for (const uri of five(start)) await send(port, uri);
      assert.deepEqual(await logged(start), [], `${what}: gathered, not yet written`);
      await signal();
      // the workers handle a reopen on their own time: a moment to do it
      for (let i = 0; i < 40 && (await logged(start)).length < 5; i++) await sleep(50);
      assert.deepEqual(await logged(start), five(start), `${what}: written`);
    };
    try {
      await writtenBy('/reopened-', 'reopen (SIGUSR1)', async () => void process.kill(nginx.pid, 'SIGUSR1'));
      await writtenBy('/reloaded-', 'reload (SIGHUP)', () => nginx.reload());
      await writtenBy('/stopped-', 'stop', () => nginx.stop());
    } finally {
      await nginx.stop();
    }
  });
});
