/**
 * keepalived for the deployment tests: renders keepalived/*.conf, stages the scripts where
 * keepalived's script security accepts them, and runs real keepalived processes inside network
 * namespaces of the test's own (joined by a veth pair), so nothing touches the host's network.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

/** The repository root (this file runs as dist/test/helpers/keepalived.js). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const KEEPALIVED_DIR = path.join(ROOT, 'keepalived');

const INSTALL: Record<string, string> = {
  keepalived: 'apt-get install -y keepalived',
  ip: 'apt-get install -y iproute2',
  curl: 'apt-get install -y curl',
  'systemd-analyze': 'apt-get install -y systemd',
};
// keepalived and ip live in /usr/sbin, which is not on a normal user's PATH on Debian.
const SEARCH = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/sbin', '/usr/local/sbin'];

export function which(name: string): string | undefined {
  for (const dir of SEARCH) {
    if (!dir) continue;
    const file = path.join(dir, name);
    if (existsSync(file)) return file;
  }
  return undefined;
}

/**
 * Why a test needing these tools cannot run here, or undefined when it can. Under CI=true a
 * missing tool is an error (thrown, with the install line), not a reason to skip.
 */
export function missing(tools: string[], opts: { root?: boolean } = {}): string | undefined {
  for (const tool of tools) {
    if (which(tool)) continue;
    const reason = `${tool} is not installed: ${INSTALL[tool] ?? `install ${tool}`}`;
    if (process.env.CI === 'true') throw new Error(reason);
    return reason;
  }
  if (opts.root && process.getuid?.() !== 0) {
    const reason = 'needs root (network namespaces, VRRP raw sockets)';
    if (process.env.CI === 'true') throw new Error(reason);
    return reason;
  }
  return undefined;
}

/**
 * Replaces keepalived parameter definitions (`$NAME=value` lines at the top of the shipped
 * configs) and nothing else. Throws when a name is not defined in the file, so the tests break
 * when the configs change shape.
 */
export function renderKeepalived(text: string, values: Record<string, string>): string {
  let out = text;
  for (const [name, value] of Object.entries(values)) {
    const line = new RegExp(`^\\$${name}=.*$`, 'm');
    if (!line.test(out)) throw new Error(`keepalived config defines no $${name}`);
    out = out.replace(line, `$${name}=${value}`);
  }
  return out;
}

export async function readShipped(file: 'keepalived.conf' | 'keepalived-backup.conf'): Promise<string> {
  return readFile(path.join(KEEPALIVED_DIR, file), 'utf8');
}

/**
 * A fresh root-owned folder (0755) holding copies of check-edge.sh and notify.sh (0755) and an
 * empty notify.d/: keepalived's enable_script_security refuses scripts anywhere a non-root user
 * could write, such as a developer's checkout.
 */
export async function stageScripts(parent: string): Promise<string> {
  const dir = await mkdtemp(path.join(parent, 'scripts-'));
  await chmod(dir, 0o755);
  for (const name of ['check-edge.sh', 'notify.sh']) {
    await copyFile(path.join(KEEPALIVED_DIR, name), path.join(dir, name));
    await chmod(path.join(dir, name), 0o755);
  }
  await mkdir(path.join(dir, 'notify.d'), { mode: 0o755 });
  return dir;
}

export async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  await chmod(dir, 0o755);
  return dir;
}

export interface RunResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): RunResult {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: opts.timeoutMs ?? 15_000, env: opts.env ?? process.env });
  if (r.error) throw r.error;
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Like run(), without blocking the event loop: for commands that talk to servers in this process.
 */
export function runAsync(cmd: string, args: string[], opts: { timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: opts.timeoutMs ?? 15_000 });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d));
    child.stderr!.on('data', (d: Buffer) => (stderr += d));
    child.once('error', reject);
    child.once('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
}

function ipOk(args: string[]): string {
  const r = run(which('ip') ?? 'ip', args);
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** Everything started here, undone also when the test process exits past its own cleanup. */
const processes = new Set<ChildProcess>();
const namespaces = new Set<string>();

function killEverythingNow(): void {
  for (const child of processes) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const ns of namespaces) spawnSync(which('ip') ?? 'ip', ['netns', 'del', ns]);
}
let guarded = false;
function guard(): void {
  if (guarded) return;
  guarded = true;
  process.on('exit', killEverythingNow);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      killEverythingNow();
      process.kill(process.pid, signal);
    });
  }
}

/** A network namespace of the test's own. */
export class Netns {
  private constructor(readonly name: string) {}

  static create(name: string): Netns {
    guard();
    ipOk(['netns', 'add', name]);
    namespaces.add(name);
    ipOk(['-n', name, 'link', 'set', 'lo', 'up']);
    return new Netns(name);
  }

  /** `ip -n NS ...` */
  ip(...args: string[]): string {
    return ipOk(['-n', this.name, ...args]);
  }

  /** Runs a command inside the namespace and waits for it. */
  exec(cmd: string, args: string[], opts: { timeoutMs?: number } = {}): RunResult {
    return run(which('ip') ?? 'ip', ['netns', 'exec', this.name, cmd, ...args], opts);
  }

