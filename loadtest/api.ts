/**
 * `npm run bench:api`: the optimization API measured beside the edge's own misses, in one run.
 *
 * - Throughput: small JPEGs (real photographs from Debian packages, `npm run photos`, scaled to
 *   800 px wide at q90 as a site would upload them) optimized through POST /v1/upload (wait),
 *   lossy at q80, lossless (jpegtran) and lossy per image (the perceptual search), beside the
 *   edge's misses of the same sources at the same quality (every request a new width), the
 *   sides in turn, one driver (undici, 4 at a time) for all.
 * - Webhooks: callback jobs at the same concurrency; latency from the answer {id} to the POST
 *   arriving at a receiver on loopback (optimization and queueing included), p50/p99.
 * - A Redis restart (SIGKILL, then the same data back from its append-only file) in the middle
 *   of a callback run: what the callers saw, what was delivered, how late, and what was lost.
 *
 * Writes docs/API-BENCH.md and docs/api-bench.json. Loopback only, bounded in time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { Pool } from 'undici';
import { ensurePhotoCorpus } from '../scripts/photo-corpus.js';
import { ROOT, startEdge, startOrigin } from './servers.js';
import { cpuMsOf } from './thread-cpu.js';

const KEY = { api_key: 'bench-key-0001', api_secret: 'bench-secret-0123456789' };
const CONCURRENCY = 4;
const BOUNDARY = 'imgedgebenchboundary';

interface Args {
  seconds: number;
  rounds: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { seconds: 15, rounds: 2 };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--seconds') args.seconds = Number(argv[++i]);
    else if (argv[i] === '--rounds') args.rounds = Number(argv[++i]);
    else throw new Error(`unknown argument ${argv[i]}; use --seconds N --rounds N`);
  }
  return args;
}

const log = (m: string) => console.error(`${new Date().toISOString().slice(11, 19)} ${m}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (sorted: number[], p: number) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!);

/** A multipart body as Kraken's clients send it: the options in `data`, then the file. */
function uploadBody(options: Record<string, unknown>, file: Buffer, name: string): Buffer {
  const head = `--${BOUNDARY}\r\nContent-Disposition: form-data; name="data"\r\n\r\n${JSON.stringify({ auth: KEY, ...options })}\r\n` +
    `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\nContent-Type: image/jpeg\r\n\r\n`;
  return Buffer.concat([Buffer.from(head), file, Buffer.from(`\r\n--${BOUNDARY}--\r\n`)]);
}

interface Run {
  requests: number;
  errors: number;
  seconds: number;
  latencies: number[];
}

