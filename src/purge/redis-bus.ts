import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createClient, createSentinel } from '@keyv/redis';
import type { RedisTarget } from '../config/redis-target.js';
import { EdgeError } from '../errors.js';

export type { RedisTarget };
import type { NodePresence, PurgeApplier, PurgeBus, PurgeRequest } from './types.js';

const STREAM = 'imgedge:purges';
const CHANNEL = 'imgedge:purge';
/** Own deadlines: @redis/client's command timeout stops counting once a command is written, so a hung server would hang us. */
const COMMAND_TIMEOUT_MS = 1000;
const PING_TIMEOUT_MS = 300;
/** How long a purge waits for replicas to hold it (Sentinel setups). */
const REPLICA_WAIT_MS = 1000;
const CONNECT_TIMEOUT_MS = 1000;
/** How often the Sentinel client asks the sentinels whether the master changed. */
const SENTINEL_SCAN_MS = 1000;
/** How often the log is read without an announcement: every second until it has been read once, then every POLL_MS as a safety net. */
const RESYNC_MS = 1000;
const POLL_MS = 10_000;
/** How long open() waits for a reachable Redis before the node starts without it. */
const OPEN_TIMEOUT_MS = 2000;
const PAGE = 100;
const DEFAULT_LOG_MAX_LENGTH = 10_000;
/** The position of a node that has applied nothing: it replays the whole log. */
const LOG_START = '0-0';

/**
 * Appends to the log and announces the new id in one atomic step: a logged purge is never left
 * unannounced. Exact MAXLEN (not ~, which only drops whole nodes of ~100 entries) keeps the bound exact.
 */
const APPEND_AND_ANNOUNCE = `
local id = redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], '*', 'purge', ARGV[2])
redis.call('PUBLISH', ARGV[3], id)
return id`;

const reconnectStrategy = (retries: number): number => Math.min(100 * 2 ** retries, 2000);

/** The commands of @redis/client the bus uses, shared by a plain client and a Sentinel client. */
interface BusClient {
  readonly isReady: boolean;
  readonly isOpen: boolean;
  connect(): Promise<unknown>;
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  xRange(key: string, start: string, end: string, options: { COUNT: number }): Promise<Array<{ id: string; message: Record<string, string> }>>;
  xInfoStream(key: string): Promise<unknown>;
  ping(): Promise<unknown>;
  wait(replicas: number, timeoutMs: number): Promise<number>;
  role(): Promise<unknown>;
  subscribe(channel: string, listener: (message: string) => void): Promise<unknown>;
  unsubscribe(channel: string): Promise<unknown>;
  destroy(): unknown;
  on(event: string, listener: (...args: any[]) => void): unknown;
}

/**
 * The connections the bus needs: commands and a subscriber. With Sentinel, @redis/client's own
 * Sentinel client does both (it keeps a pub/sub connection to the master of its own) and follows a
 * failover by itself: it asks the sentinels for the new master and reconnects.
 */
function connectionsTo(target: RedisTarget): { client: BusClient; subscriber: BusClient } {
  if (target.sentinels) {
    const socket = { connectTimeout: CONNECT_TIMEOUT_MS, reconnectStrategy, ...(target.tls ? { tls: true as const } : {}) };
    const sentinel = createSentinel({
      name: target.masterName!,
      sentinelRootNodes: target.sentinels.map((hostPort) => {
        const at = hostPort.lastIndexOf(':');
        return { host: hostPort.slice(0, at), port: Number(hostPort.slice(at + 1)) };
      }),
      nodeClientOptions: { disableOfflineQueue: true, socket, ...(target.password ? { password: target.password } : {}) },
      sentinelClientOptions: { socket, ...(target.sentinelPassword ? { password: target.sentinelPassword } : {}) },
      passthroughClientErrorEvents: true,
      scanInterval: SENTINEL_SCAN_MS,
    }) as unknown as BusClient;
    return { client: sentinel, subscriber: sentinel };
  }
  const client = createClient({
    url: target.url!,
    disableOfflineQueue: true, // while reconnecting, commands fail at once instead of waiting
    socket: { connectTimeout: CONNECT_TIMEOUT_MS, reconnectStrategy },
  });
  return { client: client as unknown as BusClient, subscriber: client.duplicate() as unknown as BusClient };
}
export interface BusLogger {
  info(o: object, m?: string): void;
  warn(o: object, m?: string): void;
}

