import path from 'node:path';
import type { Config } from '../config/schema.js';
import type { Logger } from '../observe/logger.js';
import { LocalPurgeBus } from './local-bus.js';
import { RedisPurgeBus } from './redis-bus.js';
import type { PurgeApplier, PurgeBus } from './types.js';

/** Redis (one server, or Sentinel) when configured: every node gets every purge. Else this node alone. */
export async function openPurgeBus(config: Config, apply: PurgeApplier, logger: Logger): Promise<PurgeBus> {
  const { url, sentinels, masterName, password, sentinelPassword, tls, ackReplicas } = config.redis;
  if (!url && !sentinels) return new LocalPurgeBus(apply);
  const target = url ? { url } : { sentinels, masterName, password, sentinelPassword, tls };
  return RedisPurgeBus.open({
    target,
    apply,
    positionFile: path.join(config.cache.dir, '.purge-position'),
    logger,
    ackReplicas: ackReplicas ?? (sentinels ? 1 : 0),
  });
}
