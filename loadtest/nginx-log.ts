/**
 * `npm run bench:nginx-log`: what nginx's access log costs it a hit, as nginx/imgedge.conf ships
 * it (each worker gathers lines: `buffer=64k flush=1s`) against the same line written with a
 * write(2) per request (nginx's default) and against no access log at all. One edge behind three
 * nginx stacks rendered from the template, differing only in that line; hits over 800 variants
 * already cached, 32 connections, the stacks in turn each round (each round starting with another).
 * Judged by nginx's own CPU per request (/proc) and by the rate, each as a ratio to the shipped
 * line over all rounds, with the lowest and highest round's: two cores shared by wrk, nginx and
 * the edge move both by several per cent from round to round.
 * `--micro-cache` keeps nginx's micro-cache on (it then answers most hits itself).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { freePort } from '../test/helpers/processes.js';
import { makeTestCert, renderNginx, startNginx, type RunningNginx } from '../test/helpers/nginx.js';
import { countedLoad, hasWrk, timedLoad } from './drive.js';
import { drawFixtures } from './fixtures.js';
import { ROOT, edgeConfig, startEdge, startOrigin, type Child, type CountingOrigin } from './servers.js';
import { ratioWithRounds } from './scenarios.js';
import { cpuMsOf, cpuMsOfAll } from './thread-cpu.js';

const LOGS = {
  'as shipped (buffered)': (line: string) => line,
  'a write per request': (line: string) => line.replace(/ buffer=\S+ flush=\S+;/, ';'),
  'no access log': () => 'access_log off;',
} as const;
type LogName = keyof typeof LOGS;

const { values: opts } = parseArgs({ options: { rounds: { type: 'string', default: '8' }, seconds: { type: 'string', default: '5' }, 'micro-cache': { type: 'boolean', default: false } } });
if (!(await hasWrk())) throw new Error('wrk is needed: apt-get install -y wrk');
const SHIPPED_LINE = /access_log \S+ imgedge buffer=\S+ flush=\S+;/g;
const seconds = Number(opts.seconds);
const work = await mkdtemp(path.join(os.tmpdir(), 'imgedge-nginx-log-'));
const stacks: { name: LogName; url: string; nginx: RunningNginx }[] = [];
let origin: CountingOrigin | undefined;
let edge: Child | undefined;

/** nginx/imgedge.conf rendered in front of `node`, its access_log line rewritten for `name`. */
async function startStack(name: LogName, node: Child): Promise<void> {
  const prefix = path.join(work, `nginx-${stacks.length}`);
  const [port, tlsPort] = [await freePort(), await freePort()];
  const cert = await makeTestCert(path.join(prefix, 'tls'));
  if (!cert) throw new Error('openssl is needed for the test certificate');
  const conf = await renderNginx({
    nodes: [node.url.replace('http://', '')], listenPort: port, tlsPort, ...cert, prefix, workers: 1,
    allowNets: ['127.0.0.1'], rateLimitExempt: ['127.0.0.1'], extra: opts['micro-cache'] ? {} : { MICRO_CACHE: 'off' },
  });
  const included = path.join(prefix, 'conf', 'imgedge.conf');
  const text = await readFile(included, 'utf8');
  // A template whose line no longer matches would leave the three stacks alike, and the table
  // would read 1.00 × for all of them.
  if (text.match(SHIPPED_LINE)?.length !== 1) throw new Error(`${included}: not exactly one access_log line of the shape ${SHIPPED_LINE}`);
  await writeFile(included, text.replace(SHIPPED_LINE, (line) => LOGS[name](line)));
  const nginx = await startNginx(conf);
  if (!nginx) throw new Error('nginx did not start');
  stacks.push({ name, url: `http://127.0.0.1:${port}`, nginx });
}