const NODES_KEY = 'imgedge:nodes';
/** A node that has not announced itself for this long is gone from the list. */
const PRESENCE_MS = 15_000;
const PRESENCE_SCRIPT = `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local all = redis.call('HGETALL', KEYS[1])
local alive = {}
for i = 1, #all, 2 do
  local node = cjson.decode(all[i + 1])
  if node.seen >= tonumber(ARGV[3]) then table.insert(alive, all[i + 1]) else redis.call('HDEL', KEYS[1], all[i]) end
end
return alive
`;

export interface RedisPurgeBusOptions {
  target: RedisTarget;
  apply: PurgeApplier;
  /** where this node keeps the id of the last log entry it applied */
  positionFile: string;
  logger: BusLogger;
  /** entries kept in the log; a node further behind than this purges everything */
  logMaxLength?: number;
  /** replicas that must hold a purge before publish() acknowledges it (Redis WAIT); default 0 */
  ackReplicas?: number;
}

interface StreamInfo {
  length: number;
  /** Redis >= 7 only */
  'entries-added'?: number;
  'last-entry': { id: string } | null;
}

/**
 * Cross-node purges through Redis: a stream is the ordered, authoritative purge log; pub/sub only
 * wakes live nodes up to read it. Each node keeps its log position in a file, so a node that was
 * down applies what it missed. Nothing here waits on Redis longer than the short timeouts above.
 */
export class RedisPurgeBus implements PurgeBus {
  private position = LOG_START;
  private queue: Promise<unknown> = Promise.resolve();
  private catchUpQueued = false;
  private closed = false;
  /** ids of this node's own purges, applied by publish() before the log position reached them */
  private readonly appliedAhead = new Set<string>();
  /** whether the log has been read since this process started */
  private caughtUp = false;
  private subscribed = false;
  private readonly startedAt = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private lastRead = 0;

  private constructor(
    private readonly client: BusClient,
    private readonly subscriber: BusClient,
    private readonly opts: RedisPurgeBusOptions,
  ) {}

  /**
   * Connects, waiting up to OPEN_TIMEOUT_MS for a reachable Redis; answers after that all the same
   * and goes on connecting in the background: a node serves images without Redis. Until it has
   * read the log, unverifiedBefore() says which entries must be revalidated.
   */
  static async open(opts: RedisPurgeBusOptions): Promise<RedisPurgeBus> {
    const { client, subscriber } = connectionsTo(opts.target);
    const bus = new RedisPurgeBus(client, subscriber, opts);
    bus.position = await readPosition(opts.positionFile, opts.logger);
    bus.watch(client, 'commands');
    if (subscriber !== client) bus.watch(subscriber, 'subscriber');
    const connected = bus.connectInBackground();
    bus.timer = setInterval(() => bus.resync(), RESYNC_MS);
    bus.timer.unref();
    // A reachable Redis is waited for, so catchUp() can run before the node serves.
    await withDeadline(connected, OPEN_TIMEOUT_MS).catch(() => undefined);
    return bus;
  }

  /**
   * Until the log has been read once, entries stored before this process started may have been
   * purged meanwhile. Once read, a later outage changes nothing: nobody can purge without Redis,
   * and what was purged elsewhere during a partition is applied as soon as this node reads again.
   */
  unverifiedBefore(): number | undefined {
    return this.caughtUp ? undefined : this.startedAt;
  }

  publish(req: PurgeRequest): Promise<number> {
    // Serialized with catch-up, so no catch-up can meet this entry before it is marked as applied.
    return this.serial(async () => {
      let id: string;
      try {
        const args = [String(this.opts.logMaxLength ?? DEFAULT_LOG_MAX_LENGTH), JSON.stringify(req), CHANNEL];
        id = String(await withDeadline(this.client.eval(APPEND_AND_ANNOUNCE, { keys: [STREAM], arguments: args }), COMMAND_TIMEOUT_MS));
        await this.replicated();
      } catch (err) {
        throw unavailable(err);
      }
      const removed = await this.opts.apply(req);
      this.appliedAhead.add(id);
      return removed;
    });
  }

