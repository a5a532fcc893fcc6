import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
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

export interface TestSentinels {
  /** "host:port" of each sentinel, for IMGEDGE_REDIS_SENTINELS */
  sentinels: string[];
  masterName: string;
  /** the servers, master first at the start */
  servers: Array<{ port: number; kill(): Promise<void> }>;
  /** the port the sentinels name as master now */
  masterPort(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * A master, a replica and three sentinels (quorum 2) on loopback, as a Sentinel setup runs in
 * production, with a short down-after (1 s) so a failover takes seconds.
 */
export async function startSentinels(): Promise<TestSentinels> {
  if (spawnSync('redis-server', ['--version']).error) throw new Error(`redis-server is not installed: ${INSTALL}`);
  const dir = await mkdtemp(join(tmpdir(), 'imgedge-sentinel-'));
  const children: ChildProcess[] = [];
  const unguard = killWithProcess(() => children.forEach((c) => c.kill('SIGKILL')));
  const spawnServer = async (port: number, args: string[]): Promise<ChildProcess> => {
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let output = '';
    const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-2000));
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`redis-server exited (${code}):\n${output}`))));
    await Promise.race([untilPong(port), exited]);
    return child;
  };
  const masterName = 'imgedge';
  const [masterPort, replicaPort, ...sentinelPorts] = await Promise.all([0, 1, 2, 3, 4].map(() => freePort()));
  const server = (port: number, extra: string[]) => ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...extra];
  const master = await spawnServer(masterPort!, server(masterPort!, []));
  const replica = await spawnServer(replicaPort!, server(replicaPort!, ['--replicaof', '127.0.0.1', String(masterPort)]));
  for (let i = 0; i < 100; i++) {
    const info = spawnSync('redis-cli', ['-p', String(masterPort), 'INFO', 'replication'], { encoding: 'utf8' }).stdout;
    if (/slave0:.*state=online/.test(info)) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  for (const port of sentinelPorts) {
    const conf = join(dir, `sentinel-${port}.conf`);
    await writeFile(
      conf,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${masterName} 127.0.0.1 ${masterPort} 2`,
        `sentinel down-after-milliseconds ${masterName} 1000`,
        `sentinel failover-timeout ${masterName} 5000`,
        `sentinel parallel-syncs ${masterName} 1`,
        '',
      ].join('\n'),
    );
    await spawnServer(port, [conf, '--sentinel']);
  }
  const kill = (child: ChildProcess) => async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  };
  return {
    sentinels: sentinelPorts.map((p) => `127.0.0.1:${p}`),
    masterName,
    servers: [
      { port: masterPort!, kill: kill(master) },
      { port: replicaPort!, kill: kill(replica) },
    ],
    async masterPort() {
      const { stdout } = spawnSync('redis-cli', ['-p', String(sentinelPorts[0]), 'sentinel', 'get-master-addr-by-name', masterName], { encoding: 'utf8' }) as unknown as { stdout: string };
      return Number(stdout.trim().split('\n')[1]);
    },
    async stop() {
      await Promise.all(children.map((c) => kill(c)()));
      unguard();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
