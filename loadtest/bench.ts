/**
 * `npm run loadtest`: every scenario of issue 7 against loopback servers this run starts, then
 * docs/BENCHMARKS.md and docs/benchmarks.svg. Exits 1 when a target is not met.
 * Options: --seconds N (each timed run, default 10), --rounds N (interleaved runs per side, default 3),
 * --keep (leave the work directory: cache, logs, nginx files), --report-only (rewrite the report
 * from docs/benchmarks.json, the last run's results, without measuring).
 * `--only hot-hit,small-misses,scaling` measures those scenarios alone and puts their results in place of
 * the last run's (docs/benchmarks.json), saying so in their notes.
 * `--scale 100000,1000000 [--index-only 10000000]` runs only the cache-at-scale scenario
 * (loadtest/cache-scale.ts, docs/CACHE-SCALE.md).
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { freePort } from '../test/helpers/processes.js';
import { countedLoad, hasWrk, loadGenerator } from './drive.js';
import { runScale } from './cache-scale.js';
import { scaling } from './scaling.js';
import { drawFixtures } from './fixtures.js';
import { chart, markdown, type Machine } from './report.js';
import {
  ACCEPT_WEBP, bigMisses, diskHits, hotHit, hotSet, hotSetPaths, misses, mixed, prepareHotSet, smallMisses, stampede,
  type BenchContext, type ScenarioResult,
} from './scenarios.js';
import { ROOT, edgeConfig, sharpEnv, startEdge, startOrigin, type Child } from './servers.js';

const MiB = 1024 ** 2;
/** The hit edge's memory tier: the hot set (about 10 MiB) fits; the mixed run's new variants fill the rest during its warm-up. */
const HOT_TIER = 24 * MiB;
const { values: opts } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
    keep: { type: 'boolean', default: false },
    'report-only': { type: 'boolean', default: false },
    scale: { type: 'string' },
    only: { type: 'string' },
    'index-only': { type: 'string' },
  },
});
const log = (line: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);

/** A tool's version from its output; some (nginx -v) print it on stderr. */
function version(cmd: string, args: string[], pattern: RegExp): string {
  const run = spawnSync(cmd, args, { encoding: 'utf8' });
  if (run.error) return 'not found';
  const out = `${run.stdout}${run.stderr}`;
  return pattern.exec(out)?.[1] ?? out.trim();
}

async function machine(seconds: number, rounds: number): Promise<Machine> {
  return {
    date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
    commit: version('git', ['-C', ROOT, 'describe', '--always', '--dirty'], /(\S+)/),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    memoryGiB: Math.round(os.totalmem() / 1024 ** 3),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    sharp: `${sharp.versions.sharp} / ${sharp.versions.vips}`,
    nginx: version('nginx', ['-v'], /nginx\/(\S+)/),
    loadGenerator: await loadGenerator(),
    allocator: sharpEnv().LD_PRELOAD ? `jemalloc (${sharpEnv().LD_PRELOAD}) for the edge, sharp and ipx` : "glibc malloc (libjemalloc2 not installed)",
    seconds,
    rounds,
  };
}

async function withEdge<T>(ctx: BenchContext, cacheDir: string, memoryBytes: number, name: string, body: (edge: Child) => Promise<T>, env: Record<string, string> = {}): Promise<T> {
  const config = edgeConfig({ origin: ctx.origin.url, cacheDir, port: await freePort(), memoryBytes });
  const edge = await startEdge(config, ctx.workDir, path.join(ctx.workDir, `${name}.log`), env);
  try {
    return await body(edge);
  } finally {
    await edge.stop();
  }
}

/**
 * Timed runs of --seconds per round, a side each (the miss scenarios run twice the rounds at half
 * the length, so a side counts one): hot hit 5, hot set 3, mixed 1, misses 3, small misses 2,
 * scaling 4 (two stacks' hits, their misses at half length, static nginx), disk hits 2.
 */
const TIMED_RUNS_PER_ROUND = 20;

const DOCS = path.join(ROOT, 'docs');
const RESULTS_JSON = path.join(DOCS, 'benchmarks.json');

/** BENCHMARKS.md, the chart, and the raw results they were made from (for --report-only). */
async function writeReport(results: ScenarioResult[], m: Machine): Promise<void> {
  await writeFile(path.join(DOCS, 'BENCHMARKS.md'), markdown(results, m));
  await writeFile(path.join(DOCS, 'benchmarks.svg'), chart(results));
  await writeFile(RESULTS_JSON, JSON.stringify({ machine: m, results }, null, 2) + '\n');
}

/** `--only`: the scenarios named, measured now, in place of the last run's. */
async function measureOnly(ctx: BenchContext, ids: string[], variants: string[]): Promise<void> {
  const fresh: ScenarioResult[] = [];
  const unknown = ids.filter((id) => id !== 'hot-hit' && id !== 'small-misses' && id !== 'scaling');
  if (unknown.length > 0) throw new Error(`--only knows hot-hit, small-misses and scaling, not ${unknown.join(', ')}`);
  if (ids.includes('hot-hit')) {
    await withEdge(ctx, path.join(ctx.workDir, 'cache'), HOT_TIER, 'edge-hot', async (edge) => fresh.push(await hotHit(ctx, edge)));
  }
  if (ids.includes('small-misses')) {
    await withEdge(ctx, path.join(ctx.workDir, 'cache'), HOT_TIER, 'edge-hot', async (edge) => fresh.push(await smallMisses(ctx, edge)));
  }
  if (ids.includes('scaling')) fresh.push(...(await scaling(ctx, variants, HOT_TIER, path.join(ctx.workDir, 'scaling'))));
  const m = await machine(ctx.seconds, ctx.rounds);
  const last = JSON.parse(await readFile(RESULTS_JSON, 'utf8')) as { machine: Machine; results: ScenarioResult[] };
  const results = [...last.results];
  for (const r of fresh) {
    r.notes.push(`measured alone (--only) on ${m.date} at ${m.commit}, after the rest of this report`);
    const at = results.findIndex((x) => x.id === r.id);
    if (at >= 0) results[at] = r;
    else results.push(r);
  }
  await writeReport(results, last.machine);
  for (const r of fresh) if (r.target) log(`${r.target.met ? 'met    ' : 'NOT MET'} ${r.title}: ${r.target.text} — ${r.target.value}`);
}

