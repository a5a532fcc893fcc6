/**
 * Webhook deliveries waiting, retried and logged. With Redis, a BullMQ queue: every API process
 * and every `npm run worker` delivers from it, and Redis (append-only) keeps what is queued
 * through restarts. Without Redis, this process alone, with the same policy, each delivery a
 * small JSON file that a restart picks up again. Either way the log of attempts is kept a week.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Queue, Worker, type ConnectionOptions } from 'bullmq';
import { Redis } from 'ioredis';
import type { RedisTarget } from '../config/redis-target.js';
import { DELIVERY_POLICY, type Delivery, type DeliveryAttempt, type DeliveryLog, type WebhookSender } from './webhook-delivery.js';

export interface WebhookQueue {
  enqueue(d: Delivery): Promise<void>;
  /** the log of a delivery, when it exists and belongs to `key` */
  log(id: string, key: string): Promise<DeliveryLog | undefined>;
  close(): Promise<void>;
}

export interface QueuePolicy {
  attempts: number;
  backoffMs: number;
  keepMs: number;
}

const QUEUE_NAME = 'imgedge-webhooks';

/**
 * An ioredis connection to a RedisTarget. For BullMQ (its workers block), commands wait while
 * Redis is away; `failFast` ones fail at once then, and after a second otherwise.
 */
export function ioredisFor(target: RedisTarget, { failFast = false } = {}): Redis {
  const common = failFast ? { maxRetriesPerRequest: 1, enableOfflineQueue: false, commandTimeout: 1_000 } : { maxRetriesPerRequest: null, enableOfflineQueue: true };
  if (target.url) return new Redis(target.url, common);
  return new Redis({
    ...common,
    sentinels: target.sentinels!.map((hostPort) => {
      const at = hostPort.lastIndexOf(':');
      return { host: hostPort.slice(0, at), port: Number(hostPort.slice(at + 1)) };
    }),
    name: target.masterName!,
    ...(target.password ? { password: target.password } : {}),
    ...(target.sentinelPassword ? { sentinelPassword: target.sentinelPassword } : {}),
    ...(target.tls ? { tls: {}, sentinelTLS: {}, enableTLSForSentinelMode: true } : {}),
  });
}

export class BullWebhookQueue implements WebhookQueue {
  private readonly queue: Queue;
  private worker: Worker | undefined;
  private readonly connections: Redis[] = [];

  /**
   * `onError` hears connection trouble (Redis down, a failover): ioredis reconnects by itself and
   * BullMQ resumes, so it is reported, never thrown.
   */
  constructor(
    private readonly target: RedisTarget,
    private readonly policy: QueuePolicy = DELIVERY_POLICY,
    private readonly onError: (err: Error) => void = () => {},
  ) {
    const producer = this.connect();
    this.queue = new Queue(QUEUE_NAME, { connection: producer as unknown as ConnectionOptions });
    this.queue.on('error', onError);
  }

  private connect(): Redis {
    const connection = ioredisFor(this.target);
    connection.on('error', this.onError);
    this.connections.push(connection);
    return connection;
  }

  /** Delivers from the queue in this process too (API processes and `npm run worker`). */
  startWorker(sender: WebhookSender, concurrency = 16): Worker {
    const connection = this.connect();
    this.worker = new Worker<Delivery>(
      QUEUE_NAME,
      async (job) => {
        const attempt = await sender.attempt(job.data);
        await job.log(JSON.stringify(attempt));
        if (attempt.error) throw new Error(attempt.error);
      },
      {
        connection: connection as unknown as ConnectionOptions,
        concurrency,
        autorun: true,
        // A delivery takes at most 10 s, so a 20 s lock is never lost to a slow receiver. A job
        // whose worker died, or that was in flight when Redis restarted, is picked up again
        // within about 25 s rather than BullMQ's default minute.
        lockDuration: 20_000,
        stalledInterval: 5_000,
      },
    );
    this.worker.on('error', this.onError);
    return this.worker;
  }

  async enqueue(d: Delivery): Promise<void> {
    const keepSeconds = Math.round(this.policy.keepMs / 1000);
    await this.queue.add('deliver', d, {
      jobId: d.id,
      attempts: this.policy.attempts,
      backoff: { type: 'exponential', delay: this.policy.backoffMs },
      removeOnComplete: { age: keepSeconds },
      removeOnFail: { age: keepSeconds },
    });
  }

