/** docs/QUALITY.md from one run of loadtest/quality.ts (also redrawn from docs/quality.json). */
import { writeFile } from 'node:fs/promises';
import type { QualityTarget } from '../src/transform/types.js';

export interface Row {
  name: string;
  kind: 'photo' | 'graphic';
  format: 'jpeg' | 'webp' | 'avif';
  target: QualityTarget;
  width: number;
  height: number;
  chroma: string;
  /** false when the search measured a mosaic of tiles (measure-view.ts) */
  whole: boolean;
  quality: number;
  bytes: number;
  encodes: number;
  autoMs: number;
  oneMs: number;
  /** SSIMULACRA 2 of the search's last view, and of the whole served image */
  viewScore: number;
  score: number;
  butteraugli: number;
}

export interface FixedBaseline {
  metric: 'butteraugli' | 'ssimulacra2';
  /** auto's worst photograph under that metric */
  worst: number;
  quality: number;
  bytes: number;
  /** every photograph at its own lowest quality that matches auto's worst under this metric (4:2:0) */
  oracleBytes: number;
}

export interface QualityResults {
  date: string;
  seconds: number;
  targets: Record<QualityTarget, number>;
  avifEffort: number;
  maxWidth: number;
  corpus?: { name: string; description: string; source: string; kind: string }[];
  runs: { format: Row['format']; target: QualityTarget; rows: Row[]; fixed: FixedBaseline[] }[];
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const kb = (n: number) => (n / 1024).toFixed(0);
const f = (n: number, d = 2) => n.toFixed(d);

export interface RunSummary {
  photos: number;
  q: [number, number, number];
  distance: { min: number; max: number; spread: number };
  butteraugli: { min: number; max: number; spread: number };
  /** the worst photograph's SSIMULACRA 2 distance over the target's, minus 1 */
  worstOverTarget: number;
  autoBytes: number;
  fixed: FixedBaseline[];
  encodes: { median: number; max: number };
  time: { median: number; max: number };
}

export function summarize(run: QualityResults['runs'][number], targetScore: number): RunSummary {
  const rows = run.rows.filter((r) => r.kind === 'photo');
  const d = rows.map((r) => 100 - r.score);
  const b = rows.map((r) => r.butteraugli);
  const qs = rows.map((r) => r.quality);
  const ratio = rows.map((r) => r.autoMs / r.oneMs);
  return {
    photos: rows.length,
    q: [Math.min(...qs), median(qs), Math.max(...qs)],
    distance: { min: Math.min(...d), max: Math.max(...d), spread: Math.max(...d) / Math.min(...d) },
    butteraugli: { min: Math.min(...b), max: Math.max(...b), spread: Math.max(...b) / Math.min(...b) },
    worstOverTarget: Math.max(...d) / (100 - targetScore) - 1,
    autoBytes: rows.reduce((n, r) => n + r.bytes, 0),
    fixed: run.fixed,
    encodes: { median: median(rows.map((r) => r.encodes)), max: Math.max(...rows.map((r) => r.encodes)) },
    time: { median: median(ratio), max: Math.max(...ratio) },
  };
}

const mark = (ok: boolean) => (ok ? '✓' : '✗');

function summaryTable(results: QualityResults): string[] {
  const lines = [
    '| format | target (score) | photos | q min–median–max | SSIMULACRA 2 distance min–max (spread) | Butteraugli min–max (spread) | worst vs target | auto KB | fixed q, KB, auto/fixed (Butteraugli) | fixed q, KB, auto/fixed (SSIMULACRA 2) | encodes median, max | time / one encode: median, max |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const run of results.runs) {
    const s = summarize(run, results.targets[run.target]);
    const fixed = s.fixed.map((x) => `q${x.quality}, ${kb(x.bytes)}, **${f(s.autoBytes / x.bytes)}×** (oracle ${f(x.oracleBytes / x.bytes)}×)`);
    lines.push(`| ${run.format} | ${run.target} (${results.targets[run.target]}) | ${s.photos} | ${s.q.join('–')} | ${f(s.distance.min, 1)}–${f(s.distance.max, 1)} (**${f(s.distance.spread)}×**) | ` +
      `${f(s.butteraugli.min)}–${f(s.butteraugli.max)} (${f(s.butteraugli.spread)}×) | ${s.worstOverTarget > 0 ? '+' : ''}${f(100 * s.worstOverTarget, 0)} % | ${kb(s.autoBytes)} | ` +
      `${fixed.join(' | ')} | ${s.encodes.median}, ${s.encodes.max} | ${f(s.time.median, 1)}×, ${f(s.time.max, 1)}× |`);
  }
  return lines;
}

function targetsCheck(results: QualityResults): string[] {
  const lines = ['| format, target | auto/fixed ≤ 0.75 (Butteraugli; a search steering by Butteraugli itself) | spread ≤ 1.5× (SSIMULACRA 2; Butteraugli) | worst ≤ target + 10 % | median encodes ≤ 3 | time ≤ 3× one encode (median) |', '|---|---|---|---|---|---|'];
  for (const run of results.runs.filter((r) => r.target === 'high')) {
    const s = summarize(run, results.targets.high);
    const b = s.fixed.find((x) => x.metric === 'butteraugli')!;
    const ratio = s.autoBytes / b.bytes;
    lines.push(`| ${run.format}, high | ${mark(ratio <= 0.75)} ${f(ratio)}; ${f(b.oracleBytes / b.bytes)} | ${mark(s.distance.spread <= 1.5)} ${f(s.distance.spread)}; ${mark(s.butteraugli.spread <= 1.5)} ${f(s.butteraugli.spread)} | ` +
      `${mark(s.worstOverTarget <= 0.1)} ${f(100 * s.worstOverTarget, 0)} % | ${mark(s.encodes.median <= 3)} ${s.encodes.median} | ${mark(s.time.median <= 3)} ${f(s.time.median, 1)}× |`);
  }
  return lines;
}

/**
 * Where the search metric and the judge disagree most (JPEG at the default target): the
 * photographs the judge finds worst and best, with what the search gave each.
 */
function disagreement(results: QualityResults): string[] {
  const run = results.runs.find((r) => r.format === 'jpeg' && r.target === 'high');
  if (!run) return [];
  const rows = run.rows.filter((r) => r.kind === 'photo').sort((a, b) => b.butteraugli - a.butteraugli);
  const pick = [...rows.slice(0, 5), ...rows.slice(-5)];
  const autoBytes = rows.reduce((n, r) => n + r.bytes, 0);
  const best = rows.slice(-5);
  return [
    '## Where the two metrics disagree (JPEG, `high`)',
    '',
    'The search holds every photograph within about two SSIMULACRA 2 points of the target, and the',
    'judge still spreads them over a wide range: the five the judge finds worst and the five it finds',
    'best below. SSIMULACRA 2 asks for much more quality on dense texture (moss, the forest',
    'photographs: its blurring map counts smoothed-away detail) where Butteraugli\'s masking forgives',
    'it; Butteraugli reports its max-norm, set by the single worst spot of an image, where SSIMULACRA 2',
    'pools over the whole image. The fixed quality under the judge is set by the photograph',
    `it rates worst; the five it rates best take ${f((100 * best.reduce((n, r) => n + r.bytes, 0)) / autoBytes, 0)} % of auto's bytes.`,
    '',
    '| image | q | KB | SSIMULACRA 2 | Butteraugli |',
    '|---|---|---|---|---|',
    ...pick.map((r) => `| ${r.name} | ${r.quality} | ${f(r.bytes / 1024, 1)} | ${f(r.score, 1)} | ${f(r.butteraugli)} |`),
    '',
  ];
}

function imageTable(run: QualityResults['runs'][number]): string[] {
  const lines = [
    `### ${run.format.toUpperCase()}, ${run.target}`,
    '',
    '| image | size | measured on | chroma | q | KB | encodes | SSIMULACRA 2 | Butteraugli | auto ms | one encode ms |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of run.rows) {
    lines.push(`| ${r.name}${r.kind === 'graphic' ? ' (drawn)' : ''} | ${r.width}×${r.height} | ${r.whole ? 'whole' : 'tiles'} | ${r.chroma} | ${r.quality} | ${f(r.bytes / 1024, 1)} | ${r.encodes} | ` +
      `${f(r.score, 1)} | ${f(r.butteraugli)} | ${r.autoMs.toFixed(0)} | ${r.oneMs.toFixed(0)} |`);
  }
  return [...lines, ''];
}

export async function writeQualityReport(results: QualityResults, file: string): Promise<void> {
  const photos = results.corpus?.filter((c) => c.kind === 'photo') ?? [];
  const packages = [...new Set(photos.map((p) => p.source))];
  const text = [
    '# auto=compress: per-image quality on real photographs',
    '',
    `Generated by \`npm run bench:quality\` (loadtest/quality.ts) on ${results.date}, whole run ${results.seconds} s, 2 cores.`,
    `Corpus: ${photos.length} real photographs from ${packages.length} Debian packages (docs/PHOTOS.md, laid out by`,
    '`scripts/photo-corpus.ts`), each resized to min(800, width) — down only — plus three drawn graphics',
    '(product on white, saturated text, a screenshot) listed per format but left out of the summaries.',
    `AVIF at effort ${results.avifEffort} (the edge's default). Raw results: docs/quality.json (\`--report-only\` redraws this page).`,
    '',
    '## How auto=compress chooses (src/transform/quality.ts)',
    '',
    '1. **One metric, one target per site quality**: SSIMULACRA 2.1 (src/transform/ssimulacra2.ts, a port of',
    '   libjxl\'s reference code). Targets (score, 100 = identical): ' + Object.entries(results.targets).map(([t, v]) => `\`${t}\` ${v}`).join(', ') + '.',
    '   The metric\'s own anchors: 90 no visible difference at 1:1, 70 high quality (the mean of mozjpeg q70).',
    '2. **Chroma** by the same metric: where saturated colour edges exist at all, the image with 4:2:0',
    '   chroma alone (no quantization) is scored; under target + 10 points, full chroma (4:4:4 for JPEG',
    '   and AVIF, libwebp\'s sharp YUV conversion for WebP). When even the top quality misses at 4:2:0,',
    '   the search goes on at full chroma. mozjpeg\'s overshoot deringing is always on (it touches only',
    '   blocks with clipped pixels).',
    '3. **Search**: start at a quality predicted from the image\'s detail and flat share (the corpus',
    '   median for the format and target, moved by a least-squares fit), then secant steps on the',
    '   score inside a shrinking bracket; stop at a passing quality within 2 points of the target, or',
    '   when the bracket closes; at most 7 encodes. Outputs above 640 000 px are measured on a mosaic of',
    '   six 256-px tiles at full resolution (src/transform/measure-view.ts) and encoded whole once at the',
    '   end, so camera originals are searched too.',
    '4. **Judged by another metric**: Butteraugli (Debian\'s reference build of Google\'s tool, max-norm),',
    '   which the search never consults; SSIMULACRA 2 is recomputed on the whole served image.',
    '',
    '## Targets (photographs, `high`)',
    '',
    ...targetsCheck(results),
    '',
    '## Summary per format and target (photographs only)',
    '',
    '- *spread*: the worst photograph\'s distance over the best one\'s (SSIMULACRA 2 distance = 100 − score).',
    '- *worst vs target*: the worst photograph\'s SSIMULACRA 2 distance over the target\'s distance.',
    '- *fixed q*: the single quality (same encoder, 4:2:0) at which every photograph is at least as good as',
    '  auto\'s worst photograph under that metric (per photograph by bisection; the highest wins).',
    '- *oracle*: each photograph at its own lowest quality that matches auto\'s worst under that metric,',
    '  over the fixed quality: what a search steering by that very metric could reach at best.',
    '- *time*: auto\'s whole cost (chroma analysis, probes, final encode) over one encode at the chosen quality.',
    '',
    ...summaryTable(results),
    '',
    ...disagreement(results),
    '## Per image',
    '',
    ...results.runs.flatMap(imageTable),
  ];
  await writeFile(file, `${text.join('\n')}\n`);
}
