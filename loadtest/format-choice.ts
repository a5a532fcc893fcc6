/**
 * `npm run bench:formats`: what auto=format's rule (transform/optimize.ts: a fallback encoded only
 * when the first choice may have lost) answers, against the truth: every format the edge
 * considers, always encoded. Inputs the project did not draw: the Debian photographs
 * (`npm run photos`), the GIFs Debian packages ship on this machine (Tk's images, docs' figures),
 * application icons from /usr/share/icons, and the project's own page screenshots.
 *
 * For each input, each output width and each client (WebP; AVIF + WebP), under
 * `auto=format,compress` (what imgix recommends) and plain `auto=format`:
 * - the rule's answer (bytes, formats tried, time);
 * - the smallest of the considered formats, each encoded alone (the truth);
 * - the first choice alone (the rule without fallbacks).
 * Judged by bytes alone; every answer is a format the client takes. Writes docs/FORMAT-CHOICE.md.
 */
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { SingleBar } from 'cli-progress';
import { ensurePhotoCorpus, repoRoot } from '../scripts/photo-corpus.js';
import { identify } from '../src/transform/identify.js';
import { chooseOutput, fallbackOutput, type AcceptedFormats } from '../src/transform/negotiate.js';
import { renderVariant } from '../src/transform/optimize.js';
import { parseParams } from '../src/transform/params.js';
import type { EncodePolicy, TransformLimits } from '../src/transform/types.js';

const POLICY: EncodePolicy = { qualityTarget: 'high', keepCopyright: false, keepIccProfile: false };
// The edge's defaults (config/schema.ts).
const LIMITS: TransformLimits = { maxOutputDimension: 8192, maxOutputPixels: 36_000_000, maxSourcePixels: 50_000_000, avifEffort: 2, timeoutSeconds: 60, maxFrames: 300 };
const CLIENTS: Record<string, AcceptedFormats> = { webp: { avif: false, webp: true }, 'avif+webp': { avif: true, webp: true } };
const FORMAT_POLICY = { avif: true, avifMaxDimension: 1600 };

interface Input {
  kind: string;
  name: string;
  bytes: Buffer;
}

/** Files under `dir` (recursively) whose names end in `ext`, at least `minBytes` long. */
async function filesUnder(dir: string, ext: string, minBytes: number): Promise<string[]> {
  const found: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.name.endsWith(ext) && (await stat(p)).size >= minBytes) found.push(p);
    }
  };
  await walk(dir);
  return found.sort();
}