  /**
   * Replication is asynchronous: a purge only the master holds would be lost with it. Waits until
   * `ackReplicas` replicas hold it, or as many as the master has now: after a failover the new
   * master may have none left, and purges must go on (the sentinels bring replicas back).
   */
  private async replicated(): Promise<void> {
    const wanted = this.opts.ackReplicas ?? 0;
    if (wanted === 0) return;
    const role = (await withDeadline(this.client.role(), COMMAND_TIMEOUT_MS)) as { replicas?: unknown[] };
    const needed = Math.min(wanted, role.replicas?.length ?? 0);
    if (needed === 0) return;
    const held = await withDeadline(this.client.wait(needed, REPLICA_WAIT_MS), REPLICA_WAIT_MS + COMMAND_TIMEOUT_MS);
    if (held < needed) throw new Error(`${held} of ${needed} replicas acknowledged the purge within ${REPLICA_WAIT_MS} ms`);
  }

  catchUp(): Promise<number> {
    return this.serial(() => this.applyLog());
  }

  /** Both connections count: without the subscriber this node would miss live purges. */
  async healthy(): Promise<boolean> {
    if (!this.client.isReady || !this.subscriber.isReady) return false;
    try {
      await withDeadline(this.client.ping(), PING_TIMEOUT_MS);
      return true;
    } catch {
      return false;
    }
  }

  /** Announces this node in a hash of nodes and answers those seen within PRESENCE_MS (older ones are removed). */
  async nodes(self: NodePresence): Promise<NodePresence[]> {
    if (!this.client.isReady) return [self];
    const found = (await withDeadline(
      this.client.eval(PRESENCE_SCRIPT, { keys: [NODES_KEY], arguments: [self.name, JSON.stringify(self), String(self.seen - PRESENCE_MS)] }),
      COMMAND_TIMEOUT_MS,
    )) as string[];
    return found.map((text) => JSON.parse(text) as NodePresence).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Unsubscribes, then drops both connections without waiting on Redis (our own commands have settled). */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.queue;
    if (this.subscribed) await withDeadline(this.subscriber.unsubscribe(CHANNEL), COMMAND_TIMEOUT_MS).catch(() => undefined);
    for (const c of new Set([this.subscriber, this.client])) if (c.isOpen) c.destroy();
  }

  /** Connects (retrying for as long as it takes) and subscribes; resolves once it has. */
  private connectInBackground(): Promise<void> {
    const attempt = async (): Promise<void> => {
      let warned = false;
      while (!this.closed) {
        try {
          await Promise.all([...new Set([this.client, this.subscriber])].map((c) => (c.isOpen ? undefined : c.connect())));
          await withDeadline(this.subscriber.subscribe(CHANNEL, () => this.catchUpSoon()), COMMAND_TIMEOUT_MS);
          this.subscribed = true;
          return;
        } catch (err) {
          // Once: the attempts go on every second for as long as Redis is away.
          if (!warned) this.opts.logger.warn({ err: (err as Error).message }, 'redis unreachable: serving without the purge log, retrying');
          warned = true;
          await new Promise((resolve) => setTimeout(resolve, RESYNC_MS));
        }
      }
    };
    return attempt();
  }

  /** Reads the log until it has been read once (every second), then when it has not been for a while. */
  private resync(): void {
    if (!this.subscribed || this.catchUpQueued || this.closed) return;
    if (this.caughtUp && Date.now() - this.lastRead < POLL_MS) return;
    this.catchUpQueued = true;
    // Quiet: the connection's own error event has said Redis is unreachable.
    this.serial(() => {
      this.catchUpQueued = false;
      return this.applyLog();
    }).catch(() => undefined);
  }

  /** Runs one catch-up after whatever is running now; a burst of announcements costs one. */
  private catchUpSoon(): void {
    if (this.catchUpQueued || this.closed) return;
    this.catchUpQueued = true;
    this.serial(() => {
      this.catchUpQueued = false;
      return this.applyLog();
    }).catch((err: Error) => this.opts.logger.warn({ err: err.message }, 'purge catch-up failed; retried on the next purge or reconnect'));
  }

  private async applyLog(): Promise<number> {
    const applied = await this.readLog();
    this.lastRead = Date.now();
    if (!this.caughtUp) {
      this.caughtUp = true;
      this.opts.logger.info({ position: this.position }, 'purge log read: cached entries are trusted again');
    }
    return applied;
  }

