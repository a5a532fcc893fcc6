/**
 * `npm run loadtest -- --scale 100000,1000000 [--index-only 10000000]`: the cache at scale
 * (issue 17). For each size, a cache filled by `npm run cache:fill` (kept in .cache/scale/ between
 * runs) is opened by the edge through bin/imgedge-start, and the run measures:
 * - start-up: spawn to the first HIT, after a clean stop and after a SIGKILL, and how long the
 *   background reconciliation after the kill takes;
 * - RSS and JS heap once serving, and after the hit load;
 * - hits: 10 s over 16 connections on 5 000 random entries (wrk, else autocannon);
 * - purges: one path prefix and one tag through POST /_edge/purge, with the hits' p99 and worst
 *   latency measured during each purge (what the purge costs the requests around it).
 * `--index-only N` measures the index alone at N rows (files of that many entries exceed this
 * disk's inodes): open time, RSS, lookups, and the index work of prefix, tag and LRU selections.
 * Writes docs/CACHE-SCALE.md.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { DiskStore } from '../src/cache/disk-store.js';
import { freePort } from '../test/helpers/processes.js';
import { loadGenerator, timedLoad } from './drive.js';
import { ROOT, edgeCounters, memoryOf, startEdge, type Child } from './servers.js';

const MiB = 1024 ** 2;
const TOKEN = 'scale-bench';
const SCALE_DIR = path.join(ROOT, '.cache/scale');
const REPORT = path.join(ROOT, 'docs/CACHE-SCALE.md');
const RESULTS = path.join(ROOT, 'docs/cache-scale.json');
const log = (line: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);

interface PurgeResult {
  purged: number;
  ms: number;
  /** hit latency while the purge ran */
  hitP99Ms: number;
  hitMaxMs: number;
  /** the edge's worst event-loop delay while the purge ran (its histogram is reset by the scrape before) */
  loopDelayMaxMs: number;
  /** the same hits for as long without a purge, right after: hit p99 / worst and the worst event-loop delay */
  alone: { hitP99Ms: number; hitMaxMs: number; loopDelayMaxMs: number };
}

export interface ScaleResult {
  entries: number;
  /** what the index counted when the edge started (earlier runs' purges removed some) */
  entriesAtStart: number;
  diskMiB: number;
  indexMiB: number;
  cleanStartMs: number;
  killedStartMs: number;
  reconcileSeconds: number | undefined;
  rssMiB: number;
  heapMiB: number;
  rssAfterLoadMiB: number;
  hits: { rps: number; p50Ms: number; p99Ms: number; errors: number };
  prefixPurge: PurgeResult & { prefix: string };
  tagPurge: PurgeResult & { tag: string };
}

export interface IndexOnlyResult {
  rows: number;
  fileMiB: number;
  buildSeconds: number;
  openMs: number;
  rssMiB: number;
  heapMiB: number;
  indexCallUs: number;
  prefix: BulkResult;
  tag: BulkResult;
  lru: BulkResult;
  /** the worst event-loop delay while another thread only spins: the machine's own floor */
  busyCoreLoopDelayMs: number;
}

/** Bulk index work measured while the event loop keeps looking up rows. */
export interface BulkResult {
  rows: number;
  ms: number;
  loopDelayMaxMs: number;
  worstIndexCallMs: number;
  indexCallsPerSecond: number;
}

function configFor(dir: string, port: number): Record<string, unknown> {
  return {
    server: { host: '127.0.0.1', port },
    cache: { dir, maxBytes: 64 * 1024 ** 3, memoryBytes: 64 * MiB },
    log: { level: 'warn' },
    purge: { token: TOKEN },
    // An origin nobody listens on: only the cache answers.
    sites: [{ name: 'bench', hosts: ['*'], origin: 'http://127.0.0.1:9', ttl: 86_400 }],
  };
}

/**
 * A cache of `entries` synthetic entries, filled once and kept. A kept cache whose index is not
 * complete (an index of an older schema, a crash) is reconciled at full speed first, so the
 * measurements see a settled index.
 */
