/**
 * What each API key has used: bytes of originals optimized (against its quota) and requests in
 * the current minute (against the rate limit). With Redis, counted there, so that every API
 * process of every machine counts against one quota and one rate; without Redis, in this process,
 * the bytes kept in a small JSON file so that a quota survives restarts.
 */
import { once } from 'node:events';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { EdgeError } from '../errors.js';
import type { ApiKey } from './keys.js';

export interface Usage {
  bytes: number;
  requests: number;
}

const MINUTE = 60_000;

export abstract class UsageCounter {
  constructor(
    protected readonly perMinute: number,
    protected readonly now: () => number,
  ) {}

  /** Counts one request of `key` in this minute; answers how many it has made in it, and its bytes so far. */
  protected abstract countRequest(key: string, minute: number): Promise<{ requests: number; bytes: number }>;
  /** What the key has used (user_status); throws when that cannot be known. */
  abstract used(key: string): Promise<Usage>;
  /** Counts an optimization (its original's bytes) against the key. */
  abstract add(key: string, bytes: number): Promise<void>;
  abstract close(): Promise<void>;

  /** Resolves once counting works (at most a few seconds after a start; see RedisUsage). */
  async ready(): Promise<void> {}

  /** Before any work: 429 past the key's requests a minute, 403 once its quota is used up. */
  async admit(key: ApiKey): Promise<void> {
    const t = this.now();
    const minute = Math.floor(t / MINUTE);
    const { requests, bytes } = await this.countRequest(key.key, minute);
    if (requests > this.perMinute) {
      throw new EdgeError('EDGE_RATE_LIMITED', `more than ${this.perMinute} requests a minute for this key`, { retryAfter: Math.max(1, Math.ceil(((minute + 1) * MINUTE - t) / 1000)) });
    }
    if (key.quotaBytes !== undefined && bytes >= key.quotaBytes) {
      throw new EdgeError('EDGE_QUOTA_EXCEEDED', `the quota of ${key.quotaBytes} bytes for this key is used up`);
    }
  }
}

/** This process alone: requests counted in memory, bytes in a file. */
export class LocalUsage extends UsageCounter {
  private usage: Record<string, Usage> = {};
  private readonly minutes = new Map<string, { minute: number; count: number }>();
  private saving: Promise<void> = Promise.resolve();
  private dirty = false;

  private constructor(perMinute: number, now: () => number, private readonly file: string) {
    super(perMinute, now);
  }

  static async open(file: string, perMinute: number, now: () => number = Date.now): Promise<LocalUsage> {
    const store = new LocalUsage(perMinute, now, file);
    try {
      store.usage = JSON.parse(await readFile(file, 'utf8')) as Record<string, Usage>;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    return store;
  }

  protected async countRequest(key: string, minute: number): Promise<{ requests: number; bytes: number }> {
    let m = this.minutes.get(key);
    if (!m || m.minute !== minute) this.minutes.set(key, (m = { minute, count: 0 }));
    return { requests: ++m.count, bytes: (await this.used(key)).bytes };
  }

  async used(key: string): Promise<Usage> {
    return this.usage[key] ?? { bytes: 0, requests: 0 };
  }

  async add(key: string, bytes: number): Promise<void> {
    const u = await this.used(key);
    this.usage[key] = { bytes: u.bytes + bytes, requests: u.requests + 1 };
    if (this.dirty) return;
    this.dirty = true;
    this.saving = this.saving.then(async () => {
      this.dirty = false;
      const tmp = `${this.file}.tmp`;
      await mkdir(path.dirname(this.file), { recursive: true });
      await writeFile(tmp, JSON.stringify(this.usage));
      await rename(tmp, this.file);
    }).catch(() => {});
  }

  /** Waits for the last write of the file. */
  close(): Promise<void> {
    return this.saving;
  }
}

const USAGE_PREFIX = 'imgedge:api:usage:';
const RATE_PREFIX = 'imgedge:api:rate:';

/** The replies of a MULTI; throws when it was not run or one of its commands failed. */
function replies(result: [Error | null, unknown][] | null): unknown[] {
  if (!result) throw new Error('the transaction was not run');
  for (const [err] of result) if (err) throw err;
  return result.map(([, value]) => value);
}

/** After Redis failed, how long requests go uncounted without asking it (a hung Redis costs each one a timeout). */
const SKIP_AFTER_FAILURE_MS = 5_000;

/**
 * Shared by every process through Redis: a hash of bytes and requests per key, and a counter per
 * key and minute that expires after two; one round trip per admission. While Redis cannot be
 * reached the API stays open (a quota is not worth refusing every customer for): `onError` hears
 * it, that work goes uncounted, and Redis is not asked again for a few seconds.
 */
export class RedisUsage extends UsageCounter {
  private skipUntil = 0;

  constructor(
    private readonly redis: Redis,
    perMinute: number,
    private readonly onError: (err: Error) => void,
    now: () => number = Date.now,
  ) {
    super(perMinute, now);
    redis.on('error', onError);
  }

  /**
   * Waits (2 s at most) for the connection: its commands fail at once until it is up, and a first
   * failure would leave the next seconds uncounted.
   */
  override async ready(): Promise<void> {
    if (this.redis.status === 'ready') return;
    await Promise.race([once(this.redis, 'ready'), new Promise((resolve) => setTimeout(resolve, 2_000).unref())]).catch(() => {});
  }

  /** `work` against Redis, or `open` while it is failing. */
  private async orOpen<T>(work: () => Promise<T>, open: T): Promise<T> {
    if (Date.now() < this.skipUntil) return open;
    try {
      return await work();
    } catch (err) {
      this.skipUntil = Date.now() + SKIP_AFTER_FAILURE_MS;
      this.onError(err as Error);
      return open;
    }
  }

  protected countRequest(key: string, minute: number): Promise<{ requests: number; bytes: number }> {
    const counter = `${RATE_PREFIX}${key}:${minute}`;
    return this.orOpen(async () => {
      const [requests, , bytes] = replies(await this.redis.multi().incr(counter).expire(counter, 120).hget(`${USAGE_PREFIX}${key}`, 'bytes').exec());
      return { requests: Number(requests), bytes: Number(bytes ?? 0) };
    }, { requests: 0, bytes: 0 });
  }

  async used(key: string): Promise<Usage> {
    try {
      const u = await this.redis.hgetall(`${USAGE_PREFIX}${key}`);
      return { bytes: Number(u.bytes ?? 0), requests: Number(u.requests ?? 0) };
    } catch (err) {
      throw new EdgeError('EDGE_USAGE_UNAVAILABLE', `usage cannot be read now (${(err as Error).message})`, { retryAfter: 5 });
    }
  }

  add(key: string, bytes: number): Promise<void> {
    return this.orOpen(async () => {
      replies(await this.redis.multi().hincrby(`${USAGE_PREFIX}${key}`, 'bytes', bytes).hincrby(`${USAGE_PREFIX}${key}`, 'requests', 1).exec());
    }, undefined);
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
