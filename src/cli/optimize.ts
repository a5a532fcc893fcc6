#!/usr/bin/env node
/**
 * `imgedge-optimize`: the edge's auto=compress pipeline over local files and folders, writing
 * results under --out (mirrored tree) or in place. Exit 0 done, 1 a file failed, 2 bad usage.
 */
import type { EncodePolicy, QualityTarget, TransformLimits } from '../transform/types.js';
import { USAGE, UsageError, parseCliArgs, type CliOptions } from './args.js';
import { optimizeFile, type RunSettings } from './optimize-file.js';
import { startProgress } from './progress.js';
import { fileLine, krakenResult, totalLine } from './report.js';
import { collectFiles } from './walk.js';

const CONCURRENCY = 2;

const LIMITS: TransformLimits = {
  maxSourcePixels: 100_000_000,
  maxOutputDimension: 16384,
  maxOutputPixels: 268_435_456,
  timeoutSeconds: 60,
  // An optimizer must not drop frames; maxSourcePixels still bounds an animation's memory.
  maxFrames: Number.MAX_SAFE_INTEGER,
  avifEffort: 4,
};

const policy = (qualityTarget: QualityTarget): EncodePolicy => ({ qualityTarget, keepCopyright: false, keepIccProfile: false });

/** Runs `work` over `items`, at most `limit` at a time; results in input order. */
async function mapLimit<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

async function run(opts: CliOptions): Promise<number> {
  const files = await collectFiles(opts.paths, opts.out);
  const settings: RunSettings = {
    ...(opts.out !== undefined ? { outDir: opts.out } : {}),
    format: opts.format,
    limits: LIMITS,
    policy: policy(opts.quality),
    claimed: new Set(),
  };
  const progress = startProgress(files.length);
  let saved = 0;
  const results = await mapLimit(files, CONCURRENCY, async (file) => {
    const r = await optimizeFile(file, settings);
    saved += r.before - r.after;
    progress.fileDone(saved, opts.json ? undefined : fileLine(r));
    return r;
  });
  progress.stop();
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(results.map(krakenResult), null, 2)}\n`);
    process.stderr.write(`${totalLine(results)}\n`);
  } else {
    process.stdout.write(`${totalLine(results)}\n`);
  }
  return results.some((r) => r.status === 'failed') ? 1 : 0;
}

async function main(argv: string[]): Promise<number> {
  let opts: CliOptions | 'help';
  try {
    opts = parseCliArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`imgedge-optimize: ${err.message}\n\n${USAGE}`);
    return 2;
  }
  if (opts === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  return run(opts);
}

process.exitCode = await main(process.argv.slice(2)).catch((err: unknown) => {
  // e.g. a folder that cannot be listed: nothing was half-written, so say why and stop.
  process.stderr.write(`imgedge-optimize: ${(err as Error).message}\n`);
  return 1;
});
