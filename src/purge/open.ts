import path from 'node:path';
import { redisTargetOf } from '../config/redis-target.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../observe/logger.js';
import { LocalPurgeBus } from './local-bus.js';
import { RedisPurgeBus } from './redis-bus.js';
import type { PurgeApplier, PurgeBus } from './types.js';

/** Redis (one server, or Sentinel) when configured: every node gets every purge. Else this node alone. */
export async function openPurgeBus(config: Config, apply: PurgeApplier, logger: Logger): Promise<PurgeBus> {
  const target = redisTargetOf(config);
  if (!target) return new LocalPurgeBus(apply);
  const { sentinels, ackReplicas } = config.redis;
  return RedisPurgeBus.open({
    target,
    apply,
    positionFile: path.join(config.cache.dir, '.purge-position'),
    logger,
    ackReplicas: ackReplicas ?? (sentinels ? 1 : 0),
  });
}