async function measure(): Promise<Map<LogName, { rps: number; nginxMs: number; edgeMs: number }[]>> {
  const rows = new Map<LogName, { rps: number; nginxMs: number; edgeMs: number }[]>();
  const nginxCpu = (n: RunningNginx) => cpuMsOfAll([n.pid, ...n.workers()]);
  for (let round = 1; round <= Number(opts.rounds); round++) {
    // Each round starts with another stack, so none is always measured first or last.
    const order = stacks.map((_, i) => stacks[(i + round - 1) % stacks.length]!);
    for (const s of order) {
      const [n0, e0] = [await nginxCpu(s.nginx), await cpuMsOf(edge!.pid)];
      const run = await timedLoad({ baseUrl: s.url, paths: variants, connections: 32, seconds, headers: { accept: 'image/webp' } });
      const [n1, e1] = [await nginxCpu(s.nginx), await cpuMsOf(edge!.pid)];
      if (run.errors > 0) throw new Error(`${s.name}: ${run.errors} of ${run.requests} requests failed`);
      const row = { rps: run.rps, nginxMs: (n1 - n0) / run.requests, edgeMs: (e1 - e0) / run.requests };
      rows.set(s.name, [...(rows.get(s.name) ?? []), row]);
      console.error(`round ${round}, ${s.name}: ${row.rps.toFixed(0)}/s, nginx ${row.nginxMs.toFixed(4)} ms a hit, edge ${row.edgeMs.toFixed(4)} ms`);
    }
  }
  return rows;
}

const variants: string[] = [];
try {
  const fx = await drawFixtures(ROOT, (line) => console.error(line));
  for (let s = 0; s < fx.miss; s++) for (let w = 100; w < 100 + 800 / fx.miss; w++) variants.push(`/miss/${s}.jpg?w=${w}&fm=webp`);
  origin = await startOrigin(fx.dir, fx.big);
  edge = await startEdge(edgeConfig({ origin: origin.url, cacheDir: path.join(work, 'cache'), port: await freePort(), memoryBytes: 64 * 2 ** 20 }), work, path.join(work, 'edge.log'));
  for (const name of Object.keys(LOGS) as LogName[]) await startStack(name, edge);
  // Every variant asked for once, so every timed request is a hit on the edge (a timed warm-up
  // left some uncached when the edge made fewer misses a second than it was given).
  const warm = await countedLoad({ baseUrl: stacks[0]!.url, paths: variants, count: variants.length, concurrency: 4, headers: { accept: 'image/webp' } });
  if (warm.statuses['200'] !== variants.length) throw new Error(`warming the edge: ${JSON.stringify(warm.statuses)}`);
  const rows = await measure();
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const shipped = rows.get('as shipped (buffered)')!;
  // Each round's stacks ran side by side: the spread of the per-round ratios shows the noise.
  const spread = (rs: typeof shipped, of: (r: (typeof shipped)[number]) => number) =>
    ratioWithRounds(mean(rs.map(of)) / mean(shipped.map(of)), rs.map((r, i) => of(r) / of(shipped[i]!)));
  console.log(`\nnginx's access log, ${opts['micro-cache'] ? 'micro-cache on' : 'micro-cache off'}, ${opts.rounds} rounds of ${seconds} s, ${variants.length} cached variants, 32 connections:\n`);
  console.log('| access log | hits/s | nginx CPU a hit (ms) | edge CPU a hit (ms) | nginx CPU vs shipped | rate vs shipped |');
  console.log('|---|---|---|---|---|---|');
  for (const [name, rs] of rows) {
    console.log(`| ${name} | ${mean(rs.map((r) => r.rps)).toFixed(0)} | ${mean(rs.map((r) => r.nginxMs)).toFixed(4)} | ${mean(rs.map((r) => r.edgeMs)).toFixed(4)} | ${spread(rs, (r) => r.nginxMs)} | ${spread(rs, (r) => r.rps)} |`);
  }
} finally {
  for (const s of stacks) await s.nginx.stop();
  await edge?.stop();
  await origin?.close();
  await rm(work, { recursive: true, force: true });
}
