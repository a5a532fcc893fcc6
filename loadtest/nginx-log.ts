/**
 * `npm run bench:nginx-log`: what nginx's access log costs it a hit, as nginx/imgedge.conf ships
 * it (each worker gathers lines: `buffer=64k flush=1s`) against the same line written with a
 * write(2) per request (nginx's default) and against no access log at all. One edge behind three
 * nginx stacks rendered from the template, differing only in that line; hits over 800 variants
 * already cached, 32 connections, the stacks in turn each round. Judged by nginx's own CPU per
 * request (/proc), which the log line does not touch on the edge's side, and by the rate.
 * `--micro-cache` keeps nginx's micro-cache on (it then answers most hits itself).
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { freePort } from '../test/helpers/processes.js';
import { makeTestCert, renderNginx, startNginx, type RunningNginx } from '../test/helpers/nginx.js';
import { hasWrk, timedLoad } from './drive.js';
import { drawFixtures } from './fixtures.js';
import { ROOT, edgeConfig, startEdge, startOrigin } from './servers.js';
import { cpuMsOf } from './thread-cpu.js';

const LOGS = {
  'as shipped (buffered)': (line: string) => line,
  'a write per request': (line: string) => line.replace(/ buffer=\S+ flush=\S+;/, ';'),
  'no access log': () => 'access_log off;',
} as const;
type LogName = keyof typeof LOGS;

const { values: opts } = parseArgs({ options: { rounds: { type: 'string', default: '4' }, seconds: { type: 'string', default: '8' }, 'micro-cache': { type: 'boolean', default: false } } });
if (!(await hasWrk())) throw new Error('wrk is needed: apt-get install -y wrk');
const work = await mkdtemp(path.join(os.tmpdir(), 'imgedge-nginx-log-'));
const fx = await drawFixtures(ROOT, (line) => console.error(line));
const origin = await startOrigin(fx.dir, fx.big);
const edge = await startEdge(edgeConfig({ origin: origin.url, cacheDir: path.join(work, 'cache'), port: await freePort(), memoryBytes: 64 * 2 ** 20 }), work, path.join(work, 'edge.log'));
const variants: string[] = [];
for (let s = 0; s < fx.miss; s++) for (let w = 100; w < 100 + 800 / fx.miss; w++) variants.push(`/miss/${s}.jpg?w=${w}&fm=webp`);
const stacks: { name: LogName; url: string; nginx: RunningNginx }[] = [];
const seconds = Number(opts.seconds);
try {
  for (const name of Object.keys(LOGS) as LogName[]) {
    const prefix = path.join(work, `nginx-${stacks.length}`);
    const [port, tlsPort] = [await freePort(), await freePort()];
    const conf = await renderNginx({
      nodes: [edge.url.replace('http://', '')], listenPort: port, tlsPort, ...(await makeTestCert(path.join(prefix, 'tls')))!, prefix, workers: 1,
      allowNets: ['127.0.0.1'], rateLimitExempt: ['127.0.0.1'], extra: opts['micro-cache'] ? {} : { MICRO_CACHE: 'off' },
    });
    // The rendered access_log line, rewritten for this stack (the files renderNginx wrote).
    for (const file of await readdir(path.join(prefix, 'conf'))) {
      const at = path.join(prefix, 'conf', file);
      const text = await readFile(at, 'utf8');
      await writeFile(at, text.replace(/access_log \S+ imgedge buffer=\S+ flush=\S+;/, (line) => LOGS[name](line)));
    }
    const nginx = await startNginx(conf);
    if (!nginx) throw new Error('nginx did not start');
    const url = `http://127.0.0.1:${port}`;
    stacks.push({ name, url, nginx });
    // Every variant cached on the edge (and, with the micro-cache, warm in nginx).
    await timedLoad({ baseUrl: url, paths: variants, connections: 32, seconds, headers: { accept: 'image/webp' } });
  }
  const rows = new Map<LogName, { rps: number; nginxMs: number; edgeMs: number }[]>();
  const nginxCpu = async (n: RunningNginx) => (await Promise.all([n.pid, ...n.workers()].map((p) => cpuMsOf(p).catch(() => 0)))).reduce((a, b) => a + b, 0);
  for (let round = 1; round <= Number(opts.rounds); round++) {
    for (const s of stacks) {
      const [n0, e0] = [await nginxCpu(s.nginx), await cpuMsOf(edge.pid)];
      const run = await timedLoad({ baseUrl: s.url, paths: variants, connections: 32, seconds, headers: { accept: 'image/webp' } });
      const [n1, e1] = [await nginxCpu(s.nginx), await cpuMsOf(edge.pid)];
      const row = { rps: run.rps, nginxMs: (n1 - n0) / run.requests, edgeMs: (e1 - e0) / run.requests };
      rows.set(s.name, [...(rows.get(s.name) ?? []), row]);
      console.error(`round ${round}, ${s.name}: ${row.rps.toFixed(0)}/s, nginx ${row.nginxMs.toFixed(4)} ms a hit, edge ${row.edgeMs.toFixed(4)} ms`);
    }
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const shipped = rows.get('as shipped (buffered)')!;
  console.log(`\nnginx's access log, ${opts['micro-cache'] ? 'micro-cache on' : 'micro-cache off'}, ${opts.rounds} rounds of ${seconds} s, ${variants.length} cached variants, 32 connections:\n`);
  console.log('| access log | hits/s | nginx CPU a hit (ms) | edge CPU a hit (ms) | rate vs shipped |');
  console.log('|---|---|---|---|---|');
  for (const [name, rs] of rows) {
    console.log(`| ${name} | ${mean(rs.map((r) => r.rps)).toFixed(0)} | ${mean(rs.map((r) => r.nginxMs)).toFixed(4)} | ${mean(rs.map((r) => r.edgeMs)).toFixed(4)} | ${(mean(rs.map((r) => r.rps)) / mean(shipped.map((r) => r.rps))).toFixed(2)} × |`);
  }
} finally {
  for (const s of stacks) await s.nginx.stop();
  await edge.stop();
  await origin.close();
  await rm(work, { recursive: true, force: true });
}
