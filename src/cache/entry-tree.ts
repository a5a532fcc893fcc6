import type { Dirent } from 'node:fs';
import fs from 'node:fs';
import { open, readdir, rmdir, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { PREFIX_BYTES, headerLengthOf, parseEntryHeader } from './entry-file.js';
import type { CacheEntryMeta, EntryRef } from './types.js';

/**
 * The layout of the disk cache: `<dir>/aa/bb/cc/<rest of sourceHash>/<variantHash>.entry`, one
 * directory per source, and the file operations the store and its reconciliation share.
 */
export const HASH = /^[0-9a-f]{64}$/;
export const SHARD = /^[0-9a-f]{2}$/;
const SOURCE_REST = /^[0-9a-f]{58}$/;
export const ENTRY_SUFFIX = '.entry';
export const TEMP_SUFFIX = '.tmp';
const HEADER_READ_BYTES = 64 * 1024;
/** parallel file operations in bulk work */
export const IO_CONCURRENCY = 32;

export function sourceDirOf(dir: string, sourceHash: string): string {
  const h = sourceHash;
  return join(dir, h.slice(0, 2), h.slice(2, 4), h.slice(4, 6), h.slice(6));
}

export function entryPathOf(dir: string, ref: EntryRef): string {
  return join(sourceDirOf(dir, ref.sourceHash), ref.variantHash + ENTRY_SUFFIX);
}

export function isEntryRef(ref: EntryRef): boolean {
  return HASH.test(ref.sourceHash) && HASH.test(ref.variantHash);
}

/** The source directories under one top-level shard: two more levels of two hex characters, then the rest. */
export async function sourceDirsInShard(dir: string, shard: string): Promise<Array<{ sourceHash: string; path: string }>> {
  let level = [{ sourceHash: shard, path: join(dir, shard) }];
  for (let depth = 1; depth < 4; depth++) {
    const next: typeof level = [];
    const pattern = depth < 3 ? SHARD : SOURCE_REST;
    await forEachLimit(level, IO_CONCURRENCY, async ({ sourceHash, path }) => {
      for (const d of await readdirQuiet(path, true)) {
        if (d.isDirectory() && pattern.test(d.name)) next.push({ sourceHash: sourceHash + d.name, path: join(path, d.name) });
      }
    });
    level = next;
  }
  return level;
}

/** Removes the source directory and its shard parents while they are empty. */
export async function pruneEmptyDirs(dir: string, sourceHash: string): Promise<void> {
  let path = sourceDirOf(dir, sourceHash);
  for (let level = 0; level < 4; level++, path = dirname(path)) {
    try {
      await rmdir(path);
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') return; // not empty: the common case
    }
  }
}

/** Unlinks a file; answers whether it existed. Errors other than a missing file go to `warn`. */
export async function unlinkQuiet(path: string, warn: (obj: object, msg: string) => void): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (err) {
    if (errorCode(err) !== 'ENOENT') warn({ err, path }, 'cache file removal failed');
    return false;
  }
}

/** Most entries fit in the first read: then reading one is an open and a read. */
const FIRST_READ_BYTES = 64 * 1024;
/** First-read buffers kept for reuse: allocating 64 KiB per hit would keep the collector busy. */
const spareFirstReads: Buffer[] = [];
const MAX_SPARE_FIRST_READS = 64;

/**
 * The whole file: open, one read, and a close nobody waits for (two trips to the thread pool where
 * readFile makes four); a file larger than the first read costs a stat and a second read. The
 * answer is a buffer of the file's own length (a memory tier may keep it).
 */
export function readWholeFile(path: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    fs.open(path, 'r', (openErr, fd) => {
      if (openErr) return reject(openErr);
      const first = spareFirstReads.pop() ?? Buffer.allocUnsafeSlow(FIRST_READ_BYTES);
      const done = (err: Error | null, whole?: Buffer) => {
        fs.close(fd, () => {});
        if (spareFirstReads.length < MAX_SPARE_FIRST_READS) spareFirstReads.push(first);
        if (err) reject(err);
        else resolve(whole!);
      };
      fs.read(fd, first, 0, FIRST_READ_BYTES, 0, (readErr, bytesRead) => {
        if (readErr) return done(readErr);
        if (bytesRead < FIRST_READ_BYTES) return done(null, Buffer.from(first.subarray(0, bytesRead)));
        fs.fstat(fd, (statErr, stats) => {
          if (statErr) return done(statErr);
          const whole = Buffer.allocUnsafe(Math.max(stats.size, bytesRead));
          first.copy(whole);
          const rest = whole.length - bytesRead;
          fs.read(fd, whole, bytesRead, rest, bytesRead, (restErr, restRead) => done(restErr, whole.subarray(0, bytesRead + (restRead ?? 0))));
        });
      });
    });
  });
}

const openFd = promisify(fs.open);
const writevFd = promisify(fs.writev);
const fsyncFd = promisify(fs.fsync);
const closeFd = promisify(fs.close);

/**
 * Writes a file that must not exist yet (`wx`), whole or not at all: a short write or an error
 * removes it. Plain descriptors rather than FileHandles: the miss path writes one file per
 * request, and a FileHandle costs an object with a finalizer on the event loop each time.
 */
export async function writeNewFile(path: string, chunks: Buffer[], size: number, sync: boolean): Promise<void> {
  const fd = await openFd(path, 'wx');
  let written = false;
  try {
    const { bytesWritten } = await writevFd(fd, chunks);
    if (bytesWritten !== size) throw new Error(`short write to ${path}: ${bytesWritten} of ${size}`);
    if (sync) await fsyncFd(fd);
    written = true;
  } finally {
    await closeFd(fd);
    if (!written) await unlink(path).catch(() => {});
  }
}

/** Reads only the header of an entry file; undefined when unreadable or damaged. */
export async function readEntryHeader(
  path: string,
): Promise<{ meta: CacheEntryMeta; size: number; mtimeMs: number } | undefined> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(path, 'r');
    const { size, mtimeMs } = await handle.stat();
    let head = await readAt(handle, Math.min(size, HEADER_READ_BYTES));
    const length = headerLengthOf(head);
    if (length === undefined) return undefined;
    if (head.length < PREFIX_BYTES + length) head = await readAt(handle, Math.min(size, PREFIX_BYTES + length));
    const parsed = parseEntryHeader(head, size);
    return parsed && { meta: parsed.meta, size, mtimeMs };
  } catch {
    return undefined;
  } finally {
    await handle?.close();
  }
}

async function readAt(handle: FileHandle, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  const { bytesRead } = await handle.read(buf, 0, length, 0);
  return buf.subarray(0, bytesRead);
}

export function readdirQuiet(path: string): Promise<string[]>;
export function readdirQuiet(path: string, withTypes: true): Promise<Dirent[]>;
export async function readdirQuiet(path: string, withTypes?: true): Promise<Array<string | Dirent>> {
  try {
    return withTypes ? await readdir(path, { withFileTypes: true }) : await readdir(path);
  } catch (err) {
    if (errorCode(err) === 'ENOENT' || errorCode(err) === 'ENOTDIR') return [];
    throw err;
  }
}

export async function forEachLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export function errorCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}
