/** The servers a benchmark run starts, all on loopback: an origin, the edge, nginx, ipx. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { openSync, closeSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, killWithProcess } from '../test/helpers/processes.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** The repository root, from dist/loadtest/. */
export const ROOT = path.resolve(HERE, '../..');

export interface CountingOrigin {
  url: string;
  /** requests per path since start */
  fetches: Map<string, number>;
  close(): Promise<void>;
}

/**
 * The site's origin: files from `dir`, held in memory after the first read so it costs the
 * machine as little as possible. `/big/<n>.jpg` serves big/<n mod bigCount>.jpg, so many distinct
 * sources cost only a few drawn files.
 */
export async function startOrigin(dir: string, bigCount: number): Promise<CountingOrigin> {
  const files = new Map<string, Promise<Buffer>>();
  const fetches = new Map<string, number>();
  const server = http.createServer((req, res) => {
    const p = (req.url ?? '/').split('?')[0]!;
    fetches.set(p, (fetches.get(p) ?? 0) + 1);
    const big = /^\/big\/(\d+)\.jpg$/.exec(p);
    const file = big ? `big/${Number(big[1]) % bigCount}.jpg` : p.slice(1);
    if (file.includes('..')) return void res.writeHead(400).end();
    let body = files.get(file);
    if (!body) files.set(file, (body = readFile(path.join(dir, file))));
    body.then(
      (b) => res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': b.length }).end(b),
      () => res.writeHead(404).end(),
    );
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    fetches,
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

export interface Child {
  url: string;
  pid: number;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Waits until `url` answers at all (any status). */
async function waitForHttp(url: string, child: ChildProcess, what: string, log: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}; see ${log}`);
    const ok = await new Promise<boolean>((resolve) => {
      http.get(url, (res) => { res.resume(); resolve(true); }).on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not answer within 20 s; see ${log}`);
}

async function startChild(what: string, command: string, args: string[], env: Record<string, string>, log: string, probe: (port: number) => string, port: number): Promise<Child> {
  const fd = openSync(log, 'a');
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const unhook = killWithProcess(() => child.kill('SIGKILL'));
  await waitForHttp(probe(port), child, what, log);
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    child,
    async stop() {
      unhook();
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

/** The site config every benchmark edge runs with (the cache dir and memory tier vary). */
export function edgeConfig(opts: { origin: string; cacheDir: string; port: number; memoryBytes: number }): Record<string, unknown> {
  return {
    server: { host: '127.0.0.1', port: opts.port },
    cache: { dir: opts.cacheDir, maxBytes: 4 * 1024 ** 3, memoryBytes: opts.memoryBytes },
    log: { level: 'info' },
    sites: [{ name: 'bench', hosts: ['*'], origin: opts.origin, ttl: 86_400 }],
  };
}

/** The edge through bin/imgedge-start (jemalloc, thread pool), logging one line per request to `log`. */
export async function startEdge(config: Record<string, unknown>, workDir: string, log: string, env: Record<string, string> = {}): Promise<Child> {
  const port = (config.server as { port: number }).port;
  const file = path.join(workDir, `edge-${port}.json`);
  await writeFile(file, JSON.stringify(config));
  return startChild('the edge', path.join(ROOT, 'bin/imgedge-start'), [], { IMGEDGE_CONFIG: file, ...env }, log,
    (p) => `http://127.0.0.1:${p}/_edge/health`, port);
}

/**
 * nginx, one worker (as the edge is one process), serving `root` with the usual static-file
 * settings, its access log written in batches as nginx/imgedge.conf writes its own.
 */
export async function startStaticNginx(root: string, workDir: string): Promise<Child> {
  const port = await freePort();
  const conf = path.join(workDir, `nginx-${port}.conf`);
  await writeFile(conf, `
daemon off;
worker_processes 1;
pid ${workDir}/nginx-${port}.pid;
error_log ${workDir}/nginx-error.log warn;
events { worker_connections 4096; }
http {
  include /etc/nginx/mime.types;
  types { image/webp webp; image/avif avif; }
  access_log ${workDir}/nginx-access.log combined buffer=64k flush=1s;
  sendfile on;
  tcp_nopush on;
  open_file_cache max=10000 inactive=60s;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:${port};
    root ${root};
    location / { add_header Cache-Control "public, max-age=86400"; }
  }
}
`);
  return startChild('nginx', 'nginx', ['-e', `${workDir}/nginx-error.log`, '-c', conf], {}, path.join(workDir, 'nginx-stdout.log'),
    (p) => `http://127.0.0.1:${p}/`, port);
}

/** unjs/ipx (the npm package) serving `dir`, as its README starts it. */
export async function startIpx(dir: string, workDir: string, env: Record<string, string>): Promise<Child> {
  const port = await freePort();
  return startChild('ipx', process.execPath, [path.join(HERE, 'ipx-server.js'), dir, String(port)], env,
    path.join(workDir, 'ipx.log'), (p) => `http://127.0.0.1:${p}/`, port);
}

/** node:http answering `file` from memory: what no Node.js server here can beat. */
export async function startBareNode(file: string, contentType: string, workDir: string): Promise<Child> {
  const port = await freePort();
  return startChild('bare node', process.execPath, [path.join(HERE, 'bare-node.js'), file, contentType, String(port)], {},
    path.join(workDir, 'bare-node.log'), (p) => `http://127.0.0.1:${p}/`, port);
}

/** jemalloc and the thread pool, as bin/imgedge-start sets them, for the baselines that run sharp. */
export function sharpEnv(): Record<string, string> {
  return { LD_PRELOAD: process.env.LD_PRELOAD ?? jemallocPath() ?? '', UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '9' };
}

function jemallocPath(): string | undefined {
  for (const lib of ['/usr/lib/x86_64-linux-gnu/libjemalloc.so.2', '/usr/lib/aarch64-linux-gnu/libjemalloc.so.2']) {
    try {
      closeSync(openSync(lib, 'r'));
      return lib;
    } catch {
      // not installed here
    }
  }
  return undefined;
}

/** Resident set now and at its peak (VmHWM), in MiB. */
export async function memoryOf(pid: number): Promise<{ rssMiB: number; peakMiB: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMiB: kb('VmRSS') / 1024, peakMiB: kb('VmHWM') / 1024 };
}

/** The edge's Prometheus samples: by series (`name{labels}`) and, summed over labels, by name. */
export async function edgeCounters(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/_edge/metrics`)).text();
  const sums = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(([a-z_]+)(?:\{[^}]*\})?) ([0-9.e+-]+)$/.exec(line);
    if (!m) continue;
    sums.set(m[2]!, (sums.get(m[2]!) ?? 0) + Number(m[3]));
    if (m[1] !== m[2]) sums.set(m[1]!, Number(m[3]));
  }
  return sums;
}
