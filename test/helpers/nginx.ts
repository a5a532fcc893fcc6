/** A real nginx of the test's own: nginx/imgedge.conf rendered for loopback ports, in a prefix directory. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { killWithProcess } from './processes.js';

/** The repository root (this file runs as dist/test/helpers/nginx.js). */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const RENDER_MJS = path.join(ROOT, 'nginx', 'render.mjs');

const NGINX_INSTALL = 'apt-get install -y nginx';
const OPENSSL_INSTALL = 'apt-get install -y openssl';
// nginx lives in /usr/sbin, which is not on a normal user's PATH on Debian.
const SEARCH = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/usr/local/sbin', '/usr/local/nginx/sbin'];

function which(name: string): string | undefined {
  for (const dir of SEARCH) {
    if (!dir) continue;
    const file = path.join(dir, name);
    if (existsSync(file)) return file;
  }
  return undefined;
}

/** Path of a binary; undefined when missing (the caller skips), except under CI, where that is a failure. */
function required(name: string, install: string): string | undefined {
  const found = which(name);
  if (!found && process.env.CI === 'true') throw new Error(`${name} is not installed: ${install}`);
  return found;
}

/** The nginx binary, or undefined (tests skip with `nginxMissing`). Throws under CI=true. */
export function nginxBinary(): string | undefined {
  return required('nginx', NGINX_INSTALL);
}

/** Why the nginx tests cannot run here, or undefined when nginx and openssl are installed. */
export function nginxMissing(): string | undefined {
  if (!nginxBinary()) return `nginx is not installed: ${NGINX_INSTALL}`;
  if (!required('openssl', OPENSSL_INSTALL)) return `openssl is not installed: ${OPENSSL_INSTALL}`;
  return undefined;
}

/** A self-signed certificate for localhost / 127.0.0.1, valid one day. Undefined when openssl is missing. */
export async function makeTestCert(dir: string): Promise<{ certFile: string; keyFile: string } | undefined> {
  const openssl = required('openssl', OPENSSL_INSTALL);
  if (!openssl) return undefined;
  await mkdir(dir, { recursive: true });
  const certFile = path.join(dir, 'test-cert.pem');
  const keyFile = path.join(dir, 'test-key.pem');
  const args = ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '1',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', keyFile, '-out', certFile];
  const run = spawnSync(openssl, args, { encoding: 'utf8', timeout: 30_000 });
  if (run.status !== 0) throw new Error(`openssl req failed (${run.status}): ${run.stderr}`);
  return { certFile, keyFile };
}


export interface NginxOptions {
  /** edge nodes, `127.0.0.1:port` */
  nodes: string[];
  listenPort: number;
  tlsPort: number;
  certFile: string;
  keyFile: string;
  /** networks allowed to reach /_edge/ */
  allowNets: string[];
  /** the prefix directory: conf/, logs/, tmp/ and the pid file go in it */
  prefix: string;
  serverNames?: string[];
  /** limit_req rate per client address (production default 50r/s) and burst (200) */
  rate?: string;
  burst?: number;
  rateLimitExempt?: string[];
  maxFails?: number;
  failTimeout?: string;
  /** any other placeholder of nginx/imgedge.conf */
  extra?: Record<string, string | string[]>;
  /** an already rendered imgedge.conf to use as it is (the listen and node options are then ignored) */
  imgedgeConf?: string;
  /** worker processes (default 2) */
  workers?: number;
}

interface Renderer {
  renderImgedgeConf(values: Record<string, string | string[]>): string;
  renderApiConf(values: Record<string, string | string[]>): string;
}

/** nginx/render.mjs, the renderer operators use (it is not compiled, so it is loaded from the repository). */
export async function loadRenderer(): Promise<Renderer> {
  return (await import(pathToFileURL(RENDER_MJS).href)) as Renderer;
}

const listenPorts = new Map<string, number>();

/**
 * Writes <prefix>/conf/imgedge.conf (the template rendered for loopback) and <prefix>/conf/nginx.conf
 * (pid, error log, temp paths inside the prefix; includes imgedge.conf as Debian's conf.d would).
 * Returns the path of nginx.conf.
 */