  private async readLog(): Promise<number> {
    let applied = 0;
    for (;;) {
      // Inclusive start (XRANGE's exclusive "(" needs Redis 6.2): finding our position first proves nothing after it was trimmed.
      const entries = await withDeadline(this.client.xRange(STREAM, this.position, '+', { COUNT: PAGE }), COMMAND_TIMEOUT_MS);
      if (entries.length > 0 && entries[0]!.id !== this.position) {
        const newest = await this.newestIfTrimmed();
        if (newest) {
          await this.purgeEverything(newest);
          applied++;
          continue;
        }
      }
      const fresh = entries.filter((e) => e.id !== this.position);
      if (fresh.length === 0) return applied;
      for (const entry of fresh) {
        const ownAndApplied = this.appliedAhead.delete(entry.id);
        if (!ownAndApplied && (await this.applyEntry(entry.id, entry.message.purge))) applied++;
        await this.savePosition(entry.id);
      }
    }
  }

  /**
   * Our position is gone from the log: the newest id if entries were trimmed (some may be purges
   * we never applied), undefined if the log has only ever grown (e.g. Redis came back empty).
   * Redis < 7 does not count added entries, so there a missing position always counts as trimmed.
   */
  private async newestIfTrimmed(): Promise<string | undefined> {
    const info = (await withDeadline(this.client.xInfoStream(STREAM), COMMAND_TIMEOUT_MS)) as unknown as StreamInfo;
    const added = info['entries-added'];
    if (added !== undefined && added <= info.length) return undefined;
    return info['last-entry']?.id;
  }

  /** Purges this node's whole cache and moves to `newest`: cheaper and safer than guessing what was missed. */
  private async purgeEverything(newest: string): Promise<void> {
    this.opts.logger.warn({ position: this.position, newest }, 'purge log was trimmed past this node: purging everything');
    await this.opts.apply({ id: randomUUID(), at: Date.now(), sourceHashes: [], prefixes: [], tags: [], all: true });
    this.appliedAhead.clear(); // all of them are at or before `newest`
    await this.savePosition(newest);
  }

  private async applyEntry(id: string, json: string | undefined): Promise<boolean> {
    let req: PurgeRequest;
    try {
      req = JSON.parse(json ?? '') as PurgeRequest;
    } catch {
      this.opts.logger.warn({ entry: id }, 'unreadable purge log entry skipped');
      return false;
    }
    await this.opts.apply(req);
    return true;
  }

  private async savePosition(id: string): Promise<void> {
    // No fsync: a position lost in a crash only means re-applying purges, which is harmless.
    const temp = `${this.opts.positionFile}.${process.pid}.tmp`;
    await writeFile(temp, JSON.stringify({ lastApplied: id }) + '\n');
    await rename(temp, this.opts.positionFile);
    this.position = id;
  }

  /** Logs once per outage and connection; after a reconnect or a failover, applies what was missed meanwhile. */
  private watch(client: BusClient, connection: string): void {
    let down = false;
    client.on('error', (err: Error) => {
      if (down) return;
      down = true;
      this.opts.logger.warn({ connection, err: err.message }, 'redis unreachable: purges are refused until it is back');
    });
    client.on('ready', () => {
      if (!down) return;
      down = false;
      this.opts.logger.info({ connection }, 'redis reachable again: catching up on purges');
      this.catchUpSoon(); // the subscriber has resubscribed by the time it is ready
    });
    // Sentinel: a new master; what was published while the client looked for it is read now.
    client.on('topology-change', (event: { type?: string }) => {
      if (event.type !== 'MASTER_CHANGE') return;
      this.opts.logger.warn({ event }, 'redis master changed: catching up on purges');
      this.catchUpSoon();
    });
  }

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

async function readPosition(file: string, logger: BusLogger): Promise<string> {
  await mkdir(dirname(file), { recursive: true });
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return LOG_START;
    throw err;
  }
  try {
    const id = (JSON.parse(text) as { lastApplied?: unknown }).lastApplied;
    if (typeof id === 'string' && /^\d+-\d+$/.test(id)) return id;
  } catch {
    // falls through: an unreadable position is no position
  }
  logger.warn({ file }, 'unreadable purge log position: replaying the whole log');
  return LOG_START;
}

function unavailable(cause: unknown): EdgeError {
  const error = new EdgeError('EDGE_PURGE_UNAVAILABLE', 'purges are unavailable: the shared purge log (Redis) cannot be reached; retry when it is back');
  error.cause = cause;
  return error;
}

function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer from redis within ${ms} ms`)), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}
