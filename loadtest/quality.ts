/**
 * auto=compress benchmark on real photographs (scripts/photo-corpus.ts: camera JPEGs and lossless
 * photographs from Debian packages) plus three drawn graphics, each resized to min(800, width).
 * The search steers by SSIMULACRA 2; the results are judged by Butteraugli (Debian's reference
 * build), which the search never sees. Per format and target it reports the spread of distances,
 * the worst photograph against the target, encodes and time, and auto's bytes against the one
 * fixed quality that keeps every photograph at least as good as auto's worst, under each metric.
 * Writes docs/QUALITY.md and docs/quality.json.
 *
 * Run: npm run bench:quality [-- --formats jpeg,webp,avif] [--limit N] [--report-only]
 * (--formats replaces only those formats' runs in the last docs/quality.json)
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { ensurePhotoCorpus } from '../scripts/photo-corpus.js';
import {
  QUALITY_RANGES, QUALITY_TARGETS, autoCompress, decodeRaw, encodeCandidate, meterFor, type EncodeSettings,
} from '../src/transform/quality.js';
import type { QualityTarget, RawImage } from '../src/transform/types.js';
import { butteraugli, checkButteraugli } from './butteraugli.js';
import { GRAPHICS, renderGraphic } from './graphics.js';
import { writeQualityReport, type FixedBaseline, type QualityResults, type Row } from './quality-report.js';

type Format = EncodeSettings['format'];
const MAX_WIDTH = 800;
/** The edge's default (config limits.avifEffort). */
const AVIF_EFFORT = 2;
/** JPEG at every target; WebP and AVIF at the default target (`high`), which the targets are stated for. */
const PLAN: Record<Format, QualityTarget[]> = { jpeg: ['high', 'medium', 'low'], webp: ['high'], avif: ['high'] };

interface Subject {
  name: string;
  description: string;
  source: string;
  kind: 'photo' | 'graphic';
  ref: RawImage;
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const docsDir = path.join(root, 'docs');

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function loadSubjects(limit: number | undefined): Promise<Subject[]> {
  const photos = await ensurePhotoCorpus({ log: (m) => console.error(m) });
  const subjects: Subject[] = [];
  for (const p of photos.slice(0, limit ?? photos.length)) {
    const { data, info } = await sharp(p.file).rotate().resize({ width: MAX_WIDTH, withoutEnlargement: true })
      .toColourspace('srgb').removeAlpha().raw().toBuffer({ resolveWithObject: true });
    subjects.push({ name: p.name, description: p.description, source: p.package, kind: 'photo', ref: { data, width: info.width, height: info.height, channels: 3 } });
  }
  for (const g of GRAPHICS) subjects.push({ name: g.name, description: g.description, source: 'drawn', kind: 'graphic', ref: await renderGraphic(g, MAX_WIDTH) });
  return subjects;
}

/** Runs `fn` over `items`, `width` at a time (Butteraugli is a process per call). */
async function pool<T, R>(items: T[], width: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  }));
  return out;
}

const plain = (format: Format): EncodeSettings => ({ format, progressive: false, chroma: '4:2:0', avifEffort: AVIF_EFFORT, alpha: false });

/** SSIMULACRA 2 of the whole served image (the search may have measured tiles). */
async function wholeScore(ref: RawImage, settings: EncodeSettings, body: Buffer): Promise<number> {
  const meter = meterFor(ref, settings);
  try {
    return meter.compare(await decodeRaw(body));
  } finally {
    meter.dispose(); // hands its memory to the next search, as the edge's own references do
  }
}

/** auto=compress exactly as the edge runs it (autoCompress, as auto-encode.ts calls it), timed, then judged. */
async function runAuto(s: Subject, format: Format, target: QualityTarget): Promise<Row> {
  const started = performance.now();
  const choice = await autoCompress(s.ref, plain(format), target);
  const autoMs = performance.now() - started;
  const settings: EncodeSettings = { ...plain(format), chroma: choice.chroma };
  const t = performance.now();
  await encodeCandidate(s.ref, settings, choice.quality);
  const oneMs = performance.now() - t;
  const score = await wholeScore(s.ref, settings, choice.body);
  return {
    name: s.name, kind: s.kind, format, target, width: s.ref.width, height: s.ref.height, chroma: choice.chroma, whole: choice.whole,
    quality: choice.quality, bytes: choice.body.length, encodes: choice.encodes, autoMs, oneMs, viewScore: choice.score, score,
    butteraugli: await butteraugli(s.ref, choice.body),
  };
}

/**
 * Lowest quality at which `passes` holds, by bisection over the format's range (the top when
 * none does): per photograph, the fixed quality that matches auto's worst.
 */
async function lowestPassing(format: Format, passes: (q: number) => Promise<boolean>): Promise<number> {
  let { min: lo, max: hi } = QUALITY_RANGES[format];
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (await passes(mid)) hi = mid;
    else lo = mid + 1;
  }
  return hi;
}