export async function renderNginx(opts: NginxOptions): Promise<string> {
  const prefix = path.resolve(opts.prefix);
  for (const dir of ['conf', 'logs', 'tmp']) await mkdir(path.join(prefix, dir), { recursive: true });
  const { renderImgedgeConf } = await loadRenderer();
  const values: Record<string, string | string[]> = {
    NODES: opts.nodes,
    HTTP_LISTEN: [`127.0.0.1:${opts.listenPort}`],
    HTTPS_LISTEN: [`127.0.0.1:${opts.tlsPort}`],
    SERVER_NAMES: opts.serverNames ?? ['localhost'],
    TLS_CERT: opts.certFile,
    TLS_KEY: opts.keyFile,
    ADMIN_NETS: opts.allowNets,
    ACCESS_LOG: path.join(prefix, 'logs', 'access.log'),
    MICRO_CACHE_PATH: path.join(prefix, 'tmp', 'micro'),
    ...(opts.rate !== undefined ? { RATE: opts.rate } : {}),
    ...(opts.burst !== undefined ? { RATE_BURST: String(opts.burst) } : {}),
    ...(opts.rateLimitExempt !== undefined ? { RATE_LIMIT_EXEMPT: opts.rateLimitExempt } : {}),
    ...(opts.maxFails !== undefined ? { MAX_FAILS: String(opts.maxFails) } : {}),
    ...(opts.failTimeout !== undefined ? { FAIL_TIMEOUT: opts.failTimeout } : {}),
    ...opts.extra,
  };
  const imgedgeConf = path.join(prefix, 'conf', 'imgedge.conf');
  await writeFile(imgedgeConf, opts.imgedgeConf ?? renderImgedgeConf(values));
  const tmp = (name: string) => path.join(prefix, 'tmp', name);
  const conf = path.join(prefix, 'conf', 'nginx.conf');
  await writeFile(
    conf,
    [
      '# Written by test/helpers/nginx.ts for one test run.',
      // As root, workers would run as "nobody" and could not enter the 0700 temp prefix.
      ...(process.getuid?.() === 0 ? ['user root;'] : []),
      `worker_processes ${opts.workers ?? 2};`,
      `pid ${path.join(prefix, 'nginx.pid')};`,
      `error_log ${path.join(prefix, 'logs', 'error.log')} info;`,
      'events { worker_connections 1024; }',
      'http {',
      '    default_type application/octet-stream;',
      // as Debian's /etc/nginx/nginx.conf, which the template is included from in production
      '    sendfile on;',
      '    tcp_nopush on;',
      `    client_body_temp_path ${tmp('body')};`,
      `    proxy_temp_path ${tmp('proxy')};`,
      `    fastcgi_temp_path ${tmp('fastcgi')};`,
      `    uwsgi_temp_path ${tmp('uwsgi')};`,
      `    scgi_temp_path ${tmp('scgi')};`,
      `    access_log ${path.join(prefix, 'logs', 'other.log')};`,
      `    include ${imgedgeConf};`,
      '}',
      '',
    ].join('\n'),
  );
  listenPorts.set(conf, opts.listenPort);
  return conf;
}

const prefixOf = (conf: string) => path.resolve(path.dirname(conf), '..');

/** `nginx -t` on a rendered config: whether it passed and what it printed. Undefined when nginx is missing. */
export async function nginxTest(conf: string): Promise<{ ok: boolean; output: string } | undefined> {
  const nginx = nginxBinary();
  if (!nginx) return undefined;
  const run = spawnSync(nginx, ['-t', '-e', 'stderr', '-p', prefixOf(conf), '-c', conf], { encoding: 'utf8', timeout: 20_000 });
  return { ok: run.status === 0, output: `${run.stdout ?? ''}${run.stderr ?? ''}` };
}

export interface RunningNginx {
  pid: number;
  /** the worker processes' ids right now */
  workers(): number[];
  /** the error log so far */
  errorLog(): Promise<string>;
  /** SIGHUP: new workers with the (re-read) config; resolves when the old workers are replaced */
  reload(): Promise<void>;
  /** fast shutdown (SIGTERM), SIGKILL of master and workers after 5 s */
  stop(): Promise<void>;
}


/** A process's children right now (nginx's workers under its master). */
export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    socket.setTimeout(500);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/**
 * Runs `nginx -p <prefix> -c <conf> -g 'daemon off;'` in the foreground and waits (up to 10 s)
 * until the plain-HTTP port accepts connections. Undefined when nginx is missing. The master and
 * its workers are killed when the test process exits, should a test end without stop().
 */
export async function startNginx(conf: string, port = listenPorts.get(conf)): Promise<RunningNginx | undefined> {
  const nginx = nginxBinary();
  if (!nginx) return undefined;
  if (port === undefined) throw new Error(`startNginx: no port known for ${conf}; pass it`);
  const child: ChildProcess = spawn(nginx, ['-e', 'stderr', '-p', prefixOf(conf), '-c', conf, '-g', 'daemon off;'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const pid = child.pid!;
  const running = () => child.exitCode === null && child.signalCode === null;
  let workers: number[] = [];
  const killAll = () => {
    for (const p of new Set([pid, ...childrenOf(pid), ...workers])) {
      try {
        // A worker id remembered earlier may belong to another process by now.
        if (p !== pid && !readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('nginx')) continue;
        process.kill(p, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };
  const unguard = killWithProcess(killAll);

  const deadline = Date.now() + 10_000;
  while (!(await connects(port))) {
    if (!running()) {
      unguard();
      throw new Error(`nginx exited (${child.exitCode ?? child.signalCode}) before listening:\n${output}`);
    }
    if (Date.now() > deadline) {
      killAll();
      unguard();
      throw new Error(`nginx did not listen on ${port} within 10 s:\n${output}`);
    }
    await sleep(50);
  }
  workers = childrenOf(pid);

  return {
    pid,
    workers: () => childrenOf(pid),
    errorLog: () => readFile(path.join(prefixOf(conf), 'logs', 'error.log'), 'utf8').catch(() => ''),
    async reload() {
      const before = new Set(childrenOf(pid));
      process.kill(pid, 'SIGHUP');
      const until = Date.now() + 5000;
      // Done when none of the old workers is left and new ones run.
      while (Date.now() < until) {
        const now = childrenOf(pid);
        if (now.length > 0 && now.every((p) => !before.has(p))) {
          workers = now;
          return;
        }
        await sleep(50);
      }
      throw new Error(`nginx reload did not replace its workers within 5 s:\n${output}`);
    },
    async stop() {
      workers = childrenOf(pid);
      if (running()) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        const timer = setTimeout(killAll, 5000);
        await exited;
        clearTimeout(timer);
      }
      unguard();
    },
  };
}
