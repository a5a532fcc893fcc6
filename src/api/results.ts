/**
 * Optimized files kept for download for a while (an hour for the API), in the seed's sharded
 * tree: `<dir>/dd/73/22/<rest of the id>/<file_name>`. A result's age is its folder's mtime; a
 * download past the TTL is refused even before the sweeper, which walks the three levels in the
 * background and removes what is older, gets to it.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, opendir, readFile, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CONTENT_TYPES } from '../transform/encode.js';
import { sniffFormat } from '../transform/sniff.js';
import type { OutputFormat } from '../transform/types.js';

const ID = /^[0-9a-f]{32}$/;
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;
/** Beside a result that has an owner (never a valid result name: it starts with a dot). */
const OWNER_FILE = '.owner';

export interface StoredResult {
  body: Buffer;
  /** from the bytes (a kept extension may name another format) */
  contentType: string;
  /** ms until it expires */
  remainingMs: number;
}

/** A download's type by its first bytes: `keep_extension` can put a PNG behind a `.jpg`. */
function contentTypeOf(body: Buffer): string {
  const format = sniffFormat(body.subarray(0, 64));
  return format && format in CONTENT_TYPES ? CONTENT_TYPES[format as OutputFormat] : 'application/octet-stream';
}

export function newResultId(): string {
  return randomBytes(16).toString('hex');
}

/** A download's file name: the caller's, reduced to safe characters, with the extension of its format. */
export function safeFileName(name: string | undefined, extension: string, keepExtension: boolean): string {
  const base = path.basename(name ?? '').replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[-.]+/, '').slice(0, 180) || 'image';
  const stem = base.replace(/\.[A-Za-z0-9]{1,5}$/, '') || 'image';
  const own = base.slice(stem.length);
  return keepExtension && own ? `${stem}${own}` : `${stem}.${extension}`;
}

export class ResultStore {
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<number> | undefined;

  constructor(
    readonly dir: string,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** The folder of one result, relative to the store: dd/73/22/<rest>. */
  static relativeDir(id: string): string {
    return path.join(id.slice(0, 2), id.slice(2, 4), id.slice(4, 6), id.slice(6));
  }

  /** `owner` (a session's hash, the web optimizer's) makes the result readable by that owner only. */
  async put(id: string, fileName: string, body: Buffer, owner?: string): Promise<string> {
    if (!ID.test(id) || !SAFE_NAME.test(fileName)) throw new Error(`bad result id or name: ${id}/${fileName}`);
    const rel = path.join(ResultStore.relativeDir(id), fileName);
    const dir = path.join(this.dir, ResultStore.relativeDir(id));
    await mkdir(dir, { recursive: true });
    const tmp = path.join(dir, `.${randomBytes(6).toString('hex')}.tmp`);
    if (owner !== undefined) await writeFile(path.join(dir, OWNER_FILE), owner);
    await writeFile(tmp, body);
    await rename(tmp, path.join(dir, fileName));
    return rel.split(path.sep).join('/');
  }

  /** A result by its URL path (dd/73/22/<rest>/<name>); undefined when unknown, expired, or another owner's. */
  async get(urlPath: string, owner?: string): Promise<StoredResult | undefined> {
    const parts = urlPath.replace(/^\/+/, '').split('/');
    if (parts.length !== 5) return undefined;
    const [a, b, c, rest, name] = parts as [string, string, string, string, string];
    const id = a + b + c + rest;
    if (!ID.test(id) || a.length !== 2 || b.length !== 2 || c.length !== 2 || !SAFE_NAME.test(name)) return undefined;
    const dir = path.join(this.dir, ResultStore.relativeDir(id));
    try {
      const age = this.now() - (await stat(dir)).mtimeMs;
      if (age > this.ttlMs) return undefined;
      const ownedBy = await readFile(path.join(dir, OWNER_FILE), 'utf8').catch(() => undefined);
      if (ownedBy !== owner) return undefined;
      const body = await readFile(path.join(dir, name));
      return { body, contentType: contentTypeOf(body), remainingMs: this.ttlMs - age };
    } catch {
      return undefined;
    }
  }

  /**
   * Removes every result older than the TTL: three levels of shard folders, then the result
   * folders under them, emptied shard folders pruned. Asynchronous throughout, one folder at a
   * time, so requests keep being answered while it runs. Returns how many results it removed.
   */
  sweep(): Promise<number> {
    this.sweeping ??= this.sweepOnce().finally(() => (this.sweeping = undefined));
    return this.sweeping;
  }

  private async sweepOnce(): Promise<number> {
    let removed = 0;
    const cutoff = this.now() - this.ttlMs;
    const walk = async (dir: string, depth: number): Promise<boolean> => {
      let entries = 0;
      let kept = 0;
      let handle;
      try {
        handle = await opendir(dir);
      } catch {
        return false;
      }
      for await (const entry of handle) {
        if (!entry.isDirectory()) continue;
        entries++;
        const child = path.join(dir, entry.name);
        if (depth < 3) {
          if (await walk(child, depth + 1)) kept++;
          continue;
        }
        const info = await stat(child).catch(() => undefined);
        if (info && info.mtimeMs < cutoff) {
          await rm(child, { recursive: true, force: true });
          removed++;
        } else kept++;
      }
      if (depth > 0 && entries > 0 && kept === 0) await rmdir(dir).catch(() => {});
      return kept > 0;
    };
    await walk(this.dir, 0);
    return removed;
  }

  start(intervalMs: number): void {
    this.timer = setInterval(() => void this.sweep().catch(() => {}), intervalMs);
    this.timer.unref();
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.sweeping;
  }
}
