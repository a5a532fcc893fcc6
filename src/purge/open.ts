import path from 'node:path';
import type { Config } from '../config/schema.js';
import type { Logger } from '../observe/logger.js';
import { LocalPurgeBus } from './local-bus.js';
import { RedisPurgeBus } from './redis-bus.js';
import type { PurgeApplier, PurgeBus } from './types.js';

/** Redis when configured (every node gets every purge), else this node alone. */
export async function openPurgeBus(config: Config, apply: PurgeApplier, logger: Logger): Promise<PurgeBus> {
  if (!config.redis.url) return new LocalPurgeBus(apply);
  return RedisPurgeBus.open({ url: config.redis.url, apply, positionFile: path.join(config.cache.dir, '.purge-position'), logger });
}
