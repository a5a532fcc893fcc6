/**
 * Child of loadtest/cache-scale.ts: the cache index alone at N rows (argv: file, rows). Builds the
 * file once (kept for later runs), reopens it, and prints one JSON line of measurements.
 */
import { createHash } from 'node:crypto';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { EntryIndex } from '../src/cache/entry-index.js';
import { TimeSlice } from '../src/cache/time-slice.js';
import type { EntryRef } from '../src/cache/types.js';
import type { IndexOnlyResult } from './cache-scale.js';

const [file, rowsArg, mode] = process.argv.slice(2) as [string, string, string | undefined];
const rows = Number(rowsArg);
/**
 * Row i, in the shape the edge writes (one variant per source, tag synthetic-<i mod 1000>), with
 * keys and paths that ascend with i: the file is built in key order (appends, minutes instead of
 * hours for random keys) and is as dense as SQLite packs it; lookups below still pick rows at random.
 */
const hexOf = (i: number, lead: string) => lead + i.toString(16).padStart(63, '0');
const refOf = (i: number): EntryRef => ({ sourceHash: hexOf(i, 'a'), variantHash: hexOf(i, 'b') });
const pathOf = (i: number) => `/synthetic/${String(i).padStart(8, '0')}.jpg`;
const rowOf = (i: number, now: number) => ({
  ...refOf(i), size: 1200, expiresAt: now + 86_400_000 + i, usedAt: now * 1000 + i, tags: [`synthetic-${i % 1000}`], site: 'bench', path: pathOf(i),
});

let buildSeconds = 0;
const marker = `${file}.built`;
if (!existsSync(marker)) {
  await mkdir(path.dirname(file), { recursive: true });
  const index = EntryIndex.open(file, { pageCacheMiB: 8192 });
  const started = performance.now();
  const now = Date.now();
  for (let from = 0; from < rows; from += 100_000) {
    const batch = [];
    for (let i = from; i < Math.min(rows, from + 100_000); i++) batch.push(rowOf(i, now));
    index.write(batch);
    if (from % 1_000_000 === 0) process.stderr.write(`  ${from} rows\n`);
  }
  index.setState('built', String((performance.now() - started) / 1000));
  await index.close();
  writeFileSync(marker, '');
}
// The measurements run in a process of their own, so the build's garbage is not in them.
if (mode === 'build') process.exit(0);

const opened = performance.now();
const index = EntryIndex.open(file);
const openMs = performance.now() - opened;
buildSeconds = Number(index.getState('built'));

const lookups = 100_000;
let t = performance.now();
for (let n = 0; n < lookups; n++) index.lookup(refOf(Math.floor(Math.random() * rows)));
const lookupUs = ((performance.now() - t) * 1000) / lookups;

/** Selects and removes in time-sliced batches, as the store does; answers rows, total and worst batch ms. */
function drain(select: (limit: number) => EntryRef[]): { rows: number; ms: number; worstBatchMs: number } {
  let removed = 0;
  let worst = 0;
  const slice = new TimeSlice();
  const started = performance.now();
  for (;;) {
    const b = performance.now();
    const refs = slice.time(() => select(slice.size));
    if (refs.length === 0) break;
    removed += slice.time(() => index.remove(refs)).length;
    slice.next();
    worst = Math.max(worst, performance.now() - b);
  }
  return { rows: removed, ms: performance.now() - started, worstBatchMs: worst };
}

// 10 000 rows whatever the size: /synthetic/0012xxxx
const prefixPath = '/synthetic/0012';
const prefix = drain((limit) => index.prefixed('bench', prefixPath, limit));
const tag = drain((limit) => index.tagged('synthetic-7', limit));
t = performance.now();
const lruRows = index.leastRecentlyUsed(10_000).length;
const lru = { rows: lruRows, ms: performance.now() - t };
const memory = process.memoryUsage();
// Put back what the purges removed, so the kept file serves the next run unchanged.
const removed: number[] = [];
for (let i = 0; i < rows; i++) if (i % 1000 === 7 || pathOf(i).startsWith(prefixPath)) removed.push(i);
for (let from = 0; from < removed.length; from += 10_000) index.write(removed.slice(from, from + 10_000).map((i) => rowOf(i, Date.now())));
await index.close();

const result: IndexOnlyResult = {
  rows,
  fileMiB: statSync(file).size / 1024 ** 2,
  buildSeconds,
  openMs,
  rssMiB: memory.rss / 1024 ** 2,
  heapMiB: memory.heapUsed / 1024 ** 2,
  lookupUs,
  prefix,
  tag,
  lru,
};
process.stdout.write(`${JSON.stringify(result)}\n`);