/** Closed loop: `CONCURRENCY` callers, each sending the next request as soon as its last is answered. */
async function drive(pool: Pool, seconds: number, next: (n: number) => { method: 'GET' | 'POST'; path: string; body?: Buffer }, check: (status: number, body: string) => boolean): Promise<Run> {
  const started = performance.now();
  const deadline = started + seconds * 1000;
  let n = 0;
  const run: Run = { requests: 0, errors: 0, seconds: 0, latencies: [] };
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (performance.now() < deadline) {
      const req = next(n++);
      const t = performance.now();
      try {
        const res = await pool.request({ method: req.method, path: req.path, ...(req.body ? { body: req.body, headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` } } : {}) });
        const text = await res.body.text();
        if (check(res.statusCode, text)) run.requests++;
        else run.errors++;
      } catch {
        run.errors++;
      }
      run.latencies.push(performance.now() - t);
    }
  }));
  run.seconds = (performance.now() - started) / 1000;
  return run;
}

class Receiver {
  readonly arrived = new Map<string, number>();
  private server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        const id = (JSON.parse(Buffer.concat(chunks).toString()) as { id: string }).id;
        if (!this.arrived.has(id)) this.arrived.set(id, performance.now());
      } catch {
        // counted as not delivered
      }
      res.writeHead(200).end();
    });
  });
  url = '';
  async start(): Promise<void> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }
  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

interface RedisProcess {
  url: string;
  kill(): Promise<void>;
  start(): Promise<void>;
}

async function freePort(): Promise<number> {
  const probe = net.createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const port = (probe.address() as AddressInfo).port;
  await new Promise((r) => probe.close(r));
  return port;
}

async function redisServer(dir: string): Promise<RedisProcess> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always'], { stdio: 'ignore' });
    for (let i = 0; i < 100; i++) {
      const ok = await new Promise<boolean>((resolve) => {
        const s = new net.Socket();
        s.once('error', () => resolve(false));
        s.connect(port, '127.0.0.1', () => s.write('PING\r\n'));
        s.once('data', (d: Buffer) => { s.destroy(); resolve(d.toString().startsWith('+PONG')); });
      });
      if (ok) return;
      await sleep(50);
    }
    throw new Error('redis-server did not start');
  };
  await start();
  process.on('exit', () => child?.kill('SIGKILL'));
  return {
    url: `redis://127.0.0.1:${port}`,
    async kill() {
      const c = child!;
      c.kill('SIGKILL');
      await once(c, 'exit');
    },
    start,
  };
}

interface Side {
  name: string;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  cpuMsPerRequest: number;
}

function combine(name: string, runs: Run[], cpuMs: number): Side {
  const requests = runs.reduce((n, r) => n + r.requests, 0);
  const seconds = runs.reduce((n, r) => n + r.seconds, 0);
  const lat = runs.flatMap((r) => r.latencies).sort((a, b) => a - b);
  return { name, rps: requests / seconds, p50Ms: pct(lat, 50), p99Ms: pct(lat, 99), errors: runs.reduce((n, r) => n + r.errors, 0), cpuMsPerRequest: cpuMs / Math.max(1, requests) };
}

interface CallbackRun {
  accepted: number;
  refused: number;
  delivered: number;
  lost: number;
  latencies: number[];
  /** answers other than {id} during the run */
  answerErrors: number;
}

/**
 * Callback jobs at a steady `rate` a second for `seconds` (open loop, as uploads from many
 * sites arrive); then waits (up to `drainMs`) for every accepted one to arrive at the receiver.
 */
async function callbacks(pool: Pool, receiver: Receiver, bodies: Buffer[], rate: number, seconds: number, drainMs: number, during?: () => Promise<void>): Promise<CallbackRun> {
  const acceptedAt = new Map<string, number>();
  let refused = 0;
  const sent: Promise<void>[] = [];
  const load = (async () => {
    const started = performance.now();
    for (let n = 0; performance.now() - started < seconds * 1000; n++) {
      const due = started + (n * 1000) / rate;
      if (due > performance.now()) await sleep(due - performance.now());
      sent.push((async () => {
        try {
          const res = await pool.request({ method: 'POST', path: '/v1/upload', body: bodies[n % bodies.length]!, headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` } });
          const text = await res.body.text();
          if (res.statusCode === 200) acceptedAt.set((JSON.parse(text) as { id: string }).id, performance.now());
          else refused++;
        } catch {
          refused++;
        }
      })());
    }
    await Promise.all(sent);
  })();
  await Promise.all([load, during?.()]);
  const deadline = Date.now() + drainMs;
  while (Date.now() < deadline && [...acceptedAt.keys()].some((id) => !receiver.arrived.has(id))) await sleep(100);
  const latencies = [...acceptedAt].filter(([id]) => receiver.arrived.has(id)).map(([id, t]) => receiver.arrived.get(id)! - t).sort((a, b) => a - b);
  return { accepted: acceptedAt.size, refused, delivered: latencies.length, lost: acceptedAt.size - latencies.length, latencies, answerErrors: refused };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const work = await mkdtemp(path.join(os.tmpdir(), 'imgedge-bench-api-'));
  try {
    const photos = (await ensurePhotoCorpus({ log })).filter((p) => p.file.endsWith('.jpg')).slice(0, 8);
    await mkdir(path.join(work, 'site', 'small'), { recursive: true });
    const small: Buffer[] = [];
    for (const [i, p] of photos.entries()) {
      const b = await sharp(p.file).rotate().resize({ width: 800 }).jpeg({ quality: 90 }).toBuffer();
      small.push(b);
      await writeFile(path.join(work, 'site', 'small', `${i}.jpg`), b);
    }
    const meanKiB = small.reduce((n, b) => n + b.length, 0) / small.length / 1024;
    log(`${small.length} small JPEGs from the photo corpus, 800 px wide, mean ${meanKiB.toFixed(0)} KiB`);

    const origin = await startOrigin(path.join(work, 'site'), 1);
    const redisDir = path.join(work, 'redis');
    await mkdir(redisDir);
    const redis = await redisServer(redisDir);
    const receiver = new Receiver();
    await receiver.start();
    const [edgePort, apiPort] = [await freePort(), await freePort()];
    const config = {
      server: { host: '127.0.0.1', port: edgePort },
      cache: { dir: path.join(work, 'cache'), maxBytes: 4 * 1024 ** 3, memoryBytes: 256 * 1024 ** 2 },
      log: { level: 'warn' },
      redis: { url: redis.url },
      api: { port: apiPort, keys: [{ key: KEY.api_key, secret: KEY.api_secret }], allowNetworks: ['127.0.0.0/8'], requestsPerMinute: 1_000_000 },
      sites: [{ name: 'bench', hosts: ['*'], origin: origin.url, ttl: 86_400 }],
    };
    const edge = await startEdge(config, work, path.join(work, 'edge.log'));
    const edgePool = new Pool(edge.url, { connections: CONCURRENCY });
    const apiPool = new Pool(`http://127.0.0.1:${apiPort}`, { connections: CONCURRENCY });
    const hookPool = new Pool(`http://127.0.0.1:${apiPort}`, { connections: 32 });
    // The edge's source tier holds the sources before any timed miss; the API gets them uploaded.
    for (let i = 0; i < small.length; i++) await (await fetch(`${edge.url}/small/${i}.jpg?w=16`)).arrayBuffer();

    const sides: Record<string, { runs: Run[]; cpuMs: number; next: (n: number) => { method: 'GET' | 'POST'; path: string; body?: Buffer }; pool: Pool }> = {};
    let width = 799;
    const lossyQ = small.map((b, i) => uploadBody({ wait: true, lossy: true, quality: 80 }, b, `${i}.jpg`));
    const lossless = small.map((b, i) => uploadBody({ wait: true }, b, `${i}.jpg`));
    const perImage = small.map((b, i) => uploadBody({ wait: true, lossy: true }, b, `${i}.jpg`));
    sides['edge misses (w, q80 JPEG)'] = { runs: [], cpuMs: 0, pool: edgePool, next: (n) => ({ method: 'GET', path: `/small/${n % small.length}.jpg?w=${n % small.length === 0 ? width-- : width}&fm=jpg&q=80` }) };
    sides['API upload, lossy q80'] = { runs: [], cpuMs: 0, pool: apiPool, next: (n) => ({ method: 'POST', path: '/v1/upload', body: lossyQ[n % small.length]! }) };
    sides['API upload, lossless (jpegtran)'] = { runs: [], cpuMs: 0, pool: apiPool, next: (n) => ({ method: 'POST', path: '/v1/upload', body: lossless[n % small.length]! }) };
    sides['API upload, lossy per image'] = { runs: [], cpuMs: 0, pool: apiPool, next: (n) => ({ method: 'POST', path: '/v1/upload', body: perImage[n % small.length]! }) };
    // Warm both paths (V8, libvips) before anything is timed.
    await drive(edgePool, 3, sides['edge misses (w, q80 JPEG)']!.next, (s) => s === 200);
    await drive(apiPool, 3, sides['API upload, lossy q80']!.next, (s) => s === 200);
    for (let r = 0; r < args.rounds; r++) {
      for (const [name, side] of Object.entries(sides)) {
        const cpu0 = await cpuMsOf(edge.pid);
        const run = await drive(side.pool, args.seconds, side.next, (s, text) => s === 200 && (side.pool === edgePool || text.includes('"success":true')));
        side.cpuMs += (await cpuMsOf(edge.pid)) - cpu0;
        side.runs.push(run);
        log(`  ${name}: ${(run.requests / run.seconds).toFixed(1)}/s, ${run.errors} errors`);
      }
    }
    const throughput = Object.entries(sides).map(([name, s]) => combine(name, s.runs, s.cpuMs));

    // Callbacks at half the rate the API sustained for the same work: under load, not overloaded.
    const rate = Math.max(1, Math.round(throughput[1]!.rps / 2));
    log(`webhooks: callback jobs (lossy q80) at ${rate} a second`);
    const hookBodies = small.map((b, i) => uploadBody({ callback_url: receiver.url, lossy: true, quality: 80 }, b, `${i}.jpg`));
    const steady = await callbacks(hookPool, receiver, hookBodies, rate, args.seconds, 60_000);
    log(`  ${steady.accepted} accepted, ${steady.delivered} delivered, p50 ${pct(steady.latencies, 50).toFixed(0)} ms, p99 ${pct(steady.latencies, 99).toFixed(0)} ms`);

    log('webhooks across a Redis restart (SIGKILL, back after 2 s from its append-only file)');
    const outage = { down: 0, up: 0 };
    const restartSeconds = Math.max(12, args.seconds);
    const restart = await callbacks(hookPool, receiver, hookBodies, rate, restartSeconds, 120_000, async () => {
      await sleep((restartSeconds * 1000) / 3);
      outage.down = performance.now();
      await redis.kill();
      await sleep(2000);
      await redis.start();
      outage.up = performance.now();
    });
    log(`  ${restart.accepted} accepted, ${restart.delivered} delivered, ${restart.lost} lost, p99 ${pct(restart.latencies, 99).toFixed(0)} ms, max ${restart.latencies.at(-1)?.toFixed(0)} ms`);
    const edgeDuring = await (await fetch(`${edge.url}/small/0.jpg?w=16`)).status;

    await edgePool.close();
    await apiPool.close();
    await hookPool.close();
    await edge.stop();
    await receiver.close();
    await origin.close();
    await redis.kill();

    const results = { date: new Date().toISOString(), cores: os.cpus().length, seconds: args.seconds, rounds: args.rounds, concurrency: CONCURRENCY, meanKiB, throughput, rate, steady: summary(steady), restart: { ...summary(restart), outageMs: outage.up - outage.down }, edgeAfterRestart: edgeDuring };
    await writeFile(path.join(ROOT, 'docs', 'api-bench.json'), JSON.stringify(results, null, 2) + '\n');
    await writeFile(path.join(ROOT, 'docs', 'API-BENCH.md'), report(results));
    log('wrote docs/API-BENCH.md');
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

function summary(r: CallbackRun) {
  return { accepted: r.accepted, refused: r.refused, delivered: r.delivered, lost: r.lost, p50Ms: pct(r.latencies, 50), p99Ms: pct(r.latencies, 99), maxMs: r.latencies.at(-1) ?? NaN };
}

function report(r: { date: string; cores: number; seconds: number; rounds: number; concurrency: number; meanKiB: number; rate: number; throughput: Side[]; steady: ReturnType<typeof summary>; restart: ReturnType<typeof summary> & { outageMs: number }; edgeAfterRestart: number }): string {
  const edge = r.throughput[0]!;
  const f = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '–');
  return [
    '# The optimization API, measured',
    '',
    `Written by \`npm run bench:api\` on ${r.date.slice(0, 16).replace('T', ' ')} UTC (${r.cores} cores, loopback, one driver for every side: undici,`,
    `${r.concurrency} requests at a time, each side ${r.rounds} × ${r.seconds} s in turn). Do not edit by hand; rerun instead.`,
    '',
    `Inputs: ${8} real photographs from Debian packages (\`npm run photos\`), scaled to 800 px wide at q90`,
    `(mean ${f(r.meanKiB)} KiB), as a site would upload them.`,
    '',
    '## Throughput: the API beside the edge\'s own misses',
    '',
    '| side | per s | vs edge misses | p50 ms | p99 ms | errors | edge-process CPU per request, ms |',
    '|---|---|---|---|---|---|---|',
    ...r.throughput.map((s) => `| ${s.name} | ${f(s.rps, 1)} | ${f(s.rps / edge.rps, 2)} × | ${f(s.p50Ms)} | ${f(s.p99Ms)} | ${s.errors} | ${f(s.cpuMsPerRequest, 1)} |`),
    '',
    'An edge miss reads its source from the memory tier, decodes, resizes and encodes it. An upload is',
    'parsed (multipart), identified, decoded a second time on a worker thread to count its colours (for',
    'the log record), optimized and written to the download tree; lossless runs jpegtran (two runs below',
    '128 KiB, baseline and progressive) as processes of their own, outside the edge process\'s CPU column.',
    '',
    '## Webhooks under load',
    '',
    `Callback jobs (lossy q80) uploaded at ${r.rate} a second (half the rate the API sustained above for the same`,
    `work) for ${r.seconds} s; latency from the answer {id} to the POST arriving at a receiver on loopback,`,
    'the wait for a turn, the optimization and the BullMQ queue included. "Lost" counts jobs not delivered a minute after the last was sent.',
    '',
    '| jobs accepted | delivered | lost | p50 ms | p99 ms | max ms |',
    '|---|---|---|---|---|---|',
    `| ${r.steady.accepted} | ${r.steady.delivered} | ${r.steady.lost} | ${f(r.steady.p50Ms)} | ${f(r.steady.p99Ms)} | ${f(r.steady.maxMs)} |`,
    '',
    '## A Redis restart in the middle',
    '',
    `Redis killed (SIGKILL) a third of the way into a callback run at the same rate and started again ${f(r.restart.outageMs / 1000, 1)} s later on`,
    'its append-only file. Jobs are accepted throughout (they wait on disk until queued); deliveries',
    'stop while Redis is down and resume when it is back.',
    '',
    '| jobs accepted | refused | delivered | lost | p50 ms | p99 ms | max ms |',
    '|---|---|---|---|---|---|---|',
    `| ${r.restart.accepted} | ${r.restart.refused} | ${r.restart.delivered} | ${r.restart.lost} | ${f(r.restart.p50Ms)} | ${f(r.restart.p99Ms)} | ${f(r.restart.maxMs)} |`,
    '',
    `The edge answered ${r.edgeAfterRestart} for an image right after.`,
    '',
  ].join('\n');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
