import type { Config } from './schema.js';

/** Where shared state lives (the purge log, the webhook queue): one Redis server, or the master a set of sentinels names. */
export interface RedisTarget {
  url?: string;
  sentinels?: string[];
  masterName?: string;
  password?: string;
  sentinelPassword?: string;
  tls?: boolean;
}

/** The configured Redis, or undefined when this node works alone. */
export function redisTargetOf(config: Config): RedisTarget | undefined {
  const { url, sentinels, masterName, password, sentinelPassword, tls } = config.redis;
  if (url) return { url };
  if (!sentinels) return undefined;
  return {
    sentinels,
    ...(masterName ? { masterName } : {}),
    ...(password ? { password } : {}),
    ...(sentinelPassword ? { sentinelPassword } : {}),
    tls,
  };
}
