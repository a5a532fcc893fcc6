/**
 * `npm run cache:fill -- --dir DIR --entries N`: writes N valid cache entries for the URLs
 * `/synthetic/<i>.jpg?w=100` of the first configured site, so that a GET of any of them is a HIT
 * without an origin. For benchmarks of the cache at scale (loadtest/cache-scale.ts).
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import sharp from 'sharp';
import { DiskStore } from '../cache/disk-store.js';
import { makeCacheKey } from '../cache/key.js';
import type { CacheEntry } from '../cache/types.js';
import { loadConfig } from '../config/load.js';
import type { SiteConfig } from '../config/schema.js';
import { sourceQueryOf } from '../optimize/source-query.js';
import { strongEtag } from '../optimize/variant.js';
import { parseParams } from '../transform/params.js';

const USAGE = `Usage: npm run cache:fill -- --dir DIR --entries N [--from I] [--tags T]

Writes N cache entries for /synthetic/<i>.jpg?w=100 (i = I … I+N-1) of the first configured site,
each a real 100-pixel-wide JPEG, so a GET of one is a HIT. Entry i carries the purge tag
synthetic-<i mod T> (T default 1000), for tag purges. The cache's byte budget comes from the
configuration (IMGEDGE_CACHE_MAX_BYTES): make it large enough, or the oldest are evicted.
`;

/** Writes in flight at once: enough to keep the disk and the thread pool busy. */
const CONCURRENCY = 256;
const TTL_MS = 30 * 24 * 3600 * 1000;

interface FillOptions {
  dir: string;
  entries: number;
  from: number;
  tags: number;
}

function parseFillArgs(argv: string[]): FillOptions {
  const { values } = parseArgs({
    args: argv,
    options: { dir: { type: 'string' }, entries: { type: 'string' }, from: { type: 'string' }, tags: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const count = (name: string, value: string | undefined, fallback?: number): number => {
    const n = value === undefined ? fallback : Number(value);
    if (n === undefined || !Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} needs a whole number, got ${value ?? 'nothing'}\n\n${USAGE}`);
    return n;
  };
  if (!values.dir) throw new Error(`--dir is required\n\n${USAGE}`);
  return { dir: path.resolve(values.dir), entries: count('entries', values.entries), from: count('from', values.from, 0), tags: Math.max(1, count('tags', values.tags, 1000)) };
}

/** The entry a GET of /synthetic/<i>.jpg?w=100 on `site` reads (no language, no format negotiation). */
function syntheticEntry(site: SiteConfig, i: number, body: Buffer, tags: number): CacheEntry {
  const url = new URL(`http://fill.invalid/synthetic/${i}.jpg?w=100`);
  const sourceQuery = sourceQueryOf(url, { config: site });
  const key = makeCacheKey({ site: site.name, path: url.pathname, sourceQuery, spec: parseParams(url.searchParams).canonical, format: '-' });
  const now = Date.now();
  return {
    meta: {
      key: key.variant,
      sourceHash: key.sourceHash,
      variantHash: key.variantHash,
      source: key.source,
      contentType: 'image/jpeg',
      etag: strongEtag(body),
      size: body.length,
      createdAt: now,
      expiresAt: now + TTL_MS,
      tags: [`synthetic-${i % tags}`],
      headers: { 'x-original-bytes': String(body.length * 4) },
    },
    body,
  };
}

async function main(): Promise<void> {
  const opts = parseFillArgs(process.argv.slice(2));
  const config = await loadConfig();
  const site = config.sites[0];
  if (!site) throw new Error('the configuration has no site');
  if (site.languages.length > 0) throw new Error(`site ${site.name} has language variants: cache:fill needs a first site without them`);
  const body = await sharp({ create: { width: 100, height: 75, channels: 3, background: '#4a7' } })
    .composite([{ input: Buffer.from('<svg width="100" height="75"><circle cx="50" cy="37" r="30" fill="#d52"/></svg>') }])
    .jpeg({ quality: 75 })
    .toBuffer();
  const store = await DiskStore.open({ dir: opts.dir, maxBytes: config.cache.maxBytes, sweepIntervalMs: 3_600_000 });
  const started = Date.now();
  const bar = progressBar(opts.entries);
  let next = opts.from;
  let done = 0;
  const end = opts.from + opts.entries;
  const writer = async (): Promise<void> => {
    while (next < end) {
      await store.put(syntheticEntry(site, next++, body, opts.tags));
      bar.update(++done);
    }
  };
  try {
    await Promise.all(Array.from({ length: CONCURRENCY }, writer));
  } finally {
    bar.stop();
    await store.close();
  }
  const seconds = (Date.now() - started) / 1000;
  const { entries, bytes } = store.stats();
  process.stdout.write(
    `${done} entries written to ${opts.dir} in ${seconds.toFixed(1)} s (${Math.round(done / seconds)}/s); the cache holds ${entries} entries, ${bytes} bytes\n`,
  );
}

/** A live bar on a terminal, a line every 5 % otherwise. */
function progressBar(total: number): { update(done: number): void; stop(): void } {
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar({ format: '{bar} {value}/{total} entries | {eta_formatted} left', stream: process.stderr }, cliProgress.Presets.shades_classic);
    bar.start(total, 0);
    return { update: (done) => bar.update(done), stop: () => bar.stop() };
  }
  const step = Math.max(1, Math.floor(total / 20));
  return {
    update: (done) => {
      if (done % step === 0 || done === total) process.stderr.write(`[${done}/${total}] entries written\n`);
    },
    stop() {},
  };
}

main().catch((err: unknown) => {
  process.stderr.write(`cache:fill: ${(err as Error).message}\n`);
  process.exit(1);
});