async function inputs(quick: boolean): Promise<Input[]> {
  const list: Input[] = [];
  const photos = await ensurePhotoCorpus({ log: (m) => console.error(m) });
  for (const p of photos.slice(0, quick ? 8 : undefined)) list.push({ kind: `photo (${p.format})`, name: p.name, bytes: await readFile(p.file) });
  const gifs = [...(await filesUnder('/usr/share/tcltk', '.gif', 2048)), ...(await filesUnder('/usr/share/doc', '.gif', 2048))];
  for (const f of gifs.slice(0, quick ? 6 : 40)) list.push({ kind: 'gif (Debian)', name: path.relative('/usr/share', f), bytes: await readFile(f) });
  // The largest raster of each application icon: drawn art with alpha, as sites use it.
  const icons = (await filesUnder('/usr/share/icons', '.png', 8192)).filter((f) => /\/(256x256|512x512|128x128)\//.test(f));
  for (const f of icons.slice(0, quick ? 6 : 30)) list.push({ kind: 'icon (png)', name: path.relative('/usr/share/icons', f), bytes: await readFile(f) });
  for (const f of await filesUnder(path.join(repoRoot(), 'docs', 'screenshots'), '.png', 0)) {
    list.push({ kind: 'screenshot (png)', name: path.basename(f), bytes: await readFile(f) });
  }
  return list;
}

interface Case {
  kind: string;
  name: string;
  query: string;
  client: string;
  answer: { format: string; bytes: number; ms: number; tried: string[] };
  firstOnly: { format: string; bytes: number; ms: number; quality?: number };
  /** every considered format encoded alone */
  alone: { format: string; bytes: number; quality?: number }[];
  best: { format: string; bytes: number };
  /** the source's bytes per pixel at the output's size */
  densityBound: number;
}

async function measure(input: Input, query: string, client: string): Promise<Case> {
  const info = await identify(input.bytes);
  const { params } = parseParams(new URLSearchParams(query));
  const accepted = CLIENTS[client]!;
  const out = chooseOutput(params, info, accepted, FORMAT_POLICY);
  const fallback = fallbackOutput(params, info, accepted, out);
  let t = performance.now();
  const rule = await renderVariant(input.bytes, info, params, out, LIMITS, POLICY, fallback);
  const ruleMs = performance.now() - t;
  t = performance.now();
  const first = await renderVariant(input.bytes, info, params, out, LIMITS, POLICY);
  const firstMs = performance.now() - t;
  let best = { format: first.result.format as string, bytes: first.result.body.length };
  const alone: Case['alone'] = [];
  for (const f of fallback ? [fallback] : []) {
    const { result } = await renderVariant(input.bytes, info, params, f, LIMITS, POLICY);
    alone.push({ format: result.format, bytes: result.body.length, ...(result.quality === undefined ? {} : { quality: result.quality }) });
    if (result.body.length < best.bytes) best = { format: result.format, bytes: result.body.length };
  }
  return {
    kind: input.kind,
    name: input.name,
    query,
    client,
    answer: { format: rule.result.format, bytes: rule.result.body.length, ms: ruleMs, tried: rule.tried },
    firstOnly: { format: first.result.format, bytes: first.result.body.length, ms: firstMs, ...(first.result.quality === undefined ? {} : { quality: first.result.quality }) },
    alone,
    best,
    densityBound: Math.round((info.bytes / (info.width * info.height * Math.max(1, info.pages))) * first.result.width * first.result.height),
  };
}

const pct = (n: number, d: number) => (d === 0 ? '–' : `${((100 * n) / d).toFixed(1)} %`);

function report(cases: Case[], seconds: number): string {
  const kinds = [...new Set(cases.map((c) => c.kind))];
  const misses = cases.filter((c) => c.answer.bytes > c.best.bytes);
  const row = (label: string, cs: Case[]) => {
    const extra = cs.filter((c) => c.answer.tried.length > 1).length;
    const larger = cs.filter((c) => c.answer.bytes > c.best.bytes);
    const lost = larger.reduce((n, c) => n + c.answer.bytes - c.best.bytes, 0);
    const answerBytes = cs.reduce((n, c) => n + c.answer.bytes, 0);
    const firstBytes = cs.reduce((n, c) => n + c.firstOnly.bytes, 0);
    const bestBytes = cs.reduce((n, c) => n + c.best.bytes, 0);
    const ruleMs = cs.reduce((n, c) => n + c.answer.ms, 0);
    const firstMs = cs.reduce((n, c) => n + c.firstOnly.ms, 0);
    const fallbackWon = cs.filter((c) => c.answer.format !== c.firstOnly.format).length;
    return `| ${label} | ${cs.length} | ${pct(extra, cs.length)} | ${fallbackWon} | ${larger.length} (${pct(lost, answerBytes)} of bytes) | ${pct(firstBytes - answerBytes, firstBytes)} | ${pct(answerBytes - bestBytes, bestBytes)} | ${(ruleMs / firstMs).toFixed(2)}× |`;
  };
  const lines = [
    '# auto=format: the rule against every considered format',
    '',
    `\`npm run bench:formats\` (${new Date().toISOString().slice(0, 10)}, ${cases.length} answers in ${Math.round(seconds)} s on this 2-core machine).`,
    'Each answer is the rule\'s (transform/optimize.ts); the truth is every format the edge considers',
    '(the negotiated one and the source\'s family or `fm`) encoded alone and the smallest taken.',
    'Queries: `w=320` and `w=960` (never enlarged), each with `auto=format,compress` and plain `auto=format`;',
    'clients taking WebP, and AVIF + WebP.',
    '',
    'What this does not judge: the truth is the edge\'s own encoders, so this measures the rule\'s',
    'choice among them, not the encoders against anyone else\'s; and bytes only. At one fixed q the',
    'formats do not carry the same detail (a modern format\'s q keeps more than JPEG\'s), so at a fixed q',
    'the smaller answer can be the plainer image; at `auto=compress` every format meets one perceptual',
    'target (docs/QUALITY.md judges that target with Butteraugli).',
    '',
    '| inputs | answers | more than one encode | a fallback won | larger than the smallest considered | bytes saved vs first choice alone | bytes over the truth | encode time vs first choice alone |',
    '|---|---|---|---|---|---|---|---|',
    ...kinds.map((k) => row(k, cases.filter((c) => c.kind === k))),
    row('**all**', cases),
    '',
    '## Where the rule answered larger than a considered format',
    '',
    ...(misses.length === 0
      ? ['None.']
      : [
          '| input | query | client | answer | smallest considered |',
          '|---|---|---|---|---|',
          ...misses.map((c) => `| ${c.name} | ${c.query} | ${c.client} | ${c.answer.format} ${c.answer.bytes} B | ${c.best.format} ${c.best.bytes} B |`),
        ]),
    '',
  ];
  return lines.join('\n');
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const kind = process.argv.indexOf('--kind');
  const all = (await inputs(quick)).filter((i) => kind < 0 || i.kind.startsWith(process.argv[kind + 1]!));
  const queries = ['w=320&auto=format,compress', 'w=960&auto=format,compress', 'w=320&auto=format', 'w=960&auto=format'];
  const jobs = all.flatMap((input) => queries.flatMap((query) => Object.keys(CLIENTS).map((client) => ({ input, query, client }))));
  const bar = new SingleBar({ format: 'formats [{bar}] {value}/{total} {name}', stream: process.stderr, noTTYOutput: true, notTTYSchedule: 10_000 });
  bar.start(jobs.length, 0, { name: '' });
  const started = performance.now();
  const cases: Case[] = [];
  for (const j of jobs) {
    bar.update({ name: `${j.input.name} ${j.query} ${j.client}` });
    try {
      cases.push(await measure(j.input, j.query, j.client));
    } catch (err) {
      console.error(`\n${j.input.name}: ${(err as Error).message}`);
    }
    bar.increment();
  }
  bar.stop();
  const md = report(cases, (performance.now() - started) / 1000);
  const file = path.join(repoRoot(), 'docs', quick ? 'FORMAT-CHOICE.quick.md' : 'FORMAT-CHOICE.md');
  await writeFile(file, md);
  await writeFile(file.replace(/\.md$/, '.json').replace('FORMAT-CHOICE', 'format-choice'), `${JSON.stringify(cases, null, 1)}\n`);
  console.log(md);
  console.error(`wrote ${file}`);
}

await main();
