import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DiskStore } from '../../src/cache/disk-store.js';
import { MemoryStore } from '../../src/cache/memory-store.js';
import { TieredStore } from '../../src/cache/tiered-store.js';
import { parseConfig } from '../../src/config/load.js';
import { staleRetentionMs, type Config } from '../../src/config/schema.js';
import { createEdgeServer, type Edge } from '../../src/http/server.js';
import { createLogger } from '../../src/observe/logger.js';
import { purgeApplier } from '../../src/purge/apply.js';
import { PurgeEpoch } from '../../src/purge/epoch.js';
import { openPurgeBus } from '../../src/purge/open.js';

export const MAIN_JS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/main.js');

export async function tempDir(prefix = 'imgedge-test-'): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

/** A config for tests: one site on `origin`, the cache in `cacheDir`, quiet logs. */
export function testConfig(origin: string, cacheDir: string, overrides: Record<string, any> = {}): Config {
  const { site = {}, ...rest } = overrides;
  return parseConfig({
    server: { host: '127.0.0.1', port: 0 },
    cache: { dir: cacheDir, sweepIntervalSeconds: 3600, ...(rest.cache ?? {}) },
    log: { level: 'silent' },
    ...rest,
    sites: [{ name: 'test', hosts: ['*'], origin, ttl: 3600, ...site }],
  });
}

export interface RunningEdge {
  url: string;
  edge: Edge;
  disk: DiskStore;
  config: Config;
  close(): Promise<void>;
}

/** Starts an edge in this process on a free loopback port. */
export async function startEdge(config: Config): Promise<RunningEdge> {
  const disk = await DiskStore.open({
    dir: config.cache.dir,
    maxBytes: config.cache.maxBytes,
    sweepIntervalMs: config.cache.sweepIntervalSeconds * 1000,
    staleRetentionMs: staleRetentionMs(config),
    reconcileReadsPerSecond: config.cache.reconcileReadsPerSecond,
  });
  const cache = new TieredStore(new MemoryStore({ maxBytes: config.cache.memoryBytes }), disk);
  const logger = createLogger(config.log.level);
  const epoch = new PurgeEpoch();
  const bus = await openPurgeBus(config, epoch.counting(purgeApplier(cache)), logger);
  await bus.catchUp();
  const edge = createEdgeServer(config, cache, logger, bus, epoch);
  const address: AddressInfo = await edge.listen(0, '127.0.0.1');
  return {
    url: `http://127.0.0.1:${address.port}`,
    edge,
    disk,
    config,
    async close() {
      await edge.close();
      await bus.close();
      await cache.close();
    },
  };
}

export interface EdgeProcess {
  url: string;
  child: ChildProcess;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `node dist/src/main.js` as its own process, configured by a written config file. */
export async function spawnEdge(config: Record<string, unknown>, dir: string, env: Record<string, string> = {}): Promise<EdgeProcess> {
  const file = path.join(dir, `config-${Date.now()}.json`);
  await writeFile(file, JSON.stringify(config));
  const child = spawn(process.execPath, [MAIN_JS], {
    env: { ...process.env, IMGEDGE_CONFIG: file, IMGEDGE_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer) => {
      out += d;
      const m = /"address":"(http:\/\/[^"]+)"/.exec(out);
      if (m) {
        child.stdout!.off('data', onData);
        child.stdout!.resume();
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`edge exited with ${code}: ${stderr}`)));
  });
  return {
    url,
    child,
    stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
      return new Promise((resolve) => {
        child.once('exit', (code) => resolve(code));
        child.kill(signal);
      });
    },
  };
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** "<status> <X-Cache>" of a GET of `path` on an edge. */
export async function statusAndCache(baseUrl: string, path: string): Promise<string> {
  const res = await fetch(`${baseUrl}${path}`);
  await res.arrayBuffer();
  return `${res.status} ${res.headers.get('x-cache')}`;
}
