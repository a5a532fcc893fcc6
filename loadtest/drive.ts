/**
 * Load generators. wrk (C, one thread) where installed: on two cores it leaves the other core to
 * the server under test. autocannon otherwise (it runs in Node, so it costs the server more CPU
 * and its ratios are only indicative). Every run walks a list of paths in order, so the edge and
 * its baseline see the same request sequence.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Pool } from 'undici';
import type { CpuByThread } from './thread-cpu.js';

const run = promisify(execFile);

export interface LoadResult {
  requests: number;
  seconds: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** socket errors, timeouts and answers that are not 2xx/3xx */
  errors: number;
  /** CPU time the server spent (all its threads), in ms, when measured */
  cpuMs?: number;
  /** cpuMs by thread group, when measured */
  cpuByThread?: CpuByThread;
  /** the requests cpuMs covers, when not `requests`: the server's own count of the work it finished in the window */
  cpuRequests?: number;
  /** shares of the machine's cores over the timed window: busy (any process) and stolen by the hypervisor */
  machine?: { busy: number; steal: number };
}

/** CPU ms per request of a measured run: `ms` (all of its CPU unless given) over the requests that CPU covers (see cpuRequests). */
export const cpuPerRequest = (run: LoadResult, ms = run.cpuMs!) => ms / (run.cpuRequests ?? run.requests);

export interface LoadOptions {
  baseUrl: string;
  paths: string[];
  connections: number;
  seconds: number;
  headers?: Record<string, string>;
}

let wrkChecked: boolean | undefined;
export async function hasWrk(): Promise<boolean> {
  if (wrkChecked === undefined) {
    wrkChecked = await run('wrk', ['--version']).then(() => true, (err: { code?: unknown }) => err.code !== 'ENOENT');
  }
  return wrkChecked;
}

// Paths are read once per thread; the n-th request takes the n-th path (wrapping), and the
// summary is printed as one JSON line for the caller.
const WRK_SCRIPT = `
local paths = {}
local n = 0
function init(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
end
function request()
  n = n + 1
  return wrk.format(nil, paths[(n - 1) % #paths + 1])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('\\nRESULT {"requests":%d,"duration_us":%d,"errors":%d,"p50_us":%d,"p99_us":%d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
`;

let scratch: Promise<string> | undefined;
const scratchDir = () => (scratch ??= mkdtemp(path.join(os.tmpdir(), 'imgedge-load-')));

async function runWrk(o: LoadOptions): Promise<LoadResult> {
  const dir = await scratchDir();
  const script = path.join(dir, 'paths.lua');
  const list = path.join(dir, `paths-${process.hrtime.bigint()}.txt`);
  await writeFile(script, WRK_SCRIPT);
  await writeFile(list, o.paths.join('\n') + '\n');
  const headers = Object.entries(o.headers ?? {}).flatMap(([k, v]) => ['-H', `${k}: ${v}`]);
  const { stdout } = await run('wrk', [
    '-t1', `-c${o.connections}`, `-d${o.seconds}s`, '--timeout', '30s', ...headers, '-s', script, o.baseUrl, '--', list,
  ], { maxBuffer: 16 * 1024 * 1024 });
  const line = /RESULT (\{.*\})/.exec(stdout);
  if (!line) throw new Error(`wrk printed no result:\n${stdout}`);
  const r = JSON.parse(line[1]!) as { requests: number; duration_us: number; errors: number; p50_us: number; p99_us: number };
  const seconds = r.duration_us / 1e6;
  return { requests: r.requests, seconds, rps: r.requests / seconds, p50Ms: r.p50_us / 1000, p99Ms: r.p99_us / 1000, errors: r.errors };
}

async function runAutocannon(o: LoadOptions): Promise<LoadResult> {
  const { default: autocannon } = await import('autocannon');
  let n = 0;
  const result = await autocannon({
    url: o.baseUrl,
    connections: o.connections,
    duration: o.seconds,
    headers: o.headers ?? {},
    requests: [{ setupRequest: (req) => ({ ...req, path: o.paths[n++ % o.paths.length]! }) }],
  });
  const requests = result.requests.total;
  return {
    requests,
    seconds: result.duration,
    rps: requests / result.duration,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx,
  };
}

/** Requests for `seconds` over `connections` keep-alive connections. */
export async function timedLoad(o: LoadOptions): Promise<LoadResult> {
  return (await hasWrk()) ? runWrk(o) : runAutocannon(o);
}

export async function loadGenerator(): Promise<string> {
  return (await hasWrk()) ? 'wrk 4 (1 thread)' : 'autocannon (in Node; install wrk for exact ratios)';
}

export interface CountedResult extends LoadResult {
  statuses: Record<string, number>;
  /** each answer's X-Cache, counted */
  cache: Record<string, number>;
}

/** Exactly `count` requests, `concurrency` at a time, from this process (for runs bounded by count). */
export async function countedLoad(o: { baseUrl: string; paths: string[]; count: number; concurrency: number; headers?: Record<string, string> }): Promise<CountedResult> {
  // A server that stops answering fails the run instead of hanging it.
  const pool = new Pool(o.baseUrl, { connections: o.concurrency, pipelining: 1, headersTimeout: 60_000, bodyTimeout: 60_000 });
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  const cache: Record<string, number> = {};
  let next = 0;
  let errors = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < o.count) {
      const p = o.paths[next++ % o.paths.length]!;
      const t = performance.now();
      try {
        const res = await pool.request({ path: p, method: 'GET', headers: o.headers ?? {} });
        await res.body.dump({ limit: Infinity });
        statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
        const xc = String(res.headers['x-cache'] ?? 'none');
        cache[xc] = (cache[xc] ?? 0) + 1;
        if (res.statusCode >= 400) errors++;
      } catch {
        errors++;
      }
      latencies.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  await pool.close();
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  return { requests: latencies.length, seconds, rps: latencies.length / seconds, p50Ms: at(0.5), p99Ms: at(0.99), errors, statuses, cache };
}
