/**
 * Child of loadtest/cache-scale.ts: the cache index alone at N rows (argv: file, rows). Builds the
 * file once (kept for later runs), reopens it, and prints one JSON line of measurements.
 */
import { createHash } from 'node:crypto';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { EntryIndex } from '../src/cache/entry-index.js';
import { connectIndex } from '../src/cache/index-db.js';
import { IndexRows } from '../src/cache/index-rows.js';
import type { EntryRef, EntrySelector } from '../src/cache/types.js';
import type { BulkResult, IndexOnlyResult } from './cache-scale.js';

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
  // Built synchronously through the writer itself, with a page cache that holds the whole file.
  const { db } = connectIndex(file, 8192 * 1024, true);
  const writer = new IndexRows(db);
  const started = performance.now();
  const now = Date.now();
  for (let from = 0; from < rows; from += 100_000) {
    const batch = [];
    for (let i = from; i < Math.min(rows, from + 100_000); i++) batch.push(rowOf(i, now));
    writer.write(batch);
    if (from % 1_000_000 === 0) process.stderr.write(`  ${from} rows\n`);
  }
  writer.setState('built', String((performance.now() - started) / 1000));
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  writeFileSync(marker, '');
}
// The measurements run in a process of their own, so the build's garbage is not in them.
if (mode === 'build') process.exit(0);

const opened = performance.now();
const index = EntryIndex.open(file);
const openMs = performance.now() - opened;
buildSeconds = Number(await index.getState('built'));

/** One index call through the thread, as a put's or a reconciliation's would go: a random source's variants. */
const indexCall = () => index.variantsOf(refOf(Math.floor(Math.random() * rows)).sourceHash);
const idleCalls = 10_000;
const t = performance.now();
for (let n = 0; n < idleCalls; n++) await indexCall();
const indexCallUs = ((performance.now() - t) * 1000) / idleCalls;

/**
 * Runs bulk index work as the store does (on the index's thread) while index calls keep coming one
 * after another, as a busy edge's puts would: answers the rows removed, the time, the event loop's
 * worst delay (Node's own histogram) and the slowest index call meanwhile.
 */
async function whileCalling(work: () => Promise<EntryRef[]>): Promise<BulkResult> {
  const delay = monitorEventLoopDelay({ resolution: 1 });
  let calling = true;
  let worstIndexCallMs = 0;
  let calls = 0;
  const keepCalling = async () => {
    while (calling) {
      const b = performance.now();
      await indexCall();
      worstIndexCallMs = Math.max(worstIndexCallMs, performance.now() - b);
      calls++;
    }
  };
  delay.enable();
  const started = performance.now();
  const caller = keepCalling();
  const removed = await work();
  const ms = performance.now() - started;
  calling = false;
  await caller;
  delay.disable();
  takenOut.push(...removed);
  return { rows: removed.length, ms, loopDelayMaxMs: delay.max / 1e6, worstIndexCallMs, indexCallsPerSecond: calls / (ms / 1000) };
}
const takenOut: EntryRef[] = [];
const purge = (selector: EntrySelector) => async () => {
  const refs: EntryRef[] = [];
  await index.removeSelected(selector, (batch) => refs.push(...batch));
  return refs;
};

// 10 000 rows whatever the size: /synthetic/0012xxxx
const prefix = await whileCalling(purge({ tags: [], prefixes: [{ site: 'bench', prefix: '/synthetic/0012' }] }));
const tag = await whileCalling(purge({ tags: ['synthetic-7'], prefixes: [] }));
// Eviction as the store runs it: the least recently used, then their removal, until 10 000 are gone.
const lru = await whileCalling(async () => {
  const gone: EntryRef[] = [];
  while (gone.length < 10_000) gone.push(...(await index.remove((await index.leastRecentlyUsed()).slice(0, 10_000 - gone.length))));
  return gone;
});
/**
 * The same histogram while another thread merely spins for a second: on this 2-core machine the
 * operating system's scheduling alone delays an idle event loop this much once one core is busy.
 */
async function busyCoreFloorMs(): Promise<number> {
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const spinner = new Worker('const end = Date.now() + 1000; while (Date.now() < end);', { eval: true });
  await new Promise((resolve) => spinner.once('exit', resolve));
  delay.disable();
  return delay.max / 1e6;
}
const busyCoreLoopDelayMs = await busyCoreFloorMs();
const memory = process.memoryUsage();
// Put back what was removed, so the kept file serves the next run unchanged.
const numberOf = (ref: EntryRef) => parseInt(ref.sourceHash.slice(1), 16);
for (let from = 0; from < takenOut.length; from += 10_000) {
  await index.write(takenOut.slice(from, from + 10_000).map((ref) => rowOf(numberOf(ref), Date.now())));
}
await index.close();

const result: IndexOnlyResult = {
  rows,
  fileMiB: statSync(file).size / 1024 ** 2,
  buildSeconds,
  openMs,
  rssMiB: memory.rss / 1024 ** 2,
  heapMiB: memory.heapUsed / 1024 ** 2,
  indexCallUs,
  prefix,
  tag,
  lru,
  busyCoreLoopDelayMs,
};
process.stdout.write(`${JSON.stringify(result)}\n`);