  /** Starts a long-running command inside the namespace (`ip netns exec` execs it: same pid). */
  spawn(cmd: string, args: string[]): ChildProcess {
    const child = spawn(which('ip') ?? 'ip', ['netns', 'exec', this.name, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    processes.add(child);
    child.once('exit', () => processes.delete(child));
    return child;
  }

  /** The IPv4 addresses on an interface, e.g. ["10.203.7.1/24", "10.203.7.100/24"]. */
  addresses(dev: string): string[] {
    const out = ipOk(['-n', this.name, '-4', '-o', 'addr', 'show', 'dev', dev]);
    return [...out.matchAll(/\binet (\S+)/g)].map((m) => m[1]!);
  }

  has(dev: string, address: string): boolean {
    return this.addresses(dev).some((a) => a.split('/')[0] === address);
  }

  delete(): void {
    if (!namespaces.has(this.name)) return;
    namespaces.delete(this.name);
    spawnSync(which('ip') ?? 'ip', ['netns', 'del', this.name]);
  }
}

/** Two namespaces joined by a veth pair named `dev` on both sides, with an address each. */
export function vethPair(a: Netns, b: Netns, dev: string, addrA: string, addrB: string): void {
  a.ip('link', 'add', dev, 'type', 'veth', 'peer', 'name', dev, 'netns', b.name);
  a.ip('addr', 'add', addrA, 'dev', dev);
  b.ip('addr', 'add', addrB, 'dev', dev);
  a.ip('link', 'set', dev, 'up');
  b.ip('link', 'set', dev, 'up');
}

/** Keeps the last few KiB a process printed, for failure messages. */
function tail(child: ChildProcess): () => string {
  let text = '';
  const keep = (chunk: Buffer) => (text = (text + chunk.toString()).slice(-6000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return () => text;
}

async function stopChild(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const done = await Promise.race([exited.then(() => true), sleep(graceMs).then(() => false)]);
  if (!done) {
    child.kill('SIGKILL');
    await exited;
  }
}

const STAND_IN = `
const [port, status] = process.argv.slice(1).map(Number);
require('node:http').createServer((req, res) => { res.statusCode = status; res.end('stand-in\\n'); console.log('request'); })
  .listen(port, '127.0.0.1', () => console.log('listening'));
`;

/**
 * A tiny HTTP server inside a namespace standing in for nginx or the edge's /_edge/ready:
 * answers every request with `status`. stop() is "the process died".
 */
export class StandIn {
  private child: ChildProcess | undefined;
  constructor(private readonly ns: Netns, readonly port: number, readonly status: number) {}

  async start(): Promise<void> {
    const child = this.ns.spawn(process.execPath, ['-e', STAND_IN, String(this.port), String(this.status)]);
    this.child = child;
    const output = tail(child);
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('listening') && resolve());
      child.once('exit', (code) => reject(new Error(`stand-in on ${this.ns.name}:${this.port} exited (${code}): ${output()}`)));
    });
  }

  /** Resolves when the server has answered its next request (e.g. the track script's). */
  answered(): Promise<void> {
    const out = this.child?.stdout;
    if (!out) return Promise.reject(new Error('the stand-in is not running'));
    return new Promise((resolve) => {
      const onData = (chunk: Buffer) => {
        if (!chunk.toString().includes('request')) return;
        out.off('data', onData);
        resolve();
      };
      out.on('data', onData);
    });
  }

  /** SIGKILL, as a crash: resolves once the process is gone (its port refuses connections). */
  async kill(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }
}

/** One keepalived (VRRP subsystem only, foreground, logging to the console) in a namespace. */
export class Keepalived {
  private constructor(
    private readonly child: ChildProcess,
    readonly output: () => string,
  ) {}

  static start(ns: Netns, confFile: string, runDir: string): Keepalived {
    const base = path.join(runDir, path.basename(confFile, '.conf'));
    const args = ['--dont-fork', '--log-console', '--log-detail', '--no-syslog', '--vrrp',
      '--use-file', confFile, '--pid', `${base}.pid`, '--vrrp_pid', `${base}.vrrp.pid`];
    const child = ns.spawn(which('keepalived') ?? 'keepalived', args);
    return new Keepalived(child, tail(child));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGTERM (keepalived drops its VIPs and sends a priority-0 advert), SIGKILL after 3 s. */
  stop(): Promise<void> {
    return stopChild(this.child);
  }
}

/** Polls `check` every `stepMs` until it is true; false when `timeoutMs` passed first. */
export async function until(check: () => boolean, timeoutMs: number, stepMs = 25): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (check()) return true;
    if (performance.now() >= deadline) return false;
    await sleep(stepMs);
  }
}

/** Writes an executable notify.d hook that appends its arguments to `logFile`. */
export async function recordingHook(scriptsDir: string, logFile: string): Promise<void> {
  const hook = path.join(scriptsDir, 'notify.d', 'record');
  await writeFile(hook, `#!/bin/sh\necho "$*" >> '${logFile}'\n`, { mode: 0o755 });
  await chmod(hook, 0o755);
}

export async function readIfExists(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return '';
  }
}

export async function removeDir(dir: string | undefined): Promise<void> {
  if (dir) await rm(dir, { recursive: true, force: true });
}