async function main(): Promise<void> {
  if (opts.scale || opts['index-only']) {
    const sizes = (list: string | undefined) => (list ? list.split(',').map(Number) : []);
    const workDir = await mkdtemp(path.join(os.tmpdir(), 'imgedge-scale-'));
    try {
      await runScale(sizes(opts.scale), sizes(opts['index-only']), workDir);
    } finally {
      if (!opts.keep) await rm(workDir, { recursive: true, force: true });
    }
    return;
  }
  if (opts['report-only']) {
    // Re-renders the report from the last run's results (after a change to report.ts).
    const { machine: m, results } = JSON.parse(await readFile(RESULTS_JSON, 'utf8')) as { machine: Machine; results: ScenarioResult[] };
    await writeReport(results, m);
    log('rewrote docs/BENCHMARKS.md and docs/benchmarks.svg from docs/benchmarks.json');
    return;
  }
  if (!(await hasWrk())) {
    throw new Error('wrk is needed (apt-get install -y wrk): a Node.js load generator takes a core of its own and halves what it measures here');
  }
  const seconds = Number(opts.seconds);
  const rounds = Number(opts.rounds);
  if (!(seconds > 0 && rounds >= 1)) throw new Error('--seconds and --rounds must be positive numbers');
  // The whole run's bound: twice the timed runs plus 15 minutes for warming and the counted runs.
  const limitMs = (2 * TIMED_RUNS_PER_ROUND * seconds * rounds + 15 * 60) * 1000;
  setTimeout(() => {
    process.stderr.write(`loadtest: still running after ${Math.round(limitMs / 60_000)} minutes; stopping\n`);
    process.exit(2);
  }, limitMs).unref();
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'imgedge-bench-'));
  log(`work directory ${workDir}`);
  const fixtures = await drawFixtures(ROOT, log);
  const origin = await startOrigin(fixtures.dir, fixtures.big);
  const ctx: BenchContext = { fixtures, origin, workDir, seconds, rounds, log };
  const results: ScenarioResult[] = [];
  const cacheDir = path.join(workDir, 'cache');
  const variants = hotSetPaths(fixtures);
  let setBytes = 0;
  if (opts.only) {
    try {
      await measureOnly(ctx, opts.only.split(','), variants);
    } finally {
      await origin.close();
      if (!opts.keep) await rm(workDir, { recursive: true, force: true });
    }
    return;
  }
  try {
    await withEdge(ctx, cacheDir, HOT_TIER, 'edge-hot', async (edge) => {
      log(`warming ${variants.length} hot-set variants`);
      const warm = await countedLoad({ baseUrl: edge.url, paths: variants, count: variants.length, concurrency: 4, headers: ACCEPT_WEBP });
      if (warm.errors > 0) throw new Error(`warming failed: ${JSON.stringify(warm.statuses)}`);
      setBytes = await prepareHotSet(ctx, edge, variants);
      results.push(await hotHit(ctx, edge));
      results.push(await hotSet(ctx, edge, variants, setBytes, HOT_TIER));
      const { result, rss } = await mixed(ctx, edge, variants);
      results.push(result);
      results.push(await misses(ctx, edge));
      results.push(await smallMisses(ctx, edge));
      results.push(await stampede(ctx, edge));
      results.push(rss);
    });
    // The same cache directory through a memory tier an eighth of the set: most hits come from disk.
    const small = Math.floor(setBytes / 8);
    await withEdge(ctx, cacheDir, small, 'edge-disk', async (edge) => {
      results.splice(2, 0, await diskHits(ctx, edge, variants, small, setBytes));
    });
    results.push(...(await scaling(ctx, variants, HOT_TIER, path.join(workDir, 'scaling'))));
    await withEdge(ctx, path.join(workDir, 'cache-big'), 64 * MiB, 'edge-big', async (edge) => {
      results.push(await bigMisses(ctx, edge, 'jemalloc'));
    });
    await withEdge(ctx, path.join(workDir, 'cache-big-glibc'), 64 * MiB, 'edge-big-glibc', async (edge) => {
      results.push(await bigMisses(ctx, edge, 'glibc'));
    }, { IMGEDGE_JEMALLOC: '0' });
  } finally {
    await origin.close();
    if (!opts.keep) await rm(workDir, { recursive: true, force: true });
  }
  await writeReport(results, await machine(seconds, rounds));
  const unmet = results.filter((r) => r.target && !r.target.met);
  for (const r of results) if (r.target) log(`${r.target.met ? 'met    ' : 'NOT MET'} ${r.title}: ${r.target.text} — ${r.target.value}`);
  log(`wrote docs/BENCHMARKS.md and docs/benchmarks.svg`);
  process.exitCode = unmet.length > 0 ? 1 : 0;
}

main().catch((err: unknown) => {
  process.stderr.write(`loadtest failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(2);
});