/** Encodes and their judgements, shared by every target of a format. */
const encodes = new Map<string, Promise<Buffer>>();
const judged = new Map<string, Promise<number>>();
function fixedEncode(s: Subject, format: Format, q: number): Promise<Buffer> {
  const key = `${s.name}/${format}/${q}`;
  if (!encodes.has(key)) encodes.set(key, encodeCandidate(s.ref, plain(format), q));
  return encodes.get(key)!;
}
function judge(metric: 'butteraugli' | 'ssimulacra2', s: Subject, format: Format, q: number): Promise<number> {
  const key = `${metric}/${s.name}/${format}/${q}`;
  if (!judged.has(key)) {
    judged.set(key, fixedEncode(s, format, q).then(async (body) =>
      metric === 'butteraugli' ? butteraugli(s.ref, body) : wholeScore(s.ref, plain(format), body)));
  }
  return judged.get(key)!;
}

/** The one fixed quality that keeps every photograph at least as good as auto's worst under `metric`. */
async function fixedBaseline(photos: Subject[], rows: Row[], format: Format, metric: 'butteraugli' | 'ssimulacra2'): Promise<FixedBaseline> {
  const worst = metric === 'butteraugli' ? Math.max(...rows.map((r) => r.butteraugli)) : Math.min(...rows.map((r) => r.score));
  const ok = (v: number) => (metric === 'butteraugli' ? v <= worst : v >= worst);
  const perPhoto = await pool(photos, 2, (s) => lowestPassing(format, async (q) => ok(await judge(metric, s, format, q))));
  const quality = Math.max(...perPhoto);
  const total = async (qs: number[]) => (await Promise.all(photos.map((s, i) => fixedEncode(s, format, qs[i]!)))).reduce((n, b) => n + b.length, 0);
  // The per-photograph qualities themselves: what a search steering by this very metric would spend.
  return { metric, worst, quality, bytes: await total(photos.map(() => quality)), oracleBytes: await total(perPhoto) };
}

async function main(): Promise<void> {
  const jsonPath = path.join(docsDir, 'quality.json');
  if (process.argv.includes('--report-only')) {
    const results = JSON.parse(await readFile(jsonPath, 'utf8')) as QualityResults;
    await writeQualityReport(results, path.join(docsDir, 'QUALITY.md'));
    return;
  }
  await checkButteraugli();
  const started = Date.now();
  const formats = (arg('formats') ?? 'jpeg,webp,avif').split(',') as Format[];
  const limit = arg('limit') ? Number(arg('limit')) : undefined;
  const subjects = await loadSubjects(limit);
  const photos = subjects.filter((s) => s.kind === 'photo');
  const results: QualityResults = { date: new Date().toISOString().slice(0, 10), seconds: 0, targets: QUALITY_TARGETS, avifEffort: AVIF_EFFORT, maxWidth: MAX_WIDTH, runs: [] };
  for (const format of formats) {
    for (const target of PLAN[format]) {
      const rows: Row[] = [];
      for (const [i, s] of subjects.entries()) {
        const row = await runAuto(s, format, target);
        rows.push(row);
        console.error(`[${format} ${target} ${i + 1}/${subjects.length}] ${s.name}: q${row.quality} ${(row.bytes / 1024).toFixed(1)} KB, ` +
          `SSIMULACRA 2 ${row.score.toFixed(1)}, Butteraugli ${row.butteraugli.toFixed(2)}, ${row.encodes} encodes, ${(row.autoMs / row.oneMs).toFixed(1)}× one encode`);
      }
      const photoRows = rows.filter((r) => r.kind === 'photo');
      const fixed = [await fixedBaseline(photos, photoRows, format, 'butteraugli'), await fixedBaseline(photos, photoRows, format, 'ssimulacra2')];
      results.runs.push({ format, target, rows, fixed });
    }
  }
  results.seconds = Math.round((Date.now() - started) / 1000);
  if (arg('formats')) {
    // A partial run replaces only its formats' runs in the last full report.
    const last = JSON.parse(await readFile(jsonPath, 'utf8')) as QualityResults;
    const order = (r: QualityResults['runs'][number]) => Object.keys(PLAN).indexOf(r.format);
    results.runs = [...last.runs.filter((r) => !formats.includes(r.format)), ...results.runs].sort((a, b) => order(a) - order(b));
    results.seconds += last.seconds;
  }
  results.corpus = subjects.map((s) => ({ name: s.name, description: s.description, source: s.source, kind: s.kind }));
  await writeFile(jsonPath, `${JSON.stringify(results, null, 1)}\n`);
  await writeQualityReport(results, path.join(docsDir, 'QUALITY.md'));
  console.error(`wrote docs/QUALITY.md and docs/quality.json in ${results.seconds} s`);
}

await main();
