/**
 * `npm run worker`: a process that only delivers webhooks from the Redis queue (as the seed ran
 * its delivery on machines of their own). It needs Redis and the same API keys (they sign).
 */
import { ConfigError, loadConfig } from '../config/load.js';
import { redisTargetOf } from '../config/redis-target.js';
import { createLogger, flushLogs } from '../observe/logger.js';
import { parseNetworks, PublicAddressGuard } from '../origin/public-fetch.js';
import { ApiKeys } from './keys.js';
import { DELIVERY_POLICY, WebhookSender } from './webhook-delivery.js';
import { BullWebhookQueue } from './webhook-queue.js';

async function main(): Promise<void> {
  const config = await loadConfig();
  const logger = createLogger(config.log.level);
  const target = redisTargetOf(config);
  if (!target) throw new ConfigError(['npm run worker delivers from the Redis queue: set IMGEDGE_REDIS_URL (or redis.sentinels); without Redis each API process delivers its own webhooks']);
  const keys = new ApiKeys(config.api.keys);
  const sender = new WebhookSender(new PublicAddressGuard(parseNetworks(config.api.allowNetworks)), (key) => keys.signingSecret(key));
  const queue = new BullWebhookQueue(target, { ...DELIVERY_POLICY, attempts: config.api.webhooks.attempts, backoffMs: config.api.webhooks.backoffMs }, (err) => logger.warn({ err: err.message }, 'webhook queue: Redis unreachable, retrying'));
  const worker = queue.startWorker(sender, config.api.webhooks.concurrency);
  worker.on('completed', (job) => logger.info({ id: job.id }, 'webhook delivered'));
  worker.on('failed', (job, err) => logger.warn({ id: job?.id, attempt: job?.attemptsMade, err: err.message }, 'webhook attempt failed'));
  logger.info({ concurrency: config.api.webhooks.concurrency, keys: keys.size }, 'webhook worker running');
  const stop = async () => {
    await queue.close();
    await sender.close();
    await flushLogs(logger);
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
}

main().catch((err: unknown) => {
  process.stderr.write(`imgedge worker: ${err instanceof ConfigError ? err.message : (err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