  async log(id: string, key: string): Promise<DeliveryLog | undefined> {
    const job = await this.queue.getJob(id);
    if (!job || (job.data as Delivery).key !== key) return undefined;
    const { logs } = await this.queue.getJobLogs(id, 0, -1, true);
    const state = await job.getState();
    return {
      id,
      callback_url: (job.data as Delivery).callbackUrl,
      state: state === 'completed' ? 'delivered' : state === 'failed' ? 'failed' : 'pending',
      attempts: logs.map((l) => JSON.parse(l) as DeliveryAttempt),
    };
  }

  async close(): Promise<void> {
    await this.worker?.close();
    await this.queue.close();
    await Promise.all(this.connections.map((c) => c.quit().catch(() => c.disconnect())));
  }
}

interface LocalRecord {
  delivery: Delivery;
  state: DeliveryLog['state'];
  attempts: DeliveryAttempt[];
  /** when the next attempt is due (pending) or when the record goes (done) */
  dueAt: number;
}

/** The same policy in this process alone, each delivery a file in `dir` so a restart resumes it. */
export class LocalWebhookQueue implements WebhookQueue {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly running = new Set<Promise<void>>();
  private closed = false;

  private constructor(
    private readonly dir: string,
    private readonly sender: WebhookSender,
    private readonly policy: QueuePolicy,
  ) {}

  static async open(dir: string, sender: WebhookSender, policy: QueuePolicy = DELIVERY_POLICY): Promise<LocalWebhookQueue> {
    await mkdir(dir, { recursive: true });
    const q = new LocalWebhookQueue(dir, sender, policy);
    for (const name of await readdir(dir)) {
      if (!name.endsWith('.json')) continue;
      const record = await q.read(name.slice(0, -5));
      if (!record) continue;
      q.schedule(record, record.dueAt);
    }
    return q;
  }

  private file(id: string): string {
    return path.join(this.dir, `${id}.json`);
  }

  private async read(id: string): Promise<LocalRecord | undefined> {
    if (!/^[0-9a-f]{32}$/.test(id)) return undefined;
    try {
      return JSON.parse(await readFile(this.file(id), 'utf8')) as LocalRecord;
    } catch {
      return undefined;
    }
  }

  private async write(record: LocalRecord): Promise<void> {
    const tmp = `${this.file(record.delivery.id)}.tmp`;
    await writeFile(tmp, JSON.stringify(record));
    await rename(tmp, this.file(record.delivery.id));
  }

  /** A pending record's next attempt, or a finished one's removal after the keep period. */
  private schedule(record: LocalRecord, at: number): void {
    if (this.closed) return;
    const id = record.delivery.id;
    clearTimeout(this.timers.get(id));
    const timer = setTimeout(() => {
      this.timers.delete(id);
      const work = (record.state === 'pending' ? this.attempt(record) : rm(this.file(id), { force: true })).catch(() => {});
      this.running.add(work);
      void work.finally(() => this.running.delete(work));
    }, Math.max(0, at - Date.now()));
    timer.unref();
    this.timers.set(id, timer);
  }

  private async attempt(record: LocalRecord): Promise<void> {
    const attempt = await this.sender.attempt(record.delivery);
    record.attempts.push(attempt);
    if (!attempt.error) record.state = 'delivered';
    else if (record.attempts.length >= this.policy.attempts) record.state = 'failed';
    const n = record.attempts.length;
    record.dueAt = record.state === 'pending' ? Date.now() + this.policy.backoffMs * 2 ** (n - 1) : Date.now() + this.policy.keepMs;
    await this.write(record);
    this.schedule(record, record.dueAt);
  }

  async enqueue(d: Delivery): Promise<void> {
    const record: LocalRecord = { delivery: d, state: 'pending', attempts: [], dueAt: Date.now() };
    await this.write(record);
    this.schedule(record, record.dueAt);
  }

  async log(id: string, key: string): Promise<DeliveryLog | undefined> {
    const record = await this.read(id);
    if (!record || record.delivery.key !== key) return undefined;
    return { id, callback_url: record.delivery.callbackUrl, state: record.state, attempts: record.attempts };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    await Promise.all(this.running);
  }
}
