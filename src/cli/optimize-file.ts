/** One file through the edge's pipeline: identify → auto=compress → chooseOutput → renderVariant. */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, extname, join } from 'node:path';
import { EdgeError } from '../errors.js';
import { identify } from '../transform/identify.js';
import { chooseOutput } from '../transform/negotiate.js';
import { renderVariant } from '../transform/optimize.js';
import { parseParams } from '../transform/params.js';
import type { EncodePolicy, ImageInfo, OutputChoice, OutputFormat, TransformLimits, TransformParams, TransformResult } from '../transform/types.js';
import type { FormatOption } from './args.js';
import type { InputFile } from './walk.js';

export interface RunSettings {
  /** output folder; undefined means in place */
  outDir?: string;
  format: FormatOption;
  limits: TransformLimits;
  policy: EncodePolicy;
  /** destinations written in this run, so two inputs never overwrite each other's result */
  claimed: Set<string>;
}

export interface FileResult {
  file: string;
  /** optimized: a smaller file was written; unchanged: the original stays (copied under --out) */
  status: 'optimized' | 'unchanged' | 'skipped' | 'failed';
  before: number;
  after: number;
  width?: number;
  height?: number;
  quality?: number;
  /** why it was skipped or failed, with a stable code (EdgeError codes, errno codes) */
  reason?: string;
  errorCode?: string;
}

interface Plan {
  params: TransformParams;
  out: OutputChoice;
}

const EXTENSIONS: Readonly<Record<OutputFormat, string>> = { jpeg: '.jpg', png: '.png', webp: '.webp', avif: '.avif', gif: '.gif' };

const paramsFor = (format: FormatOption): TransformParams =>
  parseParams(new URLSearchParams(format === 'keep' ? { auto: 'compress' } : { auto: 'compress', fm: format })).params;

/** Params and encoding for a source; undefined when every choice would drop animation frames. */
function plan(info: ImageInfo, format: FormatOption): Plan | undefined {
  const policy = { avif: true, avifMaxDimension: Number.MAX_SAFE_INTEGER };
  for (const f of format === 'keep' ? ['keep' as const] : [format, 'keep' as const]) {
    const params = paramsFor(f);
    const out = chooseOutput(params, info, undefined, policy);
    if (info.pages === 1 || out.animated) return { params, out };
  }
  return undefined;
}

/** The re-encoded image when it should replace the original; undefined keeps the original. */
async function worthKeeping(source: Buffer, info: ImageInfo, chosen: Plan, run: RunSettings): Promise<TransformResult | undefined> {
  const { result, original } = await renderVariant(source, info, chosen.params, chosen.out, run.limits, run.policy);
  // The output limits must not have shrunk it (EXIF orientations 5–8 swap the sides when applied).
  const [w, h] = info.orientation >= 5 ? [info.height, info.width] : [info.width, info.height];
  // In place, a new format would need a new name: such a file stays as it is.
  const keep = !original && result.body.length < source.length && result.width === w && result.height === h &&
    (run.outDir !== undefined || result.format === info.format);
  return keep ? result : undefined;
}

function withExtension(path: string, format: OutputFormat): string {
  const ext = extname(path);
  return (ext ? path.slice(0, -ext.length) : path) + EXTENSIONS[format];
}

/** Temp file in the same folder, then rename: readers never see half a file. */
async function writeAtomic(path: string, body: Buffer, mode?: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${randomBytes(6).toString('hex')}.imgedge-tmp`);
  try {
    await writeFile(tmp, body);
    if (mode !== undefined) await chmod(tmp, mode);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

function claim(run: RunSettings, path: string): void {
  if (run.claimed.has(path)) throw Object.assign(new Error(`another input already wrote ${path}`), { code: 'OUTPUT_CONFLICT' });
  run.claimed.add(path);
}

function errorCode(err: unknown): string {
  if (err instanceof EdgeError) return err.code;
  const code = (err as NodeJS.ErrnoException).code;
  return typeof code === 'string' ? code : 'EDGE_INTERNAL';
}

export async function optimizeFile(input: InputFile, run: RunSettings): Promise<FileResult> {
  const r: FileResult = { file: input.path, status: 'failed', before: 0, after: 0 };
  try {
    const source = await readFile(input.path);
    r.before = r.after = source.length;
    const info = await identify(source).catch((err: unknown) => {
      if (err instanceof EdgeError && err.code === 'EDGE_NOT_AN_IMAGE') return undefined;
      throw err;
    });
    if (!info) return { ...r, status: 'skipped', reason: 'not an image', errorCode: 'EDGE_NOT_AN_IMAGE' };
    const skip = (reason: string): FileResult => ({ ...r, status: 'skipped', reason, errorCode: 'UNSUPPORTED_IMAGE' });
    if (info.format === 'svg') return skip('SVG is left as is');
    r.width = info.width;
    r.height = info.height;
    const chosen = plan(info, run.format);
    if (!chosen) return skip(`${info.pages} frames that no output format here keeps`);

    const result = await worthKeeping(source, info, chosen, run);
    if (run.outDir === undefined) {
      if (result) await writeAtomic(input.path, result.body, (await stat(input.path)).mode);
    } else {
      const rel = result && result.format !== info.format ? withExtension(input.relative, result.format) : input.relative;
      const dest = join(run.outDir, rel);
      claim(run, dest);
      await writeAtomic(dest, result?.body ?? source);
    }
    if (!result) return { ...r, status: 'unchanged' };
    return { ...r, status: 'optimized', after: result.body.length, ...(result.quality !== undefined ? { quality: result.quality } : {}) };
  } catch (err) {
    return { ...r, after: r.before, reason: (err as Error).message, errorCode: errorCode(err) };
  }
}