async function filledCache(entries: number): Promise<string> {
  const dir = path.join(SCALE_DIR, String(entries));
  const marker = path.join(dir, 'filled.json');
  if (existsSync(marker)) {
    const store = await DiskStore.open({ dir: path.join(dir, 'cache'), maxBytes: 64 * 1024 ** 3, reconcileReadsPerSecond: 1_000_000 });
    if (!store.reconcileProgress().complete) log(`${entries} entries: reconciling the kept cache's index first …`);
    await store.settled();
    await store.close();
    return path.join(dir, 'cache');
  }
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const configFile = path.join(dir, 'config.json');
  await writeFile(configFile, JSON.stringify(configFor(path.join(dir, 'cache'), 0)));
  log(`filling ${entries} entries (npm run cache:fill) …`);
  const started = Date.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'dist/src/cli/cache-fill.js'), '--dir', path.join(dir, 'cache'), '--entries', String(entries)], {
      env: { ...process.env, IMGEDGE_CONFIG: configFile, UV_THREADPOOL_SIZE: '16' },
      stdio: ['ignore', 'inherit', 'ignore'],
    });
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`cache:fill exited with ${code}`))));
  });
  await writeFile(marker, JSON.stringify({ entries, seconds: (Date.now() - started) / 1000 }));
  return path.join(dir, 'cache');
}

/**
 * One of `candidates` that no earlier run purged from this kept cache (they are listed beside it),
 * at random, listed as purged from now on. When every one is gone, the cache is filled again.
 */
async function unpurged(cacheDir: string, candidates: string[]): Promise<string> {
  const file = path.join(cacheDir, '..', 'purged.json');
  const purged = new Set<string>(JSON.parse(await readFile(file, 'utf8').catch(() => '[]')) as string[]);
  const left = candidates.filter((c) => !purged.has(c));
  if (left.length === 0) throw new Error(`every one of ${candidates[0]}… was purged from ${cacheDir} by earlier runs: remove ${path.dirname(file)} to fill it again`);
  const chosen = left[Math.floor(Math.random() * left.length)]!;
  await writeFile(file, JSON.stringify([...purged, chosen]));
  return chosen;
}

/** A timed purge of a selector that still selects entries (runs before this listing were not recorded). */
async function purgeSomething<T extends PurgeResult>(cacheDir: string, candidates: string[], purge: (chosen: string) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const result = await purge(await unpurged(cacheDir, candidates));
    if (result.purged > 0 || attempt === 10) return result;
  }
}

async function duMiB(target: string): Promise<number> {
  const { stdout } = await promisify(execFile)('du', ['-sk', target]);
  return Number(stdout.split('\t')[0]) / 1024;
}

const randomPaths = (entries: number, count: number): string[] =>
  Array.from({ length: count }, () => `/synthetic/${Math.floor(Math.random() * entries)}.jpg?w=100`);

/** Starts the edge and answers the time from spawn to its first HIT. */
async function startTimed(dir: string, workDir: string, entries: number): Promise<{ edge: Child; ms: number }> {
  const port = await freePort();
  const started = performance.now();
  const edge = await startEdge(configFor(dir, port), workDir, path.join(workDir, `edge-${entries}.log`));
  for (;;) {
    const res = await fetch(`${edge.url}${randomPaths(entries, 1)[0]}`);
    await res.arrayBuffer();
    if (res.headers.get('x-cache') === 'HIT') return { edge, ms: performance.now() - started };
    if (performance.now() - started > 120_000) throw new Error(`no HIT within 120 s (status ${res.status})`);
  }
}

async function heapMiB(edge: Child): Promise<number> {
  return ((await edgeCounters(edge.url)).get('imgedge_nodejs_heap_size_used_bytes') ?? NaN) / MiB;
}

/**
 * A purge while hits run beside it, four at a time; after it (its files deleted), the same hits for
 * as long without a purge, so the purge's own cost is read against what the hits cost alone here.
 */
