import { mkdir } from 'node:fs/promises';
import sharp from 'sharp';
import { DiskStore } from './cache/disk-store.js';
import { MemoryStore } from './cache/memory-store.js';
import { TieredStore } from './cache/tiered-store.js';
import { ConfigError, loadConfig } from './config/load.js';
import { staleRetentionMs } from './config/schema.js';
import { createApiServer, type ApiServer } from './api/server.js';
import { createEdgeServer, transformLimiterFor } from './http/server.js';
import { createLogger, flushLogs } from './observe/logger.js';
import { purgeApplier } from './purge/apply.js';
import { PurgeEpoch } from './purge/epoch.js';
import { openPurgeBus } from './purge/open.js';
import { closeQualityPool } from './transform/quality-pool.js';

async function main(): Promise<void> {
  const config = await loadConfig();
  const logger = createLogger(config.log.level);
  // Variants are cached on disk; libvips' own operation cache would only hold memory.
  sharp.cache(false);

  await mkdir(config.cache.dir, { recursive: true });
  const disk = await DiskStore.open({
    dir: config.cache.dir,
    maxBytes: config.cache.maxBytes,
    sweepIntervalMs: config.cache.sweepIntervalSeconds * 1000,
    staleRetentionMs: staleRetentionMs(config),
    reconcileReadsPerSecond: config.cache.reconcileReadsPerSecond,
    fsync: config.cache.fsync,
    logger,
  });
  const cache = new TieredStore(new MemoryStore({ maxBytes: config.cache.memoryBytes }), disk);
  const epoch = new PurgeEpoch();
  const bus = await openPurgeBus(config, epoch.counting(purgeApplier(cache)), logger);
  // Purges this node missed while it was down apply before it serves from its cache. Without
  // Redis it serves all the same, revalidating what it cannot vouch for (bus.unverifiedBefore).
  try {
    const missed = await bus.catchUp();
    if (missed > 0) logger.info({ purges: missed }, 'applied purges missed while stopped');
  } catch (err) {
    logger.warn({ err: (err as Error).message }, 'purge log unreachable: serving, and revalidating cached entries with the origin until it is read');
  }
  const limiter = transformLimiterFor(config);
  const edge = createEdgeServer(config, cache, logger, bus, epoch, limiter);
  const address = await edge.listen(config.server.port, config.server.host);
  logger.info(
    { address: `http://${address.address}:${address.port}`, cacheDir: config.cache.dir, sites: config.sites.map((s) => s.name) },
    'imgedge listening',
  );
  let api: ApiServer | undefined;
  if (config.api.port !== undefined) {
    api = await createApiServer(config, logger, { limiter });
    const at = await api.listen();
    logger.info({ address: `http://${at.address}:${at.port}`, keys: api.keys.size }, 'optimization API listening');
  }

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: finishing in-flight requests');
    await Promise.all([edge.close(), api?.close()]);
    await closeQualityPool();
    await bus.close();
    await cache.close();
    logger.info('stopped');
    await flushLogs(logger);
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`imgedge: ${err.message}\n`);
  } else {
    process.stderr.write(`imgedge: failed to start: ${(err as Error).stack ?? String(err)}\n`);
  }
  process.exit(1);
});
