import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, killWithProcess } from './processes.js';

export interface TestRedis {
  url: string;
  port: number;
  /** stops the server for good and removes its directory */
  stop(): Promise<void>;
  /** SIGKILL, as in a crash; restart() brings it back */
  kill(): Promise<void>;
  /** starts again on the same port, with the data written before (append-only file, fsync always) */
  restart(): Promise<void>;
}

const INSTALL = 'apt-get install -y redis-server';

/**
 * A real redis-server of its own on a free loopback port. Undefined when the binary is missing
 * (the caller skips), except under CI, where that is a failure.
 */
export async function startRedis(): Promise<TestRedis | undefined> {
  if (spawnSync('redis-server', ['--version']).error) {
    if (process.env.CI === 'true') throw new Error(`redis-server is not installed: ${INSTALL}`);
    return undefined;
  }
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'imgedge-redis-'));
  let server: ChildProcess | undefined;
  const unguard = killWithProcess(() => server?.kill('SIGKILL'));

  const start = async () => {
    await mkdir(dir, { recursive: true });
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always'];
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    server = child;
    let output = '';
    const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-2000));
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    const exited = new Promise<never>((_, reject) =>
      child.once('exit', (code) => reject(new Error(`redis-server exited (${code}) before answering:\n${output}`))),
    );
    await Promise.race([untilPong(port), exited]);
  };
  const end = async (signal: NodeJS.Signals) => {
    const child = server;
    server = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    await exited;
  };

  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop: async () => {
      await end('SIGTERM');
      unguard();
      await rm(dir, { recursive: true, force: true });
    },
    kill: () => end('SIGKILL'),
    restart: async () => {
      await end('SIGTERM');
      await start();
    },
  };
}



/** Waits (up to 5 s) until the server answers PING. */
async function untilPong(port: number): Promise<void> {
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    if (await ping(port)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`redis-server on port ${port} did not answer PING within 5 s`);
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    socket.setTimeout(500);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => {
      socket.destroy();
      resolve(data.toString().startsWith('+PONG'));
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}