async function timedPurge(edge: Child, entries: number, body: object): Promise<PurgeResult> {
  const paths = randomPaths(entries, 100_000);
  const hitsWhile = async <T>(during: () => Promise<T>) => {
    let running = true;
    const latencies: number[] = [];
    const hitter = async (first: number) => {
      for (let i = first; running; i += 4) {
        const t = performance.now();
        const res = await fetch(`${edge.url}${paths[(i + Math.floor(Math.random() * paths.length)) % paths.length]}`);
        await res.arrayBuffer();
        latencies.push(performance.now() - t);
      }
    };
    await edgeCounters(edge.url); // resets the event-loop delay histogram
    const hitters = Promise.all([0, 1, 2, 3].map(hitter));
    const outcome = await during();
    const loopDelayMaxMs = ((await edgeCounters(edge.url)).get('imgedge_nodejs_eventloop_lag_max_seconds') ?? NaN) * 1000;
    running = false;
    await hitters;
    latencies.sort((a, b) => a - b);
    return { outcome, hitP99Ms: latencies[Math.floor(latencies.length * 0.99)] ?? NaN, hitMaxMs: latencies.at(-1) ?? NaN, loopDelayMaxMs };
  };
  let ms = 0;
  const purging = await hitsWhile(async () => {
    const t = performance.now();
    const res = await fetch(`${edge.url}/_edge/purge`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const { purged } = (await res.json()) as { purged: number };
    ms = performance.now() - t;
    return purged;
  });
  // The purge's files are deleted in the background (about 2 000 unlinks a second on this disk): let that finish first.
  await sleep(Math.max(2000, purging.outcome / 2));
  const alone = await hitsWhile(() => sleep(Math.max(ms, 500)));
  return { purged: purging.outcome, ms, hitP99Ms: purging.hitP99Ms, hitMaxMs: purging.hitMaxMs, loopDelayMaxMs: purging.loopDelayMaxMs, alone: { hitP99Ms: alone.hitP99Ms, hitMaxMs: alone.hitMaxMs, loopDelayMaxMs: alone.loopDelayMaxMs } };
}

async function waitReconciled(edge: Child, limitMs: number): Promise<number | undefined> {
  const started = performance.now();
  while (performance.now() - started < limitMs) {
    if ((await edgeCounters(edge.url)).get('imgedge_cache_index_complete') === 1) return (performance.now() - started) / 1000;
    await sleep(500);
  }
  return undefined;
}

export async function measureScale(entries: number, workDir: string): Promise<ScaleResult> {
  const dir = await filledCache(entries);
  const diskMiB = await duMiB(dir);
  const indexMiB = await duMiB(path.join(dir, 'index.sqlite'));
  log(`${entries} entries: ${diskMiB.toFixed(0)} MiB on disk, index ${indexMiB.toFixed(0)} MiB; starting the edge`);
  const clean = await startTimed(dir, workDir, entries);
  const edge = clean.edge;
  let result: ScaleResult;
  try {
    const rssMiB = (await memoryOf(edge.pid)).rssMiB;
    const heap = await heapMiB(edge);
    const entriesAtStart = (await edgeCounters(edge.url)).get('imgedge_cache_entries') ?? NaN;
    log(`  first HIT ${clean.ms.toFixed(0)} ms after spawn; RSS ${rssMiB.toFixed(0)} MiB, heap ${heap.toFixed(1)} MiB; hits for 10 s`);
    const load = await timedLoad({ baseUrl: edge.url, paths: randomPaths(entries, 5000), connections: 16, seconds: 10 });
    const rssAfterLoadMiB = (await memoryOf(edge.pid)).rssMiB;
    // A kept cache has lost what earlier runs purged: drawn among what no run has purged yet.
    const prefixes = Array.from({ length: 90 }, (_, i) => `/synthetic/${10 + i}`);
    const tags = Array.from({ length: 1000 }, (_, i) => `synthetic-${i}`);
    const prefixPurge = await purgeSomething(dir, prefixes, (prefix) => timedPurge(edge, entries, { prefixes: [prefix] }).then((r) => ({ prefix, ...r })));
    const tagPurge = await purgeSomething(dir, tags, (tag) => timedPurge(edge, entries, { tags: [tag] }).then((r) => ({ tag, ...r })));
    log(`  ${load.rps.toFixed(0)} hits/s; prefix purge ${prefixPurge.purged} in ${prefixPurge.ms.toFixed(0)} ms; tag purge ${tagPurge.purged} in ${tagPurge.ms.toFixed(0)} ms`);
    result = {
      entries, entriesAtStart, diskMiB, indexMiB, cleanStartMs: clean.ms, killedStartMs: NaN, reconcileSeconds: undefined,
      rssMiB, heapMiB: heap, rssAfterLoadMiB,
      hits: { rps: load.rps, p50Ms: load.p50Ms, p99Ms: load.p99Ms, errors: load.errors },
      prefixPurge, tagPurge,
    };
  } finally {
    edge.child.kill('SIGKILL');
    await new Promise((r) => edge.child.once('exit', r));
  }
  const killed = await startTimed(dir, workDir, entries);
  try {
    result.killedStartMs = killed.ms;
    result.reconcileSeconds = await waitReconciled(killed.edge, 15 * 60_000);
    log(`  after SIGKILL: first HIT ${killed.ms.toFixed(0)} ms after spawn; reconciled in ${result.reconcileSeconds?.toFixed(0) ?? '>900'} s`);
  } finally {
    await killed.edge.stop();
  }
  return result;
}

/** The index alone at `rows` rows, in a child process of its own (its RSS is the index's). */
export async function measureIndexOnly(rows: number): Promise<IndexOnlyResult> {
  const file = path.join(SCALE_DIR, `index-${rows}`, 'index.sqlite');
  const child = path.join(ROOT, 'dist/loadtest/index-scale-child.js');
  await promisify(execFile)(process.execPath, [child, file, String(rows), 'build'], { timeout: 3600_000 });
  const { stdout } = await promisify(execFile)(process.execPath, [child, file, String(rows)], { maxBuffer: 1 << 20, timeout: 3600_000 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as IndexOnlyResult;
}

export function scaleReport(results: ScaleResult[], indexOnly: IndexOnlyResult[], generator: string): string {
  const f0 = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? '—' : n.toFixed(0));
  const f1 = (n: number) => n.toFixed(1);
  const cols = results.map((r) => r.entries.toLocaleString('en'));
  const row = (name: string, cell: (r: ScaleResult) => string) => `| ${name} | ${results.map(cell).join(' | ')} |`;
  const lines = [
    '# The cache at scale',
    '',
    `Generated by \`npm run loadtest -- --scale ${results.map((r) => r.entries).join(',')}${indexOnly.length ? ` --index-only ${indexOnly.map((r) => r.rows).join(',')}` : ''}\` (loadtest/cache-scale.ts) on ${new Date().toISOString().slice(0, 10)}, 2 cores, load by ${generator}.`,
    'Each cache was written by `npm run cache:fill` (entries of ~1.2 KB, one per source); the edge runs through bin/imgedge-start with its',
    'memory tier at 64 MiB, so most hits below are read from disk (the files are in the page cache).',
    '',
    `| | ${cols.join(' | ')} |`,
    `|---|${cols.map(() => '---').join('|')}|`,
    row('entries indexed at start', (r) => r.entriesAtStart.toLocaleString('en')),
    row('cache on disk (MiB)', (r) => f0(r.diskMiB)),
    row('index file (MiB)', (r) => f0(r.indexMiB)),
    row('spawn → first HIT, clean restart (ms)', (r) => f0(r.cleanStartMs)),
    row('spawn → first HIT, after SIGKILL (ms)', (r) => f0(r.killedStartMs)),
    row('background reconciliation after SIGKILL (s)', (r) => (r.reconcileSeconds === undefined ? '> 900' : f0(r.reconcileSeconds))),
    row('RSS once serving (MiB)', (r) => f0(r.rssMiB)),
    row('JS heap used (MiB)', (r) => f1(r.heapMiB)),
    row('RSS after 10 s of hits (MiB)', (r) => f0(r.rssAfterLoadMiB)),
    row('hits/s, 16 connections, random entries', (r) => f0(r.hits.rps)),
    row('hit p50 / p99 (ms)', (r) => `${f1(r.hits.p50Ms)} / ${f1(r.hits.p99Ms)}`),
    row('prefix purge: entries, ms', (r) => `${r.prefixPurge.purged} (\`${r.prefixPurge.prefix}\`), ${f0(r.prefixPurge.ms)}`),
    row('hits during it: p99 / worst (ms); worst event-loop delay (ms)', (r) => `${f1(r.prefixPurge.hitP99Ms)} / ${f1(r.prefixPurge.hitMaxMs)}; ${f1(r.prefixPurge.loopDelayMaxMs)}`),
    row('the same hits alone, as long: p99 / worst (ms); worst event-loop delay (ms)', (r) => `${f1(r.prefixPurge.alone.hitP99Ms)} / ${f1(r.prefixPurge.alone.hitMaxMs)}; ${f1(r.prefixPurge.alone.loopDelayMaxMs)}`),
    row('tag purge: entries, ms', (r) => `${r.tagPurge.purged} (\`${r.tagPurge.tag}\`), ${f0(r.tagPurge.ms)}`),
    row('hits during it: p99 / worst (ms); worst event-loop delay (ms)', (r) => `${f1(r.tagPurge.hitP99Ms)} / ${f1(r.tagPurge.hitMaxMs)}; ${f1(r.tagPurge.loopDelayMaxMs)}`),
    row('the same hits alone, as long: p99 / worst (ms); worst event-loop delay (ms)', (r) => `${f1(r.tagPurge.alone.hitP99Ms)} / ${f1(r.tagPurge.alone.hitMaxMs)}; ${f1(r.tagPurge.alone.loopDelayMaxMs)}`),
    '',
    'A purge by prefix or tag is recorded, its rows are removed on the index\'s own thread (src/cache/index-thread.ts)',
    'in time-sliced batches, and it answers: its time is the index work. Hits read entry files by their path and never',
    'wait on the index. The files (one unlink per entry) are deleted in the background once it has answered. The worst',
    'event-loop delay is the edge\'s own metric over the purge; the row below it is the same four hitters for as long',
    'right after, with no purge: on this 2-core machine the hitters, the edge and the index thread share the cores.',
    'Each row removed touches four secondary orders at random places; with the hits reading 10 GB of entry files,',
    'the index\'s pages are mostly not in the page cache, so a large purge waits on the disk (the index alone, below,',
    'with its pages in memory, removes 10 000 rows in about half a second).',
  ];
  if (indexOnly.length > 0) {
    lines.push(
      '',
      '## The index alone',
      '',
      'Files for these many entries exceed this disk (16.7 M inodes, and each entry is a file and a directory), so the',
      'index is filled directly with rows of the same shape, in key order, and measured in a process of its own with',
      'the page cache the edge gives it (64 MiB). An index call reads a random source\'s rows through the index\'s',
      'thread (as a put or the reconciliation does; serving reads entry files by their path and never asks the index).',
      'The prefix `/synthetic/0012` selects 10 000 rows that sit together, the tag `synthetic-7` one row in a thousand',
      'spread over the whole index, and the eviction takes the 10 000 least recently used. Each runs as the store runs',
      'it, on the index\'s thread, while index calls keep coming one after another: the worst event-loop delay (Node\'s',
      'own histogram) is what a request would have felt, the slowest call what a background index write would have',
      'waited. For scale, the floor: the same histogram while another thread does nothing but spin for a second.',
      '',
      '| rows | file (MiB) | build (s) | open (ms) | RSS (MiB) | JS heap (MiB) | index call (µs) | work: rows, ms | worst event-loop delay (ms) | slowest index call meanwhile (ms) | index calls/s meanwhile |',
      '|---|---|---|---|---|---|---|---|---|---|---|',
      ...indexOnly.flatMap((r) =>
        (['prefix', 'tag', 'lru'] as const).map((kind, i) => {
          const w = r[kind];
          const head = i === 0 ? `${r.rows.toLocaleString('en')} | ${f0(r.fileMiB)} | ${f0(r.buildSeconds)} | ${f1(r.openMs)} | ${f0(r.rssMiB)} | ${f1(r.heapMiB)} | ${f1(r.indexCallUs)}` : ' | | | | | | ';
          return `| ${head} | ${kind === 'lru' ? 'eviction' : kind}: ${w.rows}, ${f0(w.ms)} | ${f1(w.loopDelayMaxMs)} | ${f1(w.worstIndexCallMs)} | ${f0(w.indexCallsPerSecond)} |`;
        }),
      ),
      '',
      `Floor (worst event-loop delay while one other thread spins, ms): ${indexOnly.map((r) => `${f1(r.busyCoreLoopDelayMs)} at ${r.rows.toLocaleString('en')}`).join(', ')}.`,
    );
  }
  return `${lines.join('\n')}\n`;
}

export async function runScale(sizes: number[], indexRows: number[], workDir: string): Promise<void> {
  const results: ScaleResult[] = [];
  for (const entries of sizes) results.push(await measureScale(entries, workDir));
  const indexOnly: IndexOnlyResult[] = [];
  for (const rows of indexRows) {
    log(`index alone at ${rows} rows …`);
    indexOnly.push(await measureIndexOnly(rows));
  }
  await writeFile(RESULTS, `${JSON.stringify({ results, indexOnly }, null, 2)}\n`);
  await writeFile(REPORT, scaleReport(results, indexOnly, await loadGenerator()));
  log(`wrote ${path.relative(ROOT, REPORT)}`);
}
